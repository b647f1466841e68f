//! `lakebundle bind KEY ID` / `lakebundle unbind KEY`, as the Databricks
//! CLI's `bundle deployment bind|unbind`: adopt an existing remote object as
//! a resource of the target (or forget one), recording it in the state at
//! once and pushing the state to the workspace. The remote object is never
//! changed here: the next `deploy` applies what the configuration says.
//!
//! Bind shows the changes the next deploy would make to the object and asks
//! for a confirmation on a terminal; without one it needs `--auto-approve`.

use serde_json::{json, Value};

use super::args::{BindArgs, GlobalArgs, UnbindArgs};
use super::context::{self, Session};
use super::deploy::{acquire_lock, release_lock};
use super::error::{CliError, ErrorClass};
use super::{hint, output, Exit};
use crate::config::model::Bundle;
use crate::plan::build::{make_plan, PlanOptions};
use crate::plan::{Action, EngineError};
use crate::resources::{kind_impl, ResourceAddr};
use crate::state::ResourceState;

/// Errors of `plan` / `deploy`, with the exact commands that adopt objects
/// that already exist remotely.
pub(super) fn engine_error(g: &GlobalArgs, session: &Session, e: EngineError) -> CliError {
    let help = match &e {
        EngineError::AlreadyExists { found } => Some(
            found
                .iter()
                .map(|c| format!("`{}`", hint::command(g, &["bind", &c.addr.key, &c.id])))
                .collect::<Vec<_>>(),
        ),
        _ => None,
    };
    let err = session.engine_error(e);
    match help {
        Some(cmds) => err.with_help(format!(
            "adopt {} into this target with {}, or rename {} in the configuration",
            if cmds.len() == 1 { "it" } else { "them" },
            cmds.join(", then "),
            if cmds.len() == 1 { "it" } else { "them" },
        )),
        None => err,
    }
}

/// The resource of the bundle named by `key` (a bare key, unique across
/// kinds, or `resources.<kind>.<key>`).
pub(super) fn find_resource(bundle: &Bundle, key: &str) -> Result<ResourceAddr, CliError> {
    if let Some(addr) = ResourceAddr::parse(key).filter(|a| bundle.resources.contains_key(a)) {
        return Ok(addr);
    }
    let matches: Vec<&ResourceAddr> = bundle.resources.keys().filter(|a| a.key == key).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let keys: Vec<&str> = bundle.resources.keys().map(|a| a.key.as_str()).collect();
            let err = CliError::user(format!("no such resource: {key}"));
            let close: Vec<String> = crate::diag::suggestions(key, keys.iter().copied())
                .into_iter()
                .map(str::to_string)
                .collect();
            let help = crate::diag::suggestion_help(&close).unwrap_or_else(|| {
                format!(
                    "the bundle's resources are: {}",
                    if keys.is_empty() {
                        "(none)".to_string()
                    } else {
                        keys.join(", ")
                    }
                )
            });
            Err(err.with_help(help))
        }
        many => Err(CliError::user(format!(
            "ambiguous: {key} is {}",
            many.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        ))
        .with_help("name it in full, e.g. `resources.<kind>.<key>`")),
    }
}

pub fn run_bind(g: &GlobalArgs, a: &BindArgs) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        let addr = find_resource(&session.bundle, &a.key)?;
        bind(g, session, &addr, &a.id, a.auto_approve, a.force_lock).await?;
        Ok(Exit::Success)
    })
}

/// Bind `addr` to the remote object `id` (also `generate --bind`).
pub(super) async fn bind(
    g: &GlobalArgs,
    session: &Session,
    addr: &ResourceAddr,
    id: &str,
    auto_approve: bool,
    force_lock: bool,
) -> Result<(), CliError> {
    let kind = kind_impl(addr.kind);
    let noun = kind.kind().noun().into_owned();
    let remote = match kind.read(&session.client, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found(&noun, id)),
        Err(e) if e.is_not_found() => return Err(not_found(&noun, id)),
        Err(e) => {
            return Err(CliError::context(
                ErrorClass::Remote,
                format!("fetching {noun} '{id}'"),
                &e,
            ))
        }
    };
    let lock = acquire_lock(g, session, "bind", force_lock).await?;
    let result = bind_locked(g, session, addr, id, &remote, auto_approve).await;
    release_lock(lock).await;
    result?;
    eprintln!("Successfully bound {noun} with an id '{id}'");
    eprintln!(
        "Run `{}` to deploy changes to your workspace",
        hint::command(g, &["deploy"])
    );
    Ok(())
}

