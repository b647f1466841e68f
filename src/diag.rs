//! Shared diagnostics: spans → miette labels, "did you mean", JSON output.
//!
//! Every stage collects [`Diag`]s into [`Diagnostics`] instead of stopping at
//! the first problem; commands render them all at the end with [`render`] (or
//! [`render_with`]) or as JSON with [`to_json`].

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};

use crate::config::source::{FileId, SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
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
        Diag {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            related: vec![],
            help: None,
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(message)
        }
    }
    pub fn info(message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Info,
            ..Diag::error(message)
        }
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
    /// Append to the help text (keeps existing help).
    pub fn add_help(mut self, more: impl Into<String>) -> Self {
        let more = more.into();
        self.help = Some(match self.help.take() {
            Some(h) => format!("{h}\n{more}"),
            None => more,
        });
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
    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|d| d.severity == severity).count()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// `--strict`: every warning becomes an error.
    pub fn make_strict(&mut self) {
        for d in &mut self.items {
            if d.severity == Severity::Warning {
                d.severity = Severity::Error;
            }
        }
    }
    /// Drop exact repeats (the same problem reached through two paths), keep order.
    pub fn dedup(&mut self) {
        let mut seen = HashSet::new();
        self.items.retain(|d| {
            seen.insert((
                d.severity,
                d.message.clone(),
                d.span.map(|s| (s.file, s.start, s.end)),
            ))
        });
    }
    /// Stable order for output: by file and position, errors before warnings
    /// at the same place; diagnostics without a location last.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            let loc = d
                .span
                .filter(|s| !s.is_synthetic())
                .map(|s| (s.file, s.start));
            (loc.is_none(), loc, d.severity)
        });
    }
}

/// The closest candidate by edit distance, for "did you mean `x`?".
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= threshold(name, c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Every candidate close enough to suggest, closest first (ties keep input order).
pub fn suggestions<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, usize, &str)> = candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| (strsim::damerau_levenshtein(name, c), i, c))
        .filter(|(d, _, c)| *d <= threshold(name, c) && *c != name)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored.into_iter().map(|(_, _, c)| c).collect()
}

fn threshold(name: &str, candidate: &str) -> usize {
    (name.len().max(candidate.len()) / 3).max(2)
}

/// "did you mean `a`?" / "did you mean one of `a`, `b`?" (None when nothing is close).
pub fn suggestion_help(items: &[String]) -> Option<String> {
    match items {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => Some(format!(
            "did you mean one of {}?",
            many.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// How to render for a terminal.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// ANSI colour and unicode art (only on a TTY with NO_COLOR unset).
    pub color: bool,
    pub width: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            width: 100,
        }
    }
}

/// Render for a terminal, with file:line:col and labelled snippets, without
/// colour (stable for logs and snapshots). See [`render_with`].
pub fn render(sources: &SourceMap, diags: &Diagnostics) -> String {
    render_with(sources, diags, RenderOptions::default())
}

pub fn render_with(sources: &SourceMap, diags: &Diagnostics, opts: RenderOptions) -> String {
    let theme = if opts.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(opts.width)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    for group in groups(diags) {
        let d = group[0];
        let report = Report::build(sources, d);
        let mut one = String::new();
        if handler.render_report(&mut one, &report).is_err() {
            // Rendering only fails on a broken source; fall back to one line.
            one = format!("{}: {}\n", d.severity, d.message);
        }
        out.push_str(&one);
        if !one.ends_with('\n') {
            out.push('\n');
        }
        if group.len() > 1 {
            out.push_str(&repeats_text(sources, &group));
        }
    }
    out
}

/// Places shown for a repeated diagnostic (the rendered one included); the
/// rest is only counted.
pub const SHOWN_PLACES: usize = 5;

/// Identical diagnostics (same severity, message, labels and help; only the
/// places differ) as groups in order of first appearance. Five notebooks used
/// by 6,000 jobs are five problems, not 30,000.
pub fn groups(diags: &Diagnostics) -> Vec<Vec<&Diag>> {
    type Key<'a> = (
        Severity,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Vec<&'a str>,
    );
    let mut index: std::collections::HashMap<Key<'_>, usize> = Default::default();
    let mut out: Vec<Vec<&Diag>> = Vec::new();
    for d in &diags.items {
        let key: Key<'_> = (
            d.severity,
            &d.message,
            d.label.as_deref(),
            d.help.as_deref(),
            d.related.iter().map(|(_, l)| l.as_str()).collect(),
        );
        match index.get(&key) {
            Some(&i) => out[i].push(d),
            None => {
                index.insert(key, out.len());
                out.push(vec![d]);
            }
        }
    }
    out
}

