//! Drives the real `yaml-language-server` (npm) headless over stdio with our
//! schema mapped through the `yaml.schemas` setting: the example bundles give
//! no diagnostics, and a fixture with seeded mistakes gives one diagnostic per
//! mistake, on the right line, with the expected message; every bundle of
//! the shared public corpus gets no diagnostic but its listed real defects.
//!
//! Needs `node` and `npm ci --prefix tests/lsp` (skips with a message otherwise).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "common/prereq.rs"]
mod prereq;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server_script() -> Option<PathBuf> {
    let script =
        root().join("tests/lsp/node_modules/yaml-language-server/bin/yaml-language-server");
    if !prereq::node() {
        return None;
    }
    if !script.exists() {
        prereq::skip(
            "yaml-language-server is not installed",
            "`npm ci --prefix tests/lsp` (needs Node.js and npm)",
        );
        return None;
    }
    Some(script)
}

fn file_uri(path: &Path) -> String {
    let abs = path
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("file://{}", abs.display())
}

/// A language server over stdio with LSP base-protocol framing.
struct Lsp {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    settings: Value,
}

impl Lsp {
    fn start(script: &Path, settings: Value) -> Lsp {
        let mut child = Command::new("node")
            .arg(script)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn yaml-language-server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_message(&mut reader) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        Lsp {
            child,
            stdin,
            incoming,
            next_id: 1,
            settings,
        }
    }

    fn send(&mut self, msg: &Value) {
        let body = serde_json::to_string(msg).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .expect("write to server");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and wait for its response, answering server requests
    /// and collecting diagnostics meanwhile.
    fn request(
        &mut self,
        method: &str,
        params: Value,
        diags: &mut HashMap<String, Vec<Value>>,
    ) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let msg = self
                .incoming
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("server response");
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            self.handle(msg, diags);
        }
    }

    /// Answer a server→client request; record published diagnostics.
    fn handle(&mut self, msg: Value, diags: &mut HashMap<String, Vec<Value>>) {
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        if method == "textDocument/publishDiagnostics" {
            let uri = msg["params"]["uri"].as_str().unwrap_or("").to_string();
            let list = msg["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            diags.insert(uri, list);
            return;
        }
        if let Some(id) = msg.get("id").cloned() {
            let result = if method == "workspace/configuration" {
                let items = msg["params"]["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                Value::Array(
                    items
                        .iter()
                        .map(|item| self.settings_for(item["section"].as_str()))
                        .collect(),
                )
            } else {
                Value::Null
            };
            self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
        }
    }

    fn settings_for(&self, section: Option<&str>) -> Value {
        match section {
            None => self.settings.clone(),
            Some(path) => path.split('.').fold(self.settings.clone(), |v, seg| {
                v.get(seg).cloned().unwrap_or(Value::Null)
            }),
        }
    }

    /// Wait until every uri has diagnostics and the server has been quiet a while.
    fn settle(&mut self, uris: &[String], diags: &mut HashMap<String, Vec<Value>>) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let quiet = Duration::from_millis(1500);
        loop {
            let all_in = uris.iter().all(|u| diags.contains_key(u));
            let wait = if all_in {
                quiet
            } else {
                Duration::from_millis(500)
            };
            match self.incoming.recv_timeout(wait) {
                Ok(msg) => self.handle(msg, diags),
                Err(RecvTimeoutError::Timeout) if all_in => return,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!("yaml-language-server exited"),
            }
            assert!(
                Instant::now() < deadline,
                "no diagnostics for some documents: {:?}",
                uris.iter()
                    .filter(|u| !diags.contains_key(*u))
                    .collect::<Vec<_>>()
            );
        }
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Open `files` in a fresh server with our schema mapped to all YAML files,
/// and return the settled diagnostics per file.
fn diagnostics_for(script: &Path, files: &[PathBuf]) -> Vec<(PathBuf, Vec<Value>)> {
    let schema_uri = file_uri(&root().join("schemas/bundle.schema.json"));
    let settings = json!({
        "yaml": {
            "validate": true,
            "completion": true,
            "hover": true,
            "schemaStore": {"enable": false},
            "schemas": {schema_uri: ["*.yml", "*.yaml"]},
        }
    });
    let mut lsp = Lsp::start(script, settings.clone());
    let mut diags = HashMap::new();
    let init = lsp.request(
        "initialize",
        json!({
            "processId": std::process::id(),
            "rootUri": file_uri(&root()),
            "capabilities": {"workspace": {"configuration": true}, "textDocument": {"publishDiagnostics": {}}},
        }),
        &mut diags,
    );
    assert!(init.get("result").is_some(), "initialize failed: {init}");
    lsp.notify("initialized", json!({}));
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": settings}),
    );
    let mut uris = Vec::new();
    for f in files {
        let uri = file_uri(f);
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // A `$schema` modeline would override the mapping under test (corpus
        // bundles point at the official schema's local copy, absent here);
        // blank it out, keeping line numbers.
        let text: String = text
            .lines()
            .map(|l| {
                if l.contains("yaml-language-server: $schema=") {
                    "#"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        lsp.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
        );
        uris.push(uri);
    }
    lsp.settle(&uris, &mut diags);
    files
        .iter()
        .zip(&uris)
        .map(|(f, u)| (f.clone(), diags.remove(u).unwrap_or_default()))
        .collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
            out.push(p);
        }
    }
}

