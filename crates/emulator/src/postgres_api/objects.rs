//! What happens inside PostgreSQL: roles, databases, postgres catalogs, synced tables,
//! and the credentials call (§1.8–§1.11).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::tree::{self, current_view, lock_key, mark_ready, project_of, visible, Kind};
use super::{
    bad_request, computes, invalid, not_found, ops, PgErr, PgResult, Req, BRANCHES, CATALOGS,
    DATABASES, ROLES, SYNCED,
};
use crate::backend::SyncedTableSpec;
use crate::http::{now_ms, random_hex, rfc3339, ApiErr};
use crate::instances::{credential_token, CREDENTIAL_TTL_MS, DB_CREDENTIALS};
use crate::postgres::server::{ident, literal};
use crate::server::Emu;

const SUPERUSER_GROUP: &str = "databricks_superuser";
const IDENTITY_GROUP: &str = "databricks_identity";

fn branch_uid(emu: &Emu, branch: &str) -> PgResult<String> {
    emu.store
        .get(BRANCHES, branch)
        .and_then(|b| b["uid"].as_str().map(str::to_string))
        .ok_or_else(|| not_found("branch", branch))
}

fn rec_of(emu: &Emu, kind: Kind, name: &str) -> PgResult<Value> {
    emu.store
        .get(kind.coll(), name)
        .ok_or_else(|| not_found(kind.noun(), name))
}

/// Run admin SQL on a branch (waking its servers).
async fn sql(emu: &Arc<Emu>, branch: &str, database: &str, text: &str) -> PgResult<()> {
    computes::wake(emu, branch).await?;
    let uid = branch_uid(emu, branch)?;
    emu.backend.admin_sql(&uid, database, text).await?;
    Ok(())
}

/// The server-generated password of a password role: derived from the emulator's key and
/// the role's uid, so it is never stored and stays the same across processes.
fn role_password(emu: &Emu, role_uid: &str) -> String {
    credential_token(
        &emu.credential_key,
        &format!("role-password:{role_uid}"),
        "v1",
    )
}

fn role_attrs(status: &Value) -> String {
    let a = &status["attributes"];
    let flag = |k: &str, word: &str| {
        if a[k] == json!(true) {
            word.to_string()
        } else {
            format!("NO{word}")
        }
    };
    format!(
        "{} {} {}",
        flag("createdb", "CREATEDB"),
        flag("createrole", "CREATEROLE"),
        flag("bypassrls", "BYPASSRLS")
    )
}

fn membership_sql(role: &str, status: &Value) -> String {
    let su = status["membership_roles"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r == "DATABRICKS_SUPERUSER"));
    if su {
        format!("GRANT {} TO {};", ident(SUPERUSER_GROUP), ident(role))
    } else {
        format!("REVOKE {} FROM {};", ident(SUPERUSER_GROUP), ident(role))
    }
}

pub async fn create_role_sql(emu: &Arc<Emu>, name: &str) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Role, name)?;
    let st = &rec["status"];
    let role = st["postgres_role"].as_str().unwrap_or_default();
    let login = match st["auth_method"].as_str() {
        Some("NO_LOGIN") => "NOLOGIN".to_string(),
        Some("PG_PASSWORD_SCRAM_SHA_256") => {
            let pw = role_password(emu, rec["uid"].as_str().unwrap_or_default());
            // The verifier, not the password, goes over the wire.
            let verifier = postgres_protocol::password::scram_sha_256(pw.as_bytes());
            format!("LOGIN PASSWORD {}", literal(&verifier))
        }
        // OAuth roles log in with tokens from the credentials call.
        _ => "LOGIN".to_string(),
    };
    let identity = st["identity_type"] != json!("IDENTITY_TYPE_UNSPECIFIED");
    let mut text = format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit}) THEN \
         CREATE ROLE {id}; END IF; END $$; ALTER ROLE {id} WITH {login} {attrs}; {member}",
        lit = literal(role),
        id = ident(role),
        attrs = role_attrs(st),
        member = membership_sql(role, st),
    );
    if identity {
        text.push_str(&format!(
            " GRANT {} TO {};",
            ident(IDENTITY_GROUP),
            ident(role)
        ));
    }
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    sql(emu, &branch, "postgres", &text).await
}

