//! The spanned node tree: the one data model from load to interpolation.
//!
//! Every map, sequence and scalar keeps the file and byte range it came from.
//! Built from `saphyr-parser` events (see `parse_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range in one source file. `Span::synthetic()` marks values that came
/// from no file (CLI `--var`, environment, defaults computed by lakebundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const SYNTHETIC_FILE: FileId = FileId(u32::MAX);
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }
    pub fn synthetic() -> Self {
        Span {
            file: Self::SYNTHETIC_FILE,
            start: 0,
            end: 0,
        }
    }
    pub fn is_synthetic(&self) -> bool {
        self.file == Self::SYNTHETIC_FILE
    }
}

/// One loaded file: its path (as shown to the user) and its full text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// All files a bundle was loaded from, addressed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile {
            path,
            text: text.into(),
        });
        FileId((self.files.len() - 1) as u32)
    }
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }
    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.get(id).map(|f| f.path.as_path())
    }
    /// 1-based (line, column) of a byte offset, column counted in chars.
    pub fn line_col(&self, span: Span) -> Option<(usize, usize)> {
        let file = self.get(span.file)?;
        let upto = file.text.get(..span.start.min(file.text.len()))?;
        let line = upto.matches('\n').count() + 1;
        let col = upto
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        Some((line, col))
    }
}

/// How a scalar was written; a quoted `"true"` is a string, a plain `true` a bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings keep their style so diagnostics can say "quote this".
    String(String, ScalarStyle),
    Seq(Vec<Node>),
    Map(Map),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

/// A mapping key with its own span (for "unknown field" and "defined twice").
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

/// An insertion-ordered mapping. Lookups are linear: bundle maps are small, and
/// order matters for output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    pub entries: Vec<(Key, Node)>,
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }
    pub fn get_entry(&self, key: &str) -> Option<(&Key, &Node)> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.name.as_str())
    }
    /// Insert or replace, keeping the original position on replace.
    pub fn insert(&mut self, key: Key, value: Node) {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| k.name == key.name) {
            slot.1 = value;
        } else {
            self.entries.push((key, value));
        }
    }
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let idx = self.entries.iter().position(|(k, _)| k.name == key)?;
        Some(self.entries.remove(idx).1)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Self {
        Node { kind, span }
    }
    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s, _) => Some(s),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }
    /// Short type name for diagnostics ("a map", "a string", ...).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::String(..) => "a string",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a map",
        }
    }
    /// A scalar as text (`1`, `true`, `x`); None for null, maps and sequences.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::String(s, _) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    /// [`Node::pointer`] by a field path (`resources[0].database.instance_name`).
    pub fn at_path(&self, path: &str) -> Option<&Node> {
        self.pointer(&path_segments(path))
    }
    /// Follow a JSON-pointer-like path of map keys and sequence indices.
    pub fn pointer(&self, path: &[&str]) -> Option<&Node> {
        let mut cur = self;
        for seg in path {
            cur = match &cur.kind {
                NodeKind::Map(m) => m.get(seg)?,
                NodeKind::Seq(s) => s.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
    /// Plain JSON view (spans dropped). Used for typed deserialization and output.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::String(s, _) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(m) => Value::Object(
                m.entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
    /// Build a node from JSON with one span everywhere (values from state, CLI, env).
    pub fn from_json(value: &serde_json::Value, span: Span) -> Node {
        use serde_json::Value;
        let kind = match value {
            Value::Null => NodeKind::Null,
            Value::Bool(b) => NodeKind::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => NodeKind::Int(i),
                None => NodeKind::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => NodeKind::String(s.clone(), ScalarStyle::Quoted),
            Value::Array(a) => NodeKind::Seq(a.iter().map(|v| Node::from_json(v, span)).collect()),
            Value::Object(o) => NodeKind::Map(Map {
                entries: o
                    .iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                span,
                            },
                            Node::from_json(v, span),
                        )
                    })
                    .collect(),
            }),
        };
        Node { kind, span }
    }
}

// ---------------------------------------------------------------------------
// Parsing: saphyr-parser events → spanned `Node` tree.
// ---------------------------------------------------------------------------

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle as YamlStyle, Tag};

use crate::diag::{Diag, Diagnostics};

