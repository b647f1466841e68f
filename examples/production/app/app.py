"""A tiny app: answers with the number of customer feature rows."""
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"lakebase app on {os.environ.get('PGDATABASE', 'unknown')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(os.environ.get("DATABRICKS_APP_PORT", "8000"))), Handler).serve_forever()
