//! `lakebundle summary`: each resource of the target with its remote id,
//! live state, endpoint (`read_write_dns`) and workspace URL. Deployed
//! resources are read from the workspace (concurrently); configured but
//! undeployed ones are listed as such. `-o json` gives the same as data.

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::args::{GlobalArgs, OutputFormat};
use super::error::CliError;
use super::{context, output, Exit};
use crate::api::Client;
use crate::graph::kind_lookup;
use crate::resources::{Kind, ResourceAddr};
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

fn kind_title(kind: Kind) -> &'static str {
    match kind {
        Kind::DatabaseInstances => "Database instances",
        Kind::DatabaseCatalogs => "Database catalogs",
        Kind::SyncedDatabaseTables => "Synced database tables",
        Kind::Jobs => "Jobs",
        Kind::Apps => "Apps",
        Kind::PostgresProjects => "Postgres projects",
        Kind::PostgresBranches => "Postgres branches",
        Kind::PostgresEndpoints => "Postgres endpoints",
        Kind::PostgresDatabases => "Postgres databases",
        Kind::PostgresRoles => "Postgres roles",
        Kind::PostgresCatalogs => "Postgres catalogs",
        Kind::PostgresSyncedTables => "Postgres synced tables",
    }
}

fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, k| cur.get(*k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The live state field of a remote object, whichever its kind reports.
fn live_state(remote: &Value) -> Option<String> {
    const PATHS: &[&[&str]] = &[
        &["state"],
        &["compute_status", "state"],
        &["data_synchronization_status", "detailed_state"],
        &["unity_catalog_provisioning_state"],
    ];
    PATHS
        .iter()
        .find_map(|p| text_at(remote, p))
        .map(str::to_string)
}

/// The workspace UI address of a resource.
fn url_for(host: &str, kind: Kind, id: &str, remote: Option<&Value>) -> String {
    let host = host.trim_end_matches('/');
    match kind {
        Kind::DatabaseInstances => format!("{host}/compute/database-instances/{id}"),
        Kind::DatabaseCatalogs => format!("{host}/explore/data/{id}"),
        Kind::SyncedDatabaseTables => format!("{host}/explore/data/{}", id.replace('.', "/")),
        Kind::Jobs => format!("{host}/jobs/{id}"),
        Kind::PostgresProjects
        | Kind::PostgresBranches
        | Kind::PostgresEndpoints
        | Kind::PostgresDatabases
        | Kind::PostgresRoles => format!("{host}/lakebase/{id}"),
        Kind::PostgresCatalogs | Kind::PostgresSyncedTables => format!(
            "{host}/explore/data/{}",
            id.split_once('/')
                .map_or(id, |(_, rest)| rest)
                .replace('.', "/")
        ),
        Kind::Apps => remote
            .and_then(|r| text_at(r, &["url"]))
            .map(|u| {
                if u.contains("://") {
                    u.to_string()
                } else {
                    format!("https://{u}")
                }
            })
            .unwrap_or_else(|| format!("{host}/apps/{id}")),
    }
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
    let (remote, note) = match kind_lookup(addr.kind) {
        Some(kind) => match kind.read(client, &rs.id).await {
            Ok(Some(r)) => (Some(r), None),
            Ok(None) => (None, Some("deleted outside lakebundle".to_string())),
            Err(e) if e.is_not_found() => (None, Some("deleted outside lakebundle".to_string())),
            Err(e) => (None, Some(format!("cannot read: {e}"))),
        },
        None => (None, Some("kind not supported by this build".to_string())),
    };
    let from_outputs = |key: &str| {
        rs.outputs
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = kind_lookup(addr.kind);
    let endpoint = remote
        .as_ref()
        .and_then(|r| text_at(r, &["read_write_dns"]).map(str::to_string))
        .or_else(|| {
            remote
                .as_ref()
                .and_then(|r| kind.and_then(|k| k.connect_host(r)))
        })
        .or_else(|| from_outputs("read_write_dns"))
        .or_else(|| from_outputs("host"));
    Entry {
        name: name_of(&rs.applied).or_else(|| config.and_then(name_of)),
        id: Some(rs.id.clone()),
        state: remote
            .as_ref()
            .and_then(|r| kind.and_then(|k| k.live_state(r)).or_else(|| live_state(r))),
        endpoint,
        url: Some(url_for(client.host(), addr.kind, &rs.id, remote.as_ref())),
        deployed: true,
        note,
        addr,
    }
}

/// Every resource of config ∪ state, read from the remote with bounded concurrency.
pub async fn collect(
    session: &context::Session,
    state: &DeploymentState,
    parallelism: usize,
) -> Vec<Entry> {
    let mut addrs: Vec<ResourceAddr> = session.bundle.resources.keys().cloned().collect();
    for addr in state.resources.keys() {
        if !session.bundle.resources.contains_key(addr) {
            addrs.push(addr.clone());
        }
    }
    let mut entries: Vec<Entry> = stream::iter(addrs.into_iter().map(|addr| {
        let config = session.bundle.resources.get(&addr).map(|rc| &rc.value);
        entry_for(&session.client, addr, state, config)
    }))
    .buffered(parallelism.max(1))
    .collect()
    .await;
    entries.sort_by(|a, b| {
        (kind_title(a.addr.kind), &a.addr.key).cmp(&(kind_title(b.addr.kind), &b.addr.key))
    });
    entries
}

fn render_text(session: &context::Session, entries: &[Entry]) -> String {
    let b = &session.bundle;
    let mut s = format!(
        "Name: {}\nTarget: {}\nWorkspace:\n  Host: {}\n  User: {}\n  Path: {}\nResources:\n",
        b.name,
        b.target,
        session.client.host(),
        session.user.user_name,
        b.workspace.root_path
    );
    let mut last_kind = None;
    for e in entries {
        if last_kind != Some(e.addr.kind) {
            s.push_str(&format!("  {}:\n", kind_title(e.addr.kind)));
            last_kind = Some(e.addr.kind);
        }
        s.push_str(&format!("    {}:\n", e.addr.key));
        let rows = [
            ("Name", e.name.clone()),
            ("Id", e.id.clone().filter(|id| Some(id) != e.name.as_ref())),
            ("State", e.state.clone()),
            ("Endpoint", e.endpoint.clone()),
            ("URL", e.url.clone()),
            ("Note", e.note.clone()),
        ];
        for (label, value) in rows {
            if let Some(v) = value {
                s.push_str(&format!("      {:<9} {v}\n", format!("{label}:")));
            }
        }
        if !e.deployed {
            s.push_str("      (not deployed)\n");
        }
    }
    s
}

fn render_json(session: &context::Session, entries: &[Entry]) -> Value {
    let b = &session.bundle;
    json!({
        "bundle": b.name,
        "target": b.target,
        "workspace": {
            "host": session.client.host(),
            "user": session.user.user_name,
            "root_path": b.workspace.root_path,
            "file_path": b.workspace.file_path,
            "state_path": b.workspace.state_path,
        },
        "resources": entries.iter().map(|e| json!({
            "address": e.addr.to_string(),
            "kind": e.addr.kind.key(),
            "key": e.addr.key,
            "name": e.name,
            "id": e.id,
            "state": e.state,
            "endpoint": e.endpoint,
            "url": e.url,
            "deployed": e.deployed,
            "note": e.note,
        })).collect::<Vec<_>>(),
    })
}

pub fn run(g: &GlobalArgs) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        let store = session.state().await?;
        let entries = collect(session, &store.snapshot(), 10).await;
        match g.output {
            OutputFormat::Json => output::print_json(&render_json(session, &entries))?,
            _ => output::out(&render_text(session, &entries))?,
        }
        Ok(Exit::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_state_from_each_kind() {
        assert_eq!(
            live_state(&json!({"state": "AVAILABLE"})).as_deref(),
            Some("AVAILABLE")
        );
        assert_eq!(
            live_state(&json!({"compute_status": {"state": "STOPPED"}})).as_deref(),
            Some("STOPPED")
        );
        assert_eq!(
            live_state(
                &json!({"data_synchronization_status": {"detailed_state": "SYNCED_TABLE_ONLINE"}})
            )
            .as_deref(),
            Some("SYNCED_TABLE_ONLINE")
        );
        assert_eq!(live_state(&json!({"job_id": 1})), None);
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
    }
}
