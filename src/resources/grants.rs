//! Unity Catalog grants (`grants:` on catalogs, schemas and volumes; contract part 2 §2.4),
//! shared by the three kinds.
//!
//! Grants are a field of the resource in lakebundle: `read` adds the securable's direct
//! grants to the remote object, so the ordinary field diff sees them, and `update` converges
//! them when `grants` is among the changed fields. Both sides are normalised the same way
//! (principals sorted and merged, privileges upper-cased, sorted, deduplicated, and
//! `ALL_PRIVILEGES` absorbing the privileges it implies), so order never shows as a change.
//! The change is a set difference: `PATCH .../permissions/{type}/{full_name}` with, per
//! principal, only the privileges to add and to remove. A principal granted remotely but
//! not in the config loses its privileges; dropping the whole `grants` block after it was
//! applied revokes the grants it made (the plan shows that as a change of `grants`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::common::{has_interpolation, schema_enum, schema_struct};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// A Unity Catalog privilege.
    Privilege {
        SELECT, READ_PRIVATE_FILES, WRITE_PRIVATE_FILES, CREATE, USAGE, USE_CATALOG, USE_SCHEMA,
        CREATE_SCHEMA, CREATE_VIEW, CREATE_EXTERNAL_TABLE, CREATE_MATERIALIZED_VIEW, CREATE_FUNCTION,
        CREATE_MODEL, CREATE_CATALOG, CREATE_MANAGED_STORAGE, CREATE_EXTERNAL_LOCATION,
        CREATE_STORAGE_CREDENTIAL, CREATE_SERVICE_CREDENTIAL, ACCESS, CREATE_SHARE, CREATE_RECIPIENT,
        CREATE_PROVIDER, USE_SHARE, USE_RECIPIENT, USE_PROVIDER, USE_MARKETPLACE_ASSETS,
        SET_SHARE_PERMISSION, MODIFY, REFRESH, EXECUTE, READ_FILES, WRITE_FILES, CREATE_TABLE,
        ALL_PRIVILEGES, CREATE_CONNECTION, USE_CONNECTION, APPLY_TAG, CREATE_FOREIGN_CATALOG,
        CREATE_FOREIGN_SECURABLE, MANAGE_ALLOWLIST, CREATE_VOLUME, CREATE_EXTERNAL_VOLUME, READ_VOLUME,
        WRITE_VOLUME, MANAGE, BROWSE, CREATE_CLEAN_ROOM, MODIFY_CLEAN_ROOM, EXECUTE_CLEAN_ROOM_TASK,
        EXTERNAL_USE_SCHEMA, READ_METADATA, READ_SECRET, EXTERNAL_USE_LOCATION,
    }
}

schema_struct! {
    /// Privileges granted to one principal on this securable (Unity Catalog grants). Both fields
    /// are required (checked by lakebundle with the official CLI's wording).
    pub struct Grant {
        /// User email, group name, or service principal application id receiving the privileges.
        principal: String,
        /// The privileges granted; must not be empty.
        privileges: Vec<Privilege>,
    }
}

pub const ALL_PRIVILEGES: &str = "ALL_PRIVILEGES";

/// `grants` must name a principal and at least one privilege in every entry (as the
/// official CLI requires).
pub fn check(addr: &str, node: &Node, diags: &mut Diagnostics) {
    let Some(entries) = node.get("grants").and_then(Node::as_seq) else {
        return;
    };
    for (i, entry) in entries.iter().enumerate() {
        let Some(map) = entry.as_map() else { continue };
        let principal_empty = match map.get("principal") {
            None => true,
            Some(p) => p.as_str().is_some_and(|s| s.trim().is_empty()),
        };
        if principal_empty {
            diags.push(
                Diag::error(format!("{addr}.grants[{i}] names no principal"))
                    .at(entry.span, "this grant")
                    .help("set `principal` to a user email, group name or service principal application id"),
            );
        }
        let privileges_empty = match map.get("privileges") {
            None => true,
            Some(p) => p.as_seq().is_some_and(<[Node]>::is_empty),
        };
        if privileges_empty {
            diags.push(
                Diag::error(format!("{addr}.grants[{i}] grants no privileges"))
                    .at(entry.span, "this grant")
                    .help("list at least one privilege, e.g. `privileges: [USE_SCHEMA]`, or remove the entry"),
            );
        }
    }
}

type GrantSet = BTreeMap<String, BTreeSet<String>>;

/// Add one `{principal, privileges}` item to a set (unusable items are skipped; the
/// checker reports them).
fn add_item(set: &mut GrantSet, item: &Value) {
    let Some(principal) = item.get("principal").and_then(Value::as_str) else {
        return;
    };
    let privs = set.entry(principal.to_string()).or_default();
    for p in item
        .get("privileges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        privs.insert(if has_interpolation(p) {
            p.to_string()
        } else {
            p.to_uppercase().replace(' ', "_")
        });
    }
}

fn to_set(list: &[Value]) -> GrantSet {
    let mut set = GrantSet::new();
    for item in list {
        add_item(&mut set, item);
    }
    for privs in set.values_mut() {
        // ALL_PRIVILEGES implies the rest; the service may report them alongside.
        if privs.contains(ALL_PRIVILEGES) {
            privs.retain(|p| p == ALL_PRIVILEGES);
        }
    }
    set.retain(|_, privs| !privs.is_empty());
    set
}

fn to_list(set: &GrantSet) -> Vec<Value> {
    set.iter()
        .map(|(p, privs)| json!({"principal": p, "privileges": privs.iter().collect::<Vec<_>>()}))
        .collect()
}

/// The normalised form of a `grants` list (see the module docs).
pub fn normalize(list: &[Value]) -> Vec<Value> {
    to_list(&to_set(list))
}

