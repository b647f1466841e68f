//! Python positions → spans in the [`SourceMap`], and the package's
//! diagnostics → our [`Diag`]s, so an error raised in a resource function is
//! shown at its `.py` file:line:col with a snippet of the Python source.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::source::{FileId, Node, SourceMap, Span};
use crate::diag::Diag;

use super::protocol::{Diagnostic, Location};

/// Python files are read once each and added to the source map on first use.
pub struct PyFiles<'a> {
    root: &'a Path,
    /// The root with symlinks resolved: Python reports real paths.
    real_root: Option<PathBuf>,
    sources: &'a mut SourceMap,
    seen: HashMap<PathBuf, Option<FileId>>,
}

/// Larger files are not shown as snippets (a generated module, say).
const MAX_SOURCE_BYTES: u64 = 8 << 20;

impl<'a> PyFiles<'a> {
    pub fn new(root: &'a Path, sources: &'a mut SourceMap) -> Self {
        PyFiles {
            root,
            real_root: root.canonicalize().ok(),
            sources,
            seen: HashMap::new(),
        }
    }

    /// The file as the user knows it: relative to the bundle root when inside it.
    fn full_path(&self, file: &str) -> PathBuf {
        let p = Path::new(file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    fn file_id(&mut self, file: &str) -> Option<FileId> {
        let full = self.full_path(file);
        let full = full.canonicalize().unwrap_or(full);
        if let Some(id) = self.seen.get(&full) {
            return *id;
        }
        let id = std::fs::metadata(&full)
            .ok()
            .filter(|m| m.is_file() && m.len() <= MAX_SOURCE_BYTES)
            .and_then(|_| std::fs::read_to_string(&full).ok())
            .map(|text| {
                let shown = full
                    .strip_prefix(self.root)
                    .ok()
                    .or_else(|| full.strip_prefix(self.real_root.as_deref()?).ok())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| full.clone());
                self.sources.add(shown, text)
            });
        self.seen.insert(full, id);
        id
    }

    /// Whether `file` is the bundle's own code: under the bundle root and
    /// not in an installed package (a venv inside the root).
    pub fn is_bundle_code(&self, file: &str) -> bool {
        if is_library(file) {
            return false;
        }
        let p = Path::new(file);
        !p.is_absolute()
            || p.starts_with(self.root)
            || self.real_root.as_deref().is_some_and(|r| p.starts_with(r))
    }

    /// The span of `line` (from `column`, to the end of the line) in `file`.
    /// None for code of the package itself (it would say nothing about the
    /// user's code), unreadable files and lines past the end.
    pub fn span(&mut self, loc: &Location) -> Option<Span> {
        if is_library(&loc.file) {
            return None;
        }
        let id = self.file_id(&loc.file)?;
        let text = self.sources.get(id)?.text.clone();
        let line = loc.line.unwrap_or(1).max(1);
        let mut start = 0usize;
        for _ in 1..line {
            start += text.get(start..)?.find('\n')? + 1;
        }
        let rest = text.get(start..)?;
        let content = rest.split('\n').next().unwrap_or_default();
        let content = content.strip_suffix('\r').unwrap_or(content);
        // Columns are counted in characters; start at the first non-blank
        // when Python gave column 1 (it never knows the real column).
        let col = loc.column.unwrap_or(1).max(1);
        let skip: usize = if col == 1 {
            content.len() - content.trim_start().len()
        } else {
            content
                .char_indices()
                .nth(col - 1)
                .map(|(i, _)| i)
                .unwrap_or(content.len())
        };
        let end = start + content.trim_end().len();
        let begin = (start + skip).min(end);
        Some(Span::new(id, begin, end))
    }
}

/// Whether a Python file is part of an installed package (site-packages or
/// the standard library) rather than the bundle's own code.
fn is_library(file: &str) -> bool {
    file.contains("site-packages") || file.contains("dist-packages") || file.starts_with('<')
}

/// Drop ANSI colour codes the package puts into explanations.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The frames of a Python traceback, innermost first:
/// `File "resources/jobs.py", line 12, in load_resources`.
fn frames(traceback: &str) -> impl Iterator<Item = Location> + '_ {
    traceback.lines().rev().filter_map(|l| {
        let rest = l.trim_start().strip_prefix("File \"")?;
        let (file, rest) = rest.split_once('"')?;
        let line = rest
            .trim_start_matches(", line ")
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        Some(Location {
            file: file.to_string(),
            line: Some(line),
            column: None,
        })
    })
}

/// `ValueError: no catalog` from the end of a traceback: the summary alone
/// ("Failed to load resources") does not say what went wrong.
fn exception_line(traceback: &str) -> Option<&str> {
    if !traceback.starts_with("Traceback") {
        return None;
    }
    // The exception follows the last frame's code lines (indented).
    let last = traceback
        .lines()
        .rev()
        .map(str::trim_end)
        .find(|l| !l.is_empty())?;
    (!last.starts_with(' ')).then_some(last)
}

