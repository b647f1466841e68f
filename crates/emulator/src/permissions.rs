//! Permissions (reference §13): `GET|PUT|PATCH /api/2.0/permissions/{type}/{id}` for jobs,
//! apps, database instances, pipelines and SQL warehouses. Direct grants are stored per object; every object also
//! shows the `admins` group's inherited CAN_MANAGE, as the real service does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::http::{body, ok, ApiErr, ApiResult};
use super::server::{Emu, Shared};
use super::store::Txn;

const COLLECTION: &str = "permissions";
const PRINCIPALS: [&str; 3] = ["user_name", "group_name", "service_principal_name"];

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(
            "/api/2.0/permissions/{object_type}/{id}",
            get(get_acl).put(put_acl).patch(patch_acl),
        )
        // The one object type with a slash (what the CLI and Terraform call warehouses).
        .route(
            "/api/2.0/permissions/sql/warehouses/{id}",
            get(get_warehouse_acl)
                .put(put_warehouse_acl)
                .patch(patch_warehouse_acl),
        )
}

const WAREHOUSES: &str = "sql/warehouses";

async fn get_warehouse_acl(emu: Shared, Path(id): Path<String>) -> ApiResult {
    get_acl(emu, Path((WAREHOUSES.into(), id))).await
}

async fn put_warehouse_acl(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    write_acl(&emu, WAREHOUSES, &id, &raw, true).await
}

async fn patch_warehouse_acl(State(emu): Shared, Path(id): Path<String>, raw: Bytes) -> ApiResult {
    write_acl(&emu, WAREHOUSES, &id, &raw, false).await
}

struct ObjectType {
    path: &'static str,
    singular: &'static str,
    levels: &'static [&'static str],
    owner_level: &'static str,
}

