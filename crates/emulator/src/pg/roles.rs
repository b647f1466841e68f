//! Roles and credentials: the cluster-wide roles every instance starts
//! with, identity roles whose password is the latest generated credential,
//! and the `databricks_auth` extension.
//!
//! Role model (local stand-in for the service's):
//! - `lakebase_admin`: bootstrap superuser, used only by the emulator;
//! - `databricks_superuser`: NOLOGIN, CREATEDB, member of
//!   `pg_read_all_data`/`pg_write_all_data`/`pg_monitor`/`pg_signal_backend`
//!   (without ADMIN OPTION, so it cannot hand them on), owner of
//!   `databricks_postgres` and of every database a catalog creates;
//! - `databricks_identity`: NOLOGIN group of identity roles; `pg_hba.conf`
//!   always lets its members log in with their password;
//! - a workspace identity's role (email or service principal id) is created
//!   on its first credential, in both groups above, LOGIN CREATEDB and
//!   **not** CREATEROLE: on PostgreSQL 15 CREATEROLE may grant any
//!   non-superuser role, `pg_execute_server_program` (`COPY ... FROM
//!   PROGRAM`) and `pg_read_server_files`/`pg_write_server_files` included,
//!   i.e. shell access as the server's OS user and every instance's files.
//!   Its password is the token (stored as a SCRAM verifier: the plain token
//!   never reaches the server), `VALID UNTIL` the token's expiry;
//! - roles are created on the user's behalf by SECURITY DEFINER functions
//!   of the `databricks_auth` extension (owned by the bootstrap superuser,
//!   executable by `databricks_superuser` members), which never grant a
//!   predefined role: `databricks_create_role(name,
//!   'USER'|'SERVICE_PRINCIPAL'|'GROUP')` makes an identity role (login, no
//!   password until a credential; not a member of `databricks_superuser`),
//!   `databricks_create_native_role(name, password)` a password role for
//!   native login, `databricks_drop_role(name)` drops one of those. Each
//!   created role is administered by `databricks_superuser` (ADMIN OPTION),
//!   so its members can `GRANT`/`REVOKE` it as CREATEROLE would allow.
//! - Native Postgres roles log in only when the instance has
//!   `enable_pg_native_login`.

use std::path::Path;

use super::error::{PgError, PgResult};
use super::server::{ident, literal, DEFAULT_DB, IDENTITY_GROUP};

pub const SUPERUSER_GROUP: &str = "databricks_superuser";
pub const AUTH_EXTENSION: &str = "databricks_auth";
const AUTH_VERSION: &str = "1.0";

/// Roles, run once on the template cluster (database `postgres`).
pub fn bootstrap_roles_sql() -> String {
    format!(
        "CREATE ROLE {id} NOLOGIN;\n\
         CREATE ROLE {su} NOLOGIN CREATEDB NOCREATEROLE IN ROLE pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend;\n\
         COMMENT ON ROLE {su} IS 'Databricks superuser: holds the rights of an instance owner';\n",
        id = ident(IDENTITY_GROUP),
        su = ident(SUPERUSER_GROUP),
    )
}

/// `databricks_postgres`, made after `template1` has its extensions.
pub fn bootstrap_database_sql() -> String {
    create_database_sql(DEFAULT_DB)
}

/// Extensions of the service's list that only a superuser may create:
/// they are pre-created in `template1` (so in every database) when
/// installed, which makes `CREATE EXTENSION IF NOT EXISTS` work for
/// identity roles. Trusted ones (pgcrypto, uuid-ossp, hstore, citext, ...)
/// are left to the user.
pub const PRECREATED_EXTENSIONS: [&str; 3] = ["pg_stat_statements", "vector", "postgis"];

/// Whether an installed extension needs a superuser to create (`trusted`
/// absent or false in its control file). None: not installed.
pub fn needs_superuser(sharedir: &Path, name: &str) -> Option<bool> {
    let text =
        std::fs::read_to_string(sharedir.join("extension").join(format!("{name}.control"))).ok()?;
    let trusted = text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("trusted")
            && l.split('=')
                .nth(1)
                .is_some_and(|v| v.trim().trim_matches('\'') == "true")
    });
    Some(!trusted)
}

/// `CREATE DATABASE` as the catalogs create it (owned by databricks_superuser).
pub fn create_database_sql(name: &str) -> String {
    format!(
        "CREATE DATABASE {} OWNER {}",
        ident(name),
        ident(SUPERUSER_GROUP)
    )
}

fn control_file() -> String {
    format!(
        "# lakebundle: local stand-in for the Databricks identity extension\n\
         comment = 'Databricks identity roles (lakebundle local emulation)'\n\
         default_version = '{AUTH_VERSION}'\n\
         relocatable = false\n\
         schema = public\n\
         trusted = true\n"
    )
}

