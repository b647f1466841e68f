//! `lakebundle validate`: load, resolve and check the bundle offline.
//!
//! Text: diagnostics on stderr, a short summary on stdout. `-o json`: the
//! resolved configuration on stdout (deferred references as `${...}` text),
//! or the diagnostics as JSON on failure. Exit 1 on any error. The checks
//! are [`crate::ops::validate`].

use std::fmt::Write as _;

use super::args::{GlobalArgs, OutputFormat, ValidateArgs};
use super::error::CliError;
use super::{context, output, Exit};
use crate::config::model::{Bundle, Mode};
use crate::config::Loaded;
use crate::diag::Severity;
use crate::ops::validate::{validate, ValidateOptions};
use crate::resources::Kind;
use crate::scripts::Hook;

pub fn run(g: &GlobalArgs, a: &ValidateArgs) -> Result<Exit, CliError> {
    let opts = ValidateOptions {
        dir: g.dir.clone(),
        target: g.target.clone(),
        vars: g.vars.clone(),
        strict: a.strict,
        env: std::env::vars().collect(),
        ..ValidateOptions::default()
    };
    let validation = validate(&opts);
    let loaded = &validation.loaded;
    let result = match validation.valid() {
        Some(b) => {
            context::print_warnings(&loaded.sources, &validation.problems);
            // No workspace here: the hooks get the inherited environment only.
            for hook in [Hook::PreInit, Hook::PostInit] {
                if let Err(e) = context::run_hook(b, hook, &[]) {
                    std::mem::forget(validation);
                    return Err(e);
                }
            }
            match g.output {
                OutputFormat::Json => output::print_json(&redacted_tree(b)),
                _ => output::out(&summary(b, loaded)),
            }
            .map(|()| Exit::Success)
        }
        None => Err(
            CliError::diags(&loaded.sources, validation.problems.clone())
                .with_footer(totals(loaded)),
        ),
    };
    // The process ends right after: freeing the whole tree would only cost time.
    std::mem::forget(validation);
    result
}

/// The resolved bundle as `validate -o json` prints it, with each kind's
/// sensitive fields (a Unity Catalog secret's `value`) shown as their digest,
/// as in plans and state: a resolved secret never reaches stdout.
fn redacted_tree(b: &Bundle) -> serde_json::Value {
    use crate::resources::common::redact_sensitive;
    use serde_json::Value;
    let mut tree = b.tree.to_json();
    let mut secrets: Vec<Value> = Vec::new();
    for kind in Kind::ALL {
        let fields = crate::resources::kind_impl(kind).sensitive_fields();
        if fields.is_empty() {
            continue;
        }
        if let Some(items) = tree
            .pointer_mut(&format!("/resources/{}", kind.key()))
            .and_then(Value::as_object_mut)
        {
            for item in items.values_mut() {
                secrets.extend(fields.iter().filter_map(|f| item.get(*f).cloned()));
                *item = redact_sensitive(fields, std::mem::take(item));
            }
        }
    }
    // The variables that gave those values (a sensitive field must be a
    // variable reference) would show them again.
    if let Some(vars) = tree.get_mut("variables").and_then(Value::as_object_mut) {
        for var in vars.values_mut() {
            for field in ["value", "default"] {
                if var.get(field).is_some_and(|v| secrets.contains(v)) {
                    *var = redact_sensitive(&[field], std::mem::take(var));
                }
            }
        }
    }
    tree
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn totals(loaded: &Loaded) -> String {
    let e = loaded.diags.count(Severity::Error);
    let w = loaded.diags.count(Severity::Warning);
    format!(
        "Found {} and {}",
        plural(e, "error", "errors"),
        plural(w, "warning", "warnings")
    )
}

/// The human summary of a valid bundle.
pub fn summary(b: &Bundle, loaded: &Loaded) -> String {
    let mut s = String::new();
    let mode = match b.mode {
        Some(Mode::Development) => " (mode: development)",
        Some(Mode::Production) => " (mode: production)",
        None => "",
    };
    let _ = writeln!(s, "Name:   {}", b.name);
    let _ = writeln!(s, "Target: {}{mode}", b.target);
    let _ = writeln!(s, "Workspace:");
    let _ = writeln!(
        s,
        "  Host: {}",
        b.workspace
            .host
            .as_deref()
            .unwrap_or("(not set; validate works offline)")
    );
    if let Some(u) = &b.workspace.current_user {
        let _ = writeln!(s, "  User: {}", u.user_name);
    }
    let _ = writeln!(s, "  Path: {}", b.workspace.root_path);
    let counts: Vec<String> = Kind::ALL
        .into_iter()
        .filter_map(|k| {
            let n = b.resources.keys().filter(|a| a.kind == k).count();
            (n > 0).then(|| plural(n, &k.noun(), &k.plural()))
        })
        .collect();
    let _ = writeln!(
        s,
        "Resources: {}",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    );
    let artifacts = crate::artifacts::describe(b);
    if !artifacts.is_empty() {
        let _ = writeln!(s, "Artifacts (built at deploy):");
        for line in artifacts {
            let _ = writeln!(s, "  {line}");
        }
    }
    if !b.pending_lookups.is_empty() {
        let _ = writeln!(s, "Pending lookups (resolved at plan time):");
        for p in &b.pending_lookups {
            let _ = writeln!(s, "  var.{}: {}", p.variable, p.lookup);
        }
    }
    for d in loaded
        .diags
        .items
        .iter()
        .filter(|d| d.severity == Severity::Info)
    {
        let _ = writeln!(s, "Note: {}", d.message);
    }
    let w = loaded.diags.count(Severity::Warning);
    let _ = writeln!(s);
    if w == 0 {
        let _ = writeln!(s, "Validation OK!");
    } else {
        let _ = writeln!(
            s,
            "Validation OK, with {}.",
            plural(w, "warning", "warnings")
        );
    }
    s
}
