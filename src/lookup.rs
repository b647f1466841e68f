//! `lookup:` variables: resolve a named workspace object (job, cluster,
//! warehouse, ...) to its id before the bundle is resolved. Engine code: the
//! CLI calls [`resolve_lookups`] with the loader's pending lookups.

use std::collections::HashMap;

use serde_json::Value;

use crate::api::Client;
use crate::config::model::PendingLookup;
use crate::diag::{Diag, Diagnostics};

/// How one `lookup` type is found: list endpoint, the array in its response,
/// the name field matched and the id field returned.
struct LookupKind {
    key: &'static str,
    path: &'static str,
    list_field: &'static str,
    name_field: &'static [&'static str],
    id_field: &'static str,
    /// Extra query parameters; `{name}` is replaced by the looked-up name.
    query: &'static [(&'static str, &'static str)],
}

const LOOKUPS: &[LookupKind] = &[
    LookupKind {
        key: "job",
        path: "/api/2.2/jobs/list",
        list_field: "jobs",
        name_field: &["settings", "name"],
        id_field: "job_id",
        query: &[("name", "{name}"), ("limit", "100")],
    },
    LookupKind {
        key: "cluster",
        path: "/api/2.1/clusters/list",
        list_field: "clusters",
        name_field: &["cluster_name"],
        id_field: "cluster_id",
        query: &[],
    },
    LookupKind {
        key: "cluster_policy",
        path: "/api/2.0/policies/clusters/list",
        list_field: "policies",
        name_field: &["name"],
        id_field: "policy_id",
        query: &[],
    },
    LookupKind {
        key: "instance_pool",
        path: "/api/2.0/instance-pools/list",
        list_field: "instance_pools",
        name_field: &["instance_pool_name"],
        id_field: "instance_pool_id",
        query: &[],
    },
    LookupKind {
        key: "warehouse",
        path: "/api/2.0/sql/warehouses",
        list_field: "warehouses",
        name_field: &["name"],
        id_field: "id",
        query: &[],
    },
    LookupKind {
        key: "pipeline",
        path: "/api/2.0/pipelines",
        list_field: "statuses",
        name_field: &["name"],
        id_field: "pipeline_id",
        query: &[],
    },
    LookupKind {
        key: "service_principal",
        path: "/api/2.0/preview/scim/v2/ServicePrincipals",
        list_field: "Resources",
        name_field: &["displayName"],
        id_field: "applicationId",
        query: &[],
    },
    LookupKind {
        key: "metastore",
        path: "/api/2.1/unity-catalog/metastores",
        list_field: "metastores",
        name_field: &["name"],
        id_field: "metastore_id",
        query: &[],
    },
    LookupKind {
        key: "query",
        path: "/api/2.0/sql/queries",
        list_field: "results",
        name_field: &["display_name"],
        id_field: "id",
        query: &[],
    },
    LookupKind {
        key: "dashboard",
        path: "/api/2.0/lakeview/dashboards",
        list_field: "dashboards",
        name_field: &["display_name"],
        id_field: "dashboard_id",
        query: &[],
    },
    LookupKind {
        key: "alert",
        path: "/api/2.0/sql/alerts",
        list_field: "results",
        name_field: &["display_name"],
        id_field: "id",
        query: &[],
    },
    LookupKind {
        key: "notification_destination",
        path: "/api/2.0/notification-destinations",
        list_field: "results",
        name_field: &["display_name"],
        id_field: "id",
        query: &[],
    },
];

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every id whose name matches, over all pages (a server that repeats a
/// page token is an error, not a hang: see [`crate::api::list_all`]).
async fn find_by_name(
    client: &Client,
    kind: &LookupKind,
    name: &str,
) -> Result<Vec<String>, String> {
    let query: Vec<(&str, String)> = kind
        .query
        .iter()
        .map(|(k, v)| (*k, v.replace("{name}", name)))
        .collect();
    let items = crate::api::list_all(client, kind.path, &query, kind.list_field)
        .await
        .map_err(|e| e.to_string())?;
    Ok(items
        .iter()
        .filter(|item| field(item, kind.name_field).and_then(Value::as_str) == Some(name))
        .filter_map(|item| item.get(kind.id_field).and_then(id_string))
        .collect())
}

/// Resolve `lookup:` variables to ids. All failures are reported together.
pub async fn resolve_lookups(
    client: &Client,
    pending: &[PendingLookup],
) -> Result<HashMap<String, Value>, Diagnostics> {
    let mut resolved = HashMap::new();
    let mut diags = Diagnostics::default();
    for p in pending {
        let Some((kind_key, name)) = p.lookup.as_object().and_then(|o| o.iter().next()) else {
            diags.push(
                Diag::error(format!(
                    "variable {}: lookup must name one object",
                    p.variable
                ))
                .at(p.span, "here"),
            );
            continue;
        };
        let Some(name) = name.as_str() else {
            diags.push(
                Diag::error(format!(
                    "variable {}: lookup {kind_key} needs a name string",
                    p.variable
                ))
                .at(p.span, "here"),
            );
            continue;
        };
        let Some(kind) = LOOKUPS.iter().find(|k| k.key == kind_key) else {
            let known: Vec<&str> = LOOKUPS.iter().map(|k| k.key).collect();
            let mut d = Diag::error(format!(
                "variable {}: lookup type `{kind_key}` is not supported by lakebundle",
                p.variable
            ))
            .at(p.span, "unsupported lookup");
            d = match crate::diag::did_you_mean(kind_key, known.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("supported: {}", known.join(", "))),
            };
            diags.push(d);
            continue;
        };
        match find_by_name(client, kind, name).await {
            Ok(ids) if ids.len() == 1 => {
                resolved.insert(p.variable.clone(), Value::String(ids[0].clone()));
            }
            Ok(ids) if ids.is_empty() => diags.push(
                Diag::error(format!(
                    "variable {}: no {kind_key} named {name:?} in the workspace",
                    p.variable
                ))
                .at(p.span, "lookup found nothing"),
            ),
            Ok(ids) => diags.push(
                Diag::error(format!(
                    "variable {}: {} {kind_key}s are named {name:?} ({})",
                    p.variable,
                    ids.len(),
                    ids.join(", ")
                ))
                .at(p.span, "ambiguous lookup")
                .help("give the id instead of a lookup"),
            ),
            Err(message) => diags.push(
                Diag::error(format!(
                    "variable {}: looking up {kind_key} {name:?} failed: {message}",
                    p.variable
                ))
                .at(p.span, "lookup failed"),
            ),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(resolved)
    }
}
