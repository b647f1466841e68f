//! `python:` bundles: resources and mutators written in Python with the
//! `databricks-bundles` package, run the way the official CLI runs them.
//!
//! The loader calls [`run_in_loader`] once the target is merged and the
//! variable values are chosen, before presets and substitution: resources the
//! Python code adds are then prefixed, resolved and checked like YAML ones.
//! For each phase with entry points (`python.resources`, then
//! `python.mutators`) it runs `python -m databricks.bundles.build` in the
//! bundle root (see [`protocol`]), maps the package's diagnostics to ours
//! and merges the output back into the tree: values Python did not touch
//! keep their YAML spans, values it added or changed point at the `.py`
//! line the package reports for them.

pub mod diagnostics;
pub mod protocol;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use crate::config::source::{Key, Map, Node, NodeKind, SourceMap, Span};
use crate::diag::{did_you_mean, Diag, Diagnostics};
use crate::interp::resolve::{Context, Resolver, VarSource};

use diagnostics::PyFiles;
use protocol::{PathLocation, Phase};

/// Set (to anything) to refuse running the bundle's code, as in the CLI.
pub const RESTRICTED_ENV: &str = "DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION";
/// Seconds a phase may run before it is stopped (default [`DEFAULT_TIMEOUT`]).
pub const TIMEOUT_ENV: &str = "LAKEBUNDLE_PYTHON_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Lines of the process's output shown when it fails without diagnostics.
const TAIL_LINES: usize = 30;

const CONF_KEYS: &[&str] = &["venv_path", "resources", "mutators"];
const INSTALL_HINT: &str = "pip install databricks-bundles";

/// What the loader knows when Python runs.
pub struct Inputs<'a> {
    /// The bundle root (the process's working directory).
    pub root: &'a Path,
    pub target: &'a str,
    /// Chosen variable values (they may still hold references).
    pub vars: &'a IndexMap<String, VarSource>,
    /// The loader's environment snapshot.
    pub env: &'a HashMap<String, String>,
}

/// The `python` section (or the older `experimental.python`).
#[derive(Debug, Default)]
struct Conf {
    /// Span of the section's key, for diagnostics about the whole section.
    span: Span,
    venv_path: Option<(String, Span)>,
    resources: Vec<(String, Span)>,
    mutators: Vec<(String, Span)>,
}

/// Run the bundle's Python resources and mutators and merge what they
/// produce into `tree`. Problems become diagnostics; on an error the tree
/// keeps what the earlier phases added.
pub fn run_in_loader(
    tree: &mut Node,
    inputs: &Inputs<'_>,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) {
    let Some(conf) = read_conf(tree, diags) else {
        return;
    };
    let mut phases = Vec::new();
    if !conf.resources.is_empty() {
        phases.push(Phase::LoadResources);
    }
    if !conf.mutators.is_empty() {
        phases.push(Phase::ApplyMutators);
    }
    if phases.is_empty() {
        return;
    }
    if inputs.env.contains_key(RESTRICTED_ENV) {
        diags.push(
            Diag::error(format!(
                "running Python code is not allowed when {RESTRICTED_ENV} is set"
            ))
            .at(conf.span, "this section runs Python code")
            .help(format!(
                "unset {RESTRICTED_ENV} to load the bundle's Python resources and mutators"
            )),
        );
        return;
    }
    let python = match interpreter(&conf, inputs.root) {
        Ok(p) => p,
        Err(d) => {
            diags.push(*d);
            return;
        }
    };
    let timeout = inputs
        .env
        .get(TIMEOUT_ENV)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    // Shown relative to the bundle root, as the user wrote `venv_path`.
    let shown = python
        .strip_prefix(inputs.root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| python.clone());
    let values = variable_values(tree, inputs.vars);
    let mut files = PyFiles::new(inputs.root, sources);
    for phase in phases {
        let entry_span = match phase {
            Phase::LoadResources => conf.resources.first(),
            Phase::ApplyMutators => conf.mutators.first(),
        }
        .map(|(_, s)| *s)
        .unwrap_or(conf.span);
        let input = input_json(tree, inputs.target, &values);
        let run = match run_phase_once(&python, phase, &input, inputs.root, timeout) {
            Ok(r) => r,
            Err(e) => {
                diags.push(e.into_diag(&shown, entry_span));
                return;
            }
        };
        let mut failed = false;
        for d in &run.diagnostics {
            failed |= d.is_error();
            diags.push(diagnostics::to_diag(d, tree, &mut files, entry_span));
        }
        if failed {
            return;
        }
        if run.code != 0 {
            diags.push(
                RunError::Failed {
                    status: format!("exit status {}", run.code),
                    output: run.tail,
                }
                .into_diag(&shown, entry_span),
            );
            return;
        }
        let Some(output) = run.output else {
            diags.push(
                RunError::BadOutput {
                    message: "it wrote no output file".into(),
                }
                .into_diag(&shown, entry_span),
            );
            return;
        };
        let mut locs = HashMap::new();
        for l in &run.locations {
            if let Some(span) = files.span(&l.location) {
                locs.insert(l.path.clone(), span);
            }
        }
        let cx = MergeCx {
            phase,
            locs: &locs,
            fallback: entry_span,
        };
        if let Err(d) = merge_resources(tree, &output, &cx) {
            diags.push(*d);
            return;
        }
    }
}

