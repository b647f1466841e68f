//! `run_as`: the identity the bundle's jobs run as. Like the official CLI, the
//! top-level (or target) `run_as` is copied into every job that has none of
//! its own, must name exactly one identity, and is refused for resources that
//! cannot run as anyone but their owner when it differs from the deployer.
//!
//! Runs on the resolved tree, before the resources' typed checks (see
//! [`super::permissions::apply_identity`]).

use std::collections::HashSet;

use indexmap::IndexMap;

use crate::config::model::{CurrentUser, ResourceConfig};
use crate::config::source::{Key, Map, Node, NodeKind, Span};
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::has_interpolation;
use crate::resources::{Kind, ResourceAddr, RunAs as KindRunAs};

/// The identity fields of the top-level `run_as`.
const IDENTITY_FIELDS: [&str; 2] = ["user_name", "service_principal_name"];

/// Where the CLI documents `run_as`.
const RUN_AS_DOCS: &str = "https://docs.databricks.com/dev-tools/bundles/run-as.html";

/// The non-empty string at `field` of a map node.
fn nonempty<'a>(map: &'a Map, field: &str) -> Option<&'a str> {
    map.get(field)
        .and_then(Node::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// The identity a valid top-level `run_as` names: (field, value, node).
struct RunAs {
    field: &'static str,
    identity: String,
    span: Span,
}

/// Check the top-level `run_as` node; errors go to `diags`.
fn read_top_level(key_span: Span, node: &Node, diags: &mut Diagnostics) -> Option<RunAs> {
    let at = if node.span.is_synthetic() || matches!(node.kind, NodeKind::Null) {
        key_span
    } else {
        node.span
    };
    let neither = || {
        Diag::error("run_as must name exactly one identity: neither `user_name` nor `service_principal_name` is set")
            .at(at, "no identity here")
            .help("set `run_as.user_name: <email>` or `run_as.service_principal_name: <application id>`, or remove `run_as`")
    };
    let Some(map) = node.as_map() else {
        if matches!(node.kind, NodeKind::Null) {
            diags.push(neither());
        } else {
            diags.push(
                Diag::error(format!("run_as must be a map, not {}", node.type_name()))
                    .at(at, "not a map")
                    .help("write `run_as:` with `user_name` or `service_principal_name` under it"),
            );
        }
        return None;
    };
    for (k, v) in &map.entries {
        if !IDENTITY_FIELDS.contains(&k.name.as_str()) {
            let mut d = Diag::error(format!(
                "unknown field `{}` in the top-level run_as",
                k.name
            ))
            .at(k.span, "not a run_as field");
            d = match crate::diag::did_you_mean(&k.name, IDENTITY_FIELDS) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("run_as takes `user_name` or `service_principal_name`"),
            };
            diags.push(d);
        } else if !matches!(v.kind, NodeKind::String(..) | NodeKind::Null) {
            diags.push(
                Diag::error(format!(
                    "run_as.{} must be a string, not {}",
                    k.name,
                    v.type_name()
                ))
                .at(v.span, "not a string"),
            );
        }
    }
    let user = nonempty(map, "user_name");
    let sp = nonempty(map, "service_principal_name");
    match (user, sp) {
        (None, None) => {
            // An empty string is as good as nothing: point at it when written.
            let d = neither();
            let d = match IDENTITY_FIELDS.iter().find_map(|f| map.get(f)) {
                Some(empty) => d.at(empty.span, "empty identity"),
                None => d,
            };
            diags.push(d);
            None
        }
        (Some(_), Some(_)) => {
            let mut d =
                Diag::error("run_as cannot set both `user_name` and `service_principal_name`")
                    .at(at, "two identities")
                    .help("keep the one identity the jobs should run as");
            if let Some((k, _)) = map.get_entry("service_principal_name") {
                d = d.related(k.span, "service principal");
            }
            diags.push(d);
            None
        }
        (Some(u), None) => Some(RunAs {
            field: "user_name",
            identity: u.to_string(),
            span: at,
        }),
        (None, Some(s)) => Some(RunAs {
            field: "service_principal_name",
            identity: s.to_string(),
            span: at,
        }),
    }
}

/// A job's own `run_as` names exactly one non-empty identity (the Jobs API
/// also accepts `group_name`).
fn check_job_run_as(addr: &ResourceAddr, node: &Node, diags: &mut Diagnostics) {
    let Some(run_as) = node.get("run_as") else {
        return;
    };
    // `run_as:` left empty is no run_as (the bundle's applies); any other
    // shape than a map is reported by the job's schema check.
    let Some(map) = run_as.as_map() else {
        return;
    };
    let set: Vec<&str> = ["user_name", "service_principal_name", "group_name"]
        .into_iter()
        .filter(|f| nonempty(map, f).is_some())
        .collect();
    if set.len() == 1 {
        return;
    }
    let msg = if set.is_empty() {
        format!("{addr}.run_as names no identity")
    } else {
        format!(
            "{addr}.run_as names more than one identity ({})",
            set.join(", ")
        )
    };
    diags.push(
        Diag::error(msg)
            .at(run_as.span, "this run_as")
            .help("set exactly one of `user_name`, `service_principal_name` or `group_name`"),
    );
}