pub async fn alter_role_sql(
    emu: &Arc<Emu>,
    name: &str,
    _old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Role, name)?;
    let role = super::field(new, "postgres_role")
        .as_str()
        .unwrap_or_default();
    let st = Value::Object(new.clone());
    let text = format!(
        "ALTER ROLE {} WITH {}; {}",
        ident(role),
        role_attrs(&st),
        membership_sql(role, &st)
    );
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    sql(emu, &branch, "postgres", &text).await
}

pub async fn drop_role_sql(emu: &Arc<Emu>, name: &str, reassign_to: Option<&str>) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Role, name)?;
    let role = rec["status"]["postgres_role"].as_str().unwrap_or_default();
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    let mut text = String::new();
    if let Some(to) = reassign_to {
        let target = rec_of(emu, Kind::Role, to)?;
        let to_role = target["status"]["postgres_role"]
            .as_str()
            .unwrap_or_default();
        text.push_str(&format!(
            "REASSIGN OWNED BY {} TO {}; ",
            ident(role),
            ident(to_role)
        ));
    }
    text.push_str(&format!("DROP ROLE IF EXISTS {}", ident(role)));
    sql(emu, &branch, "postgres", &text).await
}

fn owner_of(emu: &Emu, st: &Value) -> PgResult<String> {
    let role = st["role"].as_str().unwrap_or_default();
    let r = visible(emu, Kind::Role, role)?;
    Ok(r["status"]["postgres_role"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

pub async fn create_database_sql(emu: &Arc<Emu>, name: &str) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Database, name)?;
    let st = &rec["status"];
    let db = st["postgres_database"].as_str().unwrap_or_default();
    let owner = owner_of(emu, st)?;
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    // CREATE DATABASE runs alone (not in a multi-statement batch).
    sql(
        emu,
        &branch,
        "postgres",
        &format!("CREATE DATABASE {} OWNER {}", ident(db), ident(&owner)),
    )
    .await
}

pub async fn alter_database_sql(
    emu: &Arc<Emu>,
    name: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Database, name)?;
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    let from = super::field(old, "postgres_database")
        .as_str()
        .unwrap_or_default();
    let to = super::field(new, "postgres_database")
        .as_str()
        .unwrap_or_default();
    if from != to {
        let text = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}; \
             ALTER DATABASE {} RENAME TO {}",
            literal(from),
            ident(from),
            ident(to)
        );
        sql(emu, &branch, "postgres", &text).await?;
    }
    if old.get("role") != new.get("role") {
        let owner = owner_of(emu, &Value::Object(new.clone()))?;
        sql(
            emu,
            &branch,
            "postgres",
            &format!("ALTER DATABASE {} OWNER TO {}", ident(to), ident(&owner)),
        )
        .await?;
    }
    Ok(())
}

pub async fn drop_database_sql(emu: &Arc<Emu>, name: &str) -> PgResult<()> {
    let rec = rec_of(emu, Kind::Database, name)?;
    let db = rec["status"]["postgres_database"]
        .as_str()
        .unwrap_or_default();
    let branch = rec["parent"].as_str().unwrap_or_default().to_string();
    sql(
        emu,
        &branch,
        "postgres",
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(db)),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Postgres catalogs and synced tables (no update API: any change is delete + create).

fn uc_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 255
        && part
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

pub fn check_uc_id(kind: Kind, id: &str) -> PgResult<()> {
    if id.is_empty() {
        return Err(invalid(format!(
            "Field '{}' is required, expected non-default value (not \"\")!",
            kind.id_field()
        )));
    }
    let parts: Vec<&str> = id.split('.').collect();
    let ok = match kind {
        Kind::SyncedTable => parts.len() == 3 && parts.iter().all(|p| uc_part(p)),
        _ => parts.len() == 1 && uc_part(id),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "Field {} {id:?} is not a valid {} (letters, digits, '_' and '-'{})",
            kind.id_field(),
            kind.noun(),
            if kind == Kind::SyncedTable {
                "; three parts catalog.schema.table"
            } else {
                ""
            }
        )))
    }
}

fn branch_in(emu: &Emu, spec: &Map<String, Value>) -> PgResult<String> {
    let b = spec
        .get("branch")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if b.is_empty() {
        return Err(invalid(
            "Field 'spec.branch' is required: the branch (projects/…/branches/…) whose database backs it",
        ));
    }
    visible(emu, Kind::Branch, b)?;
    Ok(b.to_string())
}

fn new_record(name: &str, id_field: &str, id: &str, status: Value) -> Value {
    let now = super::now_rfc3339();
    json!({"name": name, id_field: id, "uid": uuid::Uuid::new_v4().to_string(),
           "create_time": now, "update_time": now, "status": status, "_emu": {"ready": false}})
}

