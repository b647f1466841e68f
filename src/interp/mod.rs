//! `${...}` grammar, substitution, typed whole-value references, variable cycles.
//!
//! Grammar of a reference path: dot-separated segments of letters, digits,
//! `-` and `_`, each optionally followed by `[N]` indices; the first character
//! is a letter. `$${` is an escaped literal `${`. A `${...}` whose contents do
//! not match the grammar (shell-style `${PORT:-8000}`) stays literal text.
//! References nest: `${var.${bundle.target}_catalog}` resolves the inner one
//! first and then looks up the resulting path.

pub mod resolve;

/// Nesting limit for `${a.${b.${c}}}`; deeper text stays literal.
const MAX_NESTING: usize = 8;

/// One piece of a string template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Ref(RefExpr),
}

/// A `${...}` occurrence. `parts` is the path, itself a template when nested.
#[derive(Debug, Clone, PartialEq)]
pub struct RefExpr {
    pub parts: Vec<Piece>,
    /// The text as written, `${` ... `}` included.
    pub raw: String,
}

impl RefExpr {
    /// The path when it has no nested references.
    pub fn plain_path(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Piece::Text(t)] => Some(t),
            _ => None,
        }
    }
}

/// One step of a field path: a map key, a list index, or the element of a
/// list whose `key` field is `value` (`tasks[task_key=ingest]`, the plan's
/// address of a keyed list element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
    Select { key: String, value: String },
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "[{i}]"),
            Seg::Select { key, value } => write!(f, "[{key}={value}]"),
        }
    }
}

/// Render segments back to `a.b[0].c`.
pub fn join_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(_) | Seg::Select { .. } => out.push_str(&s.to_string()),
        }
    }
    out
}

/// Whether `s` may contain a reference (cheap pre-check).
pub fn has_ref(s: &str) -> bool {
    s.contains("${")
}

/// Split a template into text and references.
pub fn parse_template(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with("$${") {
            text.push_str("${");
            i += 3;
            continue;
        }
        if rest.starts_with("${") {
            if let Some((expr, end)) = parse_ref(s, i, 0) {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Ref(expr));
                i = end;
                continue;
            }
            text.push_str("${");
            i += 2;
            continue;
        }
        let ch = rest.chars().next().unwrap_or('\0');
        text.push(ch);
        i += ch.len_utf8().max(1);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// Parse `${...}` starting at byte `start` (which holds `$`). Returns the
/// expression and the byte index after the closing `}`.
fn parse_ref(s: &str, start: usize, depth: usize) -> Option<(RefExpr, usize)> {
    if depth >= MAX_NESTING {
        return None;
    }
    let bytes = s.as_bytes();
    let mut i = start + 2;
    let mut parts: Vec<Piece> = Vec::new();
    let mut text = String::new();
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'}' {
            if !text.is_empty() {
                parts.push(Piece::Text(text));
            }
            if parts.is_empty() {
                return None;
            }
            let expr = RefExpr {
                parts,
                raw: s[start..=i].to_string(),
            };
            if let Some(p) = expr.plain_path() {
                if !is_valid_path(p) {
                    return None;
                }
            }
            return Some((expr, i + 1));
        }
        if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let (inner, end) = parse_ref(s, i, depth + 1)?;
            if !text.is_empty() {
                parts.push(Piece::Text(std::mem::take(&mut text)));
            }
            parts.push(Piece::Ref(inner));
            i = end;
            continue;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']') {
            text.push(b as char);
            i += 1;
            continue;
        }
        // Names in any script (`${var.变量}`) are references too: a reference
        // silently left as text would be deployed as written.
        if let Some(ch) = s[i..].chars().next().filter(|c| c.is_alphanumeric()) {
            text.push(ch);
            i += ch.len_utf8();
            continue;
        }
        return None;
    }
    None
}

/// Whether `path` matches the reference grammar.
pub fn is_valid_path(path: &str) -> bool {
    split_path(path).is_some()
}

/// A map key of a path: letters, digits, `_` and `-`.
fn is_path_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// The one field-path grammar, for references (`${resources.jobs.j.tasks[0].x}`)
/// and the plan's field paths (`tasks[task_key=a].notebook_task`):
/// `a.b[0].c-d[k=v]` → `[Key(a), Key(b), Index(0), Key(c-d), Select(k, v)]`.
/// A path starts with a letter; each dotted part is a non-empty name
/// followed by any number of `[digits]` or `[name=value]` (a value is any
/// non-empty text without `]`, dots included). None if malformed.
/// References never hold selectors: the template scanner refuses `=`.
pub fn split_path(path: &str) -> Option<Vec<Seg>> {
    if !path.chars().next().is_some_and(char::is_alphabetic) {
        return None;
    }
    let mut segs = Vec::new();
    let mut rest = path;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        segs.push(Seg::Key(rest[..end].to_string()));
        rest = &rest[end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let body = &inner[..close];
            segs.push(match body.split_once('=') {
                Some((key, value)) if is_path_name(key) && !value.is_empty() => Seg::Select {
                    key: key.to_string(),
                    value: value.to_string(),
                },
                Some(_) => return None,
                None if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) => {
                    Seg::Index(body.parse().ok()?)
                }
                None => return None,
            });
            rest = &inner[close + 1..];
        }
        if rest.is_empty() {
            return Some(segs);
        }
        rest = rest.strip_prefix('.')?;
    }
}

