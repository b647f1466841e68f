//! `artifacts`, end to end with the real binary and `--local`: a real wheel
//! build (the tests' Python venv with `build` + `setuptools`), a shell build
//! command, a failing build; what lands in the workspace (read back through
//! the emulator's REST API) and where the job's libraries point.

mod common;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::Emulator;
use e2e_support::{Api, Run, TestBundle};
use serde_json::{json, Value};

const INTERNAL: &str = "/Workspace/Users/local-user@example.com/.bundle";

/// `lakebundle -C <bundle> <args>` with `LAKEBUNDLE_HOME` at `home` (for
/// `--local`), no other workspace configured, and `path_front` (a venv's
/// `bin`) first on PATH.
fn lakebundle(b: &TestBundle, home: &Path, path_front: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(Emulator::bin());
    cmd.arg("-C")
        .arg(&b.root)
        .args(args)
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env_remove("DATABRICKS_BUNDLE_TARGET")
        .env("DATABRICKS_CONFIG_FILE", b.root.join("no-databrickscfg"))
        .env("LAKEBUNDLE_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    if let Some(front) = path_front {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![front.to_path_buf()];
        paths.extend(std::env::split_paths(&old));
        cmd.env("PATH", std::env::join_paths(paths).expect("PATH"));
    }
    let out = cmd.output().expect("run lakebundle");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Diagnostics text with the renderer's wrapping and gutters undone.
fn flat(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_start_matches([' ', '│', '×', '⚠', '·', '╭', '├', '╰', '─', '▶']))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The emulator behind the `--local` deploys made with `home`.
fn local_workspace(home: &Path) -> Emulator {
    let data_dir: PathBuf = home.join("local-workspace");
    Emulator::start_with(&["--no-postgres", "--data-dir", &data_dir.to_string_lossy()])
}

fn export(api: &Api, path: &str) -> Option<Vec<u8>> {
    let v = api.get(
        "/api/2.0/workspace/export",
        &[("path", path.to_string()), ("format", "AUTO".into())],
    )?;
    let content = v["content"].as_str()?;
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .ok()
}

fn list(api: &Api, path: &str) -> Vec<String> {
    let mut names: Vec<String> = api
        .get("/api/2.0/workspace/list", &[("path", path.to_string())])
        .map(|v| {
            v["objects"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Remote id of a resource in the local state cache of target `default`.
fn state_id(b: &TestBundle, addr: &str) -> Option<String> {
    let path = b.root.join(".lakebundle/default/resources.json");
    let text = std::fs::read_to_string(path).ok()?;
    let state: Value = serde_json::from_str(&text).expect("state parses");
    state["state"][addr]["__id__"].as_str().map(str::to_string)
}

fn job_settings(b: &TestBundle, api: &Api, addr: &str) -> Value {
    let id = state_id(b, addr).expect("job in state");
    api.get("/api/2.2/jobs/get", &[("job_id", id)])
        .expect("job exists")["settings"]
        .clone()
}

/// The venv `bin` holding a Python with `build`, `setuptools` and `wheel`
/// (None: skipped locally, a failure under CI).
fn build_python() -> Option<PathBuf> {
    let py = common::prereq::python_with("build, setuptools, wheel")?;
    Some(
        py.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    )
}

#[test]
fn local_deploy_builds_the_wheel_uploads_it_and_points_the_job_at_it() {
    let Some(bin) = build_python() else { return };
    let b = TestBundle::fixture("artifacts_whl");
    let home = tempfile::tempdir().expect("tempdir");
    let front = (!bin.as_os_str().is_empty()).then_some(bin.as_path());

    // plan never builds: the library shows the pattern under .internal.
    let plan = lakebundle(&b, home.path(), front, &["--local", "plan"]).expect(0);
    assert!(
        plan.stdout.contains("/artifacts/.internal/*.whl"),
        "{}",
        plan.stdout
    );
    assert!(!b.root.join("my_pkg/dist").exists(), "plan ran a build");

    let out = lakebundle(
        &b,
        home.path(),
        front,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    let wheel_name = "my_pkg-0.1.0-py3-none-any.whl";
    assert!(out.stderr.contains("Building my_pkg..."), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("Uploading my_pkg/dist/{wheel_name}...")),
        "{}",
        out.stderr
    );
    let local = std::fs::read(b.root.join("my_pkg/dist").join(wheel_name)).expect("built wheel");
    assert!(local.starts_with(b"PK"), "not a zip");

    // Nothing changed since: the next plan is empty.
    let again = lakebundle(
        &b,
        home.path(),
        front,
        &["--local", "plan", "--detailed-exitcode"],
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);

    let emu = local_workspace(home.path());
    let api = Api::new(&emu);
    let internal = format!("{INTERNAL}/artifacts-whl/default/artifacts/.internal");
    let remote = format!("{internal}/{wheel_name}");
    assert_eq!(list(&api, &internal), vec![remote.clone()]);
    assert_eq!(export(&api, &remote).as_deref(), Some(local.as_slice()));

    let settings = job_settings(&b, &api, "resources.jobs.wheel_job");
    assert_eq!(
        settings["tasks"][0]["libraries"],
        json!([{"whl": remote}, {"whl": "/Workspace/Shared/libs/other.whl"}]),
        "{settings}"
    );
    assert_eq!(
        settings["environments"][0]["spec"]["dependencies"],
        json!([remote]),
        "{settings}"
    );
}

#[test]
fn build_command_runs_in_its_path_with_bash_and_its_files_are_uploaded() {
    let b = TestBundle::fixture("artifacts_shell");
    let home = tempfile::tempdir().expect("tempdir");
    let out = lakebundle(
        &b,
        home.path(),
        None,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    assert!(out.stderr.contains("Building tool..."), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Uploading tool/out/tool-1.0-py3-none-any.whl..."),
        "{}",
        out.stderr
    );
    // The script ran with bash, in the artifact's path.
    let marker = std::fs::read_to_string(b.root.join("tool/out/built.txt")).expect("script output");
    assert_eq!(marker.trim(), "shell: bash in tool");

    let emu = local_workspace(home.path());
    let api = Api::new(&emu);
    let remote =
        format!("{INTERNAL}/artifacts-shell/default/artifacts/.internal/tool-1.0-py3-none-any.whl");
    assert_eq!(
        export(&api, &remote).as_deref(),
        Some(&b"PK-not-really-a-wheel"[..])
    );
    let settings = job_settings(&b, &api, "resources.jobs.tool_job");
    assert_eq!(
        settings["tasks"][0]["libraries"],
        json!([{"whl": remote}]),
        "{settings}"
    );
}

#[test]
fn a_failing_build_stops_the_deploy_naming_the_artifact_with_its_output() {
    let b = TestBundle::fixture("artifacts_shell");
    b.edit(
        "      printf 'PK-not-really-a-wheel' > out/tool-1.0-py3-none-any.whl",
        "      echo 'compiling'\n      echo 'fatal: missing header foo.h' >&2\n      false\n      touch after-failure.txt",
    );
    let home = tempfile::tempdir().expect("tempdir");
    let out = lakebundle(
        &b,
        home.path(),
        None,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(1);
    let err = flat(&out.stderr);
    assert!(
        err.contains("building artifact tool failed") && err.contains("exit status 1"),
        "{err}"
    );
    assert!(err.contains("fatal: missing header foo.h"), "{err}");
    // bash -e: the line after the failure never ran; nothing was deployed.
    assert!(!b.root.join("tool/after-failure.txt").exists());
    assert!(state_id(&b, "resources.jobs.tool_job").is_none());
}

#[test]
fn files_matching_nothing_after_the_build_is_an_error_naming_the_artifact() {
    let b = TestBundle::fixture("artifacts_shell");
    b.edit("source: ./tool/out/*.whl", "source: ./tool/dist/*.whl");
    b.edit(
        "whl: ./tool/out/tool-1.0-py3-none-any.whl",
        "whl: /Workspace/Shared/tool.whl",
    );
    let home = tempfile::tempdir().expect("tempdir");
    let out = lakebundle(
        &b,
        home.path(),
        None,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(1);
    let err = flat(&out.stderr);
    assert!(
        err.contains("artifact tool: ./tool/dist/*.whl matches no file after the build"),
        "{err}"
    );
}

#[test]
fn validate_lists_artifacts_and_reports_their_mistakes_at_the_yaml() {
    let b = TestBundle::fixture("artifacts_shell");
    let home = tempfile::tempdir().expect("tempdir");
    let ok = lakebundle(&b, home.path(), None, &["validate"]).expect(0);
    assert!(
        ok.stdout.contains("Artifacts (built at deploy):")
            && ok
                .stdout
                .contains("tool: untyped in ./tool, `mkdir -p out`"),
        "{}",
        ok.stdout
    );
    assert!(!b.root.join("tool/out").exists(), "validate ran a build");

    std::fs::write(
        b.yaml_path(),
        "bundle:\n  name: bad-artifacts\n\nartifacts:\n  empty:\n  shell:\n    executable: zsh\n    build: echo hi\n  prebuilt:\n    files:\n      - source: ./nowhere/*.whl\n",
    )
    .expect("write yaml");
    let bad = lakebundle(&b, home.path(), None, &["validate"]).expect(1);
    let err = flat(&bad.stderr);
    assert!(
        err.contains("artifact \"empty\" is not configured"),
        "{err}"
    );
    assert!(
        err.contains("\"zsh\" is not supported as an artifact executable")
            && err.contains("did you mean `sh`?"),
        "{err}"
    );
    assert!(err.contains("./nowhere/*.whl: no matching files"), "{err}");
    assert!(err.contains("databricks.yml:7:17"), "{err}");
}

#[test]
fn a_glob_naming_several_files_gives_one_library_each_and_redeploys_clear_old_uploads() {
    let b = TestBundle::fixture("artifacts_shell");
    let two = "      printf 'PK-a' > out/tool-1.0-py3-none-any.whl\n      printf 'PK-b' > out/tool_extra-1.0-py3-none-any.whl";
    b.edit(
        "      printf 'PK-not-really-a-wheel' > out/tool-1.0-py3-none-any.whl",
        two,
    );
    b.edit("executable: bash", "executable: sh");
    b.edit(
        "whl: ./tool/out/tool-1.0-py3-none-any.whl",
        "whl: ./tool/out/*.whl",
    );
    let home = tempfile::tempdir().expect("tempdir");
    let first = lakebundle(
        &b,
        home.path(),
        None,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    for name in [
        "tool-1.0-py3-none-any.whl",
        "tool_extra-1.0-py3-none-any.whl",
    ] {
        assert!(
            first
                .stdout
                .contains(&format!("/artifacts/.internal/{name}")),
            "{name} not among the job's libraries:\n{}",
            first.stdout
        );
    }
    // A new version replaces both files: the old ones leave `.internal`.
    b.edit(
        two,
        "      rm -rf out && mkdir out\n      printf 'PK-c' > out/tool-2.0-py3-none-any.whl",
    );
    let second = lakebundle(
        &b,
        home.path(),
        None,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    assert!(
        second
            .stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        second.stdout
    );

    let emu = local_workspace(home.path());
    let api = Api::new(&emu);
    let internal = format!("{INTERNAL}/artifacts-shell/default/artifacts/.internal");
    let v2 = format!("{internal}/tool-2.0-py3-none-any.whl");
    assert_eq!(list(&api, &internal), vec![v2.clone()]);
    let settings = job_settings(&b, &api, "resources.jobs.tool_job");
    assert_eq!(
        settings["tasks"][0]["libraries"],
        json!([{"whl": v2}]),
        "{settings}"
    );
}

/// The one patched wheel under `.databricks/bundle/default/patched_wheels/my_pkg_my_pkg`.
fn patched_wheel(b: &TestBundle) -> PathBuf {
    let dir = b
        .root
        .join(".databricks/bundle/default/patched_wheels/my_pkg_my_pkg");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn dynamic_version_uploads_a_copy_with_a_timestamped_version_and_points_the_job_at_it() {
    use std::io::Read as _;
    let Some(bin) = build_python() else { return };
    let b = TestBundle::fixture("artifacts_whl");
    let yaml = std::fs::read_to_string(b.root.join("databricks.yml")).expect("yaml");
    let yaml = yaml.replace(
        "    path: ./my_pkg\n",
        "    path: ./my_pkg\n    dynamic_version: true\n",
    );
    std::fs::write(b.root.join("databricks.yml"), yaml).expect("write yaml");
    let home = tempfile::tempdir().expect("tempdir");
    let front = (!bin.as_os_str().is_empty()).then_some(bin.as_path());

    let out = lakebundle(
        &b,
        home.path(),
        front,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    let patched = patched_wheel(&b);
    let name = patched
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    // my_pkg-0.1.0+<unix ns>-py3-none-any.whl
    let stamp = name
        .strip_prefix("my_pkg-0.1.0+")
        .and_then(|r| r.strip_suffix("-py3-none-any.whl"))
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        !stamp.is_empty() && stamp.bytes().all(|c| c.is_ascii_digit()),
        "{name}"
    );
    assert!(
        out.stderr.contains(&format!(
            "Uploading .databricks/bundle/default/patched_wheels/my_pkg_my_pkg/{name}..."
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not supported"), "{}", out.stderr);

    // Inside: the dist-info folder and METADATA carry the new version.
    let bytes = std::fs::read(&patched).expect("patched wheel");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).expect("zip");
    let info = format!("my_pkg-0.1.0+{stamp}.dist-info");
    let mut meta = String::new();
    zip.by_name(&format!("{info}/METADATA"))
        .expect("METADATA")
        .read_to_string(&mut meta)
        .expect("read METADATA");
    assert!(
        meta.contains(&format!("\nVersion: 0.1.0+{stamp}\n")),
        "{meta}"
    );
    let mut record = String::new();
    zip.by_name(&format!("{info}/RECORD"))
        .expect("RECORD")
        .read_to_string(&mut record)
        .expect("read RECORD");
    assert!(
        record.contains(&format!("{info}/METADATA,sha256=")),
        "{record}"
    );
    // The original build output is left as built.
    assert!(b
        .root
        .join("my_pkg/dist/my_pkg-0.1.0-py3-none-any.whl")
        .is_file());

    // The plan right after sees what was deployed: nothing to do.
    let again = lakebundle(
        &b,
        home.path(),
        front,
        &["--local", "plan", "--detailed-exitcode"],
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);

    let emu = local_workspace(home.path());
    let api = Api::new(&emu);
    let internal = format!("{INTERNAL}/artifacts-whl/default/artifacts/.internal");
    let remote = format!("{internal}/{name}");
    assert_eq!(list(&api, &internal), vec![remote.clone()]);
    assert_eq!(export(&api, &remote).as_deref(), Some(bytes.as_slice()));
    let settings = job_settings(&b, &api, "resources.jobs.wheel_job");
    assert_eq!(
        settings["tasks"][0]["libraries"],
        json!([{"whl": remote}, {"whl": "/Workspace/Shared/libs/other.whl"}]),
        "{settings}"
    );
    assert_eq!(
        settings["environments"][0]["spec"]["dependencies"],
        json!([remote]),
        "{settings}"
    );
    drop(emu);

    // Each deploy uploads a new version, and the job follows it.
    lakebundle(
        &b,
        home.path(),
        front,
        &["--local", "deploy", "--auto-approve"],
    )
    .expect(0);
    let second = patched_wheel(&b);
    assert_ne!(second, patched, "the same version was uploaded twice");
    let emu = local_workspace(home.path());
    let api = Api::new(&emu);
    let remote2 = format!(
        "{internal}/{}",
        second.file_name().expect("name").to_string_lossy()
    );
    assert_eq!(list(&api, &internal), vec![remote2.clone()]);
    let settings = job_settings(&b, &api, "resources.jobs.wheel_job");
    assert_eq!(settings["tasks"][0]["libraries"][0]["whl"], json!(remote2));
}