fn read_conf(tree: &Node, diags: &mut Diagnostics) -> Option<Conf> {
    let top = tree.as_map()?;
    let current = top.get_entry("python");
    let legacy = tree
        .get("experimental")
        .and_then(Node::as_map)
        .and_then(|m| m.get_entry("python"));
    let is_set = |n: &Node| !matches!(&n.kind, NodeKind::Null);
    let (key, node) = match (
        current.filter(|(_, n)| is_set(n)),
        legacy.filter(|(_, n)| is_set(n)),
    ) {
        (Some(c), Some(l)) if c.1.to_json() != l.1.to_json() => {
            diags.push(
                Diag::error("`experimental.python` and `python` are mutually exclusive")
                    .at(l.0.span, "older section")
                    .related(c.0.span, "current section")
                    .help("move everything to `python` and delete `experimental.python`"),
            );
            return None;
        }
        (Some(c), _) => c,
        (None, Some(l)) => l,
        (None, None) => return None,
    };
    let Some(map) = node.as_map() else {
        diags.push(
            Diag::error(format!("`{}` must be a map", key.name))
                .at(node.span, "not a map")
                .help(
                    "python:\n  venv_path: .venv\n  resources:\n    - \"resources:load_resources\"",
                ),
        );
        return None;
    };
    let mut conf = Conf {
        span: key.span,
        ..Conf::default()
    };
    let mut ok = true;
    for (k, v) in &map.entries {
        match k.name.as_str() {
            "venv_path" => match v.as_str() {
                Some(s) if !s.trim().is_empty() => conf.venv_path = Some((s.to_string(), v.span)),
                Some(_) => {}
                None if matches!(v.kind, NodeKind::Null) => {}
                None => {
                    ok = false;
                    diags.push(
                        Diag::error("`python.venv_path` must be a path")
                            .at(v.span, format!("{}, not a path", v.type_name())),
                    );
                }
            },
            "resources" | "mutators" => {
                let list = entry_points(&k.name, v, diags);
                ok &= list.is_some();
                let list = list.unwrap_or_default();
                if k.name == "resources" {
                    conf.resources = list;
                } else {
                    conf.mutators = list;
                }
            }
            other => {
                let d = Diag::warning(format!("unknown key `{other}` in `python`, ignored"))
                    .at(k.span, "unknown key");
                diags.push(match did_you_mean(other, CONF_KEYS.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("`python` takes {}", CONF_KEYS.join(", "))),
                });
            }
        }
    }
    ok.then_some(conf)
}