/// Every un-nested `${path}` in `s` (for finding deferred references later).
pub fn ref_paths(s: &str) -> Vec<String> {
    if !has_ref(s) {
        return vec![];
    }
    parse_template(s)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => r.plain_path().map(str::to_string),
            Piece::Text(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(s: &str) -> Vec<String> {
        parse_template(s)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Ref(r) => Some(r.raw),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn grammar_accepts_documented_paths() {
        for p in [
            "var.x",
            "bundle.name",
            "resources.jobs.my-job.tasks[0].task_key",
            "var.libs[0][1].jar",
            "a_b.c-d.e1",
        ] {
            assert!(is_valid_path(p), "{p}");
        }
        for p in [
            "",
            ".a",
            "a.",
            "a..b",
            "1abc",
            "a[x]",
            "a[]",
            "PORT:-8000",
            "a b",
            "a.[0]",
        ] {
            assert!(!is_valid_path(p), "{p}");
        }
        assert_eq!(
            split_path("resources.jobs.j.tasks[2].x"),
            Some(vec![
                Seg::Key("resources".into()),
                Seg::Key("jobs".into()),
                Seg::Key("j".into()),
                Seg::Key("tasks".into()),
                Seg::Index(2),
                Seg::Key("x".into())
            ])
        );
        assert_eq!(
            join_path(&split_path("a.b[1].c").unwrap_or_default()),
            "a.b[1].c"
        );
    }

    /// The plan's former grammar: keyed list elements, with any text (dots
    /// too) as the selected value; malformed selectors are refused rather
    /// than read as keys.
    #[test]
    fn grammar_selects_keyed_list_elements() {
        let sel = |k: &str, v: &str| Seg::Select {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(
            split_path("tasks[task_key=a.b].notebook_task.path"),
            Some(vec![
                Seg::Key("tasks".into()),
                sel("task_key", "a.b"),
                Seg::Key("notebook_task".into()),
                Seg::Key("path".into())
            ])
        );
        assert_eq!(
            split_path("a[k=v][0]"),
            Some(vec![Seg::Key("a".into()), sel("k", "v"), Seg::Index(0)])
        );
        let p = "job_clusters[job_cluster_key=c1].new_cluster[2].x";
        assert_eq!(join_path(&split_path(p).unwrap_or_default()), p);
        for p in ["a[=v]", "a[k=]", "a[k=v", "a[k v=x]", "[0].a", "a[0]b"] {
            assert_eq!(split_path(p), None, "{p}");
        }
        // A reference cannot hold a selector: it stays text.
        assert!(refs("${a[k=v]}").is_empty());
    }

    #[test]
    fn shell_style_and_escapes_stay_literal() {
        assert!(refs("uvicorn --port ${DATABRICKS_APP_PORT:-8000}").is_empty());
        assert_eq!(
            parse_template("$${var.x}"),
            vec![Piece::Text("${var.x}".into())]
        );
        assert_eq!(
            refs("a ${var.x} b $${var.y} ${bundle.name}"),
            vec!["${var.x}", "${bundle.name}"]
        );
        assert!(refs("${unclosed").is_empty());
        assert!(refs("${}").is_empty());
    }

    #[test]
    fn nested_references_parse_inside_out() {
        let p = parse_template("${var.${bundle.target}_catalog}");
        let [Piece::Ref(outer)] = p.as_slice() else {
            panic!("{p:?}")
        };
        assert_eq!(outer.raw, "${var.${bundle.target}_catalog}");
        assert_eq!(outer.parts.len(), 3);
        assert!(
            matches!(&outer.parts[1], Piece::Ref(r) if r.plain_path() == Some("bundle.target"))
        );
    }

    #[test]
    fn non_ascii_text_around_refs() {
        let p = parse_template("é ${var.x} ü");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], Piece::Text("é ".into()));
        assert_eq!(
            ref_paths("x-${resources.jobs.a.id}-${var.b}"),
            vec!["resources.jobs.a.id", "var.b"]
        );
    }
}
