//! Plan rendering: Terraform-style text, versioned JSON, and markdown for
//! pull-request comments. Pure functions of a [`Plan`]; the caller decides
//! colour (see `cli::output`).
//!
//! JSON format (`plan -o json`, documented in `docs/plan-json.md`):
//! `{format_version, bundle, target, lineage, serial, config_hash,
//!   resource_changes: [{address, actions, reason, id, before, after,
//!   after_unknown, replace_paths, changes, drift}], summary}`.

use serde_json::{json, Value};

use super::{Action, FieldChange, Plan, ResourceChange};

/// Options for [`render_text`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Emit ANSI colour codes.
    pub color: bool,
}

/// The marker in front of a rendered line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Add,
    Remove,
    Change,
    Replace,
    /// Unchanged context (a space).
    Same,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Add => "+",
            Mark::Remove => "-",
            Mark::Change => "~",
            Mark::Replace => "-/+",
            Mark::Same => " ",
        }
    }
    fn ansi(self) -> &'static str {
        match self {
            Mark::Add => "\x1b[32m",
            Mark::Remove => "\x1b[31m",
            Mark::Change => "\x1b[33m",
            Mark::Replace => "\x1b[35m",
            Mark::Same => "",
        }
    }
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// One output line: `indent` levels of two spaces, a marker, then text.
#[derive(Debug, Clone)]
struct Line {
    indent: usize,
    mark: Mark,
    text: String,
}

impl Line {
    fn new(indent: usize, mark: Mark, text: impl Into<String>) -> Self {
        Line {
            indent,
            mark,
            text: text.into(),
        }
    }
}

fn action_mark(action: Action) -> Mark {
    match action {
        Action::Create => Mark::Add,
        Action::Update => Mark::Change,
        Action::Replace => Mark::Replace,
        Action::Delete => Mark::Remove,
        Action::NoOp => Mark::Same,
    }
}

/// Terraform's words for each action, as used in `# <addr> will be ...`.
fn action_phrase(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is up to date",
    }
}

/// Terraform's JSON action list: a replace is delete then create.
fn action_list(action: Action) -> Vec<&'static str> {
    match action {
        Action::Create => vec!["create"],
        Action::Update => vec!["update"],
        Action::Replace => vec!["delete", "create"],
        Action::Delete => vec!["delete"],
        Action::NoOp => vec!["no-op"],
    }
}

fn action_word(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::NoOp => "no-op",
    }
}

/// `Plan: A to add, C to change, D to destroy.` or `No changes. ...`
pub fn summary_line(plan: &Plan) -> String {
    if !plan.has_changes() {
        return "No changes. Your workspace matches the configuration.".to_string();
    }
    let (add, change, destroy) = plan.counts();
    format!("Plan: {add} to add, {change} to change, {destroy} to destroy.")
}

// ---------------------------------------------------------------------------
// Values

/// A deferred `${resources...}` reference still in the text: its value only
/// exists after apply.
fn is_deferred(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.contains("${resources."))
}

/// Inline form of a value, or None when it needs more than one line.
fn inline(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\n') => None,
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        Value::Array(_) | Value::Object(_) => {
            let s = serde_json::to_string(v).ok()?;
            (s.len() <= 60).then_some(s)
        }
        other => serde_json::to_string(other).ok(),
    }
}

/// Pretty multi-line text of a value for line diffs: strings raw, the rest as
/// pretty JSON.
fn multiline_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn child_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Whether `path` (index form, `tasks[0].x`) is listed as unknown, also
/// accepting keyed list forms (`tasks[run-sync].x`) a planner may use.
fn path_is_unknown(path: &str, keyed: &str, unknown: &[String]) -> bool {
    unknown.iter().any(|u| u == path || u == keyed)
}

/// The key a list element is known by, for keyed path forms.
fn element_key(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    ["task_key", "job_cluster_key", "environment_key", "name"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_string))
}