fn object_type(t: &str) -> Result<&'static ObjectType, ApiErr> {
    static JOBS: ObjectType = ObjectType {
        path: "jobs",
        singular: "job",
        levels: &["CAN_VIEW", "CAN_MANAGE_RUN", "IS_OWNER", "CAN_MANAGE"],
        owner_level: "IS_OWNER",
    };
    static APPS: ObjectType = ObjectType {
        path: "apps",
        singular: "apps",
        levels: &["CAN_USE", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static INSTANCES: ObjectType = ObjectType {
        path: "database-instances",
        singular: "database-instance",
        levels: &["CAN_USE", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static PIPELINES: ObjectType = ObjectType {
        path: "pipelines",
        singular: "pipelines",
        levels: &["CAN_VIEW", "CAN_RUN", "IS_OWNER", "CAN_MANAGE"],
        owner_level: "IS_OWNER",
    };
    static WAREHOUSES: ObjectType = ObjectType {
        path: "sql/warehouses",
        singular: "warehouses",
        levels: &[
            "CAN_VIEW",
            "CAN_MONITOR",
            "CAN_USE",
            "IS_OWNER",
            "CAN_MANAGE",
        ],
        owner_level: "IS_OWNER",
    };
    static CLUSTERS: ObjectType = ObjectType {
        path: "clusters",
        singular: "cluster",
        levels: &["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static POOLS: ObjectType = ObjectType {
        path: "instance-pools",
        singular: "instance-pool",
        levels: &["CAN_ATTACH_TO", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static VS_ENDPOINTS: ObjectType = ObjectType {
        path: "vector-search-endpoints",
        singular: "vector-search-endpoint",
        levels: &["CAN_USE", "CAN_CREATE", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static EXPERIMENTS: ObjectType = ObjectType {
        path: "experiments",
        singular: "experiment",
        levels: &["CAN_READ", "CAN_EDIT", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    static REGISTERED_MODELS: ObjectType = ObjectType {
        path: "registered-models",
        singular: "registered-model",
        levels: &[
            "CAN_READ",
            "CAN_EDIT",
            "CAN_MANAGE_STAGING_VERSIONS",
            "CAN_MANAGE_PRODUCTION_VERSIONS",
            "CAN_MANAGE",
        ],
        owner_level: "CAN_MANAGE",
    };
    static SERVING_ENDPOINTS: ObjectType = ObjectType {
        path: "serving-endpoints",
        singular: "serving-endpoint",
        levels: &["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"],
        owner_level: "CAN_MANAGE",
    };
    // Lakeview dashboards, Genie spaces and SQL alerts v2 share the generic set.
    static SQL_OBJECTS: [ObjectType; 3] = [
        ObjectType {
            path: "dashboards",
            singular: "dashboard",
            levels: &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            owner_level: "CAN_MANAGE",
        },
        ObjectType {
            path: "genie",
            singular: "genie",
            levels: &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            owner_level: "CAN_MANAGE",
        },
        ObjectType {
            path: "alertsv2",
            singular: "alertv2",
            levels: &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            owner_level: "CAN_MANAGE",
        },
    ];
    if let Some(ty) = SQL_OBJECTS.iter().find(|o| o.path == t) {
        return Ok(ty);
    }
    match t {
        "clusters" => Ok(&CLUSTERS),
        "instance-pools" => Ok(&POOLS),
        "vector-search-endpoints" => Ok(&VS_ENDPOINTS),
        "experiments" => Ok(&EXPERIMENTS),
        "registered-models" => Ok(&REGISTERED_MODELS),
        "serving-endpoints" => Ok(&SERVING_ENDPOINTS),
        "jobs" => Ok(&JOBS),
        "apps" => Ok(&APPS),
        "database-instances" => Ok(&INSTANCES),
        "pipelines" => Ok(&PIPELINES),
        // The Python SDK's helper says `warehouses`; the CLI `sql/warehouses`: one object.
        "sql/warehouses" | "warehouses" => Ok(&WAREHOUSES),
        other => Err(ApiErr::invalid(format!(
            "Invalid object type '{other}': supported are jobs, apps, database-instances, pipelines, sql/warehouses, clusters, instance-pools, vector-search-endpoints, experiments, registered-models, serving-endpoints"
        ))),
    }
}

fn key(object_type: &str, id: &str) -> String {
    format!("{object_type}/{id}")
}

/// Give the creator of a new object its owner-level grant.
pub fn grant_owner(t: &mut Txn<'_>, object_type: &str, id: &str, user: &str) {
    let level = match object_type {
        "jobs" | "pipelines" | "sql/warehouses" => "IS_OWNER",
        _ => "CAN_MANAGE",
    };
    let principal = if user.contains('@') {
        "user_name"
    } else {
        "service_principal_name"
    };
    t.put(
        COLLECTION,
        &key(object_type, id),
        json!([{principal: user, "permission_level": level}]),
    );
}

pub fn forget(t: &mut Txn<'_>, object_type: &str, id: &str) {
    t.delete(COLLECTION, &key(object_type, id));
}

fn object_exists(emu: &Emu, ty: &ObjectType, id: &str) -> Result<(), ApiErr> {
    let found = match ty.path {
        "jobs" => id.parse::<i64>().ok().is_some_and(|n| {
            emu.store
                .get(super::jobs::JOBS, &super::jobs::key(n))
                .is_some()
        }),
        "apps" => emu
            .store
            .get(super::apps::APPS, id)
            .is_some_and(|a| !super::apps::is_deleting(&a)),
        "pipelines" => super::pipelines::exists(emu, id),
        "sql/warehouses" => super::warehouses::exists(emu, id),
        "clusters" => super::clusters::cluster_exists(emu, id),
        "instance-pools" => super::clusters::pool_exists(emu, id),
        // By the endpoint's uuid `id`, not its name (as the service).
        "vector-search-endpoints" => super::vector_search::endpoint_id_exists(emu, id),
        "experiments" => super::mlflow::experiment_exists(emu, id),
        "registered-models" => super::mlflow::model_id_exists(emu, id),
        "serving-endpoints" => super::serving::exists_by_id(emu, id),
        "dashboards" => super::lakeview::dashboard_exists(emu, id),
        "genie" => super::lakeview::space_exists(emu, id),
        "alertsv2" => super::alerts::exists(emu, id),
        _ => emu.store.get(super::instances::COLLECTION, id).is_some(),
    };
    if found {
        Ok(())
    } else {
        Err(ApiErr::not_found(format!(
            "{} {id} does not exist.",
            ty.singular
        )))
    }
}

fn principal_of(entry: &Value) -> Option<(&'static str, String)> {
    PRINCIPALS.iter().find_map(|p| {
        entry
            .get(*p)
            .and_then(Value::as_str)
            .map(|v| (*p, v.to_string()))
    })
}

fn render(ty: &ObjectType, id: &str, acl: &[Value]) -> Value {
    let mut list: Vec<Value> = acl
        .iter()
        .filter_map(|e| {
            let (p, v) = principal_of(e)?;
            let mut o = json!({
                "all_permissions": [{"permission_level": e["permission_level"], "inherited": false}]
            });
            o[p] = json!(v);
            if p == "user_name" {
                o["display_name"] = json!(v.split('@').next().unwrap_or_default());
            }
            Some(o)
        })
        .collect();
    list.push(json!({
        "group_name": "admins",
        "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": true,
                             "inherited_from_object": [format!("/{}/", ty.path)]}]
    }));
    json!({
        "object_id": format!("/{}/{id}", ty.path),
        "object_type": ty.singular,
        "access_control_list": list,
    })
}

fn parse_acl(ty: &ObjectType, raw: &Bytes) -> Result<Vec<Value>, ApiErr> {
    let b = body(raw)?;
    let list = match b.get("access_control_list") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiErr::invalid("access_control_list must be a list")),
    };
    let mut out = Vec::new();
    for e in list {
        let Some((p, v)) = principal_of(&e) else {
            return Err(ApiErr::invalid(format!(
                "access_control_list entry {e} must name one of user_name, group_name, service_principal_name"
            )));
        };
        let level = e
            .get("permission_level")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ty.levels.contains(&level) {
            return Err(ApiErr::invalid(format!(
                "Invalid permission level '{level}' for {}: allowed are {}",
                ty.path,
                ty.levels.join(", ")
            )));
        }
        out.push(json!({p: v, "permission_level": level}));
    }
    Ok(out)
}

async fn get_acl(State(emu): Shared, Path((t, id)): Path<(String, String)>) -> ApiResult {
    let ty = object_type(&t)?;
    object_exists(&emu, ty, &id)?;
    let acl = emu.store.get(COLLECTION, &key(ty.path, &id));
    let acl = acl
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ok(render(ty, &id, &acl))
}

/// Replace (`replace = true`, PUT) or merge by principal (PATCH) the direct grants.
async fn write_acl(emu: &Emu, t: &str, id: &str, raw: &Bytes, replace: bool) -> ApiResult {
    let ty = object_type(t)?;
    object_exists(emu, ty, id)?;
    let given = parse_acl(ty, raw)?;
    let owners = given
        .iter()
        .filter(|e| e["permission_level"] == ty.owner_level)
        .count();
    if ty.owner_level == "IS_OWNER" && owners > 1 {
        return Err(ApiErr::invalid("A job can have only one IS_OWNER"));
    }
    let k = key(ty.path, id);
    let acl = emu.store.txn(|txn| {
        let current = txn
            .get(COLLECTION, &k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut next: Vec<Value> = if replace {
            // A job always keeps an owner: PUT without one leaves the current owner in place.
            if ty.owner_level == "IS_OWNER" && owners == 0 {
                current
                    .iter()
                    .filter(|e| e["permission_level"] == "IS_OWNER")
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            }
        } else {
            current
        };
        for e in given {
            let p = principal_of(&e);
            next.retain(|x| principal_of(x) != p);
            if ty.owner_level == "IS_OWNER" && e["permission_level"] == "IS_OWNER" {
                next.retain(|x| x["permission_level"] != "IS_OWNER");
            }
            next.push(e);
        }
        txn.put(COLLECTION, &k, Value::Array(next.clone()));
        Ok::<_, ApiErr>(next)
    })?;
    ok(render(ty, id, &acl))
}

async fn put_acl(
    State(emu): Shared,
    Path((t, id)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult {
    write_acl(&emu, &t, &id, &raw, true).await
}

async fn patch_acl(
    State(emu): Shared,
    Path((t, id)): Path<(String, String)>,
    raw: Bytes,
) -> ApiResult {
    write_acl(&emu, &t, &id, &raw, false).await
}