fn not_supported(what: &str, current: &str, identity: &str) -> String {
    format!(
        "{what} do not support a run_as identity different from the deploying identity (current identity: {current}, run_as: {identity})"
    )
}

/// The identity rules of the CLI for resources that cannot run as another
/// identity than their owner (the deployer).
fn check_identity(
    tree: &Node,
    run_as: &RunAs,
    user: &CurrentUser,
    resources: &IndexMap<ResourceAddr, ResourceConfig>,
    diags: &mut Diagnostics,
) {
    if run_as.identity == user.user_name || has_interpolation(&run_as.identity) {
        return;
    }
    let help = format!(
        "remove run_as, deploy as {id}, or set run_as to the deploying identity; see {RUN_AS_DOCS}",
        id = run_as.identity
    );
    let kinds = tree.get("resources").and_then(Node::as_map);
    // Kinds that run as their own service principal (apps): the CLI refuses
    // any other run_as.
    for kind in Kind::ALL {
        if kind.info().run_as != KindRunAs::OwnIdentity || !resources.keys().any(|a| a.kind == kind)
        {
            continue;
        }
        let at = kinds
            .and_then(|k| k.get(kind.key()))
            .map(|n| n.span)
            .unwrap_or(run_as.span);
        diags.push(
            Diag::error(not_supported(kind.key(), &user.user_name, &run_as.identity))
                .at(at, format!("{} defined here", kind.key()))
                .related(run_as.span, "run_as")
                .help(help.clone()),
        );
    }
    let Some(kinds) = kinds else { return };
    for (key, d) in kinds
        .get("dashboards")
        .and_then(Node::as_map)
        .map(|m| m.entries.as_slice())
        .unwrap_or(&[])
    {
        if matches!(
            d.get("embed_credentials").map(|n| &n.kind),
            Some(NodeKind::Bool(true))
        ) {
            diags.push(
                Diag::error(not_supported(
                    &format!(
                        "dashboards with embed_credentials set to true (`{}`)",
                        key.name
                    ),
                    &user.user_name,
                    &run_as.identity,
                ))
                .at(d.span, "this dashboard")
                .help(help.clone()),
            );
        }
    }
}

/// Check the `run_as` settings and copy the top-level one into every job
/// without its own. Jobs changed are added to `touched`.
pub(crate) fn apply(
    tree: &Node,
    resources: &mut IndexMap<ResourceAddr, ResourceConfig>,
    user: Option<&CurrentUser>,
    diags: &mut Diagnostics,
    touched: &mut HashSet<ResourceAddr>,
) {
    for (addr, rc) in resources.iter() {
        if addr.kind.info().run_as == KindRunAs::Inherits {
            check_job_run_as(addr, &rc.node, diags);
        }
    }
    if let Some(legacy) = tree
        .pointer(&["experimental", "use_legacy_run_as"])
        .filter(|n| matches!(n.kind, NodeKind::Bool(true)))
    {
        diags.push(
            Diag::warning("experimental.use_legacy_run_as has no effect in lakebundle")
                .at(legacy.span, "legacy run_as mode")
                .help("the legacy mode only changes the owners of pipelines, which lakebundle does not deploy; jobs use run_as either way"),
        );
    }
    let Some((key, node)) = tree.as_map().and_then(|m| m.get_entry("run_as")) else {
        return;
    };
    let Some(run_as) = read_top_level(key.span, node, diags) else {
        return;
    };
    if let Some(u) = user {
        check_identity(tree, &run_as, u, resources, diags);
    }
    // The copy names only the identity that is set (as the CLI writes it).
    let mut copy = Map::default();
    let field_span = node
        .as_map()
        .and_then(|m| m.get_entry(run_as.field))
        .map(|(k, v)| (k.span, v.clone()));
    let (kspan, value) =
        field_span.unwrap_or((run_as.span, Node::new(NodeKind::Null, run_as.span)));
    copy.insert(
        Key {
            name: run_as.field.to_string(),
            span: kspan,
        },
        value,
    );
    let copy = Node::new(NodeKind::Map(copy), node.span);
    for (addr, rc) in resources.iter_mut() {
        if addr.kind.info().run_as != KindRunAs::Inherits {
            continue;
        }
        let Some(job) = rc.node.as_map_mut() else {
            continue;
        };
        if !matches!(
            job.get("run_as").map(|n| &n.kind),
            None | Some(NodeKind::Null)
        ) {
            continue;
        }
        job.insert(
            Key {
                name: "run_as".into(),
                span: key.span,
            },
            copy.clone(),
        );
        touched.insert(addr.clone());
    }
}