pub fn create_catalog(
    emu: &Arc<Emu>,
    name: &str,
    id: &str,
    spec: Map<String, Value>,
) -> PgResult<Value> {
    let db = spec
        .get("postgres_database")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if db.is_empty() {
        return Err(invalid(
            "Field 'catalog.spec.postgres_database' is required, expected non-default value (not \"\")!",
        ));
    }
    let branch = branch_in(emu, &spec)?;
    let taken = emu.store.all(CATALOGS).into_iter().any(|(_, c)| {
        !tree::hidden(emu, &c)
            && c["status"]["branch"] == json!(branch)
            && c["status"]["postgres_database"] == json!(db)
    });
    if taken {
        return Err(bad_request(format!(
            "database {db:?} of {branch} already backs a catalog (one catalog per database)"
        )));
    }
    let create_missing = spec.get("create_database_if_missing") == Some(&json!(true));
    let project = project_of(&branch);
    let rec = new_record(
        name,
        "catalog_id",
        id,
        json!({"branch": branch, "postgres_database": db, "project": project, "catalog_id": id}),
    );
    emu.store.txn(|t| {
        t.put(CATALOGS, name, rec);
        Ok::<_, ApiErr>(())
    })?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let work = async move {
        let result = async {
            computes::wake(&emu2, &branch).await?;
            let uid = branch_uid(&emu2, &branch)?;
            if !emu2.backend.database_exists(&uid, &db).await? {
                if !create_missing {
                    return Err(not_found(
                        "database",
                        &format!("{db} on {branch} (set create_database_if_missing to create it)"),
                    ));
                }
                emu2.backend.create_database(&uid, &db).await?;
            }
            mark_ready(&emu2, &[(Kind::Catalog, name2.clone())])?;
            current_view(&emu2, Kind::Catalog, &name2)
        }
        .await;
        if result.is_err() {
            forget(&emu2, CATALOGS, &name2);
        }
        result
    };
    ops::start(emu, name, "Catalog", lock_key(&project), work)
}

fn forget(emu: &Emu, coll: &str, name: &str) {
    let _ = emu.store.txn(|t| {
        t.delete(coll, name);
        Ok::<_, ApiErr>(())
    });
}

pub fn delete_catalog(emu: &Arc<Emu>, name: &str, rec: Value) -> PgResult<Value> {
    let project = rec["status"]["project"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let emu2 = emu.clone();
    let name2 = name.to_string();
    ops::start(emu, name, "Catalog", lock_key(&project), async move {
        forget(&emu2, CATALOGS, &name2);
        Ok(ops::empty())
    })
}

const POLICIES: [&str; 3] = ["SNAPSHOT", "TRIGGERED", "CONTINUOUS"];

fn strings(v: Option<&Value>, field: &str) -> PgResult<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("Field '{field}' must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(invalid(format!(
            "Field '{field}' must be a list of strings"
        ))),
    }
}