/// `["module:function", ...]`, each checked the way the package splits it.
fn entry_points(name: &str, v: &Node, diags: &mut Diagnostics) -> Option<Vec<(String, Span)>> {
    if matches!(v.kind, NodeKind::Null) {
        return Some(vec![]);
    }
    let Some(items) = v.as_seq() else {
        diags.push(
            Diag::error(format!(
                "`python.{name}` must be a list of \"module:function\""
            ))
            .at(v.span, format!("{}, not a list", v.type_name())),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let valid = item.as_str().filter(|s| {
            let mut parts = s.split(':');
            let (m, f) = (parts.next().unwrap_or_default(), parts.next());
            parts.next().is_none()
                && !m.trim().is_empty()
                && f.is_some_and(|f| !f.trim().is_empty())
        });
        match valid {
            Some(s) => out.push((s.to_string(), item.span)),
            None => {
                ok = false;
                diags.push(
                    Diag::error(format!(
                        "an entry of `python.{name}` must be \"module:function\""
                    ))
                    .at(item.span, "not \"module:function\"")
                    .help(format!(
                        "name a function in a module of the bundle, e.g. \"{}\"",
                        if name == "resources" {
                            "resources:load_resources"
                        } else {
                            "mutators:add_tags"
                        }
                    )),
                );
            }
        }
    }
    ok.then_some(out)
}

/// The venv's interpreter, or `python3` from PATH without `venv_path`.
fn interpreter(conf: &Conf, root: &Path) -> Result<PathBuf, Box<Diag>> {
    let Some((venv, span)) = &conf.venv_path else {
        return Ok(PathBuf::from(if cfg!(windows) {
            "python"
        } else {
            "python3"
        }));
    };
    let dir = root.join(venv);
    let exe = if cfg!(windows) {
        dir.join("Scripts").join("python.exe")
    } else {
        dir.join("bin").join("python")
    };
    if exe.is_file() {
        return Ok(exe);
    }
    let shown = Path::new(venv).join(exe.strip_prefix(&dir).unwrap_or(&exe));
    Err(Box::new(
        Diag::error(format!(
            "no Python interpreter in the virtual environment `{venv}` ({} does not exist)",
            shown.display()
        ))
        .at(*span, "relative to the bundle root")
        .help(format!(
            "create it in the bundle root: `python3 -m venv {venv} && {venv}/bin/pip install databricks-bundles`"
        )),
    ))
}

/// `variables.<name>.value` for Python's `Bundle.variables`: each chosen
/// value with references between variables resolved (resource references
/// and unknown ones stay as text, as the CLI leaves them at this point).
fn variable_values(tree: &Node, vars: &IndexMap<String, VarSource>) -> IndexMap<String, Value> {
    let output_fields = HashMap::new();
    let mut resolver = Resolver::new(Context {
        tree,
        vars,
        user_known: false,
        output_fields: &output_fields,
        texts: &[],
    });
    vars.keys()
        .filter_map(|name| {
            let v = resolver.variable_value(name, Span::synthetic())?;
            Some((name.clone(), v.to_json()))
        })
        .collect()
}

fn input_json(tree: &Node, target: &str, values: &IndexMap<String, Value>) -> Value {
    let mut input = tree.to_json();
    if let Some(obj) = input.as_object_mut() {
        let bundle = obj
            .entry("bundle")
            .or_insert_with(|| Value::Object(Default::default()));
        if !bundle.is_object() {
            *bundle = Value::Object(Default::default());
        }
        if let Some(b) = bundle.as_object_mut() {
            b.insert("target".into(), Value::String(target.into()));
        }
        if let Some(vars) = obj.get_mut("variables").and_then(Value::as_object_mut) {
            for (name, decl) in vars.iter_mut() {
                if let (Some(d), Some(v)) = (decl.as_object_mut(), values.get(name)) {
                    d.insert("value".into(), v.clone());
                }
            }
        }
    }
    input
}

/// Why a phase produced nothing usable.
#[derive(Debug, Clone, thiserror::Error)]
enum RunError {
    #[error("cannot run Python ({python}): {message}")]
    Spawn { python: String, message: String },
    #[error("cannot prepare the files for Python: {0}")]
    Io(String),
    #[error("the Python at {python} cannot import the `databricks.bundles` package")]
    PackageMissing { python: String },
    #[error("Python did not finish within {secs} s and was stopped")]
    Timeout { secs: u64 },
    #[error("Python stopped with {status}")]
    Failed { status: String, output: String },
    #[error("Python wrote an unreadable result: {message}")]
    BadOutput { message: String },
}

impl RunError {
    fn into_diag(self, python: &Path, span: Span) -> Diag {
        let py = python.display();
        let help = match &self {
            RunError::Spawn { .. } if python.components().count() == 1 => format!(
                "install Python 3.10 or later and `{INSTALL_HINT}`, or set `python.venv_path` to a virtual environment that has it"
            ),
            RunError::Spawn { .. } => format!("check the virtual environment; `{py} -m pip install databricks-bundles`"),
            RunError::Io(_) => "check that the temporary directory is writable (TMPDIR)".into(),
            RunError::PackageMissing { .. } => format!("install it into that environment: `{py} -m {INSTALL_HINT}`"),
            RunError::Timeout { .. } => format!(
                "a resource function or mutator does not return; set {TIMEOUT_ENV} (seconds) if it needs longer"
            ),
            RunError::Failed { output, .. } if output.is_empty() => {
                "it printed nothing; run `python -m databricks.bundles.build` by hand to see why".into()
            }
            RunError::Failed { output, .. } => format!("its output ends with:\n{output}"),
            RunError::BadOutput { .. } => format!(
                "the `databricks-bundles` package may be too old or too new; `{py} -m pip install -U databricks-bundles`"
            ),
        };
        Diag::error(self.to_string())
            .at(span, "while running this Python code")
            .help(help)
    }
}

#[derive(Debug, Clone)]
struct Run {
    code: i32,
    output: Option<Value>,
    diagnostics: Vec<protocol::Diagnostic>,
    locations: Vec<PathLocation>,
    /// The last lines of stderr (else stdout).
    tail: String,
}

/// A fresh private directory for the exchange files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "lakebundle-python-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Results by interpreter, phase and exact input. Workspace commands load
/// the bundle twice in one process (before and after the current user is
/// known) and the input Python sees is the same both times: the code runs
/// once per command, as in the CLI (a hang costs one timeout, not two).
type RunCache =
    std::sync::Mutex<HashMap<(PathBuf, PathBuf, &'static str, String), Result<Run, RunError>>>;

fn run_phase_once(
    python: &Path,
    phase: Phase,
    input: &Value,
    root: &Path,
    timeout: Duration,
) -> Result<Run, RunError> {
    static CACHE: std::sync::OnceLock<RunCache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (
        root.to_path_buf(),
        python.to_path_buf(),
        phase.arg(),
        input.to_string(),
    );
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return hit.clone();
    }
    let result = run_phase(python, phase, input, root, timeout);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, result.clone());
    result
}

