//! The skip machinery (`tests/common/prereq.rs`): a missing prerequisite is one
//! visible line in a plain `cargo test` run (no `--nocapture`), and a failure
//! under `CI=true`. Runs this test binary again as a child with a probe test.

#[path = "common/prereq.rs"]
mod prereq;

use std::process::Command;

const PROBE_ENV: &str = "LAKEBUNDLE_PREREQ_PROBE";

/// Only acts in the child started below: reports a missing prerequisite.
#[test]
fn probe_reports_a_missing_prerequisite() {
    if std::env::var_os(PROBE_ENV).is_some() {
        prereq::skip("the probe's tool is not installed", "apt-get install probe");
    }
}

fn run_probe(ci: Option<&str>) -> (bool, String, String) {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "probe_reports_a_missing_prerequisite"])
        .env(PROBE_ENV, "1")
        .env_remove("CI");
    if let Some(v) = ci {
        cmd.env("CI", v);
    }
    let out = cmd.output().expect("run the test binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_local_skip_prints_one_line_without_nocapture() {
    let (ok, stdout, stderr) = run_probe(None);
    assert!(ok, "a local skip passes\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("SKIP ")).collect();
    assert_eq!(
        lines,
        ["SKIP probe_reports_a_missing_prerequisite: the probe's tool is not installed (install: apt-get install probe)"],
        "stderr: {stderr}"
    );
}

#[test]
fn under_ci_a_missing_prerequisite_fails_the_test() {
    for ci in ["true", "1"] {
        let (ok, stdout, stderr) = run_probe(Some(ci));
        assert!(!ok, "CI={ci}: the probe must fail\n{stdout}\n{stderr}");
        let all = format!("{stdout}{stderr}");
        assert!(
            all.contains("the probe's tool is not installed")
                && all.contains("apt-get install probe"),
            "the failure says what is missing and how to install it:\n{all}"
        );
    }
    let (ok, _, stderr) = run_probe(Some("false"));
    assert!(ok, "CI=false is a local run: {stderr}");
}