/// Deepest nesting accepted in one file. Bundles rarely exceed ~20 levels; the
/// limit keeps every recursive pass over the tree (merge, interpolation, drop)
/// far from the stack limit. Aliases may at most double it.
pub const MAX_DEPTH: usize = 128;

/// Nodes that alias expansion may add beyond the file's own size (stops
/// "billion laughs" documents from exhausting memory).
const MIN_ALIAS_BUDGET: usize = 200_000;

/// Maps saphyr's char-based marker indices to byte offsets of the original
/// text (the parser may see a copy with indentation fixes, see `parse_file`).
struct Offsets {
    /// Byte offset per char index; None when the text is ASCII.
    table: Option<Vec<u32>>,
    len: usize,
    /// Byte positions (in the parsed copy) where a space was inserted.
    inserted: Vec<usize>,
}

impl Offsets {
    fn new(text: &str, inserted: Vec<usize>) -> Offsets {
        let table = (!text.is_ascii()).then(|| {
            let mut t: Vec<u32> = text.char_indices().map(|(i, _)| i as u32).collect();
            t.push(text.len() as u32);
            t
        });
        Offsets {
            table,
            len: text.len(),
            inserted,
        }
    }
    /// Byte offset in the parsed copy.
    fn copy_byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t
                .get(char_index)
                .copied()
                .or_else(|| t.last().copied())
                .unwrap_or(0) as usize,
        }
    }
    /// Byte offset in the original text.
    fn byte(&self, char_index: usize) -> usize {
        let b = self.copy_byte(char_index);
        b - self.inserted.partition_point(|&p| p < b)
    }
}

struct Anchored {
    node: Node,
    depth: usize,
    size: usize,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        start: usize,
        anchor: usize,
        first_node: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        /// Index of explicit keys once the map grows (linear scan below that).
        index: Option<HashMap<String, Span>>,
        /// `None` = waiting for a key; `Some(None)` = the key was invalid, drop the value.
        pending: Option<Option<Key>>,
        merges: Vec<Node>,
        start: usize,
        anchor: usize,
        first_node: usize,
    },
}

struct Builder<'a> {
    file: FileId,
    offsets: Offsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    diags: Diagnostics,
    nodes: usize,
    alias_budget: usize,
    _text: &'a str,
}

/// Why parsing stopped early (the diagnostic is already recorded).
struct Abort;