/// `file:line:col` of a diagnostic's primary place, if it has one.
fn place(sources: &SourceMap, d: &Diag) -> Option<(String, usize, usize)> {
    let s = d.span.filter(|s| !s.is_synthetic())?;
    let file = sources.path(s.file)?.display().to_string();
    let (line, col) = sources.line_col(s)?;
    Some((file, line, col))
}

/// The tail of a repeated diagnostic: the count, the next few places, and how
/// many more there are.
fn repeats_text(sources: &SourceMap, group: &[&Diag]) -> String {
    let mut s = format!(
        "  = the same {} {} times in all",
        group[0].severity,
        thousands(group.len())
    );
    let places: Vec<String> = group
        .iter()
        .skip(1)
        .take(SHOWN_PLACES - 1)
        .filter_map(|d| place(sources, d))
        .map(|(f, l, c)| format!("{f}:{l}:{c}"))
        .collect();
    if places.is_empty() {
        s.push('\n');
    } else {
        s.push_str(", also at:\n");
        for p in &places {
            s.push_str(&format!("      {p}\n"));
        }
    }
    let more = group.len().saturating_sub(1 + places.len());
    if more > 0 {
        s.push_str(&format!("    and {} more\n", thousands(more)));
    }
    s.push('\n');
    s
}

/// `5995` → `5,995`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `{"diagnostics":[{"severity","message","file","line","column","help","count"}]}`;
/// identical diagnostics are one entry with their `count`, the first few
/// `places` and how many `more` there are.
pub fn to_json(sources: &SourceMap, diags: &Diagnostics) -> serde_json::Value {
    let items: Vec<serde_json::Value> = groups(diags)
        .into_iter()
        .map(|group| {
            let d = group[0];
            let loc = d.span.filter(|s| !s.is_synthetic());
            let file = loc
                .and_then(|s| sources.path(s.file))
                .map(|p| p.display().to_string());
            let (line, column) = match loc.and_then(|s| sources.line_col(s)) {
                Some((l, c)) => (Some(l), Some(c)),
                None => (None, None),
            };
            let mut v = serde_json::json!({
                "severity": d.severity,
                "message": d.message,
                "file": file,
                "line": line,
                "column": column,
                "help": d.help,
                "count": group.len(),
            });
            if group.len() > 1 {
                let places: Vec<serde_json::Value> = group
                    .iter()
                    .take(SHOWN_PLACES)
                    .filter_map(|d| place(sources, d))
                    .map(|(f, l, c)| serde_json::json!({ "file": f, "line": l, "column": c }))
                    .collect();
                v["more"] = serde_json::json!(group.len() - places.len());
                v["places"] = serde_json::Value::Array(places);
            }
            v
        })
        .collect();
    serde_json::json!({ "diagnostics": items })
}

/// A miette view of one [`Diag`]: labels in the primary file are shown in its
/// snippet; labels in other files become related reports with their own snippet.
#[derive(Debug)]
struct Report {
    severity: Severity,
    message: String,
    help: Option<String>,
    source: Option<Snippet>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn build(sources: &SourceMap, d: &Diag) -> Report {
        let mut spans: Vec<(Span, Option<String>, bool)> = Vec::new();
        if let Some(s) = d.span.filter(|s| !s.is_synthetic()) {
            spans.push((s, d.label.clone(), true));
        }
        for (s, l) in &d.related {
            if !s.is_synthetic() {
                spans.push((*s, Some(l.clone()), false));
            }
        }
        let primary_file = spans.first().map(|(s, _, _)| s.file);
        let in_file = |file: FileId| -> Vec<Span> {
            spans
                .iter()
                .filter(|(s, _, _)| s.file == file)
                .map(|(s, _, _)| *s)
                .collect()
        };
        let mut report = Report {
            severity: d.severity,
            message: d.message.clone(),
            help: d.help.clone(),
            source: primary_file.and_then(|f| Snippet::new(sources, f, &in_file(f))),
            labels: vec![],
            related: vec![],
        };
        let mut other_files: Vec<FileId> = Vec::new();
        for (span, label, primary) in &spans {
            if Some(span.file) == primary_file {
                let l = labeled(report.source.as_ref(), *span, label.clone(), *primary);
                report.labels.push(l);
            } else if !other_files.contains(&span.file) {
                other_files.push(span.file);
            }
        }
        for file in other_files {
            let source = Snippet::new(sources, file, &in_file(file));
            let labels: Vec<LabeledSpan> = spans
                .iter()
                .filter(|(s, _, _)| s.file == file)
                .map(|(s, l, _)| labeled(source.as_ref(), *s, l.clone(), false))
                .collect();
            let first_label = spans
                .iter()
                .find(|(s, _, _)| s.file == file)
                .and_then(|(_, l, _)| l.clone());
            report.related.push(Report {
                severity: Severity::Info,
                message: first_label.unwrap_or_else(|| "related location".to_string()),
                help: None,
                source,
                labels,
                related: vec![],
            });
        }
        report
    }
}