fn not_found(noun: &str, id: &str) -> CliError {
    CliError::user(format!("{noun} with an id '{id}' is not found")).with_help(
        "check the id: jobs are bound by their numeric id, the other kinds by their name",
    )
}

async fn bind_locked(
    g: &GlobalArgs,
    session: &Session,
    addr: &ResourceAddr,
    id: &str,
    remote: &Value,
    auto_approve: bool,
) -> Result<(), CliError> {
    let kind = kind_impl(addr.kind);
    let store = session.state().await?;
    if let Some(rs) = store.get(addr) {
        let unbind = hint::command(g, &["unbind", &addr.key]);
        return Err(if rs.id == id {
            CliError::user(format!("{addr} is already bound to '{id}'"))
                .with_help("nothing to do: `plan` shows what the next deploy changes")
        } else {
            CliError::user(format!(
                "{addr} is already managed by this target, with id '{}'",
                rs.id
            ))
            .with_help(format!(
                "to bind it to '{id}' instead, first run `{unbind}` (the object '{}' is left as it is)",
                rs.id
            ))
        });
    }
    let opts = PlanOptions::default();
    // First as if bound with nothing applied, to get the resolved config the
    // state records (as the CLI does); then the change the next deploy makes.
    let mut bound = store.snapshot();
    let mut entry = ResourceState {
        id: id.to_string(),
        applied: json!({}),
        outputs: kind.outputs(id, remote),
        depends_on: vec![],
    };
    bound.resources.insert(addr.clone(), entry.clone());
    let first = make_plan(&session.bundle, &bound, Some(&session.client), &opts)
        .await
        .map_err(|e| session.engine_error(e))?;
    if let Some(c) = first.changes.iter().find(|c| &c.addr == addr) {
        if let Some(after) = &c.after {
            entry.applied = after.clone();
        }
        entry.depends_on = c.depends_on.clone();
    }
    bound.resources.insert(addr.clone(), entry.clone());
    let plan = make_plan(&session.bundle, &bound, Some(&session.client), &opts)
        .await
        .map_err(|e| session.engine_error(e))?;
    let change = plan.changes.iter().find(|c| &c.addr == addr);
    if let Some(c) = change.filter(|c| c.action != Action::NoOp) {
        if !auto_approve {
            let verb = match c.action {
                Action::Replace => "replace",
                Action::Create => "create",
                _ => "update",
            };
            eprintln!("Plan: {verb} {addr}");
            eprintln!("Changes detected:");
            let show = |v: &Option<Value>| match v {
                Some(v) => v.to_string(),
                None => "(unset)".to_string(),
            };
            for f in &c.fields {
                eprintln!("  ~ {}: {} -> {}", f.path, show(&f.old), show(&f.new));
            }
            let rerun = hint::command(g, &["bind", &addr.key, id, "--auto-approve"]);
            if !output::stdin_is_tty() {
                return Err(CliError::user(
                    "this bind needs a confirmation, and there is no terminal to confirm on",
                )
                .with_help(format!("review the changes above, then run `{rerun}`")));
            }
            if !output::confirm(
                "Confirm import changes? Changes will be remotely applied only after running 'deploy'.",
            ) {
                return Err(CliError::user("bind aborted"));
            }
        }
    }
    store.put(addr, entry).await.map_err(CliError::state)?;
    store.sync_remote().await.map_err(CliError::state)?;
    Ok(())
}

pub fn run_unbind(g: &GlobalArgs, a: &UnbindArgs) -> Result<Exit, CliError> {
    context::with_session(g, async |session| {
        let addr = find_resource(&session.bundle, &a.key)?;
        let lock = acquire_lock(g, session, "unbind", a.force_lock).await?;
        let result = unbind_locked(session, &addr).await;
        release_lock(lock).await;
        let id = result?;
        eprintln!(
            "Unbound {addr} from '{id}': the object is left as it is, and the next deploy creates a new one unless the resource is removed from the configuration."
        );
        Ok(Exit::Success)
    })
}

async fn unbind_locked(session: &Session, addr: &ResourceAddr) -> Result<String, CliError> {
    let store = session.state().await?;
    let Some(rs) = store.get(addr) else {
        return Err(CliError::user(format!(
            "{addr} is not bound: this target's state has no object for it"
        )));
    };
    store.remove(addr).await.map_err(CliError::state)?;
    store.sync_remote().await.map_err(CliError::state)?;
    Ok(rs.id)
}
