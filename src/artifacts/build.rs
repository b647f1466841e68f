//! Running artifact builds (`deploy` only) and resolving their `files`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{parse, Artifact, EXECUTABLES};
use crate::config::model::Bundle;

/// Lines of build output kept in an error.
const TAIL_LINES: usize = 20;

/// A file an artifact produced, ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    pub artifact: String,
    /// Absolute local path.
    pub local: PathBuf,
    /// Path relative to the bundle root for messages (absolute when outside).
    pub shown: String,
}

impl BuiltFile {
    pub fn file_name(&self) -> String {
        self.local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error("artifact {name}: {executable:?} is not supported as an artifact executable, options are: bash, sh or cmd")]
    #[diagnostic(help("set `executable` to bash, sh or cmd"))]
    Executable { name: String, executable: String },
    #[error("artifact {name}: the build directory {} does not exist", path.display())]
    #[diagnostic(help("`path` is relative to the YAML file that defines the artifact"))]
    NoDir { name: String, path: PathBuf },
    #[error("artifact {name}: cannot run `{command}`: {source}")]
    #[diagnostic(help("{hint}"))]
    Spawn {
        name: String,
        command: String,
        hint: String,
        source: std::io::Error,
    },
    #[error("building artifact {name} failed: `{command}` exited with {status}{tail}")]
    #[diagnostic(help("fix the build (run it yourself in {dir}), then deploy again"))]
    Failed {
        name: String,
        command: String,
        status: String,
        dir: String,
        /// The end of the build's output, on its own lines.
        tail: String,
    },
    #[error("artifact {name}: {pattern} matches no file after the build")]
    #[diagnostic(help(
        "check the artifact's `files` (relative to its YAML file) against where the build writes"
    ))]
    NoMatch { name: String, pattern: String },
    #[error("artifact {name}: cannot clean {}: {source}", path.display())]
    Clean {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("artifact {name}: dynamic_version: {source}")]
    #[diagnostic(help("dynamic_version patches wheels only; check the artifact's `files`"))]
    Patch {
        name: String,
        source: super::dynamic::PatchError,
    },
    #[error("two artifact files have the same name {file}: {first} and {second}")]
    #[diagnostic(help(
        "uploaded files share one folder, `${{workspace.artifact_path}}/.internal`: give the packages distinct names or versions"
    ))]
    Duplicate {
        file: String,
        first: String,
        second: String,
    },
}

/// Existing files matching an absolute glob, sorted.
pub fn glob_files(pattern: &Path) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(&pattern.to_string_lossy()) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The program and arguments an artifact's build runs.
fn command_for(art: &Artifact) -> Result<Option<(String, Vec<String>, String)>, BuildError> {
    if let Some(script) = &art.build {
        let exe = match art.executable.as_deref() {
            Some(e) => e,
            // bash as the CLI does; sh where there is no bash.
            None if on_path("bash") => "bash",
            None => "sh",
        };
        if !EXECUTABLES.contains(&exe) {
            return Err(BuildError::Executable {
                name: art.name.clone(),
                executable: exe.to_string(),
            });
        }
        // `-e`: a failing line fails the build, as with the official CLI.
        let (prog, args) = match exe {
            "cmd" => ("cmd", vec!["/d".into(), "/c".into(), script.clone()]),
            sh => (sh, vec!["-e".into(), "-c".into(), script.clone()]),
        };
        return Ok(Some((prog.to_string(), args, script.clone())));
    }
    if art.is_whl() {
        return Ok(Some(if on_path("uv") {
            (
                "uv".into(),
                vec!["build".into(), "--wheel".into()],
                "uv build --wheel".into(),
            )
        } else {
            (
                "python3".into(),
                vec!["-m".into(), "build".into(), "--wheel".into()],
                "python3 -m build --wheel".into(),
            )
        }));
    }
    Ok(None)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

fn shown(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.display().to_string())
}

