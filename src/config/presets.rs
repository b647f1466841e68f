//! `mode:` and `presets:`. Applied to the merged tree before substitution, so
//! the development prefix `[dev ${workspace.current_user.short_name}] ` is
//! resolved like any other reference (or left as text when offline).
//!
//! Presets change JOBS only among the supported kinds; database instances,
//! catalogs, synced tables and apps keep their names (they are addressed by
//! name and a prefix would change their identity).

use crate::config::model::{CurrentUser, Mode};
use crate::config::source::{Key, Map, Node, NodeKind, ScalarStyle, Span};
use crate::diag::{did_you_mean, Diag, Diagnostics};

const SHORT_NAME_REF: &str = "${workspace.current_user.short_name}";
const USER_NAME_REF: &str = "${workspace.current_user.userName}";
const PRESET_KEYS: &[&str] = &[
    "name_prefix",
    "tags",
    "trigger_pause_status",
    "jobs_max_concurrent_runs",
    "pipelines_development",
    "source_linked_deployment",
    "artifacts_dynamic_version",
];

fn string(s: &str, span: Span) -> Node {
    Node::new(NodeKind::String(s.to_string(), ScalarStyle::Quoted), span)
}

fn key(name: &str, span: Span) -> Key {
    Key {
        name: name.to_string(),
        span,
    }
}

/// Read `bundle.mode`.
pub fn read_mode(tree: &Node, diags: &mut Diagnostics) -> Option<Mode> {
    let node = tree.pointer(&["bundle", "mode"])?;
    match node.as_str() {
        Some("development") => Some(Mode::Development),
        Some("production") => Some(Mode::Production),
        Some(other) => {
            let mut d = Diag::error(format!("unknown mode `{other}`")).at(node.span, "mode");
            d = match did_you_mean(other, ["development", "production"]) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("mode is `development` or `production`"),
            };
            diags.push(d);
            None
        }
        None if matches!(node.kind, NodeKind::Null) => None,
        None => {
            diags.push(
                Diag::error(format!("mode must be a string, not {}", node.type_name()))
                    .at(node.span, "mode"),
            );
            None
        }
    }
}

