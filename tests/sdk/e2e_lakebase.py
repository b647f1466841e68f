"""Issue 5's end-to-end check, after `lakebundle deploy` of the seed's production bundle:
a credential through the official SDK, the seed's own psycopg2 connection code, the seed's
SQL section, the synced table's rows, and a point-in-time clone.

Usage: e2e_lakebase.py SEED_SQL EXPECTED_SYNCED_ROWS
"""
import datetime
import sys
import time
import uuid

import psycopg2
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.database import DatabaseInstance, DatabaseInstanceRef

seed_sql_path, expected_rows = sys.argv[1], int(sys.argv[2])
w = WorkspaceClient()
user = w.current_user.me().user_name

# --- seed section 3: connection code, as written ---
instance = w.database.get_database_instance(name="my-instance")
cred = w.database.generate_database_credential(
    request_id=str(uuid.uuid4()),
    instance_names=["my-instance"]
)

conn = psycopg2.connect(
    host=instance.read_write_dns,
    dbname="databricks_postgres",
    user=user,
    password=cred.token,
    sslmode="require"
)

with conn.cursor() as cur:
    cur.execute("SELECT version()")
    print(cur.fetchone()[0])

# --- seed section 4: the SQL ---
with conn.cursor() as cur:
    cur.execute(open(seed_sql_path).read())
conn.commit()
with conn.cursor() as cur:
    cur.execute("SELECT name, metadata->>'verified' FROM app.customers WHERE id = 1")
    assert cur.fetchone() == ("Alice Smith", "true"), "seed CRUD + transaction"
    cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'bob@company.com'")
    assert cur.fetchone()[0] == 1, "databricks_create_role made the role"
print("PASS seed SQL")

# --- the synced table holds the source rows ---
synced = psycopg2.connect(host=instance.read_write_dns, dbname="my_database", user=user,
                          password=cred.token, sslmode="require")
with synced.cursor() as cur:
    cur.execute("SELECT count(*) FROM my_database.customer_features")
    assert cur.fetchone()[0] == expected_rows, "synced rows"
synced.close()
print("PASS synced table")

# --- point-in-time clone: rows written after the timestamp are absent ---
with conn.cursor() as cur:
    cur.execute("CREATE TABLE app.pitr (id int primary key)")
    cur.execute("INSERT INTO app.pitr VALUES (1), (2)")
conn.commit()
time.sleep(1.5)
branch_time = datetime.datetime.now(datetime.timezone.utc)
time.sleep(1.5)
with conn.cursor() as cur:
    cur.execute("INSERT INTO app.pitr VALUES (3)")
conn.commit()
conn.close()
clone = w.database.create_database_instance_and_wait(
    DatabaseInstance(
        name="recovery-clone",
        capacity="CU_1",
        parent_instance_ref=DatabaseInstanceRef(
            name="my-instance",
            branch_time=branch_time.isoformat().replace("+00:00", "Z"),
        ),
    )
)
clone_cred = w.database.generate_database_credential(
    request_id=str(uuid.uuid4()), instance_names=["recovery-clone"])
c = psycopg2.connect(host=clone.read_write_dns, dbname="databricks_postgres", user=user,
                     password=clone_cred.token, sslmode="require")
with c.cursor() as cur:
    cur.execute("SELECT array_agg(id ORDER BY id) FROM app.pitr")
    ids = cur.fetchone()[0]
c.close()
assert ids == [1, 2], f"clone as of {branch_time}: {ids}"
w.database.delete_database_instance(name="recovery-clone", purge=True)
print("PASS point-in-time clone")
