//! Bundle scripts, as the official CLI runs them.
//!
//! - `experimental.scripts`: lifecycle hooks (`preinit`, `postinit`,
//!   `prebuild`, `postbuild`, `predeploy`, `postdeploy`). Each runs with
//!   `bash -ec` (else `sh -ec`) in the bundle root, inheriting the process
//!   environment; its stdout then its stderr are copied to our stderr (stdout
//!   stays for `-o json`), announced by `Executing 'HOOK' script`. A hook
//!   that fails fails the command.
//! - top-level `scripts`: `NAME: {content, env}` run by `lakebundle run NAME`
//!   with the terminal's stdin/stdout/stderr, the workspace's auth in the
//!   environment and `DATABRICKS_BUNDLE_TARGET`; `env:` entries (which may use
//!   `${bundle.*}`, `${workspace.*}`, `${var.*}`) win. The exit code is the
//!   script's.
//!
//! `DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION` (set to anything) forbids
//! running either kind.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use indexmap::IndexMap;

use crate::config::model::Bundle;
use crate::config::source::{Node, NodeKind};
use crate::diag::{did_you_mean, Diag, Diagnostics};

/// Set (to anything) to forbid running bundle scripts.
pub const RESTRICTED_ENV: &str = "DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION";

/// A lifecycle hook of `experimental.scripts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    PreInit,
    PostInit,
    PreBuild,
    PostBuild,
    PreDeploy,
    PostDeploy,
}

impl Hook {
    pub const ALL: [Hook; 6] = [
        Hook::PreInit,
        Hook::PostInit,
        Hook::PreBuild,
        Hook::PostBuild,
        Hook::PreDeploy,
        Hook::PostDeploy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::PreInit => "preinit",
            Hook::PostInit => "postinit",
            Hook::PreBuild => "prebuild",
            Hook::PostBuild => "postbuild",
            Hook::PreDeploy => "predeploy",
            Hook::PostDeploy => "postdeploy",
        }
    }

    fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// A custom script of the top-level `scripts` map.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub content: String,
    /// `env:` entries, resolved.
    pub env: IndexMap<String, String>,
}

/// The bundle's scripts, resolved.
#[derive(Debug, Clone, Default)]
pub struct Scripts {
    pub hooks: IndexMap<Hook, String>,
    pub custom: IndexMap<String, Script>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ScriptError {
    #[error("the `{name}` script failed with exit code {code}")]
    #[diagnostic(help("its output is above; it ran with `{shell} -ec` in {dir}"))]
    Failed {
        name: String,
        code: i32,
        shell: String,
        dir: String,
    },
    #[error("the `{name}` script was killed by a signal")]
    Killed { name: String },
    #[error("cannot run the `{name}` script with {shell}: {message}")]
    #[diagnostic(help("scripts run with bash, or sh when there is no bash on PATH"))]
    Spawn {
        name: String,
        shell: String,
        message: String,
    },
    #[error("running scripts is not allowed when {RESTRICTED_ENV} is set (the `{name}` script)")]
    #[diagnostic(help("unset {RESTRICTED_ENV} to let the bundle's scripts run"))]
    Restricted { name: String },
}

/// `bash` when on PATH, else `sh` (as the CLI's executor).
fn shell() -> &'static str {
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p).any(|d| {
                let f = d.join(name);
                f.is_file()
            })
        })
    };
    if on_path("bash") {
        "bash"
    } else {
        "sh"
    }
}

fn restricted() -> bool {
    std::env::var_os(RESTRICTED_ENV).is_some()
}

fn command(content: &str, dir: &Path, env: &[(String, String)]) -> (Command, String) {
    let sh = shell();
    let mut cmd = Command::new(sh);
    cmd.arg("-ec").arg(content).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, sh.to_string())
}

fn finish(
    name: &str,
    sh: String,
    dir: &Path,
    status: std::process::ExitStatus,
) -> Result<(), ScriptError> {
    if status.success() {
        return Ok(());
    }
    match status.code() {
        Some(code) => Err(ScriptError::Failed {
            name: name.to_string(),
            code,
            shell: sh,
            dir: dir.display().to_string(),
        }),
        None => Err(ScriptError::Killed {
            name: name.to_string(),
        }),
    }
}