fn run_phase(
    python: &Path,
    phase: Phase,
    input: &Value,
    root: &Path,
    timeout: Duration,
) -> Result<Run, RunError> {
    let io = |e: std::io::Error| RunError::Io(e.to_string());
    let scratch = Scratch::new().map_err(io)?;
    let file = |name: &str| scratch.0.join(name);
    let body = serde_json::to_vec(input).map_err(|e| RunError::Io(e.to_string()))?;
    std::fs::write(file("input.json"), body).map_err(io)?;
    // Output goes to files, not pipes: a chatty function cannot fill a pipe
    // and block, and nothing is left to drain after a kill.
    let stdout = std::fs::File::create(file("stdout")).map_err(io)?;
    let stderr = std::fs::File::create(file("stderr")).map_err(io)?;
    let mut child = Command::new(python)
        .args(["-m", "databricks.bundles.build", "--phase", phase.arg()])
        .arg("--input")
        .arg(file("input.json"))
        .arg("--output")
        .arg(file("output.json"))
        .arg("--diagnostics")
        .arg(file("diagnostics.json"))
        .arg("--locations")
        .arg(file("locations.json"))
        .current_dir(root)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| RunError::Spawn {
            python: shown_python(python, root),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                "not found".into()
            } else {
                e.to_string()
            },
        })?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(s) => s,
        Err(_) => {
            kill(pid);
            let _ = waiter.join();
            return Err(RunError::Timeout {
                secs: timeout.as_secs(),
            });
        }
    };
    let _ = waiter.join();
    let status = status.map_err(io)?;
    let read = |name: &str| std::fs::read_to_string(file(name)).ok();
    let err_text = read("stderr").unwrap_or_default();
    let out_text = read("stdout").unwrap_or_default();
    let diagnostics = match read("diagnostics.json") {
        Some(t) => protocol::parse_lines(&t).map_err(|m| RunError::BadOutput {
            message: format!("diagnostics file, {m}"),
        })?,
        None => vec![],
    };
    let locations = match read("locations.json") {
        Some(t) => protocol::parse_lines(&t).map_err(|m| RunError::BadOutput {
            message: format!("locations file, {m}"),
        })?,
        None => vec![],
    };
    let Some(code) = status.code() else {
        return Err(RunError::Failed {
            status: "a signal".into(),
            output: tail(&err_text),
        });
    };
    if code != 0 && diagnostics.is_empty() && is_package_missing(&err_text) {
        return Err(RunError::PackageMissing {
            python: shown_python(python, root),
        });
    }
    let output = match read("output.json") {
        Some(t) if code == 0 => {
            Some(serde_json::from_str(&t).map_err(|e| RunError::BadOutput {
                message: format!("output file: {e}"),
            })?)
        }
        _ => None,
    };
    Ok(Run {
        code,
        output,
        diagnostics,
        locations,
        tail: if err_text.trim().is_empty() {
            tail(&out_text)
        } else {
            tail(&err_text)
        },
    })
}