fn script_file() -> String {
    let body = r#"
CREATE FUNCTION databricks_create_role(role_name text, identity_type text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
BEGIN
  IF role_name IS NULL OR length(role_name) = 0 THEN
    RAISE EXCEPTION 'role name must not be empty';
  END IF;
  IF identity_type = 'GROUP' THEN
    EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', role_name);
  ELSIF identity_type IN ('USER', 'SERVICE_PRINCIPAL') THEN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS IN ROLE databricks_identity', role_name);
  ELSE
    RAISE EXCEPTION 'identity_type must be USER, SERVICE_PRINCIPAL or GROUP, not %', identity_type;
  END IF;
  EXECUTE format('COMMENT ON ROLE %I IS %L', role_name, 'databricks identity: ' || identity_type);
  -- Members of databricks_superuser may grant and revoke the new role (what CREATEROLE
  -- would give them, without its power over predefined roles).
  EXECUTE format('GRANT %I TO databricks_superuser WITH ADMIN OPTION', role_name);
  RETURN role_name;
END
$fn$;

REVOKE ALL ON FUNCTION databricks_create_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION databricks_create_role(text, text) TO databricks_superuser;

CREATE FUNCTION databricks_create_native_role(role_name text, role_password text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
BEGIN
  IF role_name IS NULL OR length(role_name) = 0 THEN
    RAISE EXCEPTION 'role name must not be empty';
  END IF;
  IF role_password IS NULL OR length(role_password) = 0 THEN
    RAISE EXCEPTION 'a native role needs a non-empty password';
  END IF;
  EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L', role_name, role_password);
  EXECUTE format('COMMENT ON ROLE %I IS %L', role_name, 'databricks native role');
  EXECUTE format('GRANT %I TO databricks_superuser WITH ADMIN OPTION', role_name);
  RETURN role_name;
END
$fn$;

REVOKE ALL ON FUNCTION databricks_create_native_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION databricks_create_native_role(text, text) TO databricks_superuser;

CREATE FUNCTION databricks_drop_role(role_name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
DECLARE
  note text;
BEGIN
  SELECT d.description INTO note
  FROM pg_roles r
  LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
  WHERE r.rolname = role_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'undefined_object';
  END IF;
  -- Only roles these functions made; never a system, predefined or administrative role.
  IF note IS NULL OR NOT (note LIKE 'databricks identity: %' OR note = 'databricks native role') THEN
    RAISE EXCEPTION 'permission denied to drop role "%"', role_name USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE format('DROP ROLE %I', role_name);
END
$fn$;

REVOKE ALL ON FUNCTION databricks_drop_role(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION databricks_drop_role(text) TO databricks_superuser;

CREATE FUNCTION databricks_list_roles()
RETURNS TABLE (role_name name, identity_type text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $fn$
  SELECT r.rolname,
         CASE WHEN d.description LIKE 'databricks identity: %'
              THEN substr(d.description, 22) ELSE 'USER' END
  FROM pg_roles r
  JOIN pg_auth_members m ON m.member = r.oid
  JOIN pg_roles g ON g.oid = m.roleid AND g.rolname = 'databricks_identity'
  LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
  ORDER BY 1
$fn$;
"#;
    format!("\\echo Use \"CREATE EXTENSION {AUTH_EXTENSION}\" to load this file. \\quit\n{body}")
}

/// Put the extension's control and script files into `<sharedir>/extension`
/// (idempotent). Fails when that directory is not writable.
pub fn install_auth_extension(sharedir: &Path) -> PgResult<()> {
    let dir = sharedir.join("extension");
    let files = [
        (
            dir.join(format!("{AUTH_EXTENSION}.control")),
            control_file(),
        ),
        (
            dir.join(format!("{AUTH_EXTENSION}--{AUTH_VERSION}.sql")),
            script_file(),
        ),
    ];
    for (path, text) in files {
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        std::fs::write(&path, text).map_err(PgError::io(&path))?;
    }
    Ok(())
}

/// An RFC 3339 time as PostgreSQL timestamptz input (UTC).
pub fn pg_timestamp(rfc3339: &str) -> PgResult<String> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map_err(|e| PgError::Invalid(format!("not an RFC 3339 timestamp: {rfc3339:?} ({e})")))?;
    Ok(t.with_timezone(&chrono::Utc)
        .format("%Y-%m-%d %H:%M:%S%.6f+00")
        .to_string())
}

/// Make `password` the login password of identity role `role` until
/// `valid_until`, creating the role on first use.
pub async fn set_credential(
    client: &tokio_postgres::Client,
    uid: &str,
    role: &str,
    password: &str,
    valid_until: &str,
) -> PgResult<()> {
    if role.is_empty() {
        return Err(PgError::Invalid("role name must not be empty".into()));
    }
    let until = pg_timestamp(valid_until)?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| PgError::sql(uid, &e))?
        .is_some();
    if !exists {
        let create = format!(
            // Attributes are not inherited from databricks_superuser: give them directly.
            // Never CREATEROLE (see the module doc).
            "CREATE ROLE {} LOGIN CREATEDB NOCREATEROLE IN ROLE {}, {}",
            ident(role),
            ident(IDENTITY_GROUP),
            ident(SUPERUSER_GROUP)
        );
        if let Err(e) = client.batch_execute(&create).await {
            // Lost a race with a concurrent first credential: fine.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) {
                return Err(PgError::sql(uid, &e));
            }
        }
    }
    // The verifier, not the token, goes over the wire and into any log line.
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let alter = format!(
        // NOCREATEROLE also takes the attribute from roles made by earlier versions.
        "ALTER ROLE {r} WITH LOGIN NOCREATEROLE PASSWORD {p} VALID UNTIL {u}; GRANT {g} TO {r}; \
         ALTER ROLE {su} NOCREATEROLE",
        r = ident(role),
        p = literal(&verifier),
        u = literal(&until),
        g = ident(IDENTITY_GROUP),
        su = ident(SUPERUSER_GROUP),
    );
    client
        .batch_execute(&alter)
        .await
        .map_err(|e| PgError::sql(uid, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_normalised_to_utc() {
        assert_eq!(
            pg_timestamp("2026-01-15T10:00:00+02:00").ok().as_deref(),
            Some("2026-01-15 08:00:00.000000+00")
        );
        assert!(pg_timestamp("tomorrow").is_err());
    }

    #[test]
    fn extension_is_trusted_and_creates_identity_roles() {
        assert!(control_file().contains("trusted = true"));
        let s = script_file();
        assert!(s.contains(
            "CREATE FUNCTION databricks_create_role(role_name text, identity_type text)"
        ));
        assert!(s.contains("SECURITY DEFINER"));
    }
}