/// Render a whole value as a nested block of `mark key = value` lines (used
/// for creates and destroys).
fn value_block(
    out: &mut Vec<Line>,
    mark: Mark,
    value: &Value,
    paths: (&str, &str),
    unknown: &[String],
    indent: usize,
) {
    let entries: Vec<(String, &Value, String, String)> = match value {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), v, child_path(paths.0, k), child_path(paths.1, k)))
            .collect(),
        _ => return,
    };
    let width = entries
        .iter()
        .map(|(k, ..)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, v, path, keyed) in entries {
        let label = format!("{key:<width$}");
        entry_lines(out, mark, &label, v, (&path, &keyed), unknown, indent);
    }
}

fn entry_lines(
    out: &mut Vec<Line>,
    mark: Mark,
    label: &str,
    v: &Value,
    paths: (&str, &str),
    unknown: &[String],
    indent: usize,
) {
    if path_is_unknown(paths.0, paths.1, unknown) || (mark == Mark::Add && is_deferred(v)) {
        out.push(Line::new(
            indent,
            mark,
            format!("{label} = {KNOWN_AFTER_APPLY}"),
        ));
        return;
    }
    match v {
        Value::Object(o) if !o.is_empty() => {
            out.push(Line::new(indent, mark, format!("{label} = {{")));
            value_block(out, mark, v, paths, unknown, indent + 2);
            out.push(Line::new(indent, Mark::Same, "}"));
        }
        Value::Array(a) if inline(v).is_none() => {
            out.push(Line::new(indent, mark, format!("{label} = [")));
            for (i, item) in a.iter().enumerate() {
                let path = format!("{}[{i}]", paths.0);
                let keyed = match element_key(item) {
                    Some(k) => format!("{}[{k}]", paths.1),
                    None => format!("{}[{i}]", paths.1),
                };
                array_item_lines(out, mark, item, (&path, &keyed), unknown, indent + 2);
            }
            out.push(Line::new(indent, Mark::Same, "]"));
        }
        Value::String(s) if s.contains('\n') => {
            out.push(Line::new(indent, mark, format!("{label} = <<-EOT")));
            for l in s.lines() {
                out.push(Line::new(indent + 2, Mark::Same, l));
            }
            out.push(Line::new(indent, Mark::Same, "EOT"));
        }
        other => {
            let text = inline(other).unwrap_or_default();
            out.push(Line::new(indent, mark, format!("{label} = {text}")));
        }
    }
}

fn array_item_lines(
    out: &mut Vec<Line>,
    mark: Mark,
    item: &Value,
    paths: (&str, &str),
    unknown: &[String],
    indent: usize,
) {
    if path_is_unknown(paths.0, paths.1, unknown) || (mark == Mark::Add && is_deferred(item)) {
        out.push(Line::new(indent, mark, format!("{KNOWN_AFTER_APPLY},")));
        return;
    }
    match item {
        Value::Object(o) if !o.is_empty() => {
            out.push(Line::new(indent, mark, "{"));
            value_block(out, mark, item, paths, unknown, indent + 2);
            out.push(Line::new(indent, Mark::Same, "},"));
        }
        other => match inline(other) {
            Some(text) => out.push(Line::new(indent, mark, format!("{text},"))),
            None => {
                for l in multiline_text(other).lines() {
                    out.push(Line::new(indent, mark, l));
                }
            }
        },
    }
}