fn shown_python(python: &Path, root: &Path) -> String {
    python
        .strip_prefix(root)
        .unwrap_or(python)
        .display()
        .to_string()
}

/// `python -m` names the module it cannot find on stderr.
fn is_package_missing(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.contains("No module named")
            && (l.contains("'databricks'")
                || l.contains("databricks.bundles")
                || l.contains("databricks;"))
    })
}

#[cfg(unix)]
fn kill(pid: u32) {
    // SAFETY: plain kill(2) on the child we spawned and have not reaped yet.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

#[cfg(not(unix))]
fn kill(pid: u32) {
    let _ = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.to_string()])
        .status();
}

struct MergeCx<'a> {
    phase: Phase,
    /// Dotted path → where Python defined or changed it.
    locs: &'a HashMap<String, Span>,
    /// For values with no location of their own.
    fallback: Span,
}

impl MergeCx<'_> {
    /// The location of the deepest recorded prefix of `path`.
    fn span_for(&self, path: &str) -> Span {
        let mut p = path;
        loop {
            if let Some(s) = self.locs.get(p) {
                return *s;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.fallback,
            }
        }
    }
}

/// Empty maps and lists: the package omits them on output, which is no change.
fn is_empty_value(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Null => true,
        NodeKind::Map(m) => m.is_empty(),
        NodeKind::Seq(s) => s.is_empty(),
        _ => false,
    }
}

/// Whether `node` holds exactly `value` (spans aside).
fn same(node: &Node, value: &Value) -> bool {
    match (&node.kind, value) {
        (NodeKind::Map(m), Value::Object(o)) => {
            m.entries.iter().all(|(k, v)| match o.get(&k.name) {
                Some(x) => same(v, x),
                None => is_empty_value(v),
            }) && o.keys().all(|k| m.get(k).is_some())
        }
        (NodeKind::Seq(s), Value::Array(a)) => {
            s.len() == a.len() && s.iter().zip(a).all(|(n, v)| same(n, v))
        }
        (NodeKind::Float(f), Value::Number(n)) => n.as_f64() == Some(*f),
        _ => node.to_json() == *value,
    }
}