impl<'a> Builder<'a> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, self.offsets.byte(start), self.offsets.byte(end))
    }

    fn depth(&self) -> usize {
        self.stack.len()
    }

    fn push_frame(&mut self, frame: Frame, span: Span) -> Result<(), Abort> {
        if self.stack.len() >= MAX_DEPTH {
            self.diags.push(
                Diag::error(format!("YAML nesting is deeper than {MAX_DEPTH} levels"))
                    .at(span, "too deeply nested")
                    .help("flatten the structure; bundle configuration never needs this depth"),
            );
            return Err(Abort);
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Hand a finished node to the enclosing frame. Returns it when there is no
    /// enclosing frame (the document root).
    fn deliver(&mut self, node: Node, key_style_plain: bool) -> Option<Node> {
        let Some(top) = self.stack.last_mut() else {
            return Some(node);
        };
        match top {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                index,
                pending,
                merges,
                ..
            } => {
                match pending.take() {
                    None => {
                        // This node is a key; its text is moved, not copied.
                        let span = node.span;
                        let type_name = node.type_name();
                        let key = match node.kind {
                            NodeKind::String(s, _) => Some(s),
                            NodeKind::Null => Some(String::new()),
                            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::Float(_) => Some(
                                self._text
                                    .get(span.start..span.end)
                                    .unwrap_or_default()
                                    .to_string(),
                            ),
                            NodeKind::Seq(_) | NodeKind::Map(_) => None,
                        };
                        match key {
                            Some(name) => {
                                let is_merge = key_style_plain && name == "<<";
                                let key = Key {
                                    name: if is_merge {
                                        MERGE_KEY.to_string()
                                    } else {
                                        name
                                    },
                                    span,
                                };
                                *pending = Some(Some(key));
                            }
                            None => {
                                self.diags.push(
                                Diag::error(format!("a mapping key must be a string, not {type_name}"))
                                    .at(span, "this key is not a string")
                                    .help("quote the text if it was meant literally (e.g. a `{{ placeholder }}`)"),
                            );
                                *pending = Some(None);
                            }
                        }
                    }
                    Some(None) => {}
                    Some(Some(key)) => {
                        if key.name == MERGE_KEY {
                            // The official CLI stops on a second `<<` in one
                            // mapping; silently merging both would hide the typo.
                            if let Some(first) = merges.first() {
                                self.diags.push(
                                Diag::error("`<<` appears more than once in this mapping")
                                    .at(key.span, "second merge key")
                                    .related(first.span, "first merge key's value")
                                    .help("merge several maps with one key: `<<: [*first, *second]`"),
                            );
                                return None;
                            }
                            merges.push(node);
                            return None;
                        }
                        let dup = match index {
                            Some(ix) => ix.get(&key.name).copied(),
                            None => entries
                                .iter()
                                .find(|(k, _)| k.name == key.name)
                                .map(|(k, _)| k.span),
                        };
                        if let Some(first) = dup {
                            self.diags.push(
                                Diag::error(format!("duplicate key `{}`", key.name))
                                    .at(key.span, "defined again here")
                                    .related(first, "first defined here")
                                    .help("remove one of the two definitions"),
                            );
                            return None;
                        }
                        if let Some(ix) = index {
                            ix.insert(key.name.clone(), key.span);
                        } else if entries.len() >= 16 {
                            let mut ix: HashMap<String, Span> = entries
                                .iter()
                                .map(|(k, _)| (k.name.clone(), k.span))
                                .collect();
                            ix.insert(key.name.clone(), key.span);
                            *index = Some(ix);
                        }
                        entries.push((key, node));
                    }
                }
            }
        }
        None
    }

    fn remember(&mut self, anchor: usize, node: &Node, first_node: usize) {
        if anchor != 0 {
            let size = self.nodes - first_node + 1;
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    depth: node_depth_hint(node),
                    size,
                },
            );
        }
    }

    fn finish_map(&mut self, end: Option<usize>) -> Option<Node> {
        let Some(Frame::Map {
            entries,
            merges,
            start,
            anchor,
            first_node,
            ..
        }) = self.stack.pop()
        else {
            return None;
        };
        let mut map = Map::default();
        // Merged keys come first (in merge order, earlier sources win), then
        // explicit keys replace them in place: explicit keys always win.
        for source in merges {
            let sources: Vec<Node> = match source.kind {
                NodeKind::Map(_) => vec![source],
                NodeKind::Seq(items) => items,
                _ => {
                    self.diags.push(
                        Diag::error(format!(
                            "`<<` merges a map or a list of maps, not {}",
                            source.type_name()
                        ))
                        .at(source.span, "not a map"),
                    );
                    vec![]
                }
            };
            for src in sources {
                match src.kind {
                    NodeKind::Map(m) => {
                        for (k, v) in m.entries {
                            if map.get(&k.name).is_none() {
                                map.entries.push((k, v));
                            }
                        }
                    }
                    _ => self.diags.push(
                        Diag::error(format!("`<<` merges maps, not {}", src.type_name()))
                            .at(src.span, "not a map"),
                    ),
                }
            }
        }
        let end_byte = end.map(|e| self.offsets.byte(e)).unwrap_or(0);
        let mut last = 0;
        if map.is_empty() {
            map.entries = entries;
        } else {
            for (k, v) in entries {
                map.insert(k, v);
            }
        }
        for (k, v) in &map.entries {
            if k.span.file == self.file {
                last = last.max(v.span.end).max(k.span.end);
            }
        }
        let start_byte = self.offsets.byte(start);
        let node = Node::new(
            NodeKind::Map(map),
            Span::new(self.file, start_byte, end_byte.max(last).max(start_byte)),
        );
        self.remember(anchor, &node, first_node);
        self.nodes += 1;
        Some(node)
    }

    fn finish_seq(&mut self, end: Option<usize>) -> Option<Node> {
        let Some(Frame::Seq {
            items,
            start,
            anchor,
            first_node,
        }) = self.stack.pop()
        else {
            return None;
        };
        let start_byte = self.offsets.byte(start);
        let last = items
            .iter()
            .filter(|n| n.span.file == self.file)
            .map(|n| n.span.end)
            .max()
            .unwrap_or(0);
        let end_byte = end
            .map(|e| self.offsets.byte(e))
            .unwrap_or(0)
            .max(last)
            .max(start_byte);
        let node = Node::new(
            NodeKind::Seq(items),
            Span::new(self.file, start_byte, end_byte),
        );
        self.remember(anchor, &node, first_node);
        self.nodes += 1;
        Some(node)
    }
}

