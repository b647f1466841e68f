"""A small web app reading the synced `customers` table from Lakebase.

It connects the way the Lakebase documentation shows: look up the database
instance, generate a short-lived database credential for the app's own
identity, and connect with psycopg2 using the token as the password. A new
credential is fetched per connection, so tokens (valid about an hour) never
go stale.

    GET /            the customers as JSON
    python app.py --once   print them once and exit (a local check)
"""
import json
import os
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg2
from databricks.sdk import WorkspaceClient

INSTANCE_NAME = os.environ["LAKEBASE_INSTANCE_NAME"]
DATABASE = os.environ["LAKEBASE_DATABASE"]

w = WorkspaceClient()


def get_connection():
    """A Postgres connection with fresh OAuth credentials."""
    instance = w.database.get_database_instance(name=INSTANCE_NAME)
    cred = w.database.generate_database_credential(
        request_id=str(uuid.uuid4()), instance_names=[INSTANCE_NAME]
    )
    return psycopg2.connect(
        host=instance.read_write_dns,
        dbname=DATABASE,
        user=w.current_user.me().user_name,
        password=cred.token,
        sslmode="require",
    )


def customers(limit=100):
    conn = get_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT customer_id, name, segment, lifetime_value"
                " FROM public.customers ORDER BY customer_id LIMIT %s",
                (limit,),
            )
            cols = [c.name for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        conn.close()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body, status = json.dumps(customers(), default=str).encode(), 200
        except Exception as e:  # report the failure to the caller, keep serving
            body, status = json.dumps({"error": str(e)}).encode(), 500
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if sys.argv[1:] == ["--once"]:
        print(json.dumps(customers(), default=str))
    else:
        port = int(os.environ.get("DATABRICKS_APP_PORT", "8000"))
        HTTPServer(("0.0.0.0", port), Handler).serve_forever()