/// `config` with its `grants` normalised (a no-op without grants).
pub fn normalize_config(config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(list) = config.get("grants").and_then(Value::as_array) {
        if list
            .iter()
            .all(|e| e.get("principal").is_some_and(Value::is_string))
        {
            out["grants"] = Value::Array(normalize(list));
        }
    }
    out
}

/// The config's grants, normalised (empty when it sets none).
pub fn desired(config: &Value) -> Vec<Value> {
    config
        .get("grants")
        .and_then(Value::as_array)
        .map(|l| normalize(l))
        .unwrap_or_default()
}

fn path(securable: &str, full_name: &str) -> String {
    format!("/api/2.1/unity-catalog/permissions/{securable}/{full_name}")
}

/// Direct grants on a securable, normalised; every page is read (a page may be empty yet
/// carry a token).
pub async fn read(
    client: &Client,
    securable: &str,
    full_name: &str,
) -> Result<Vec<Value>, ApiError> {
    let p = path(securable, full_name);
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    // Bounded: a server that keeps handing out tokens cannot hold a plan forever.
    for _ in 0..1000 {
        let mut query = vec![("max_results", "0".to_string())];
        if let Some(t) = &token {
            query.push(("page_token", t.clone()));
        }
        let resp = client.call(Method::GET, &p, &query, None).await?;
        all.extend(
            resp.get("privilege_assignments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match resp.get("next_page_token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(normalize(&all))
}

/// The `changes` turning `current` into `want`: per principal only the privileges to add
/// and to remove; principals not wanted lose everything they hold.
pub fn changes(want: &[Value], current: &[Value]) -> Vec<Value> {
    let want = to_set(want);
    let have = to_set(current);
    let empty = BTreeSet::new();
    let mut out = Vec::new();
    let principals: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    for principal in principals {
        let w = want.get(principal).unwrap_or(&empty);
        let h = have.get(principal).unwrap_or(&empty);
        let add: Vec<&String> = w.difference(h).collect();
        let remove: Vec<&String> = if w.is_empty() {
            // Everything goes: ALL_PRIVILEGES clears the principal in one word.
            vec![]
        } else {
            h.difference(w).collect()
        };
        let mut change = Map::new();
        change.insert("principal".into(), json!(principal));
        if !add.is_empty() {
            change.insert("add".into(), json!(add));
        }
        if w.is_empty() && !h.is_empty() {
            change.insert("remove".into(), json!([ALL_PRIVILEGES]));
        } else if !remove.is_empty() {
            change.insert("remove".into(), json!(remove));
        }
        if change.len() > 1 {
            out.push(Value::Object(change));
        }
    }
    out
}

/// Converge the securable's grants to `want` (normalised list); no request when nothing
/// differs. Re-reading and re-diffing makes it idempotent, so an unknown outcome (a lost
/// response) is simply tried again.
pub async fn apply(
    client: &Client,
    securable: &str,
    full_name: &str,
    want: &[Value],
) -> Result<(), ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_once(client, securable, full_name, want).await {
            Err(e) if e.is_outcome_unknown() && attempt < 3 => continue,
            other => return other,
        }
    }
}

async fn apply_once(
    client: &Client,
    securable: &str,
    full_name: &str,
    want: &[Value],
) -> Result<(), ApiError> {
    let current = read(client, securable, full_name).await?;
    let changes = changes(want, &current);
    if changes.is_empty() {
        return Ok(());
    }
    client
        .call(
            Method::PATCH,
            &path(securable, full_name),
            &[],
            Some(&json!({ "changes": changes })),
        )
        .await?;
    Ok(())
}

/// A remote object with its grants under `grants` (absent when it has none).
pub async fn with_grants(
    client: &Client,
    securable: &str,
    full_name: &str,
    mut remote: Value,
) -> Result<Value, ApiError> {
    let grants = read(client, securable, full_name).await?;
    if let Value::Object(m) = &mut remote {
        if !grants.is_empty() {
            m.insert("grants".into(), Value::Array(grants));
        }
    }
    Ok(remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_sorts_merges_and_absorbs() {
        let list = vec![
            json!({"principal": "b", "privileges": ["select", "USE_SCHEMA"]}),
            json!({"principal": "a", "privileges": ["MODIFY"]}),
            json!({"principal": "b", "privileges": ["SELECT"]}),
            json!({"principal": "c", "privileges": ["SELECT", "ALL_PRIVILEGES"]}),
        ];
        assert_eq!(
            normalize(&list),
            vec![
                json!({"principal": "a", "privileges": ["MODIFY"]}),
                json!({"principal": "b", "privileges": ["SELECT", "USE_SCHEMA"]}),
                json!({"principal": "c", "privileges": ["ALL_PRIVILEGES"]}),
            ]
        );
    }

    #[test]
    fn changes_are_set_differences() {
        let want = vec![
            json!({"principal": "team", "privileges": ["SELECT", "USE_SCHEMA"]}),
            json!({"principal": "new", "privileges": ["MODIFY"]}),
        ];
        let have = vec![
            json!({"principal": "team", "privileges": ["SELECT", "CREATE_TABLE"]}),
            json!({"principal": "gone", "privileges": ["SELECT"]}),
        ];
        assert_eq!(
            changes(&want, &have),
            vec![
                json!({"principal": "gone", "remove": ["ALL_PRIVILEGES"]}),
                json!({"principal": "new", "add": ["MODIFY"]}),
                json!({"principal": "team", "add": ["USE_SCHEMA"], "remove": ["CREATE_TABLE"]}),
            ]
        );
        assert!(changes(&want, &normalize(&want)).is_empty());
    }
}