/// Internal marker for a `<<` key (a quoted `"<<"` stays an ordinary key).
const MERGE_KEY: &str = "\u{0}<<";

fn node_depth_hint(node: &Node) -> usize {
    // Bounded by MAX_DEPTH by construction, so recursion is safe.
    match &node.kind {
        NodeKind::Seq(items) => 1 + items.iter().map(node_depth_hint).max().unwrap_or(0),
        NodeKind::Map(m) => {
            1 + m
                .entries
                .iter()
                .map(|(_, v)| node_depth_hint(v))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn is_core_tag(tag: &Tag, suffix: &str) -> bool {
    (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:") && tag.suffix == suffix
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(text: &str) -> NodeKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeKind::Null,
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return NodeKind::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return NodeKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return NodeKind::Float(f64::NAN),
        _ => {}
    }
    let plain = || NodeKind::String(text.to_string(), ScalarStyle::Plain);
    let bytes = text.as_bytes();
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return i64::from_str_radix(hex, 16)
                .map(NodeKind::Int)
                .unwrap_or_else(|_| plain());
        }
        return plain();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return i64::from_str_radix(oct, 8)
                .map(NodeKind::Int)
                .unwrap_or_else(|_| plain());
        }
        return plain();
    }
    let digits = bytes
        .strip_prefix(b"-")
        .or_else(|| bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        // Too large for i64: keep the digits rather than lose precision.
        return text
            .parse::<i64>()
            .map(NodeKind::Int)
            .unwrap_or_else(|_| plain());
    }
    if is_core_float(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return NodeKind::Float(f);
        }
    }
    plain()
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (sign already stripped).
fn is_core_float(s: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'-') | Some(b'+')) {
            i += 1;
        }
        let exp = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == s.len()
}

/// Parse one YAML (or JSON) file into a spanned tree. An empty or
/// comment-only file is an empty map. Only the first document is used.
/// On a syntax error the returned node is an empty map and `diags` has the error.
pub fn parse_file(file: FileId, text: &str) -> (Node, Diagnostics) {
    // saphyr rejects a flow collection whose closing bracket sits at the
    // indentation of its key (`prod: {` ... `}` on its own line), which the
    // official CLI accepts; such a bracket is indented one more space and
    // parsing retried (spans still point into the original text).
    let mut copy = std::borrow::Cow::Borrowed(text);
    let mut inserted: Vec<usize> = Vec::new();
    for _ in 0..MAX_INDENT_FIXES {
        let mut b = Builder {
            file,
            offsets: Offsets::new(&copy, inserted.clone()),
            stack: Vec::new(),
            anchors: HashMap::new(),
            diags: Diagnostics::default(),
            nodes: 0,
            alias_budget: MIN_ALIAS_BUDGET.max(text.len()),
            _text: text,
        };
        let root = match run_parser(&mut b, &copy) {
            Err(Stop::RetryIndentAt(line_start)) => {
                let at = inserted.partition_point(|&p| p < line_start);
                for p in &mut inserted[at..] {
                    *p += 1;
                }
                inserted.insert(at, line_start);
                copy.to_mut().insert(line_start, ' ');
                continue;
            }
            Err(Stop::Abort) => None,
            Ok(r) => r,
        };
        let node = match root {
            Some(n) if matches!(n.kind, NodeKind::Null) => {
                Node::new(NodeKind::Map(Map::default()), n.span)
            }
            Some(n) => n,
            None => Node::new(NodeKind::Map(Map::default()), Span::new(file, 0, 0)),
        };
        return (node, b.diags);
    }
    let mut diags = Diagnostics::default();
    diags.push(
        Diag::error("invalid YAML: invalid indentation of flow collections")
            .at(Span::new(file, 0, 0), "in this file"),
    );
    (
        Node::new(NodeKind::Map(Map::default()), Span::new(file, 0, 0)),
        diags,
    )
}

/// How many closing brackets `parse_file` re-indents before giving up.
const MAX_INDENT_FIXES: usize = 64;

enum Stop {
    Abort,
    /// Insert a space at this byte of the parsed copy and parse again.
    RetryIndentAt(usize),
}

impl From<Abort> for Stop {
    fn from(_: Abort) -> Stop {
        Stop::Abort
    }
}

