//! The files `python -m databricks.bundles.build` reads and writes (package
//! `databricks-bundles`, module `databricks/bundles/build.py`).
//!
//! It is called as `--phase P --input IN --output OUT --diagnostics DIAG
//! --locations LOC`, in the bundle root:
//! - IN: the bundle configuration as one JSON object, with `bundle.target`
//!   and each `variables.<name>.value` filled in;
//! - OUT: the same object with the resources the phase added or changed;
//! - DIAG and LOC: JSON Lines, one diagnostic / one location per line.
//!
//! The exit code is 1 when a diagnostic is an error, else 0.

use serde::Deserialize;

/// The two phases, run in this order (as the official CLI does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Call the `python.resources` functions; they may only add resources.
    LoadResources,
    /// Call the `python.mutators` on every resource of their type; they may
    /// only change existing resources.
    ApplyMutators,
}

impl Phase {
    pub fn arg(self) -> &'static str {
        match self {
            Phase::LoadResources => "load_resources",
            Phase::ApplyMutators => "apply_mutators",
        }
    }
}

/// A source position in Python code. `line` and `column` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Location {
    pub file: String,
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    pub column: Option<usize>,
}

/// One line of the diagnostics file.
#[derive(Debug, Clone, Deserialize)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: String,
    pub summary: String,
    /// Often a Python traceback.
    #[serde(default)]
    pub detail: Option<String>,
    /// A dotted path in the bundle (`resources.jobs.my_job`).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

/// One line of the locations file: where Python defined or last changed the
/// value at `path`.
#[derive(Debug, Clone, Deserialize)]
pub struct PathLocation {
    pub path: String,
    #[serde(flatten)]
    pub location: Location,
}

/// Parse a JSON Lines file; the error names the 1-based line.
pub fn parse_lines<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_package_diagnostics_and_locations() {
        let d: Vec<Diagnostic> = parse_lines(
            "{\"severity\": \"error\", \"summary\": \"Failed\", \"detail\": \"tb\", \"path\": \"resources.jobs.a\", \"location\": {\"file\": \"r.py\", \"line\": 3, \"column\": 1}}\n\n{\"severity\": \"warning\", \"summary\": \"w\"}\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert!(d[0].is_error() && !d[1].is_error());
        assert_eq!(d[0].location.as_ref().and_then(|l| l.line), Some(3));
        let l: Vec<PathLocation> = parse_lines(
            "{\"path\": \"resources.jobs.b\", \"file\": \"m.py\", \"line\": 5, \"column\": 1}",
        )
        .unwrap();
        assert_eq!(l[0].path, "resources.jobs.b");
        assert_eq!(l[0].location.file, "m.py");
        let bad = parse_lines::<Diagnostic>("{}\n").unwrap_err();
        assert!(bad.starts_with("line 1:"), "{bad}");
    }
}
