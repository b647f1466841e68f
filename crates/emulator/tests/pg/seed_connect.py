"""The seed's psycopg2 connection code, unchanged, against a local instance.

Usage: seed_connect.py READ_WRITE_DNS USER TOKEN
Prints the server version and the CRUD-from-Python round trip of the seed.
"""
import sys

import psycopg2

read_write_dns, user, token = sys.argv[1:4]


class Instance:
    pass


instance = Instance()
instance.read_write_dns = read_write_dns


class Cred:
    pass


cred = Cred()
cred.token = token

# --- seed section 3, as written ---
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

# --- seed section 4, CRUD from Python ---
with conn.cursor() as cur:
    cur.execute("CREATE SCHEMA IF NOT EXISTS app")
    cur.execute("""
        CREATE TABLE IF NOT EXISTS app.products (
            id SERIAL PRIMARY KEY,
            name TEXT NOT NULL,
            price NUMERIC(10,2),
            tags TEXT[]
        )
    """)
    conn.commit()

    cur.execute(
        "INSERT INTO app.products (name, price, tags) VALUES (%s, %s, %s) RETURNING id",
        ("Widget", 29.99, ["electronics", "sale"])
    )
    product_id = cur.fetchone()[0]
    conn.commit()

    cur.execute("SELECT * FROM app.products WHERE id = %s", (product_id,))
    row = cur.fetchone()
    assert row[1] == "Widget" and row[3] == ["electronics", "sale"], row

    cur.execute("UPDATE app.products SET price = %s WHERE id = %s", (24.99, product_id))
    conn.commit()

    cur.execute("DELETE FROM app.products WHERE id = %s", (product_id,))
    conn.commit()
    cur.execute("SELECT count(*) FROM app.products")
    print("rows after delete:", cur.fetchone()[0])
conn.close()