/// Where to re-indent when an "invalid indentation" error sits on a line
/// holding only spaces and then a closing `}` or `]`.
fn closing_bracket_line(copy: &str, at: usize) -> Option<usize> {
    let line_start = copy[..at.min(copy.len())]
        .rfind('\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let rest = &copy[line_start..];
    let trimmed = rest.trim_start_matches(' ');
    let bracket = trimmed.starts_with('}') || trimmed.starts_with(']');
    (bracket && line_start + (rest.len() - trimmed.len()) == at).then_some(line_start)
}

fn run_parser(b: &mut Builder<'_>, text: &str) -> Result<Option<Node>, Stop> {
    let mut parser = Parser::new_from_str(text);
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut ignored_doc: Option<Span> = None;
    // Whether the next scalar sits in key position of a map (for `<<`).
    while let Some(item) = parser.next_event() {
        let (event, span) = match item {
            Ok(ev) => ev,
            Err(e) => {
                if e.info() == "invalid indentation" {
                    if let Some(line) =
                        closing_bracket_line(text, b.offsets.copy_byte(e.marker().index()))
                    {
                        return Err(Stop::RetryIndentAt(line));
                    }
                }
                let at = b.offsets.byte(e.marker().index());
                b.diags.push(
                    Diag::error(format!("invalid YAML: {}", e.info()))
                        .at(Span::new(b.file, at, at), "here")
                        .help("check indentation and quoting around this place"),
                );
                return Err(Stop::Abort);
            }
        };
        let (s, e) = (span.start.index(), span.end.index());
        if documents > 1 {
            // Only the first document counts; note content in later ones once.
            if ignored_doc.is_none()
                && !matches!(
                    event,
                    Event::DocumentStart(_) | Event::DocumentEnd | Event::StreamEnd
                )
            {
                let is_empty_scalar =
                    matches!(&event, Event::Scalar(v, YamlStyle::Plain, _, None) if v.is_empty());
                if !is_empty_scalar {
                    ignored_doc = Some(b.span(s, e));
                }
            }
            continue;
        }
        let in_key_position = matches!(b.stack.last(), Some(Frame::Map { pending: None, .. }));
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                documents += 1;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let sp = b.span(s, e);
                let forced_str = tag.as_deref().is_some_and(|t| is_core_tag(t, "str"));
                let kind = match style {
                    YamlStyle::Plain if !forced_str => resolve_plain(&value),
                    YamlStyle::Plain => NodeKind::String(value.into_owned(), ScalarStyle::Quoted),
                    YamlStyle::SingleQuoted | YamlStyle::DoubleQuoted => {
                        NodeKind::String(value.into_owned(), ScalarStyle::Quoted)
                    }
                    YamlStyle::Literal | YamlStyle::Folded => {
                        NodeKind::String(value.into_owned(), ScalarStyle::Block)
                    }
                };
                let node = Node::new(kind, sp);
                b.nodes += 1;
                if anchor != 0 {
                    b.anchors.insert(
                        anchor,
                        Anchored {
                            node: node.clone(),
                            depth: 0,
                            size: 1,
                        },
                    );
                }
                let plain_key = in_key_position && style == YamlStyle::Plain;
                if let Some(n) = b.deliver(node, plain_key) {
                    root.get_or_insert(n);
                }
            }
            Event::Alias(id) => {
                let sp = b.span(s, e);
                let Some(anchored) = b.anchors.get(&id) else {
                    b.diags
                        .push(Diag::error("alias to an unknown anchor").at(sp, "unknown anchor"));
                    return Err(Stop::Abort);
                };
                if anchored.size > b.alias_budget {
                    b.diags.push(
                        Diag::error("aliases expand to too many nodes")
                            .at(sp, "expansion limit reached here")
                            .help("the document repeats anchors exponentially; expand it by hand"),
                    );
                    return Err(Stop::Abort);
                }
                if b.depth() + anchored.depth > MAX_DEPTH {
                    b.diags.push(
                        Diag::error(format!("YAML nesting is deeper than {MAX_DEPTH} levels"))
                            .at(sp, "this alias nests too deep"),
                    );
                    return Err(Stop::Abort);
                }
                b.alias_budget -= anchored.size;
                b.nodes += anchored.size;
                let mut node = anchored.node.clone();
                // The copy points at its definition inside; the use site on top.
                node.span = sp;
                if let Some(n) = b.deliver(node, false) {
                    root.get_or_insert(n);
                }
            }
            Event::SequenceStart(anchor, _) => {
                let first_node = b.nodes;
                b.push_frame(
                    Frame::Seq {
                        items: Vec::new(),
                        start: s,
                        anchor,
                        first_node,
                    },
                    b.span(s, e),
                )?;
            }
            Event::MappingStart(anchor, _) => {
                let first_node = b.nodes;
                let frame = Frame::Map {
                    entries: Vec::new(),
                    index: None,
                    pending: None,
                    merges: Vec::new(),
                    start: s,
                    anchor,
                    first_node,
                };
                b.push_frame(frame, b.span(s, e))?;
            }
            Event::SequenceEnd => {
                if let Some(node) = b.finish_seq((e > s).then_some(e)) {
                    if let Some(n) = b.deliver(node, false) {
                        root.get_or_insert(n);
                    }
                }
            }
            Event::MappingEnd => {
                if let Some(node) = b.finish_map((e > s).then_some(e)) {
                    if let Some(n) = b.deliver(node, false) {
                        root.get_or_insert(n);
                    }
                }
            }
        }
    }
    if let Some(sp) = ignored_doc {
        b.diags.push(
            Diag::warning("this file has more than one YAML document; only the first is used")
                .at(sp, "ignored document starts here"),
        );
    }
    Ok(root)
}