/// Apply mode defaults and presets to the tree; run the mode's checks.
/// `explicit_root_path`: whether the user set `workspace.root_path`.
pub fn apply(
    tree: &mut Node,
    mode: Option<Mode>,
    user: Option<&CurrentUser>,
    diags: &mut Diagnostics,
) {
    let mode_span = tree
        .pointer(&["bundle", "mode"])
        .map(|n| n.span)
        .unwrap_or_else(Span::synthetic);
    let Some(root) = tree.as_map_mut() else {
        return;
    };
    let mut presets = match root.remove("presets") {
        Some(Node {
            kind: NodeKind::Map(m),
            ..
        }) => m,
        Some(Node {
            kind: NodeKind::Null,
            ..
        })
        | None => Map::default(),
        Some(other) => {
            diags.push(
                Diag::error(format!(
                    "`presets` must be a map, not {}",
                    other.type_name()
                ))
                .at(other.span, "not a map"),
            );
            Map::default()
        }
    };
    for (k, _) in &presets.entries {
        if !PRESET_KEYS.contains(&k.name.as_str()) {
            let mut d = Diag::warning(format!("unknown field `{}` in presets", k.name))
                .at(k.span, "unknown field");
            if let Some(s) = did_you_mean(&k.name, PRESET_KEYS.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
        }
    }
    match mode {
        Some(Mode::Development) => development_defaults(&mut presets, root, user, mode_span, diags),
        Some(Mode::Production) => production_checks(root, user, mode_span, diags),
        None => {}
    }
    if let Some(jobs) = root
        .get_mut("resources")
        .and_then(|r| r.as_map_mut())
        .and_then(|r| r.get_mut("jobs"))
        .and_then(Node::as_map_mut)
    {
        for (job_key, job) in jobs.entries.iter_mut() {
            if let Some(job) = job.as_map_mut() {
                apply_to_job(&job_key.name, job, &presets);
            }
        }
    }
    if !presets.is_empty() {
        root.insert(
            key("presets", mode_span),
            Node::new(NodeKind::Map(presets), mode_span),
        );
    }
}

fn development_defaults(
    presets: &mut Map,
    root: &mut Map,
    user: Option<&CurrentUser>,
    span: Span,
    diags: &mut Diagnostics,
) {
    match presets.get("name_prefix").map(|n| (&n.kind, n.span)) {
        None => {}
        Some((NodeKind::Null, sp)) => {
            diags.push(
                Diag::warning("presets.name_prefix should be a string, found null").at(sp, "null"),
            );
            presets.remove("name_prefix");
        }
        Some((NodeKind::String(s, _), _)) if s.is_empty() => {
            presets.remove("name_prefix");
        }
        Some((NodeKind::String(s, _), sp)) => {
            let mentions_user = s.contains(SHORT_NAME_REF)
                || s.contains(USER_NAME_REF)
                || user.is_some_and(|u| s.contains(&u.short_name) || s.contains(&u.user_name));
            if !mentions_user {
                diags.push(
                    Diag::error(
                        "with `mode: development` the name prefix must contain the current user's name \
                         or ${workspace.current_user.short_name}, so that each developer's deployment is unique",
                    )
                    .at(sp, "this prefix")
                    .help(format!("e.g. name_prefix: \"[{SHORT_NAME_REF}] \"")),
                );
            }
        }
        Some((_, sp)) => {
            diags.push(Diag::error("presets.name_prefix must be a string").at(sp, "not a string"))
        }
    }
    if presets.get("name_prefix").is_none() {
        presets.insert(
            key("name_prefix", span),
            string(&format!("[dev {SHORT_NAME_REF}] "), span),
        );
    }
    if let Some(n) = presets.get("trigger_pause_status") {
        if n.as_str() == Some("UNPAUSED") {
            diags.push(
                Diag::error("a target with `mode: development` cannot unpause triggers and schedules by default")
                    .at(n.span, "UNPAUSED")
                    .help("remove presets.trigger_pause_status, or unpause a single job in its own schedule"),
            );
        }
    } else {
        presets.insert(key("trigger_pause_status", span), string("PAUSED", span));
    }
    let tags_missing = !matches!(presets.get("tags").map(|t| &t.kind), Some(NodeKind::Map(_)));
    if tags_missing {
        presets.insert(
            key("tags", span),
            Node::new(NodeKind::Map(Map::default()), span),
        );
    }
    if let Some(tags) = presets.get_mut("tags").and_then(Node::as_map_mut) {
        if tags.get("dev").is_none() {
            tags.insert(key("dev", span), string(SHORT_NAME_REF, span));
        }
    }
    if presets.get("jobs_max_concurrent_runs").is_none() {
        presets.insert(
            key("jobs_max_concurrent_runs", span),
            Node::new(NodeKind::Int(4), span),
        );
    }
    if presets.get("pipelines_development").is_none() {
        presets.insert(
            key("pipelines_development", span),
            Node::new(NodeKind::Bool(true), span),
        );
    }
    // Development deployments are personal: no deployment lock by default.
    let bundle = root.get_mut("bundle").and_then(Node::as_map_mut);
    if let Some(bundle) = bundle {
        if bundle
            .get("deployment")
            .and_then(|d| d.get("lock"))
            .and_then(|l| l.get("enabled"))
            .is_none()
        {
            let mut lock = Map::default();
            lock.insert(key("enabled", span), Node::new(NodeKind::Bool(false), span));
            let mut deployment = match bundle.remove("deployment") {
                Some(Node {
                    kind: NodeKind::Map(m),
                    ..
                }) => m,
                _ => Map::default(),
            };
            deployment.insert(key("lock", span), Node::new(NodeKind::Map(lock), span));
            bundle.insert(
                key("deployment", span),
                Node::new(NodeKind::Map(deployment), span),
            );
        }
    }
}

/// A production target must pin its root path, so that only one copy is
/// ever deployed (a personal `~/.bundle/...` default would give one per user).
fn production_checks(root: &Map, user: Option<&CurrentUser>, span: Span, diags: &mut Diagnostics) {
    let explicit_root = root
        .get("workspace")
        .and_then(|w| w.get("root_path"))
        .is_some_and(|n| !matches!(n.kind, NodeKind::Null));
    if explicit_root {
        return;
    }
    let run_as = root
        .get("run_as")
        .is_some_and(|n| !matches!(n.kind, NodeKind::Null));
    // Service principals have UUID user names.
    let principal = user.is_some_and(|u| uuid::Uuid::parse_str(&u.user_name).is_ok());
    let help = format!(
        "a common choice is a path naming a user or principal, e.g.\n  root_path: /Workspace/Users/{}/.bundle/${{bundle.name}}/${{bundle.target}}",
        user.map(|u| u.user_name.as_str()).unwrap_or("<user>")
    );
    let d = if run_as || principal {
        Diag::warning("a target with `mode: production` should set `workspace.root_path` so that only one copy is deployed")
    } else {
        Diag::error("a target with `mode: production` must set `workspace.root_path` so that only one copy is deployed")
    };
    diags.push(d.at(span, "production mode").help(help));
}

fn apply_to_job(job_key: &str, job: &mut Map, presets: &Map) {
    if let Some(prefix) = presets
        .get("name_prefix")
        .and_then(Node::as_str)
        .filter(|p| !p.is_empty())
    {
        let (name, span) = match job.get("name") {
            Some(n) => (
                n.scalar_text().unwrap_or_else(|| job_key.to_string()),
                n.span,
            ),
            None => (job_key.to_string(), Span::synthetic()),
        };
        let style = job.get("name").and_then(|n| match &n.kind {
            NodeKind::String(_, st) => Some(*st),
            _ => None,
        });
        let node = Node::new(
            NodeKind::String(
                format!("{prefix}{name}"),
                style.unwrap_or(ScalarStyle::Quoted),
            ),
            span,
        );
        job.insert(key("name", span), node);
    }
    if let Some(tags) = presets
        .get("tags")
        .and_then(Node::as_map)
        .filter(|t| !t.is_empty())
    {
        let span = tags
            .entries
            .first()
            .map(|(k, _)| k.span)
            .unwrap_or_else(Span::synthetic);
        if !matches!(job.get("tags").map(|t| &t.kind), Some(NodeKind::Map(_))) {
            job.insert(
                key("tags", span),
                Node::new(NodeKind::Map(Map::default()), span),
            );
        }
        if let Some(job_tags) = job.get_mut("tags").and_then(Node::as_map_mut) {
            for (k, v) in &tags.entries {
                if job_tags.get(&k.name).is_none() {
                    job_tags.entries.push((k.clone(), v.clone()));
                }
            }
        }
    }
    if let Some(max) = presets
        .get("jobs_max_concurrent_runs")
        .filter(|n| matches!(n.kind, NodeKind::Int(_)))
    {
        let unset = match job.get("max_concurrent_runs").map(|n| &n.kind) {
            None | Some(NodeKind::Null) | Some(NodeKind::Int(0)) => true,
            Some(_) => false,
        };
        if unset {
            job.insert(key("max_concurrent_runs", max.span), max.clone());
        }
    }
    if let Some(pause) = presets
        .get("trigger_pause_status")
        .filter(|n| n.as_str().is_some())
    {
        for section in ["schedule", "trigger", "continuous"] {
            if let Some(s) = job.get_mut(section).and_then(Node::as_map_mut) {
                if s.get("pause_status").is_none() {
                    s.insert(key("pause_status", pause.span), pause.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};

    fn run(text: &str, user: Option<&CurrentUser>) -> (Node, Diagnostics) {
        let (mut tree, mut d) = parse_file(FileId(0), text);
        let mode = read_mode(&tree, &mut d);
        apply(&mut tree, mode, user, &mut d);
        (tree, d)
    }

    const BUNDLE: &str = "bundle: {name: b, mode: development}\nresources:\n  jobs:\n    j:\n      name: job\n      schedule: {quartz_cron_expression: x}\n  database_instances:\n    i: {name: inst}\n  apps:\n    a: {name: app}\n";

    #[test]
    fn development_prefixes_and_tags_jobs_only() {
        let (tree, d) = run(BUNDLE, None);
        assert!(d.is_empty(), "{:?}", d.items);
        let job = tree
            .pointer(&["resources", "jobs", "j"])
            .map(Node::to_json)
            .unwrap_or_default();
        assert_eq!(
            job["name"],
            "[dev ${workspace.current_user.short_name}] job"
        );
        assert_eq!(job["tags"]["dev"], "${workspace.current_user.short_name}");
        assert_eq!(job["schedule"]["pause_status"], "PAUSED");
        assert_eq!(job["max_concurrent_runs"], 4);
        assert_eq!(
            tree.pointer(&["resources", "database_instances", "i", "name"])
                .and_then(Node::as_str),
            Some("inst")
        );
        assert_eq!(
            tree.pointer(&["resources", "apps", "a", "name"])
                .and_then(Node::as_str),
            Some("app")
        );
    }

    #[test]
    fn development_rejects_unpaused_and_anonymous_prefix() {
        let text =
            format!("{BUNDLE}presets:\n  trigger_pause_status: UNPAUSED\n  name_prefix: fixed_\n");
        let (_, d) = run(&text, None);
        assert_eq!(d.count(crate::diag::Severity::Error), 2, "{:?}", d.items);
        let user = CurrentUser {
            user_name: "ann@example.com".into(),
            short_name: "ann".into(),
            attributes: Default::default(),
        };
        let (_, d) = run(
            &format!("{BUNDLE}presets:\n  name_prefix: ann_\n"),
            Some(&user),
        );
        assert!(!d.has_errors());
    }

    #[test]
    fn production_requires_root_path_unless_run_as() {
        let (_, d) = run("bundle: {name: b, mode: production}\n", None);
        assert!(d.has_errors());
        let (_, d) = run(
            "bundle: {name: b, mode: production}\nworkspace: {root_path: /Shared/x}\n",
            None,
        );
        assert!(d.is_empty());
        let (_, d) = run(
            "bundle: {name: b, mode: production}\nrun_as: {service_principal_name: x}\n",
            None,
        );
        assert!(!d.has_errors() && !d.is_empty());
    }

    #[test]
    fn plain_presets_apply_without_mode() {
        let (tree, d) = run("resources:\n  jobs:\n    j: {name: x, max_concurrent_runs: 2}\npresets:\n  name_prefix: 'p-'\n  jobs_max_concurrent_runs: 7\n", None);
        assert!(d.is_empty());
        assert_eq!(
            tree.pointer(&["resources", "jobs", "j", "name"])
                .and_then(Node::as_str),
            Some("p-x")
        );
        assert_eq!(
            tree.pointer(&["resources", "jobs", "j", "max_concurrent_runs"])
                .map(Node::to_json),
            Some(2.into())
        );
    }
}