/// `old` changed to `new`: untouched parts keep their nodes (and spans),
/// new and changed parts get the span Python reports for them.
fn merge_node(old: &Node, new: &Value, path: &str, cx: &MergeCx<'_>) -> Node {
    if same(old, new) {
        return old.clone();
    }
    match (&old.kind, new) {
        (NodeKind::Map(m), Value::Object(o)) => {
            let mut out = Map::default();
            for (k, v) in &m.entries {
                let sub = format!("{path}.{}", k.name);
                match o.get(&k.name) {
                    Some(x) => out.entries.push((k.clone(), merge_node(v, x, &sub, cx))),
                    // Omitted empty values are kept as written (no change).
                    None if is_empty_value(v) => out.entries.push((k.clone(), v.clone())),
                    None => {}
                }
            }
            for (k, x) in o {
                if m.get(k).is_none() {
                    let sub = format!("{path}.{k}");
                    let span = cx.span_for(&sub);
                    out.entries.push((
                        Key {
                            name: k.clone(),
                            span,
                        },
                        Node::from_json(x, span),
                    ));
                }
            }
            Node::new(NodeKind::Map(out), old.span)
        }
        (NodeKind::Seq(items), Value::Array(a)) => {
            let merged = a
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let sub = format!("{path}[{i}]");
                    match items.get(i) {
                        Some(n) => merge_node(n, x, &sub, cx),
                        None => Node::from_json(x, cx.span_for(&sub)),
                    }
                })
                .collect();
            Node::new(NodeKind::Seq(merged), old.span)
        }
        _ => Node::from_json(new, cx.span_for(path)),
    }
}

