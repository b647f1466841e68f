//! Shared diagnostics: spans → miette labels, "did you mean".
//!
//! SKELETON: the loader owner fills this in; the surface below is what other
//! modules code against.

use crate::config::source::{SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One user-facing problem, pointing into the YAML where it can.
#[derive(Debug, Clone)]
pub struct Diag {
    pub severity: Severity,
    pub message: String,
    /// Primary location and its label.
    pub span: Option<Span>,
    pub label: Option<String>,
    /// Further labelled locations (e.g. "first defined here").
    pub related: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diag {
    pub fn error(message: impl Into<String>) -> Self {
        Diag { severity: Severity::Error, message: message.into(), span: None, label: None, related: vec![], help: None }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Diag { severity: Severity::Warning, ..Diag::error(message) }
    }
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = Some(label.into());
        self
    }
    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A collection of diagnostics; all errors are reported, not only the first.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub items: Vec<Diag>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diag) {
        self.items.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

/// The closest candidate by edit distance, for "did you mean `x`?".
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Render for a terminal, with file:line:col and labelled snippets.
pub fn render(_sources: &SourceMap, diags: &Diagnostics) -> String {
    diags.items.iter().map(|d| format!("{:?}: {}\n", d.severity, d.message)).collect()
}
