//! `python:` bundles with the real binary and the real `databricks-bundles`
//! package (from the tests' venv, see `tests/sdk/requirements.txt`): Python
//! resources join the bundle and resolve like YAML ones, mutators change
//! every job, and Python failures (an exception, a crash, a hang, a missing
//! venv or package, restricted execution) are diagnostics pointing at the
//! `.py` line or the `python` section.
#![cfg(unix)]

#[path = "loader_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use support::{prereq, run_in, Run};

/// A copy of `tests/fixtures/python/<name>` in a temp dir.
fn fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(name);
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&src, dir.path());
    dir
}

fn copy_dir(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read fixture").flatten() {
        let to = dest.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy fixture file");
        }
    }
}

/// `<root>/.venv/bin/python`: a wrapper running `python` with `extra` flags,
/// so `python.venv_path: .venv` finds an interpreter as in a real venv.
fn venv(root: &Path, python: &Path, extra: &str) {
    use std::os::unix::fs::PermissionsExt;
    let bin = root.join(".venv/bin");
    std::fs::create_dir_all(&bin).expect("mkdir .venv/bin");
    let exe = bin.join("python");
    // Not canonicalised: a venv's python finds its packages through the
    // path it is started by.
    let abs = if python.is_absolute() || python.components().count() == 1 {
        python.to_path_buf()
    } else {
        std::env::current_dir().expect("cwd").join(python)
    };
    std::fs::write(
        &exe,
        format!("#!/bin/sh\nexec '{}' {extra} \"$@\"\n", abs.display()),
    )
    .expect("write venv python");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The tests' Python with the package, or None (skipped; a failure in CI).
fn python() -> Option<PathBuf> {
    prereq::python_with("databricks.bundles")
}

fn validate(root: &Path, env: &[(&str, &str)]) -> Run {
    run_in(root, env, &["validate", "-o", "json"])
}

fn stderr_validate(root: &Path, env: &[(&str, &str)]) -> Run {
    run_in(root, env, &["validate"])
}

#[test]
fn resource_functions_add_jobs_and_mutators_change_every_job() {
    let Some(py) = python() else { return };
    let dir = fixture("jobs");
    venv(dir.path(), &py, "");
    let r = validate(dir.path(), &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = r.json();
    let jobs = &v["resources"]["jobs"];
    // Added by resources:load_resources; the `${var.team}` it wrote resolves
    // like a YAML value, and Python saw the target.
    assert_eq!(jobs["py_job"]["name"], "Python job for dev by data");
    assert_eq!(jobs["py_job"]["tasks"][0]["task_key"], "report");
    // The mutator ran on the YAML job and on the Python one, with variable
    // values resolved (`owner` refers to `team`).
    for key in ["yaml_job", "py_job"] {
        assert_eq!(jobs[key]["tags"]["team"], "data", "{key}: {}", jobs[key]);
        assert_eq!(jobs[key]["tags"]["owner"], "data-owners", "{key}");
    }
    // What the mutator did not touch stays as written.
    assert_eq!(jobs["yaml_job"]["name"], "YAML job");
    assert_eq!(
        jobs["yaml_job"]["tasks"][0]["notebook_task"]["notebook_path"],
        "/Workspace/Shared/yaml_nb"
    );
    // No "not supported" warning for the section any more.
    assert!(!r.stderr.contains("not supported"), "{}", r.stderr);

    // A variable given on the command line reaches Python and the resolved job.
    let r = run_in(
        dir.path(),
        &[],
        &["validate", "-o", "json", "--var", "team=ml"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(
        v["resources"]["jobs"]["py_job"]["name"],
        "Python job for dev by ml"
    );
    assert_eq!(
        v["resources"]["jobs"]["yaml_job"]["tags"]["owner"],
        "ml-owners"
    );
}

#[test]
fn a_python_job_is_planned_like_a_yaml_one() {
    let Some(py) = python() else { return };
    let dir = fixture("jobs");
    venv(dir.path(), &py, "");
    let home = tempfile::tempdir().expect("home");
    let home_s = home.path().display().to_string();
    let r = run_in(
        dir.path(),
        &[("LAKEBUNDLE_HOME", &home_s)],
        &["--local", "plan"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("jobs.py_job"), "{all}");
    assert!(all.contains("jobs.yaml_job"), "{all}");
    // The workspace command loads the bundle twice; Python ran once.
    let imports =
        std::fs::read_to_string(dir.path().join("mutator_imports.log")).unwrap_or_default();
    assert_eq!(imports.lines().count(), 1, "mutators ran {imports:?}");
    // A warning the resource function reports, at its line of Python.
    assert!(r.stderr.contains("py_job has no schedule"), "{}", r.stderr);
    assert!(
        r.stderr.contains("resources/__init__.py:21:9"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_exception_in_python_points_at_the_raising_line() {
    let Some(py) = python() else { return };
    let dir = fixture("error");
    venv(dir.path(), &py, "");
    let r = stderr_validate(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("Failed to load resources: ValueError: no catalog for target 'default'"),
        "{e}"
    );
    // file:line:col of the `raise`, with the Python source as the snippet.
    assert!(e.contains("resources.py:8:9"), "{e}");
    assert!(e.contains("raise ValueError("), "{e}");
    assert!(e.contains("raised here"), "{e}");
    // The traceback is the help.
    assert!(e.contains("Traceback (most recent call last)"), "{e}");

    // The same in JSON: file, line and column of the Python source.
    let r = validate(dir.path(), &[]);
    assert_eq!(r.code, 1);
    let v = r.json();
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "resources.py", "{v}");
    assert_eq!(d["line"], 8, "{v}");
    assert_eq!(d["column"], 9, "{v}");
}

#[test]
fn a_crash_without_diagnostics_shows_the_exit_status_and_stderr() {
    let Some(py) = python() else { return };
    let dir = fixture("exit");
    venv(dir.path(), &py, "");
    let r = stderr_validate(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(e.contains("Python stopped with exit status 3"), "{e}");
    assert!(e.contains("cannot reach the metadata service"), "{e}");
    assert!(e.contains("databricks.yml:7:7"), "{e}");
}

#[test]
fn a_hanging_mutator_is_stopped() {
    let Some(py) = python() else { return };
    let dir = fixture("sleep");
    venv(dir.path(), &py, "");
    let r = stderr_validate(dir.path(), &[("LAKEBUNDLE_PYTHON_TIMEOUT", "2")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Python did not finish within 2 s and was stopped"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("LAKEBUNDLE_PYTHON_TIMEOUT"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_venv_is_a_diagnostic_at_venv_path() {
    // No Python needed: the interpreter is looked for before anything runs.
    let dir = fixture("jobs");
    let r = stderr_validate(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("no Python interpreter in the virtual environment `.venv` (.venv/bin/python does not exist)"),
        "{e}"
    );
    assert!(e.contains("databricks.yml:7:14"), "{e}");
    let v = validate(dir.path(), &[]).json();
    let help = v["diagnostics"][0]["help"].as_str().unwrap_or_default();
    assert!(
        help.contains("python3 -m venv .venv && .venv/bin/pip install databricks-bundles"),
        "{v}"
    );
}

#[test]
fn a_python_without_the_package_says_how_to_install_it() {
    let Some(py) = python() else { return };
    let dir = fixture("jobs");
    // `-S`: no site-packages, so `databricks.bundles` cannot be imported.
    venv(dir.path(), &py, "-S");
    let r = stderr_validate(dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("the Python at .venv/bin/python cannot import the `databricks.bundles` package"),
        "{e}"
    );
    let v = validate(dir.path(), &[]).json();
    let help = v["diagnostics"][0]["help"].as_str().unwrap_or_default();
    assert!(
        help.contains(".venv/bin/python -m pip install databricks-bundles"),
        "{v}"
    );
}

#[test]
fn restricted_code_execution_refuses_to_run_python() {
    let dir = fixture("jobs");
    let marker = dir.path().join("ran");
    // A venv "python" that would leave a mark if it ran.
    venv(
        dir.path(),
        Path::new("touch"),
        &format!("'{}'", marker.display()),
    );
    let r = stderr_validate(
        dir.path(),
        &[("DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION", "1")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "running Python code is not allowed when DATABRICKS_BUNDLE_RESTRICTED_CODE_EXECUTION is set"
        ),
        "{}",
        r.stderr
    );
    assert!(!marker.exists(), "Python ran although restricted");
}

#[test]
fn bad_entry_points_are_reported_before_python_runs() {
    let b = support::Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: b\npython:\n  resources:\n    - resources.load_resources\n  mutator:\n    - m:f\n",
    )]);
    let r = b.run(&["validate"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("an entry of `python.resources` must be \"module:function\""),
        "{e}"
    );
    assert!(e.contains("databricks.yml:5:7"), "{e}");
    assert!(e.contains("unknown key `mutator` in `python`"), "{e}");
    assert!(e.contains("did you mean `mutators`?"), "{e}");
}
