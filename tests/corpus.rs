//! Every public bundle in `../shared/corpus` validates (per its MANIFEST.tsv
//! root), with warnings only ("not supported yet", unknown fields), except the
//! few listed below for a real defect of their own. `_invalid/` bundles must
//! each give a clean parse error. Skips when `../shared` is absent.

#[path = "loader_support/mod.rs"]
mod support;

#[path = "corpus_support/mod.rs"]
mod corpus;

use corpus::{bundle_dir, cli_var_args, manifest, stage, stage_python, uses_python, EXCEPTIONS};
use support::{messages, run_in};

#[test]
fn corpus_bundles_validate() {
    let Some(shared) = support::shared() else {
        return;
    };
    let corpus = shared.join("corpus");
    let entries = manifest(&corpus);
    assert!(entries.len() > 50, "corpus has {} bundles", entries.len());
    assert!(
        EXCEPTIONS.len() * 10 < entries.len(),
        "exceptions must stay under 10% of the corpus"
    );
    let mut failures = Vec::new();
    let mut unused_exceptions: Vec<&str> = EXCEPTIONS.iter().map(|(f, _)| *f).collect();
    let staging = tempfile::tempdir().expect("temp dir");
    // `python:` bundles run the real databricks-bundles package.
    let python = support::prereq::python_with("databricks.bundles");
    for e in &entries {
        let copy = stage(&corpus.join(&e.folder), staging.path(), &e.folder);
        let dir = bundle_dir(&copy, e);
        if uses_python(&dir) {
            match &python {
                Some(py) => stage_python(&dir, py),
                // Skipped (reported by prereq; a failure under CI=true).
                None => continue,
            }
        }
        let mut args = cli_var_args(&e.folder);
        args.extend(["validate".to_string(), "-o".to_string(), "json".to_string()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run_in(&dir, &[], &argv);
        assert!(
            r.code == 0 || r.code == 1,
            "{}: exit {} (crash?)\n{}",
            e.folder,
            r.code,
            r.stderr
        );
        let excepted = EXCEPTIONS.iter().any(|(f, _)| *f == e.folder);
        if excepted {
            unused_exceptions.retain(|f| *f != e.folder);
            assert_eq!(
                r.code, 1,
                "{} is listed as an exception but validates; remove it from EXCEPTIONS",
                e.folder
            );
            continue;
        }
        if r.code != 0 {
            failures.push(format!("{}: {:?}", e.folder, messages(&r.json())));
        } else {
            // The resolved configuration is JSON in the YAML's shape.
            let v = r.json();
            assert!(
                v["bundle"]["name"].is_string(),
                "{}: no bundle.name in output",
                e.folder
            );
        }
    }
    assert!(
        unused_exceptions.is_empty(),
        "exceptions for bundles not in the corpus: {unused_exceptions:?}"
    );
    assert!(
        failures.is_empty(),
        "bundles that fail to validate:\n{}",
        failures.join("\n")
    );
}

#[test]
fn invalid_corpus_bundles_give_a_clean_parse_error() {
    let Some(shared) = support::shared() else {
        return;
    };
    let invalid = shared.join("corpus").join("_invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&invalid).expect("_invalid").flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        seen += 1;
        let r = run_in(&entry.path(), &[], &["validate", "-o", "json"]);
        assert_eq!(r.code, 1, "{}: {}", entry.path().display(), r.stderr);
        let v = r.json();
        let d = &v["diagnostics"][0];
        assert_eq!(d["severity"], "error");
        assert!(d["file"].is_string() && d["line"].is_u64(), "{v}");
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert!(seen > 0, "no bundles under {}", invalid.display());
}