fn synced_spec(emu: &Emu, rec: &Value) -> PgResult<SyncedTableSpec> {
    let st = &rec["status"];
    let id = rec["synced_table_id"].as_str().unwrap_or_default();
    let parts: Vec<&str> = id.split('.').collect();
    let branch = st["branch"].as_str().unwrap_or_default();
    let source = st["source_table_full_name"].as_str().unwrap_or_default();
    Ok(SyncedTableSpec {
        instance_uid: branch_uid(emu, branch)?,
        database: st["postgres_database"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        schema: parts.get(1).copied().unwrap_or_default().to_string(),
        table: parts.get(2).copied().unwrap_or_default().to_string(),
        source: crate::catalogs::lake_source(emu, source).unwrap_or_default(),
        primary_key_columns: strings(st.get("primary_key_columns"), "primary_key_columns")?,
        timeseries_key: st["timeseries_key"].as_str().map(str::to_string),
        scheduling_policy: st["scheduling_policy"]
            .as_str()
            .unwrap_or("SNAPSHOT")
            .to_string(),
    })
}

pub fn create_synced(
    emu: &Arc<Emu>,
    name: &str,
    id: &str,
    spec: Map<String, Value>,
) -> PgResult<Value> {
    let source = spec
        .get("source_table_full_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    check_uc_id(Kind::SyncedTable, &source).map_err(|_| {
        invalid(format!(
            "Field 'spec.source_table_full_name' must be a three-part name catalog.schema.table, got {source:?}"
        ))
    })?;
    let pk = strings(spec.get("primary_key_columns"), "primary_key_columns")?;
    let policy = spec
        .get("scheduling_policy")
        .and_then(Value::as_str)
        .unwrap_or("SNAPSHOT")
        .to_string();
    if !POLICIES.contains(&policy.as_str()) {
        return Err(invalid(format!(
            "Field 'scheduling_policy' must be one of {}, got {policy:?}",
            POLICIES.join(", ")
        )));
    }
    if spec.contains_key("existing_pipeline_id") && spec.contains_key("new_pipeline_spec") {
        return Err(invalid(
            "Fields existing_pipeline_id and new_pipeline_spec are mutually exclusive",
        ));
    }
    let catalog = id.split('.').next().unwrap_or_default();
    let (branch, db) = match emu
        .store
        .get(CATALOGS, &format!("catalogs/{catalog}"))
        .filter(|c| !tree::hidden(emu, c))
    {
        // A table in a postgres catalog lands in the catalog's database.
        Some(c) => (
            c["status"]["branch"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            c["status"]["postgres_database"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        None => {
            let db = spec
                .get("postgres_database")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if db.is_empty() {
                return Err(invalid(format!(
                    "Field 'spec.postgres_database' is required: catalog {catalog:?} is not a postgres catalog"
                )));
            }
            (branch_in(emu, &spec)?, db)
        }
    };
    let create_objects = spec.get("create_database_objects_if_missing") != Some(&json!(false));
    let project = project_of(&branch);
    let pipeline = spec
        .get("existing_pipeline_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut status = json!({
        "branch": branch, "postgres_database": db, "project": project,
        "source_table_full_name": source, "primary_key_columns": pk,
        "scheduling_policy": policy, "pipeline_id": pipeline,
        "unity_catalog_provisioning_state": "PROVISIONING",
        "detailed_state": "SYNCED_TABLE_PROVISIONING_INITIAL_SNAPSHOT",
    });
    if let Some(ts) = spec.get("timeseries_key").and_then(Value::as_str) {
        status["timeseries_key"] = json!(ts);
    }
    let rec = new_record(name, "synced_table_id", id, status);
    emu.store.txn(|t| {
        t.put(SYNCED, name, rec);
        Ok::<_, ApiErr>(())
    })?;
    let emu2 = emu.clone();
    let name2 = name.to_string();
    let work = async move {
        let result = async {
            computes::wake(&emu2, &branch).await?;
            let uid = branch_uid(&emu2, &branch)?;
            if !emu2.backend.database_exists(&uid, &db).await? {
                if !create_objects {
                    return Err(not_found("database", &format!("{db} on {branch}")));
                }
                emu2.backend.create_database(&uid, &db).await?;
            }
            let (lake_strict, found) = (
                emu2.cfg.lake().1,
                crate::catalogs::lake_source(&emu2, &source),
            );
            let rec = rec_of(&emu2, Kind::SyncedTable, &name2)?;
            let mut st = rec["status"].clone();
            match found {
                Err(why) if lake_strict => return Err(not_found("source table", &why)),
                Err(why) => {
                    st["detailed_state"] = json!("SYNCED_TABLE_OFFLINE_FAILED");
                    st["message"] = json!(why);
                }
                Ok(_) => {
                    let spec = synced_spec(&emu2, &rec)?;
                    let stats = emu2.backend.create_synced_table(&spec).await?;
                    st["detailed_state"] = json!(match st["scheduling_policy"].as_str() {
                        Some("CONTINUOUS") => "SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE",
                        Some("TRIGGERED") => "SYNCED_TABLE_ONLINE_TRIGGERED_UPDATE",
                        _ => "SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE",
                    });
                    st["last_sync_time"] = json!(super::now_rfc3339());
                    st["message"] = json!(format!("{} rows synced", stats.total_rows));
                }
            }
            st["unity_catalog_provisioning_state"] = json!("ACTIVE");
            emu2.store.txn(|t| {
                if let Some(mut r) = t.get(SYNCED, &name2).cloned() {
                    r["status"] = st;
                    r["_emu"]["ready"] = json!(true);
                    t.put(SYNCED, &name2, r);
                }
                Ok::<_, ApiErr>(())
            })?;
            current_view(&emu2, Kind::SyncedTable, &name2)
        }
        .await;
        if result.is_err() {
            forget(&emu2, SYNCED, &name2);
        }
        result
    };
    ops::start(emu, name, "SyncedTable", lock_key(&project), work)
}

pub fn delete_synced(emu: &Arc<Emu>, name: &str, rec: Value) -> PgResult<Value> {
    let project = rec["status"]["project"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let emu2 = emu.clone();
    let name2 = name.to_string();
    ops::start(emu, name, "SyncedTable", lock_key(&project), async move {
        if let Ok(spec) = synced_spec(&emu2, &rec) {
            // Stops following the source; the table's rows stay in the database.
            emu2.backend.delete_synced_table(&spec, false).await?;
        }
        forget(&emu2, SYNCED, &name2);
        Ok(ops::empty())
    })
}

// ---------------------------------------------------------------------------------------
// Credentials (§1.11)

pub async fn credentials(emu: &Arc<Emu>, req: &Req) -> PgResult<Value> {
    let endpoint = req
        .body
        .get("endpoint")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if endpoint.is_empty() {
        return Err(invalid(
            "Field 'endpoint' is required, expected non-default value (not \"\")!",
        ));
    }
    let ep = visible(emu, Kind::Endpoint, &endpoint)?;
    if ep["_emu"]["ready"] != json!(true) {
        return Err(PgErr::Api(ApiErr::invalid_state(format!(
            "endpoint {endpoint} is not ready yet; wait for its create operation"
        ))));
    }
    let now = now_ms();
    let ttl_ms = match (req.body.get("ttl"), req.body.get("expire_time")) {
        (Some(_), Some(_)) => {
            return Err(invalid("Fields ttl and expire_time are mutually exclusive"))
        }
        (Some(t), None) => (super::parse_duration("ttl", t)? * 1000.0) as i64,
        (None, Some(e)) => {
            let at = e
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "Field 'expire_time' must be an RFC 3339 timestamp, got {e}"
                    ))
                })?;
            at.timestamp_millis() - now
        }
        (None, None) => CREDENTIAL_TTL_MS,
    };
    if !(300_000..=3_600_000).contains(&ttl_ms) {
        return Err(invalid(
            "A credential lives from 5 minutes to 1 hour: ttl must be 300s–3600s (or expire_time within that)",
        ));
    }
    let branch = ep["parent"].as_str().unwrap_or_default().to_string();
    computes::wake(emu, &branch).await?;
    let uid = branch_uid(emu, &branch)?;
    let user = req.caller.user_name.clone();
    // One live token per caller (PostgreSQL keeps one password per role), shared with the
    // database-instance credentials: see `instances::credential`.
    let _turn = emu.credential_turn.lock().await;
    // A live token is handed out again, its validity extended to cover this request:
    // replacing it would break every connection string made from the earlier one.
    let live = emu
        .store
        .get(DB_CREDENTIALS, &user)
        .filter(|r| r["expires_ms"].as_i64().unwrap_or(0) > now)
        .and_then(|r| Some((r["nonce"].as_str()?.to_string(), r["expires_ms"].as_i64()?)));
    let (nonce, keep_until) = match live {
        Some((n, until)) => (n, until.max(now + ttl_ms)),
        None => (random_hex(16), now + ttl_ms.max(CREDENTIAL_TTL_MS)),
    };
    let token = credential_token(&emu.credential_key, &user, &nonce);
    let expires = rfc3339(now + ttl_ms);
    emu.backend
        .set_credential(&uid, &user, &token, &rfc3339(keep_until))
        .await?;
    emu.store.txn(|t| {
        t.put(
            DB_CREDENTIALS,
            &user,
            json!({"nonce": nonce, "expires_ms": keep_until}),
        );
        Ok::<_, ApiErr>(())
    })?;
    Ok(json!({"token": token, "expire_time": expires}))
}

/// `POST {role}/password`: the generated password of a password role.
pub fn reveal_password(emu: &Arc<Emu>, role: &str) -> PgResult<Value> {
    let rec = visible(emu, Kind::Role, role)?;
    if rec["status"]["auth_method"] != json!("PG_PASSWORD_SCRAM_SHA_256") {
        return Err(bad_request(format!(
            "role {role} does not log in with a password (auth_method {})",
            rec["status"]["auth_method"]
        )));
    }
    let _ = (DATABASES, ROLES);
    Ok(json!({"password": role_password(emu, rec["uid"].as_str().unwrap_or_default())}))
}
