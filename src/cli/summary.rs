//! `lakebundle summary`: each resource of the target with its remote id,
//! live state, endpoint (`read_write_dns`) and workspace URL. Deployed
//! resources are read from the workspace (concurrently); configured but
//! undeployed ones are listed as such. `-o json` gives the same as data.

use serde_json::{json, Value};

use super::args::{GlobalArgs, OutputFormat};
use super::error::CliError;
use super::{context, output, Exit};
use crate::ops::summary::{summary, Entry, SummaryOptions};

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
            s.push_str(&format!("  {}:\n", e.addr.kind.title()));
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
        let opts = SummaryOptions { parallelism: 10 };
        let entries = summary(&session.bundle, &store.snapshot(), &session.client, opts).await;
        match g.output {
            OutputFormat::Json => output::print_json(&render_json(session, &entries))?,
            _ => output::out(&render_text(session, &entries))?,
        }
        Ok(Exit::Success)
    })
}