/// Merge the `resources` of the package's output into the tree, with the
/// CLI's rules: resource functions only add resources, mutators only change
/// existing ones.
fn merge_resources(tree: &mut Node, output: &Value, cx: &MergeCx<'_>) -> Result<(), Box<Diag>> {
    let Some(out_kinds) = output.get("resources").and_then(Value::as_object) else {
        return Ok(());
    };
    let Some(root) = tree.as_map_mut() else {
        return Ok(());
    };
    if root
        .get("resources")
        .is_none_or(|n| !matches!(n.kind, NodeKind::Map(_)))
    {
        root.insert(
            Key {
                name: "resources".into(),
                span: cx.fallback,
            },
            Node::new(NodeKind::Map(Map::default()), cx.fallback),
        );
    }
    let Some(kinds) = root.get_mut("resources").and_then(Node::as_map_mut) else {
        return Ok(());
    };
    for (kind, out_items) in out_kinds {
        let Some(out_items) = out_items.as_object() else {
            continue;
        };
        if kinds
            .get(kind)
            .is_none_or(|n| !matches!(n.kind, NodeKind::Map(_)))
        {
            if out_items.is_empty() {
                continue;
            }
            let span = cx.span_for(&format!("resources.{kind}"));
            kinds.insert(
                Key {
                    name: kind.clone(),
                    span,
                },
                Node::new(NodeKind::Map(Map::default()), span),
            );
        }
        let Some(items) = kinds.get_mut(kind).and_then(Node::as_map_mut) else {
            continue;
        };
        if cx.phase == Phase::ApplyMutators {
            if let Some((k, _)) = items
                .entries
                .iter()
                .find(|(k, _)| !out_items.contains_key(&k.name))
            {
                return Err(Box::new(
                    Diag::error(format!(
                        "a Python mutator removed the resource `{kind}.{}`",
                        k.name
                    ))
                    .at(k.span, "removed by a mutator")
                    .help("mutators may only change resources; remove it from the bundle instead"),
                ));
            }
        }
        for (name, value) in out_items {
            let path = format!("resources.{kind}.{name}");
            match (items.get_entry(name), cx.phase) {
                (None, Phase::LoadResources) => {
                    let span = cx.span_for(&path);
                    items.entries.push((
                        Key {
                            name: name.clone(),
                            span,
                        },
                        Node::from_json(value, span),
                    ));
                }
                (None, Phase::ApplyMutators) => {
                    return Err(Box::new(
                        Diag::error(format!(
                            "a Python mutator added the resource `{kind}.{name}`"
                        ))
                        .at(cx.span_for(&path), "added here")
                        .help("mutators may only change existing resources; add resources in a function listed in `python.resources`"),
                    ));
                }
                (Some((k, old)), Phase::LoadResources) => {
                    if !same(old, value) {
                        return Err(Box::new(
                            Diag::error(format!(
                                "the resource `{kind}.{name}` is defined in YAML and again by Python"
                            ))
                            .at(cx.span_for(&path), "defined by Python")
                            .related(k.span, "defined in YAML")
                            .help("resource keys are unique in a bundle: rename one of them"),
                        ));
                    }
                }
                (Some(_), Phase::ApplyMutators) => {
                    if let Some(slot) = items.get_mut(name) {
                        *slot = merge_node(slot, value, &path, cx);
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};

    fn tree(yaml: &str) -> Node {
        let (n, d) = parse_file(FileId(0), yaml);
        assert!(!d.has_errors());
        n
    }

    #[test]
    fn mutated_values_point_at_python_and_untouched_ones_keep_yaml_spans() {
        let mut t = tree("resources:\n  jobs:\n    a:\n      name: A\n      tasks: []\n");
        let name_span = t.pointer(&["resources", "jobs", "a", "name"]).unwrap().span;
        let py = Span::new(FileId(1), 5, 9);
        let locs = HashMap::from([("resources.jobs.a".to_string(), py)]);
        let cx = MergeCx {
            phase: Phase::ApplyMutators,
            locs: &locs,
            fallback: Span::synthetic(),
        };
        let out =
            serde_json::json!({"resources": {"jobs": {"a": {"name": "A", "tags": {"t": "1"}}}}});
        merge_resources(&mut t, &out, &cx).unwrap();
        let job = t.pointer(&["resources", "jobs", "a"]).unwrap();
        assert_eq!(job.get("name").unwrap().span, name_span);
        assert_eq!(job.get("tags").unwrap().span, py);
        // `tasks: []` omitted by Python is no change.
        assert!(job.get("tasks").is_some());
    }

    #[test]
    fn resource_functions_cannot_redefine_yaml_resources_and_mutators_cannot_add() {
        let mut t = tree("resources:\n  jobs:\n    a:\n      name: A\n");
        let locs = HashMap::new();
        let load = MergeCx {
            phase: Phase::LoadResources,
            locs: &locs,
            fallback: Span::synthetic(),
        };
        let redefined = serde_json::json!({"resources": {"jobs": {"a": {"name": "B"}}}});
        let d = merge_resources(&mut t, &redefined, &load).unwrap_err();
        assert!(
            d.message.contains("defined in YAML and again by Python"),
            "{}",
            d.message
        );
        let mutate = MergeCx {
            phase: Phase::ApplyMutators,
            ..load
        };
        let added =
            serde_json::json!({"resources": {"jobs": {"a": {"name": "A"}, "b": {"name": "B"}}}});
        let d = merge_resources(&mut t, &added, &mutate).unwrap_err();
        assert!(
            d.message.contains("added the resource `jobs.b`"),
            "{}",
            d.message
        );
        let removed = serde_json::json!({"resources": {"jobs": {}}});
        let d = merge_resources(&mut t, &removed, &mutate).unwrap_err();
        assert!(
            d.message.contains("removed the resource `jobs.a`"),
            "{}",
            d.message
        );
    }

    #[test]
    fn conflicting_python_sections_are_an_error() {
        let t = tree(
            "python:\n  resources: [\"a:b\"]\nexperimental:\n  python:\n    resources: [\"a:c\"]\n",
        );
        let mut d = Diagnostics::default();
        assert!(read_conf(&t, &mut d).is_none());
        assert!(d.items[0].message.contains("mutually exclusive"));
        let t = tree("python:\n  resources: [\"nocolon\"]\n  venv_pth: x\n");
        let mut d = Diagnostics::default();
        assert!(read_conf(&t, &mut d).is_none());
        let msgs: Vec<&str> = d.items.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.iter().any(|m| m.contains("\"module:function\"")),
            "{msgs:?}"
        );
        assert!(d
            .items
            .iter()
            .any(|d| d.help.as_deref() == Some("did you mean `venv_path`?")));
    }

    #[test]
    fn recognises_a_missing_package() {
        assert!(is_package_missing(
            "/usr/bin/python3: Error while finding module specification for 'databricks.bundles.build' (ModuleNotFoundError: No module named 'databricks')"
        ));
        assert!(is_package_missing(
            "/v/bin/python: No module named databricks.bundles.build"
        ));
        assert!(!is_package_missing(
            "ModuleNotFoundError: No module named 'pandas'"
        ));
    }
}