/// Run `hook` if the bundle defines it. `env` is added to the inherited
/// environment (e.g. `DATABRICKS_HOST` once a workspace is known).
pub fn run_hook(bundle: &Bundle, hook: Hook, env: &[(String, String)]) -> Result<(), ScriptError> {
    let Some(content) = bundle.scripts.hooks.get(&hook) else {
        return Ok(());
    };
    let name = hook.name();
    if restricted() {
        return Err(ScriptError::Restricted { name: name.into() });
    }
    eprintln!("Executing '{name}' script");
    let (mut cmd, sh) = command(content, &bundle.root, env);
    let spawn_err = |e: std::io::Error| ScriptError::Spawn {
        name: name.into(),
        shell: sh.clone(),
        message: e.to_string(),
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // stderr is drained meanwhile (a full pipe would block the hook) and shown
    // after stdout, which is the order the CLI prints them in.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = e.read_to_end(&mut buf);
            buf
        })
    });
    if let Some(out) = child.stdout.take() {
        copy_lines(out);
    }
    if let Some(buf) = stderr.and_then(|h| h.join().ok()) {
        copy_lines(&buf[..]);
    }
    let status = child.wait().map_err(spawn_err)?;
    finish(name, sh, &bundle.root, status)
}

/// Copy lines to our stderr as they come, ending the last one with a newline.
fn copy_lines(from: impl Read) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let stderr = std::io::stderr();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let mut e = stderr.lock();
                let _ = e.write_all(&line);
                let _ = e.flush();
            }
        }
    }
}