fn describe(d: &Value) -> String {
    format!(
        "line {}: {}",
        d["range"]["start"]["line"].as_u64().unwrap_or(0) + 1,
        d["message"].as_str().unwrap_or("")
    )
}

#[test]
fn valid_bundles_have_no_diagnostics() {
    let Some(script) = server_script() else {
        return;
    };
    // Bundle files only: each example's root file and its `resources/` includes
    // (an app's own `app.yml` is not a bundle file).
    let mut files = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    examples.sort();
    for dir in examples {
        files.extend(
            ["databricks.yml", "databricks.yaml"]
                .map(|n| dir.join(n))
                .into_iter()
                .filter(|p| p.exists()),
        );
        yaml_files(&dir.join("resources"), &mut files);
    }
    yaml_files(&root().join("tests/lsp/fixtures/valid"), &mut files);
    assert!(
        files.len() >= 4,
        "expected the example bundles and fixtures, found {files:?}"
    );
    let results = diagnostics_for(&script, &files);
    let problems: Vec<String> = results
        .iter()
        .flat_map(|(f, ds)| {
            ds.iter().map(move |d| {
                format!(
                    "{}: {}",
                    f.strip_prefix(root()).unwrap_or(f).display(),
                    describe(d)
                )
            })
        })
        .collect();
    assert!(
        problems.is_empty(),
        "valid files got diagnostics:\n{}",
        problems.join("\n")
    );
}

/// One seeded mistake: the 1-based line and a fragment of the message.
struct Expected {
    line: u64,
    message: &'static str,
}

#[test]
fn seeded_mistakes_are_reported_on_their_lines() {
    let Some(script) = server_script() else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&root().join("tests/lsp/fixtures/mistakes"), &mut files);
    assert!(files.len() >= 2, "mistake fixtures missing: {files:?}");
    for (file, diags) in diagnostics_for(&script, &files) {
        check_seeded(&file, &diags);
    }
}

/// Every `# expect:` line of `file` got its diagnostic, and nothing else came.
fn check_seeded(file: &Path, diags: &[Value]) {
    let text = std::fs::read_to_string(file).expect("fixture");
    // The fixture marks each mistake with a trailing `# expect: <message>` comment.
    let expected: Vec<Expected> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let msg = l.split("# expect: ").nth(1)?;
            Some(Expected {
                line: i as u64 + 1,
                message: Box::leak(msg.trim().to_string().into_boxed_str()),
            })
        })
        .collect();
    assert!(expected.len() >= 3, "fixture lost its seeded mistakes");
    let got: Vec<String> = diags.iter().map(describe).collect();
    for e in &expected {
        let hit = diags.iter().any(|d| {
            d["range"]["start"]["line"].as_u64().map(|l| l + 1) == Some(e.line)
                && d["message"].as_str().unwrap_or("").contains(e.message)
        });
        assert!(
            hit,
            "{}: no diagnostic on line {} containing {:?}; got:\n{}",
            file.display(),
            e.line,
            e.message,
            got.join("\n")
        );
    }
    assert_eq!(
        diags.len(),
        expected.len(),
        "{}: unexpected extra diagnostics:\n{}",
        file.display(),
        got.join("\n")
    );
}