/// Lines longer than this (in bytes) are shown as a window around the
/// labels: a snippet of a minified JSON include would otherwise be one line of
/// megabytes (and miette cannot draw labels past column 65,535).
const LONG_LINE: usize = 400;
/// Bytes kept before the first label of a long line, and in all.
const WINDOW_BEFORE: usize = 60;
const WINDOW_LEN: usize = 240;

/// The text miette renders for one file: the file itself, or a copy whose
/// long lines are clipped around the labels. Reported line and column stay
/// those of the original file.
#[derive(Debug)]
struct Snippet {
    name: String,
    text: Arc<str>,
    /// Clipped lines in order; empty when `text` is the file as is.
    clips: Vec<Clip>,
    /// The original text (for columns).
    original: Arc<str>,
}

/// One clipped line: `[start, end)` in the original (newline excluded),
/// the kept window `[win_start, win_end)`, and where line and window begin
/// and end in the clipped copy.
#[derive(Debug, Clone, Copy)]
struct Clip {
    start: usize,
    end: usize,
    win_start: usize,
    win_end: usize,
    c_start: usize,
    c_win_start: usize,
    c_win_end: usize,
    c_end: usize,
}

impl Snippet {
    fn new(sources: &SourceMap, file: FileId, spans: &[Span]) -> Option<Snippet> {
        let f = sources.get(file)?;
        let text = f.text.clone();
        let name = f.path.display().to_string();
        let mut anchors: Vec<usize> = spans
            .iter()
            .flat_map(|s| [s.start.min(text.len()), s.end.min(text.len())])
            .collect();
        anchors.sort_unstable();
        anchors.dedup();
        if !touches_long_line(&text, &anchors) {
            return Some(Snippet {
                name,
                text: text.clone(),
                clips: vec![],
                original: text,
            });
        }
        let mut out = String::with_capacity(text.len().min(1 << 20));
        let mut clips = Vec::new();
        let mut start = 0usize;
        for line in text.split_inclusive('\n') {
            let content = line.strip_suffix('\n').unwrap_or(line);
            let end = start + content.len();
            if content.len() <= LONG_LINE {
                out.push_str(line);
            } else {
                let first = anchors
                    .iter()
                    .copied()
                    .find(|&a| a >= start && a <= end)
                    .unwrap_or(start);
                let win_start = floor_char(&text, first.saturating_sub(WINDOW_BEFORE).max(start));
                let win_end = floor_char(&text, (win_start + WINDOW_LEN).min(end));
                let c_start = out.len();
                if win_start > start {
                    out.push('…');
                }
                let c_win_start = out.len();
                out.push_str(&text[win_start..win_end]);
                let c_win_end = out.len();
                if win_end < end {
                    out.push('…');
                }
                let c_end = out.len();
                out.push_str(&line[content.len()..]);
                clips.push(Clip {
                    start,
                    end,
                    win_start,
                    win_end,
                    c_start,
                    c_win_start,
                    c_win_end,
                    c_end,
                });
            }
            start += line.len();
        }
        Some(Snippet {
            name,
            text: out.into(),
            clips,
            original: text,
        })
    }

