//! `summary`: each resource of the target (config ∪ state) with its remote
//! id, live state, endpoint and workspace URL, read concurrently.

use futures::stream::{self, StreamExt};
use serde_json::Value;

use crate::api::Client;
use crate::config::model::Bundle;
use crate::resources::{kind_impl, Kind, ResourceAddr};
use crate::state::DeploymentState;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub addr: ResourceAddr,
    pub name: Option<String>,
    pub id: Option<String>,
    pub state: Option<String>,
    pub endpoint: Option<String>,
    pub url: Option<String>,
    pub deployed: bool,
    /// Deployed, but the remote object is gone (or could not be read).
    pub note: Option<String>,
}

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, k| cur.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The live state of a remote object, at the first state field its kind has.
fn live_state(kind: Kind, remote: &Value) -> Option<String> {
    kind.info()
        .state_fields
        .iter()
        .find_map(|p| text_at(remote, &p.split('.').collect::<Vec<_>>()))
        .map(str::to_string)
}

/// The workspace UI address of a resource.
fn url_for(host: &str, kind: Kind, id: &str, remote: Option<&Value>) -> String {
    kind_impl(kind).ui_url(host, id, remote)
}

async fn entry_for(
    client: &Client,
    addr: ResourceAddr,
    state: &DeploymentState,
    config: Option<&Value>,
) -> Entry {
    let name_of = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);
    let Some(rs) = state.get(&addr) else {
        return Entry {
            name: config.and_then(name_of),
            addr,
            id: None,
            state: None,
            endpoint: None,
            url: None,
            deployed: false,
            note: None,
        };
    };
    let (remote, note) = match kind_impl(addr.kind).read(client, &rs.id).await {
        Ok(Some(r)) => (Some(r), None),
        Ok(None) => (None, Some("deleted outside lakebundle".to_string())),
        Err(e) if e.is_not_found() => (None, Some("deleted outside lakebundle".to_string())),
        Err(e) => (None, Some(format!("cannot read: {e}"))),
    };
    let from_outputs = |key: &str| {
        rs.outputs
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = kind_impl(addr.kind);
    let endpoint = remote
        .as_ref()
        .and_then(|r| text_at(r, &["read_write_dns"]).map(str::to_string))
        .or_else(|| from_outputs("read_write_dns"))
        .or_else(|| remote.as_ref().and_then(|r| kind.connect_host(r)));
    Entry {
        name: name_of(&rs.applied).or_else(|| config.and_then(name_of)),
        id: Some(rs.id.clone()),
        state: remote.as_ref().and_then(|r| live_state(addr.kind, r)),
        endpoint,
        url: Some(url_for(client.host(), addr.kind, &rs.id, remote.as_ref())),
        deployed: true,
        note,
        addr,
    }
}

/// What `summary` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct SummaryOptions {
    /// Remote reads in flight at once.
    pub parallelism: usize,
}

/// Every resource of config ∪ state, read from the remote with bounded
/// concurrency, sorted by kind title then key.
pub async fn summary(
    bundle: &Bundle,
    state: &DeploymentState,
    client: &Client,
    opts: SummaryOptions,
) -> Vec<Entry> {
    let parallelism = opts.parallelism;
    let mut addrs: Vec<ResourceAddr> = bundle.resources.keys().cloned().collect();
    for addr in state.resources.keys() {
        if !bundle.resources.contains_key(addr) {
            addrs.push(addr.clone());
        }
    }
    let mut entries: Vec<Entry> = stream::iter(addrs.into_iter().map(|addr| {
        let config = bundle.resources.get(&addr).map(|rc| &rc.value);
        entry_for(client, addr, state, config)
    }))
    .buffered(parallelism.max(1))
    .collect()
    .await;
    entries.sort_by(|a, b| {
        (a.addr.kind.title(), &a.addr.key).cmp(&(b.addr.kind.title(), &b.addr.key))
    });
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_state_from_each_kind() {
        assert_eq!(
            live_state(Kind::DatabaseInstances, &json!({"state": "AVAILABLE"})).as_deref(),
            Some("AVAILABLE")
        );
        assert_eq!(
            live_state(Kind::Apps, &json!({"compute_status": {"state": "STOPPED"}})).as_deref(),
            Some("STOPPED")
        );
        assert_eq!(
            live_state(
                Kind::SyncedDatabaseTables,
                &json!({"data_synchronization_status": {"detailed_state": "SYNCED_TABLE_ONLINE"},
                        "unity_catalog_provisioning_state": "ACTIVE"})
            )
            .as_deref(),
            Some("SYNCED_TABLE_ONLINE")
        );
        assert_eq!(
            live_state(
                Kind::SyncedDatabaseTables,
                &json!({"unity_catalog_provisioning_state": "PROVISIONING"})
            )
            .as_deref(),
            Some("PROVISIONING")
        );
        assert_eq!(live_state(Kind::Jobs, &json!({"job_id": 1})), None);
    }

    #[test]
    fn urls_per_kind() {
        let h = "http://127.0.0.1:9/";
        assert_eq!(
            url_for(h, Kind::Jobs, "42", None),
            "http://127.0.0.1:9/jobs/42"
        );
        assert_eq!(
            url_for(h, Kind::SyncedDatabaseTables, "c.s.t", None),
            "http://127.0.0.1:9/explore/data/c/s/t"
        );
        assert_eq!(
            url_for(h, Kind::Apps, "a", Some(&json!({"url": "a-1.apps.local"}))),
            "https://a-1.apps.local"
        );
        assert_eq!(
            url_for(h, Kind::Apps, "a", None),
            "http://127.0.0.1:9/apps/a"
        );
        assert_eq!(
            url_for(h, Kind::DatabaseInstances, "i", None),
            "http://127.0.0.1:9/compute/database-instances/i"
        );
        assert_eq!(
            url_for(h, Kind::DatabaseCatalogs, "c", None),
            "http://127.0.0.1:9/explore/data/c"
        );
    }
}