/// The node at a dotted bundle path (`resources.jobs.my_job`).
fn node_at<'t>(tree: &'t Node, path: &str) -> Option<&'t Node> {
    let segs: Vec<&str> = path.split('.').collect();
    tree.pointer(&segs)
}

/// One diagnostic of the package as ours. The position is, in order of
/// preference: the line of the user's code that raised (from the traceback),
/// the location the package gives (the function's `def`), the bundle path.
pub fn to_diag(d: &Diagnostic, tree: &Node, files: &mut PyFiles, fallback: Span) -> Diag {
    let detail = d.detail.as_deref().map(strip_ansi).unwrap_or_default();
    let message = match exception_line(&detail) {
        Some(exc) => format!("{}: {exc}", d.summary),
        None => d.summary.clone(),
    };
    let mut diag = match d.severity.as_str() {
        "error" => Diag::error(message),
        "warning" => Diag::warning(message),
        _ => Diag::info(message),
    };
    // The innermost frame in the bundle's own code (not the package's, not
    // the standard library's).
    let raised = frames(&detail)
        .find(|l| files.is_bundle_code(&l.file))
        .and_then(|l| files.span(&l).map(|s| (s, l)));
    let given = d
        .location
        .as_ref()
        .and_then(|l| files.span(l).map(|s| (s, l.clone())));
    let at_path = d
        .path
        .as_deref()
        .and_then(|p| node_at(tree, p))
        .map(|n| n.span);
    let mut unplaced = None;
    match (raised, given) {
        (Some((s, _)), Some((g, _))) => {
            diag = diag.at(s, "raised here");
            if g != s {
                diag = diag.related(g, "in this function");
            }
        }
        (Some((s, _)), None) => diag = diag.at(s, "raised here"),
        (None, Some((g, _))) => diag = diag.at(g, "here"),
        (None, None) => {
            unplaced = d.location.clone();
            match at_path.filter(|s| !s.is_synthetic()) {
                Some(p) => diag = diag.at(p, "this part of the bundle"),
                None => diag = diag.at(fallback, "while running this Python code"),
            }
        }
    }
    if let (Some(p), Some(path)) = (at_path, d.path.as_deref()) {
        if diag.span != Some(p) && !p.is_synthetic() {
            diag = diag.related(p, format!("`{path}`"));
        }
    }
    let mut help = detail.trim_end().to_string();
    if let Some(loc) = unplaced {
        let pos = match (loc.line, loc.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", loc.file),
            (Some(l), None) => format!("{}:{l}", loc.file),
            _ => loc.file.clone(),
        };
        help = if help.is_empty() {
            format!("at {pos}")
        } else {
            format!("at {pos}\n{help}")
        };
    }
    if !help.is_empty() {
        diag = diag.help(help);
    }
    diag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_innermost_frame_of_bundle_code() {
        let tb = "Traceback (most recent call last):\n  File \"/x/site-packages/databricks/bundles/build.py\", line 96, in f\n    g()\n  File \"/b/resources/jobs.py\", line 12, in load\n    json.loads(x)\n  File \"/usr/lib/python3.11/json/__init__.py\", line 3, in loads\nValueError\n";
        let mut sources = SourceMap::default();
        let files = PyFiles::new(Path::new("/b"), &mut sources);
        let loc = frames(tb).find(|l| files.is_bundle_code(&l.file)).unwrap();
        assert_eq!(loc.file, "/b/resources/jobs.py");
        assert_eq!(loc.line, Some(12));
        assert_eq!(frames("no frames").count(), 0);
    }

    #[test]
    fn the_exception_line_ends_a_traceback() {
        let tb = "Traceback (most recent call last):\n  File \"r.py\", line 2, in f\n    raise ValueError('x')\nValueError: x\n";
        assert_eq!(exception_line(tb), Some("ValueError: x"));
        assert_eq!(exception_line("plain detail"), None);
    }

    #[test]
    fn strips_colour_codes() {
        assert_eq!(
            strip_ansi("\u{1b}[0;36mExplanation:\u{1b}[0m do it"),
            "Explanation: do it"
        );
    }

    #[test]
    fn spans_a_python_line_from_its_first_non_blank() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.py"), "def f():\n    raise X  \nz").unwrap();
        let mut sources = SourceMap::default();
        let mut files = PyFiles::new(dir.path(), &mut sources);
        let loc = |line| Location {
            file: "m.py".into(),
            line: Some(line),
            column: Some(1),
        };
        let s = files.span(&loc(2)).unwrap();
        assert_eq!((s.start, s.end), (13, 20));
        assert!(files.span(&loc(9)).is_none());
        let lib = Location {
            file: "/v/site-packages/databricks/bundles/build.py".into(),
            line: Some(1),
            column: None,
        };
        assert!(files.span(&lib).is_none());
        assert_eq!(sources.files.len(), 1);
        assert_eq!(sources.files[0].path, Path::new("m.py"));
    }
}