/// Lines for one field-level change of an update or replace.
fn field_change_lines(out: &mut Vec<Line>, fc: &FieldChange, width: usize, indent: usize) {
    let label = format!("{:<width$}", fc.path);
    let suffix = if fc.forces_replacement {
        " # forces replacement"
    } else {
        ""
    };
    let new_unknown = fc.unknown || fc.new.as_ref().is_some_and(is_deferred);
    if new_unknown {
        let before = fc
            .old
            .as_ref()
            .and_then(inline)
            .unwrap_or_else(|| "null".into());
        out.push(Line::new(
            indent,
            Mark::Change,
            format!("{label} = {before} -> {KNOWN_AFTER_APPLY}{suffix}"),
        ));
        return;
    }
    match (&fc.old, &fc.new) {
        (None | Some(Value::Null), Some(new)) => {
            let mut lines = Vec::new();
            entry_lines(&mut lines, Mark::Add, &label, new, ("", ""), &[], indent);
            append_suffix(&mut lines, suffix);
            out.extend(lines);
        }
        (Some(old), None) => {
            let text = inline(old).unwrap_or_else(|| "(multi-line value)".into());
            out.push(Line::new(
                indent,
                Mark::Remove,
                format!("{label} = {text} -> null{suffix}"),
            ));
        }
        (Some(old), Some(new)) => match (inline(old), inline(new)) {
            (Some(a), Some(b)) if !is_structured(old) && !is_structured(new) => {
                out.push(Line::new(
                    indent,
                    Mark::Change,
                    format!("{label} = {a} -> {b}{suffix}"),
                ));
            }
            (Some(a), Some(b)) if a.len() + b.len() <= 60 => {
                out.push(Line::new(
                    indent,
                    Mark::Change,
                    format!("{label} = {a} -> {b}{suffix}"),
                ));
            }
            _ => line_diff(out, &label, old, new, suffix, indent),
        },
        (None, None) => {}
    }
}

fn is_structured(v: &Value) -> bool {
    matches!(v, Value::Array(_) | Value::Object(_))
}

fn append_suffix(lines: &mut [Line], suffix: &str) {
    if let Some(first) = lines.first_mut() {
        first.text.push_str(suffix);
    }
}

/// Multi-line strings and JSON values: a line-by-line diff (unchanged runs
/// longer than the context are elided).
fn line_diff(
    out: &mut Vec<Line>,
    label: &str,
    old: &Value,
    new: &Value,
    suffix: &str,
    indent: usize,
) {
    let is_string = old.is_string() && new.is_string();
    let (mut old_text, mut new_text) = (multiline_text(old), multiline_text(new));
    // Same-shaped JSON values: the brackets go on the header and closing
    // lines, the diff covers what is between them.
    let brackets = match (old, new) {
        (Value::Array(_), Value::Array(_)) => Some(("[", "]")),
        (Value::Object(_), Value::Object(_)) => Some(("{", "}")),
        _ => None,
    };
    if brackets.is_some() {
        old_text = strip_brackets(&old_text);
        new_text = strip_brackets(&new_text);
    }
    let opener = match (is_string, brackets) {
        (true, _) => " <<-EOT",
        (false, Some((open, _))) => {
            if open == "[" {
                " ["
            } else {
                " {"
            }
        }
        (false, None) => "",
    };
    out.push(Line::new(
        indent,
        Mark::Change,
        format!("{label} ={opener}{suffix}"),
    ));
    let diff = similar::TextDiff::from_lines(&old_text, &new_text);
    let groups = diff.grouped_ops(3);
    let total_lines = old_text.lines().count();
    let mut shown_upto = 0usize;
    for group in &groups {
        let first_old = group.first().map(|op| op.old_range().start).unwrap_or(0);
        if first_old > shown_upto {
            let hidden = first_old - shown_upto;
            out.push(Line::new(
                indent + 2,
                Mark::Same,
                format!("# ({hidden} unchanged lines hidden)"),
            ));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let mark = match change.tag() {
                    similar::ChangeTag::Equal => Mark::Same,
                    similar::ChangeTag::Delete => Mark::Remove,
                    similar::ChangeTag::Insert => Mark::Add,
                };
                let text = change.value().trim_end_matches(['\n', '\r']).to_string();
                out.push(Line::new(indent + 2, mark, text));
            }
            shown_upto = op.old_range().end;
        }
    }
    if total_lines > shown_upto && !groups.is_empty() {
        let hidden = total_lines - shown_upto;
        out.push(Line::new(
            indent + 2,
            Mark::Same,
            format!("# ({hidden} unchanged lines hidden)"),
        ));
    }
    let closer = match (is_string, brackets) {
        (true, _) => Some("EOT"),
        (false, Some((_, close))) => Some(close),
        (false, None) => None,
    };
    if let Some(c) = closer {
        out.push(Line::new(indent, Mark::Same, c));
    }
}