    /// An offset of the original file in the rendered text.
    fn to_shown(&self, offset: usize) -> usize {
        let i = self.clips.partition_point(|c| c.start <= offset);
        let Some(c) = i.checked_sub(1).and_then(|i| self.clips.get(i)) else {
            return offset.min(self.text.len());
        };
        let shown = if offset > c.end {
            c.c_end + (offset - c.end)
        } else if offset < c.win_start {
            c.c_win_start
        } else if offset > c.win_end {
            c.c_win_end
        } else {
            c.c_win_start + (offset - c.win_start)
        };
        shown.min(self.text.len())
    }

    /// An offset of the rendered text in the original file.
    fn to_original(&self, shown: usize) -> usize {
        let i = self.clips.partition_point(|c| c.c_start <= shown);
        let Some(c) = i.checked_sub(1).and_then(|i| self.clips.get(i)) else {
            return shown;
        };
        if shown > c.c_end {
            c.end + (shown - c.c_end)
        } else if shown <= c.c_win_start {
            c.win_start
        } else if shown >= c.c_win_end {
            c.win_end
        } else {
            c.win_start + (shown - c.c_win_start)
        }
    }
}

/// Whether a line holding an anchor, or a context line next to one, is long.
fn touches_long_line(text: &str, anchors: &[usize]) -> bool {
    let bytes = text.as_bytes();
    let line_at = |at: usize| -> (usize, usize) {
        let at = at.min(bytes.len());
        let start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| at + i)
            .unwrap_or(bytes.len());
        (start, end)
    };
    anchors.iter().any(|&a| {
        let (start, end) = line_at(a);
        let prev = start.checked_sub(1).map(line_at);
        let next = (end < bytes.len()).then(|| line_at(end + 1));
        [Some((start, end)), prev, next]
            .into_iter()
            .flatten()
            .any(|(s, e)| e - s > LONG_LINE)
    })
}