/// Run custom script `name` with the terminal's stdio; its exit code.
pub fn run_custom(
    bundle: &Bundle,
    name: &str,
    env: &[(String, String)],
) -> Result<i32, ScriptError> {
    let Some(script) = bundle.scripts.custom.get(name) else {
        return Ok(0);
    };
    if restricted() {
        return Err(ScriptError::Restricted { name: name.into() });
    }
    let mut all: Vec<(String, String)> =
        vec![("DATABRICKS_BUNDLE_TARGET".into(), bundle.target.clone())];
    all.extend(env.iter().cloned());
    // The script's own `env:` is applied last, so it wins.
    all.extend(script.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let (mut cmd, sh) = command(&script.content, &bundle.root, &all);
    let status = cmd.status().map_err(|e| ScriptError::Spawn {
        name: name.into(),
        shell: sh.clone(),
        message: e.to_string(),
    })?;
    match finish(name, sh, &bundle.root, status) {
        Ok(()) => Ok(0),
        Err(ScriptError::Failed { code, .. }) => Ok(code),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// loading

/// The reference prefixes resolved before scripts run.
const ENV_PREFIXES: &[&str] = &["bundle", "workspace", "var", "variables"];

/// Check the top-level `scripts` section (before substitution); false when
/// it has errors (and must not be substituted).
pub fn check_section(scripts: &Node, resources: Option<&Node>, diags: &mut Diagnostics) -> bool {
    let before = diags.count(crate::diag::Severity::Error);
    let Some(map) = scripts.as_map() else {
        if !matches!(scripts.kind, NodeKind::Null) {
            diags.push(
                Diag::error(format!(
                    "`scripts` must be a map, not {}",
                    scripts.type_name()
                ))
                .at(scripts.span, "not a map"),
            );
        }
        return diags.count(crate::diag::Severity::Error) == before;
    };
    for (key, script) in &map.entries {
        let name = &key.name;
        let content = script.get("content");
        match content.map(|c| (c, c.scalar_text())) {
            Some((c, Some(text))) if !text.is_empty() => {
                if crate::interp::has_ref(&text) {
                    // The first `${...}` as written (it may not be a bundle path).
                    let shown = text
                        .find("${")
                        .map(|i| {
                            let rest = &text[i..];
                            rest.find('}').map_or(rest, |j| &rest[..=j]).to_string()
                        })
                        .unwrap_or_default();
                    diags.push(
                        Diag::error(format!(
                            "Found {shown} in script {name}.content. Interpolation syntax ${{...}} is not supported in script content"
                        ))
                        .at(c.span, "interpolation in script content")
                        .help(format!(
                            "declare an environment variable in the script's `env:` (e.g. `env: {{MY_VAR: ${{var.foo}}}}`) and use it as \"$MY_VAR\" in scripts.{name}.content"
                        )),
                    );
                }
            }
            Some((c, Some(_))) => {
                diags.push(Diag::error(format!("Script {name} has no content")).at(c.span, "empty"))
            }
            Some((c, None)) if !matches!(c.kind, NodeKind::Null) => diags.push(
                Diag::error(format!(
                    "scripts.{name}.content must be a string, not {}",
                    c.type_name()
                ))
                .at(c.span, "not a string"),
            ),
            _ => diags.push(
                Diag::error(format!("Script {name} has no content"))
                    .at(key.span, "no content")
                    .help(format!(
                        "add `content: <shell commands>` under scripts.{name}"
                    )),
            ),
        }
        if let Some(m) = script.as_map() {
            for (k, _) in &m.entries {
                if !matches!(k.name.as_str(), "content" | "env") {
                    let mut d =
                        Diag::warning(format!("unknown field `{}` in scripts.{name}", k.name))
                            .at(k.span, "unknown field");
                    if let Some(s) = did_you_mean(&k.name, ["content", "env"]) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    diags.push(d);
                }
            }
        }
        match script.get("env").map(|e| (e, e.as_map())) {
            None => {}
            Some((_, Some(env))) => {
                for (k, v) in &env.entries {
                    let Some(text) = v.scalar_text() else {
                        diags.push(
                            Diag::error(format!(
                                "scripts.{name}.env.{} must be a string, not {}",
                                k.name,
                                v.type_name()
                            ))
                            .at(v.span, "not a string"),
                        );
                        continue;
                    };
                    for path in crate::interp::ref_paths(&text) {
                        let head = path.split(['.', '[']).next().unwrap_or("");
                        if !ENV_PREFIXES.contains(&head) {
                            diags.push(
                                Diag::error(format!(
                                    "${{{path}}} cannot be used in scripts.{name}.env.{}; only ${{bundle.*}}, ${{workspace.*}}, and ${{var.*}} are resolved before scripts execute",
                                    k.name
                                ))
                                .at(v.span, "not resolvable before the script runs"),
                            );
                        }
                    }
                }
            }
            Some((e, None)) if matches!(e.kind, NodeKind::Null) => {}
            Some((e, None)) => diags.push(
                Diag::error(format!(
                    "scripts.{name}.env must be a map, not {}",
                    e.type_name()
                ))
                .at(e.span, "not a map"),
            ),
        }
        // `run NAME` must name one thing.
        for (kind, items) in resources
            .and_then(Node::as_map)
            .map(|m| m.entries.as_slice())
            .unwrap_or(&[])
        {
            if let Some((rk, _)) = items.as_map().and_then(|m| m.get_entry(name)) {
                diags.push(
                    Diag::error(format!(
                        "multiple resources or scripts have been defined with the same key: {name}"
                    ))
                    .at(key.span, format!("scripts.{name}"))
                    .related(rk.span, format!("resources.{}.{name}", kind.name))
                    .help("rename the script or the resource: `lakebundle run` takes one key"),
                );
            }
        }
    }
    diags.count(crate::diag::Severity::Error) == before
}

/// Check `experimental.scripts` (before substitution).
pub fn check_hooks(tree: &Node, diags: &mut Diagnostics) {
    let Some(hooks) = tree.pointer(&["experimental", "scripts"]) else {
        return;
    };
    let Some(map) = hooks.as_map() else {
        if !matches!(hooks.kind, NodeKind::Null) {
            diags.push(
                Diag::error(format!(
                    "experimental.scripts must be a map of hook to command, not {}",
                    hooks.type_name()
                ))
                .at(hooks.span, "not a map"),
            );
        }
        return;
    };
    let names = Hook::ALL.map(Hook::name);
    for (k, v) in &map.entries {
        if Hook::from_name(&k.name).is_none() {
            let mut d = Diag::warning(format!(
                "experimental.scripts.{} is not a hook and is ignored",
                k.name
            ))
            .at(k.span, "unknown hook");
            d = match did_you_mean(&k.name, names) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("hooks are: {}", names.join(", "))),
            };
            diags.push(d);
        } else if v.scalar_text().is_none() && !matches!(v.kind, NodeKind::Null) {
            diags.push(
                Diag::error(format!(
                    "experimental.scripts.{} must be a command string, not {}",
                    k.name,
                    v.type_name()
                ))
                .at(v.span, "not a string"),
            );
        }
    }
}

/// The scripts of the resolved tree (after [`check_section`] and
/// [`check_hooks`] passed).
pub fn from_tree(tree: &Node) -> Scripts {
    let mut out = Scripts::default();
    if let Some(m) = tree
        .pointer(&["experimental", "scripts"])
        .and_then(Node::as_map)
    {
        for (k, v) in &m.entries {
            if let (Some(h), Some(cmd)) = (Hook::from_name(&k.name), v.scalar_text()) {
                if !cmd.trim().is_empty() {
                    out.hooks.insert(h, cmd);
                }
            }
        }
    }
    if let Some(m) = tree.get("scripts").and_then(Node::as_map) {
        for (k, v) in &m.entries {
            let content = v
                .get("content")
                .and_then(Node::scalar_text)
                .unwrap_or_default();
            let env = v
                .get("env")
                .and_then(Node::as_map)
                .map(|e| {
                    e.entries
                        .iter()
                        .filter_map(|(k, v)| v.scalar_text().map(|s| (k.name.clone(), s)))
                        .collect()
                })
                .unwrap_or_default();
            out.custom.insert(k.name.clone(), Script { content, env });
        }
    }
    out
}