/// Drop the first and last line of pretty JSON (its outer brackets), and the
/// two-space indent they imposed; every line keeps a trailing newline.
fn strip_brackets(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    if lines.len() < 2 {
        return String::new();
    }
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect()
}

/// The body lines of one resource change (without its `# ...` header comment).
fn resource_lines(change: &ResourceChange) -> Vec<Line> {
    let mut out = Vec::new();
    let mark = action_mark(change.action);
    out.push(Line::new(1, mark, format!("{} {{", change.addr)));
    match change.action {
        Action::Create if change.after.is_some() => {
            if let Some(after) = &change.after {
                value_block(
                    &mut out,
                    Mark::Add,
                    after,
                    ("", ""),
                    &change.after_unknown,
                    3,
                );
            }
        }
        Action::Delete => {
            if let Some(id) = &change.id {
                out.push(Line::new(3, Mark::Remove, format!("id = {}", quoted(id))));
            }
            if let Some(before) = &change.before {
                value_block(&mut out, Mark::Remove, before, ("", ""), &[], 3);
            }
        }
        _ => {
            if change.action != Action::Create {
                if let Some(id) = &change.id {
                    out.push(Line::new(3, Mark::Same, format!("id = {}", quoted(id))));
                }
            }
            let width = change
                .fields
                .iter()
                .map(|f| f.path.chars().count())
                .max()
                .unwrap_or(0);
            for fc in &change.fields {
                field_change_lines(&mut out, fc, width, 3);
            }
        }
    }
    out.push(Line::new(1, Mark::Same, "}"));
    out
}

fn drift_lines(change: &ResourceChange) -> Vec<Line> {
    let mut out = vec![Line::new(1, Mark::Change, format!("{} {{", change.addr))];
    let width = change
        .drift
        .iter()
        .map(|f| f.path.chars().count())
        .max()
        .unwrap_or(0);
    for fc in &change.drift {
        // Drift never forces replacement by itself in the display; the planned
        // change below says what happens.
        let shown = FieldChange {
            forces_replacement: false,
            ..fc.clone()
        };
        field_change_lines(&mut out, &shown, width, 3);
    }
    out.push(Line::new(1, Mark::Same, "}"));
    out
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| s.to_string())
}

fn header_comment(change: &ResourceChange) -> Vec<String> {
    let mut lines = vec![format!(
        "# {} {}",
        change.addr,
        action_phrase(change.action)
    )];
    if let Some(reason) = &change.reason {
        lines.push(format!("# ({reason})"));
    }
    lines
}

/// Text with an optional colour for a marker.
fn paint(text: &str, mark: Mark, color: bool) -> String {
    if color && mark != Mark::Same {
        format!("{}{text}{RESET}", mark.ansi())
    } else {
        text.to_string()
    }
}

/// Terraform-style rendering: marker column right-aligned so `+`, `~`, `-`
/// and `-/+` line up on their last character.
fn write_text_lines(s: &mut String, lines: &[Line], color: bool) {
    for l in lines {
        let pad = "  ".repeat(l.indent);
        let sym = l.mark.symbol();
        // Right-align the marker so "-/+" occupies the padding before it.
        let lead = pad.len().saturating_sub(sym.len().saturating_sub(1));
        let prefix = format!("{}{}", " ".repeat(lead), sym);
        let body = format!("{prefix} {}", l.text);
        s.push_str(paint(body.trim_end(), l.mark, color).as_str());
        s.push('\n');
    }
}