fn floor_char(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl miette::SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette counts columns in bytes from the line start; count them in
        // the original line so `file:line:col` does not move.
        let column = if self.clips.is_empty() || context_lines_before > 0 {
            inner.column()
        } else {
            let at = self
                .to_original(inner.span().offset())
                .min(self.original.len());
            let line_start = self.original.as_bytes()[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            at - line_start
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

fn labeled(
    source: Option<&Snippet>,
    span: Span,
    label: Option<String>,
    primary: bool,
) -> LabeledSpan {
    let (start, end) = match source {
        Some(src) => {
            let start = src.to_shown(span.start);
            (start, src.to_shown(span.end).max(start))
        }
        None => (0, 0),
    };
    let ss = SourceSpan::new(start.into(), end - start);
    if primary {
        LabeledSpan::new_primary_with_span(label, ss)
    } else {
        LabeledSpan::new_with_span(label, ss)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> (SourceMap, FileId, FileId) {
        let mut sm = SourceMap::default();
        let a = sm.add(
            "databricks.yml".into(),
            "bundle:\n  name: démo\nresources: {}\n",
        );
        let b = sm.add("resources/x.yml".into(), "resources:\n  jobs:\n    j: {}\n");
        (sm, a, b)
    }

    #[test]
    fn render_shows_location_snippet_and_help() {
        let (sm, a, b) = sources();
        let mut ds = Diagnostics::default();
        // "name" on line 2 starts at byte 10.
        ds.push(
            Diag::error("something is wrong")
                .at(Span::new(a, 10, 14), "this name")
                .related(Span::new(b, 23, 24), "also here")
                .help("fix it"),
        );
        let out = render(&sm, &ds);
        assert!(out.contains("databricks.yml:2:3"), "{out}");
        assert!(out.contains("this name"), "{out}");
        assert!(out.contains("resources/x.yml:3:5"), "{out}");
        assert!(out.contains("fix it"), "{out}");
        assert!(!out.contains('\u{1b}'), "plain output has no ANSI: {out:?}");
    }

    #[test]
    fn json_has_file_line_column() {
        let (sm, a, _) = sources();
        let mut ds = Diagnostics::default();
        ds.push(Diag::warning("w").at(Span::new(a, 17, 18), "x"));
        ds.push(Diag::error("no location"));
        let v = to_json(&sm, &ds);
        let d0 = &v["diagnostics"][0];
        assert_eq!(d0["severity"], "warning");
        assert_eq!(d0["file"], "databricks.yml");
        assert_eq!(d0["line"], 2);
        // Column counts chars: "  name: d" then "é".
        assert_eq!(d0["column"], 10);
        assert!(v["diagnostics"][1]["file"].is_null());
    }

    #[test]
    fn long_lines_are_clipped_around_labels_keeping_line_and_column() {
        let mut sm = SourceMap::default();
        let long = format!(
            "{{\"a\": \"{}\", \"bad\": 1, \"é\": \"{}\"}}",
            "x".repeat(70_000),
            "ü".repeat(40_000)
        );
        let text = format!("first: 1\n{long}\nlast: 2\n");
        let f = sm.add("big.json".into(), text.clone());
        let at = text.find("\"bad\"").unwrap_or(0);
        let col = at - text.find('{').unwrap_or(0) + 1;
        let mut ds = Diagnostics::default();
        ds.push(
            Diag::warning("unknown field `bad`")
                .at(Span::new(f, at, at + 5), "here")
                .related(Span::new(f, 0, 5), "and here")
                .related(Span::new(f, text.len() - 8, text.len() - 4), "last"),
        );
        let out = render(&sm, &ds);
        assert!(out.contains(&format!("big.json:2:{col}")), "{out}");
        assert!(out.contains("\"bad\": 1"), "{out}");
        assert!(out.contains('…'), "{out}");
        assert!(out.len() < 4_000, "{} bytes", out.len());
        // A label inside multibyte text far along the line.
        let at = text.rfind('ü').unwrap_or(0);
        let mut ds = Diagnostics::default();
        ds.push(Diag::error("x").at(Span::new(f, at, at + 2), "ü"));
        let out = render(&sm, &ds);
        let byte_col = at - text.find('{').unwrap_or(0) + 1;
        assert!(out.contains(&format!("big.json:2:{byte_col}")), "{out}");
        // Short files render as they are.
        let (sm, a, _) = sources();
        let mut ds = Diagnostics::default();
        ds.push(Diag::error("x").at(Span::new(a, 10, 14), "y"));
        assert!(!render(&sm, &ds).contains('…'));
    }

    #[test]
    fn identical_diagnostics_group_with_count_and_first_places() {
        let mut sm = SourceMap::default();
        let text = "x: 1\n".repeat(20);
        let f = sm.add("many.yml".into(), text);
        let mut ds = Diagnostics::default();
        for i in 0..12 {
            ds.push(Diag::warning("same").at(Span::new(f, i * 5, i * 5 + 1), "here"));
        }
        // Another label is another problem.
        ds.push(Diag::warning("same").at(Span::new(f, 60, 61), "elsewhere"));
        ds.push(Diag::error("once"));
        let out = render(&sm, &ds);
        assert_eq!(out.matches("same").count(), 1 + 1 + 1, "{out}");
        assert!(
            out.contains("the same warning 12 times in all, also at:"),
            "{out}"
        );
        for line in 2..=5 {
            assert!(out.contains(&format!("      many.yml:{line}:1\n")), "{out}");
        }
        assert!(!out.contains("many.yml:6:1\n"), "{out}");
        assert!(out.contains("    and 7 more\n"), "{out}");
        let v = to_json(&sm, &ds);
        let items = v["diagnostics"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 3, "{v}");
        assert_eq!(items[0]["count"], 12);
        assert_eq!(items[0]["more"], 7);
        assert_eq!(items[0]["places"].as_array().map(Vec::len), Some(5));
        assert_eq!(items[0]["places"][4]["line"], 5);
        assert_eq!(items[1]["count"], 1);
        assert!(items[1].get("places").is_none());
        assert_eq!(thousands(5995), "5,995");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn suggestions_rank_and_filter() {
        let s = suggestions("hst", ["host", "hosts", "zzzzzz"]);
        assert_eq!(s, vec!["host", "hosts"]);
        assert_eq!(
            did_you_mean("stot_path", ["root_path", "state_path", "file_path"]),
            Some("root_path")
        );
        assert!(suggestions("abc", ["xyzxyzxyz"]).is_empty());
    }

    #[test]
    fn strict_turns_warnings_into_errors() {
        let mut ds = Diagnostics::default();
        ds.push(Diag::warning("w"));
        ds.push(Diag::info("i"));
        assert!(!ds.has_errors());
        ds.make_strict();
        assert!(ds.has_errors());
        assert_eq!(ds.count(Severity::Info), 1);
    }
}