/// Run one artifact's build (if it has one) in its `path`.
fn run_build(art: &Artifact) -> Result<(), BuildError> {
    let Some((prog, args, shown_cmd)) = command_for(art)? else {
        return Ok(());
    };
    if !art.path.is_dir() {
        return Err(BuildError::NoDir {
            name: art.name.clone(),
            path: art.path.clone(),
        });
    }
    // A wheel build writes into dist/: clear it first so an old version is
    // not uploaded next to the new one (the CLI does the same).
    if art.is_whl() {
        let dist = art.path.join("dist");
        if dist.is_dir() {
            std::fs::remove_dir_all(&dist).map_err(|source| BuildError::Clean {
                name: art.name.clone(),
                path: dist.clone(),
                source,
            })?;
        }
    }
    let out = Command::new(&prog)
        .args(&args)
        .current_dir(&art.path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| BuildError::Spawn {
            name: art.name.clone(),
            command: shown_cmd.clone(),
            hint: if art.build.is_none() {
                "install uv, or the `build` package for python3 (`pip install build`), or give the artifact a `build` command".into()
            } else {
                format!("install {prog}, or set the artifact's `executable`")
            },
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let t = if stderr.trim().is_empty() {
        tail(&stdout)
    } else {
        tail(&stderr)
    };
    Err(BuildError::Failed {
        name: art.name.clone(),
        command: shown_cmd.lines().next().unwrap_or_default().to_string()
            + if shown_cmd.lines().count() > 1 {
                " …"
            } else {
                ""
            },
        status: match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "a signal".into(),
        },
        dir: art.path.display().to_string(),
        tail: if t.is_empty() {
            String::new()
        } else {
            format!(":\n{t}")
        },
    })
}

/// The files an artifact names, after its build.
fn resolve_files(root: &Path, art: &Artifact) -> Result<Vec<BuiltFile>, BuildError> {
    let mut out = Vec::new();
    for f in &art.files {
        let found = glob_files(&f.pattern);
        if found.is_empty() {
            return Err(BuildError::NoMatch {
                name: art.name.clone(),
                pattern: f.written.clone(),
            });
        }
        for local in found {
            out.push(BuiltFile {
                artifact: art.name.clone(),
                shown: shown(root, &local),
                local,
            });
        }
    }
    Ok(out)
}

/// Build every artifact in order, printing `Building <name>...`, and return
/// the files to upload. A bundle whose `artifacts` section has errors builds
/// nothing: the session's checks report them.
pub fn build_all(bundle: &Bundle) -> Result<Vec<BuiltFile>, BuildError> {
    let (artifacts, diags) = parse(bundle);
    if diags.has_errors() {
        return Ok(Vec::new());
    }
    let mut files: Vec<BuiltFile> = Vec::new();
    for art in &artifacts {
        if art.builds() {
            eprintln!("Building {}...", art.name);
        }
        run_build(art)?;
        let mut built = resolve_files(&bundle.root, art)?;
        if art.dynamic_version {
            for f in built.iter_mut().filter(|f| f.file_name().ends_with(".whl")) {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                let patched =
                    super::dynamic::patch(&f.local, &bundle.root, &bundle.target, &art.name, stamp)
                        .map_err(|source| BuildError::Patch {
                            name: art.name.clone(),
                            source,
                        })?;
                f.shown = shown(&bundle.root, &patched);
                f.local = patched;
            }
        }
        files.extend(built);
    }
    // The same file named twice (two globs) is uploaded once.
    let mut unique = std::collections::HashSet::new();
    files.retain(|f| unique.insert(f.local.clone()));
    let mut seen: BTreeMap<String, &BuiltFile> = BTreeMap::new();
    for f in &files {
        if let Some(first) = seen.insert(f.file_name(), f) {
            if first.local != f.local {
                return Err(BuildError::Duplicate {
                    file: f.file_name(),
                    first: first.shown.clone(),
                    second: f.shown.clone(),
                });
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text);
        assert!(t.starts_with("line 10"), "{t}");
        assert!(t.ends_with("line 29"), "{t}");
    }
}