fn comment(text: &str, color: bool) -> String {
    if color {
        format!("{BOLD}{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// Terraform-style text plan.
pub fn render_text(plan: &Plan, opts: &TextOptions) -> String {
    let color = opts.color;
    let mut s = String::new();
    let drifted: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| !c.drift.is_empty())
        .collect();
    if !drifted.is_empty() {
        s.push_str(&comment(
            "Note: objects have changed outside lakebundle",
            color,
        ));
        s.push_str(
            "\n\nlakebundle read these remote values, which differ from the last deploy:\n\n",
        );
        for c in &drifted {
            s.push_str(&format!("  # {} has changed outside lakebundle\n", c.addr));
            write_text_lines(&mut s, &drift_lines(c), color);
            s.push('\n');
        }
        s.push_str("Unless the configuration is changed to match, deploy will set them back.\n\n");
    }
    let changed: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .collect();
    if !changed.is_empty() {
        s.push_str("lakebundle will perform the following actions:\n\n");
        for c in &changed {
            for h in header_comment(c) {
                s.push_str(&format!("  {}\n", comment(&h, color)));
            }
            write_text_lines(&mut s, &resource_lines(c), color);
            s.push('\n');
        }
    }
    let summary = summary_line(plan);
    if color {
        s.push_str(&format!("{BOLD}{summary}{RESET}\n"));
    } else {
        s.push_str(&summary);
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------------------
// JSON

fn field_change_json(fc: &FieldChange) -> Value {
    json!({
        "path": fc.path,
        "before": fc.old,
        "after": if fc.unknown { Value::Null } else { fc.new.clone().unwrap_or(Value::Null) },
        "after_unknown": fc.unknown,
        "forces_replacement": fc.forces_replacement,
    })
}

/// The `plan -o json` document.
pub fn render_json(plan: &Plan) -> Value {
    let (add, change, destroy) = plan.counts();
    let resource_changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            json!({
                "address": c.addr.to_string(),
                "actions": action_list(c.action),
                "reason": c.reason,
                "id": c.id,
                "before": c.before,
                "after": c.after,
                "after_unknown": c.after_unknown,
                "replace_paths": c.replace_paths,
                "changes": c.fields.iter().map(field_change_json).collect::<Vec<_>>(),
                "drift": c.drift.iter().map(|d| json!({
                    "path": d.path,
                    "last_applied": d.old,
                    "remote": d.new,
                })).collect::<Vec<_>>(),
                "depends_on": c.depends_on.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "format_version": plan.format_version,
        "bundle": plan.bundle,
        "target": plan.target,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "config_hash": plan.config_hash,
        "resource_changes": resource_changes,
        "summary": {
            "add": add,
            "change": change,
            "destroy": destroy,
            "has_changes": plan.has_changes(),
            "drifted": plan.changes.iter().filter(|c| !c.drift.is_empty()).count(),
        },
    })
}

// ---------------------------------------------------------------------------
// Markdown

/// Lines for a ```diff block: the marker in column 0 so GitHub colours it.
fn write_diff_lines(s: &mut String, lines: &[Line]) {
    for l in lines {
        let sym = match l.mark {
            Mark::Replace => "!",
            m => m.symbol(),
        };
        let pad = "  ".repeat(l.indent.saturating_sub(1));
        let line = format!("{sym} {pad}{}", l.text);
        s.push_str(line.trim_end());
        s.push('\n');
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown for a pull-request comment: a summary table, then one
/// collapsible section per changed resource.
pub fn render_markdown(plan: &Plan) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "### lakebundle plan: `{}` (target `{}`)\n\n",
        md_escape(&plan.bundle),
        md_escape(&plan.target)
    ));
    s.push_str(&format!("**{}**\n\n", summary_line(plan)));
    let changed: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp || !c.drift.is_empty())
        .collect();
    if changed.is_empty() {
        return s;
    }
    s.push_str("| Action | Resource | Note |\n|---|---|---|\n");
    for c in &changed {
        let mut note = c.reason.clone().unwrap_or_default();
        if !c.drift.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str("changed outside lakebundle");
        }
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            action_word(c.action),
            c.addr,
            md_escape(&note)
        ));
    }
    s.push('\n');
    for c in &changed {
        s.push_str(&format!(
            "<details><summary><code>{}</code> {}</summary>\n\n",
            c.addr,
            action_phrase(c.action)
        ));
        if !c.drift.is_empty() {
            s.push_str("Changed outside lakebundle (remote values):\n\n```diff\n");
            write_diff_lines(&mut s, &drift_lines(c));
            s.push_str("```\n\n");
        }
        if c.action != Action::NoOp {
            s.push_str("```diff\n");
            for h in header_comment(c) {
                s.push_str(&format!("  {h}\n"));
            }
            write_diff_lines(&mut s, &resource_lines(c));
            s.push_str("```\n\n");
        }
        s.push_str("</details>\n\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FORMAT_VERSION;
    use crate::resources::{Kind, ResourceAddr};

    fn change(kind: Kind, key: &str, action: Action) -> ResourceChange {
        ResourceChange {
            addr: ResourceAddr::new(kind, key),
            action,
            fields: vec![],
            drift: vec![],
            reason: None,
            id: None,
            before: None,
            after: None,
            after_unknown: vec![],
            replace_paths: vec![],
            depends_on: vec![],
        }
    }

    fn fc(path: &str, old: Option<Value>, new: Option<Value>) -> FieldChange {
        FieldChange {
            path: path.into(),
            old,
            new,
            unknown: false,
            forces_replacement: false,
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            bundle: "lakebase-app".into(),
            target: "dev".into(),
            lineage: Some("5b1c".into()),
            serial: 4,
            config_hash: "abc123".into(),
            changes,
        }
    }

    /// One of every action, drift, multi-line strings and JSON values.
    fn sample() -> Plan {
        let mut create = change(Kind::Jobs, "sync_schedule", Action::Create);
        create.after = Some(json!({
            "name": "sync-pipeline-schedule",
            "tasks": [{
                "task_key": "run-sync",
                "pipeline_task": {"pipeline_id": "${resources.synced_database_tables.features_sync.data_synchronization_status.pipeline_id}"}
            }],
            "schedule": {"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"}
        }));
        create.after_unknown = vec!["tasks[0].pipeline_task.pipeline_id".into()];

        let mut update = change(Kind::DatabaseInstances, "my_db", Action::Update);
        update.id = Some("my-instance".into());
        update.fields = vec![
            fc("capacity", Some(json!("CU_1")), Some(json!("CU_2"))),
            fc("retention_window_in_days", None, Some(json!(14))),
        ];

        let mut replace = change(Kind::DatabaseCatalogs, "my_cat", Action::Replace);
        replace.id = Some("my_catalog".into());
        replace.fields = vec![
            FieldChange {
                forces_replacement: true,
                ..fc(
                    "name",
                    Some(json!("my_catalog")),
                    Some(json!("new_catalog")),
                )
            },
            FieldChange {
                unknown: true,
                ..fc("database_instance_name", Some(json!("my-instance")), None)
            },
        ];
        replace.replace_paths = vec!["name".into()];
        replace.reason = Some("name changed".into());

        let mut drifted = change(Kind::Jobs, "nightly", Action::Update);
        drifted.id = Some("1234".into());
        drifted.fields = vec![
            fc("name", Some(json!("renamed-in-ui")), Some(json!("nightly"))),
            fc(
                "description",
                Some(json!("line one\nline two\nline three\n")),
                Some(json!("line one\nline 2\nline three\n")),
            ),
            fc(
                "tasks",
                Some(json!([{"task_key": "a", "notebook_task": {"notebook_path": "/x/a"}}])),
                Some(json!([{"task_key": "a", "notebook_task": {"notebook_path": "/x/b"}}])),
            ),
        ];
        drifted.drift = vec![fc(
            "name",
            Some(json!("nightly")),
            Some(json!("renamed-in-ui")),
        )];

        let mut delete = change(Kind::Apps, "old_app", Action::Delete);
        delete.id = Some("old-app".into());
        delete.before = Some(json!({"name": "old-app", "description": "gone"}));
        delete.reason = Some("not in configuration".into());

        let mut recreate = change(Kind::SyncedDatabaseTables, "features_sync", Action::Create);
        recreate.reason = Some("deleted outside lakebundle".into());
        recreate.after = Some(json!({"name": "my_catalog.my_database.customer_features"}));

        let noop = change(Kind::Apps, "my_app", Action::NoOp);
        plan(vec![
            create, update, replace, drifted, delete, recreate, noop,
        ])
    }

    #[test]
    fn counts_in_summary_line() {
        let p = sample();
        assert_eq!(
            summary_line(&p),
            "Plan: 3 to add, 2 to change, 2 to destroy."
        );
        assert_eq!(
            summary_line(&plan(vec![change(Kind::Jobs, "a", Action::NoOp)])),
            "No changes. Your workspace matches the configuration."
        );
    }

    #[test]
    fn text_plan_snapshot() {
        insta::assert_snapshot!(render_text(&sample(), &TextOptions::default()));
    }

    #[test]
    fn json_plan_snapshot() {
        insta::assert_json_snapshot!(render_json(&sample()));
    }

    #[test]
    fn markdown_plan_snapshot() {
        insta::assert_snapshot!(render_markdown(&sample()));
    }

    #[test]
    fn no_colour_unless_asked() {
        let p = sample();
        assert!(!render_text(&p, &TextOptions { color: false }).contains('\x1b'));
        let coloured = render_text(&p, &TextOptions { color: true });
        assert!(coloured.contains("\x1b[32m"));
        assert!(coloured.contains("\x1b[33m"));
    }

    #[test]
    fn unknown_values_render_known_after_apply() {
        let text = render_text(&sample(), &TextOptions::default());
        assert!(text.contains("pipeline_id = (known after apply)"), "{text}");
        assert!(
            text.contains("database_instance_name = \"my-instance\" -> (known after apply)"),
            "{text}"
        );
        assert!(
            !text.contains("${resources."),
            "deferred refs must not leak: {text}"
        );
    }

    #[test]
    fn multiline_strings_diff_line_by_line() {
        let text = render_text(&sample(), &TextOptions::default());
        assert!(text.contains("- line two"), "{text}");
        assert!(text.contains("+ line 2"), "{text}");
        assert!(text.contains("  line one"), "{text}");
    }

    #[test]
    fn long_unchanged_runs_are_elided() {
        let old: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 20\n", "line twenty\n");
        let mut c = change(Kind::Jobs, "j", Action::Update);
        c.fields = vec![fc("description", Some(json!(old)), Some(json!(new)))];
        let text = render_text(&plan(vec![c]), &TextOptions::default());
        assert!(text.contains("# (17 unchanged lines hidden)"), "{text}");
        assert!(text.contains("- line 20"));
        assert!(text.contains("+ line twenty"));
        assert!(!text.contains("line 5\n"));
    }

    #[test]
    fn replace_marks_forcing_fields() {
        let text = render_text(&sample(), &TextOptions::default());
        assert!(
            text.contains("-/+ resources.database_catalogs.my_cat {"),
            "{text}"
        );
        assert!(
            text.contains(
                "name                   = \"my_catalog\" -> \"new_catalog\" # forces replacement"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_actions_follow_terraform() {
        let j = render_json(&sample());
        let rc = j["resource_changes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let actions: Vec<Value> = rc.iter().map(|c| c["actions"].clone()).collect();
        assert_eq!(actions[2], json!(["delete", "create"]));
        assert_eq!(actions[6], json!(["no-op"]));
        assert_eq!(j["summary"]["add"], 3);
        assert_eq!(rc[3]["drift"][0]["remote"], "renamed-in-ui");
    }
}