/// Corpus diagnostics that are true positives: a real defect of the bundle
/// (the same ones `tests/corpus.rs` lists as exceptions), by corpus-relative
/// file, 1-based line and message fragment.
const CORPUS_TRUE_POSITIVES: &[(&str, u64, &str)] = &[
    // A bool in `spark_conf` (a map of strings in the official schema too;
    // the CLI and lakebundle turn it into its text at load).
    (
        "databricks-industry-solutions__genesis-workbench__modules__genomics__parabricks__parabricks_v1/resources/parabricks_cluster.yml",
        19,
        "Incorrect type. Expected \"string\"",
    ),
    // Keys the official schema has no place for either (validate warns).
    (
        "databricks__bundle-examples__mlops_project__mlops_stacks__at_a55d96f/resources/ml-artifacts-resource.yml",
        62,
        "Property description is not allowed.",
    ),
    (
        "databricks__bundle-examples__mlops_project__mlops_stacks__at_a55d96f/resources/ml-artifacts-resource.yml",
        54,
        "Property depends_on is not allowed.",
    ),
    (
        "databricks__bundle-examples__mlops_stacks__mlops_stacks/resources/ml-artifacts-resource.yml",
        28,
        "Property description is not allowed.",
    ),
    // Secret scope ACL level VIEW: the service takes READ, WRITE or MANAGE
    // (tests/corpus_deploy.rs lists it too).
    (
        "databricks__bundle-examples__knowledge_base__job_read_secret/databricks.yml",
        12,
        "Valid values: \"READ\", \"WRITE\", \"MANAGE\"",
    ),
    // Instance name with underscores (tests/corpus.rs lists it too).
    (
        "databricks-solutions__lakebase-poc-accelerator__at_1482f43/resources/lakebase_instance.yml",
        6,
        "Instance name: 1-63 characters, a letter first, then letters, digits and hyphens.",
    ),
    // App name with an underscore (tests/corpus.rs lists it too).
    (
        "databricks__bundle-examples__knowledge_base__databricks_app/resources/job_manager.app.yml",
        4,
        "App name: lowercase letters, digits and hyphens only.",
    ),
    // `trigger: {type: cron, cron: ...}` is no trigger field (the CLI warns "unknown field").
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set1/job_2.yml",
        14,
        "Property type is not allowed.",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set1/job_2.yml",
        15,
        "Property cron is not allowed.",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set2/job_1.yml",
        14,
        "Property type is not allowed.",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set2/job_1.yml",
        15,
        "Property cron is not allowed.",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set2/job_2.yml",
        14,
        "Property type is not allowed.",
    ),
    (
        "databricks__bundle-examples__knowledge_base__target_includes/resources/set2/job_2.yml",
        15,
        "Property cron is not allowed.",
    ),
    // CLI golden outputs: `[UUID]`, `[DATABRICKS_URL]`, `[USERNAME]` placeholders are flow
    // sequences where strings belong.
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python/databricks.yml",
        31,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python/databricks.yml",
        40,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python/databricks.yml",
        47,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python/databricks.yml",
        5,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-python__classic__output__my_default_python/resources/sample_job.job.yml",
        61,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala/databricks.yml",
        17,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala/databricks.yml",
        37,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala/databricks.yml",
        45,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala/databricks.yml",
        49,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__default-scala__output__my_default_scala/databricks.yml",
        5,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__lakeflow-integrations__output__my_lakeflow_integrations/databricks.yml",
        40,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__lakeflow-integrations__output__my_lakeflow_integrations/databricks.yml",
        44,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__lakeflow-integrations__output__my_lakeflow_integrations/databricks.yml",
        48,
        r#"Expected "string"#,
    ),
    (
        "databricks__cli__acceptance__bundle__templates__lakeflow-integrations__output__my_lakeflow_integrations/databricks.yml",
        5,
        r#"Expected "string"#,
    ),

];

#[test]
fn corpus_bundles_have_no_false_positives() {
    let Some(script) = server_script() else {
        return;
    };
    let Some(shared) = prereq::shared_dir() else {
        return;
    };
    let corpus = shared.join("corpus");
    // Every bundle folder (metadata and `_invalid/` start with `_`), every YAML
    // file in it except metadata: the corpus keeps only bundle configuration.
    let mut files = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("read corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        })
        .collect();
    folders.sort();
    for dir in &folders {
        let mut found = Vec::new();
        yaml_files(dir, &mut found);
        files.extend(found.into_iter().filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('_'))
        }));
    }
    assert!(folders.len() > 50, "corpus has {} bundles", folders.len());
    let results = diagnostics_for(&script, &files);
    let mut unexpected = Vec::new();
    let mut unmatched: Vec<&(&str, u64, &str)> = CORPUS_TRUE_POSITIVES.iter().collect();
    for (f, ds) in &results {
        let rel = f.strip_prefix(&corpus).unwrap_or(f).display().to_string();
        for d in ds {
            let line = d["range"]["start"]["line"].as_u64().unwrap_or(0) + 1;
            let msg = d["message"].as_str().unwrap_or("");
            let known = CORPUS_TRUE_POSITIVES
                .iter()
                .find(|(file, l, m)| *file == rel && *l == line && msg.contains(m));
            match known {
                Some(k) => unmatched.retain(|u| !std::ptr::eq(*u, k)),
                None => unexpected.push(format!("{rel}: {}", describe(d))),
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "corpus bundles got diagnostics (false positives unless a real defect, then list it in CORPUS_TRUE_POSITIVES):\n{}",
        unexpected.join("\n")
    );
    assert!(
        unmatched.is_empty(),
        "expected corpus diagnostics that did not come: {unmatched:?}"
    );
}
