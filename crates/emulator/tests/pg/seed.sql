-- The SQL of the seed's section 4, run as written against a local instance
-- (plus the app.audit_log table its transaction example needs).
CREATE SCHEMA IF NOT EXISTS app;

CREATE TABLE app.customers (
    id          SERIAL PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    metadata    JSONB,
    created_at  TIMESTAMPTZ DEFAULT NOW()
);

CREATE INDEX idx_customers_email ON app.customers(email);

CREATE TABLE app.audit_log (
    id          SERIAL PRIMARY KEY,
    action      TEXT NOT NULL,
    customer_id INT REFERENCES app.customers(id),
    at          TIMESTAMPTZ DEFAULT NOW()
);

INSERT INTO app.customers (email, name, metadata)
VALUES ('alice@example.com', 'Alice', '{"tier": "premium"}')
RETURNING id;

SELECT * FROM app.customers WHERE metadata->>'tier' = 'premium';

UPDATE app.customers SET metadata = metadata || '{"verified": true}' WHERE id = 1;

DELETE FROM app.customers WHERE created_at < NOW() - INTERVAL '1 year';

BEGIN;
  UPDATE app.customers SET name = 'Alice Smith' WHERE id = 1;
  INSERT INTO app.audit_log (action, customer_id) VALUES ('rename', 1);
COMMIT;

CREATE TABLE IF NOT EXISTS app.products (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    price NUMERIC(10,2),
    tags TEXT[]
);

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

CREATE EXTENSION IF NOT EXISTS databricks_auth;

SELECT databricks_create_role('bob@company.com', 'USER');

SELECT databricks_create_role('7f3c8e2a-1b4d-4c5e-9f60-123456789abc', 'SERVICE_PRINCIPAL');

GRANT USAGE ON SCHEMA app TO "bob@company.com";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO "bob@company.com";

SELECT name FROM pg_settings WHERE context = 'user';
SET maintenance_work_mem = '1 GB';
ALTER DATABASE databricks_postgres SET maintenance_work_mem = '1 GB';