/// Keys of a map whose `<<` sources were all applied (no residue). Exposed for tests.
pub fn is_merge_key(name: &str) -> bool {
    name == MERGE_KEY
}

/// `resources[0].database.instance_name` → `["resources", "0", "database",
/// "instance_name"]`: the field paths of references and links as node pointer
/// segments.
pub fn path_segments(path: &str) -> Vec<&str> {
    path.split(['.', '[', ']'])
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Node, Diagnostics) {
        parse_file(FileId(0), text)
    }

    fn ok(text: &str) -> Node {
        let (n, d) = parse(text);
        assert!(d.is_empty(), "{:?}", d.items);
        n
    }

    fn slice<'t>(text: &'t str, n: &Node) -> &'t str {
        &text[n.span.start..n.span.end]
    }

    #[test]
    fn core_schema_scalars() {
        let n = ok("a: true\nb: 'true'\nc: 0x1F\nd: 0o17\ne: -12\nf: 1.5e3\ng: ~\nh:\ni: null\nj: .inf\nk: 1_000\nl: 99999999999999999999\nm: !!str 12\nn: \"7\"\no: FALSE\n");
        let j = n.to_json();
        assert_eq!(j["a"], true);
        assert_eq!(j["b"], "true");
        assert_eq!(j["c"], 31);
        assert_eq!(j["d"], 15);
        assert_eq!(j["e"], -12);
        assert_eq!(j["f"], 1500.0);
        assert!(j["g"].is_null() && j["h"].is_null() && j["i"].is_null());
        assert_eq!(j["k"], "1_000");
        assert_eq!(j["l"], "99999999999999999999");
        assert_eq!(j["m"], "12");
        assert_eq!(j["n"], "7");
        assert_eq!(j["o"], false);
        assert!(matches!(
            n.get("b").map(|b| &b.kind),
            Some(NodeKind::String(_, ScalarStyle::Quoted))
        ));
    }

    #[test]
    fn spans_are_byte_offsets_with_non_ascii() {
        let text = "name: \"héllo wörld\"\nnext: ünïcode\nlist:\n  - ä\n  - b\n";
        let n = ok(text);
        assert_eq!(slice(text, n.get("name").unwrap_or(&n)), "\"héllo wörld\"");
        assert_eq!(slice(text, n.get("next").unwrap_or(&n)), "ünïcode");
        let list = n.get("list").and_then(Node::as_seq).unwrap_or_default();
        assert_eq!(slice(text, &list[0]), "ä");
        let key = &n.as_map().map(|m| m.entries[1].0.clone()).unwrap_or(Key {
            name: String::new(),
            span: Span::default(),
        });
        assert_eq!(&text[key.span.start..key.span.end], "next");
        let mut sm = SourceMap::default();
        sm.add("x.yml".into(), text);
        assert_eq!(sm.line_col(list[1].span), Some((5, 5)));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let text = "base: &b\n  x: 1\n  y: 2\nother: &o\n  z: 3\nuse:\n  <<: *b\n  y: 20\nmulti:\n  <<: [*b, *o]\n  x: 10\nalias: *o\nquoted:\n  \"<<\": *b\n";
        let n = ok(text);
        let j = n.to_json();
        assert_eq!(j["use"], serde_json::json!({"x": 1, "y": 20}));
        assert_eq!(j["multi"], serde_json::json!({"x": 10, "y": 2, "z": 3}));
        assert_eq!(j["alias"], serde_json::json!({"z": 3}));
        assert_eq!(j["quoted"]["<<"], serde_json::json!({"x": 1, "y": 2}));
        // The alias's own span is its use site.
        assert_eq!(slice(text, n.get("alias").unwrap_or(&n)), "*o");
    }

    #[test]
    fn plain_value_starting_with_merge_chars_is_a_string() {
        let n = ok("host: <<fill in your workspace host>>\n");
        assert_eq!(n.to_json()["host"], "<<fill in your workspace host>>");
    }

    #[test]
    fn duplicate_keys_name_both_places() {
        let text = "a: 1\nb: 2\na: 3\n";
        let (n, d) = parse(text);
        assert_eq!(d.items.len(), 1);
        let diag = &d.items[0];
        assert!(diag.message.contains("duplicate key `a`"));
        let sp = diag.span.unwrap_or_default();
        assert_eq!((sp.start, sp.end), (10, 11));
        assert_eq!(diag.related[0].0.start, 0);
        assert_eq!(n.to_json()["a"], 1);
    }

    #[test]
    fn duplicate_keys_in_large_maps_use_the_index() {
        let mut text: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k7: again\n");
        let (_, d) = parse(&text);
        assert_eq!(d.items.len(), 1);
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_maps() {
        for text in ["", "# just a comment\n", "---\n", "\n\n"] {
            let n = ok(text);
            assert_eq!(n.to_json(), serde_json::json!({}), "{text:?}");
        }
    }

    #[test]
    fn later_documents_are_ignored_with_a_warning() {
        let (n, d) = parse("a: 1\n---\nb: 2\n");
        assert_eq!(n.to_json(), serde_json::json!({"a": 1}));
        assert_eq!(d.items.len(), 1);
        assert_eq!(d.items[0].severity, crate::diag::Severity::Warning);
    }

    #[test]
    fn syntax_errors_are_diagnostics_with_a_span() {
        let (_, d) = parse("a: [1, 2\nb: c\n");
        assert!(d.has_errors());
        assert!(d.items[0].span.is_some());
        // A flow map as a key (unquoted `{{ placeholder }}`).
        let (_, d) = parse("run_as:\n  service_principal_name: {{ sp_id }}\n");
        assert!(d.has_errors(), "{:?}", d.items);
    }

    #[test]
    fn deep_nesting_is_a_diagnostic_not_a_crash() {
        let deep = "[".repeat(100_000);
        let (_, d) = parse(&deep);
        assert!(d.has_errors());
        let block: String = (0..300)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect();
        let (_, d) = parse(&block);
        assert!(
            d.items.iter().any(|x| x.message.contains("nesting")),
            "{:?}",
            d.items
        );
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        let (_, d) = parse(&text);
        assert!(
            d.items.iter().any(|x| x.message.contains("too many")),
            "{:?}",
            d.items
        );
    }

    #[test]
    fn json_files_parse() {
        let n = ok("{\"a\": {\"b\": [1, \"x\", true, null]}}");
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a": {"b": [1, "x", true, null]}})
        );
    }
}

#[cfg(test)]
mod lenient_tests {
    use super::*;

    #[test]
    fn closing_bracket_at_key_indentation_is_accepted_with_original_spans() {
        let text = "targets:\n  prod: {\n    # nothing\n  }\n  dev:\n    default: true\n";
        let (n, d) = parse_file(FileId(0), text);
        assert!(d.is_empty(), "{:?}", d.items);
        assert_eq!(
            n.to_json(),
            serde_json::json!({"targets": {"prod": {}, "dev": {"default": true}}})
        );
        let dev = n
            .pointer(&["targets", "dev", "default"])
            .map(|x| x.span)
            .unwrap_or_default();
        assert_eq!(&text[dev.start..dev.end], "true");
    }
}
