//! Hostile bundles against the real binary: each must end in exit code 1 with
//! a diagnostic (or resolve correctly), never an abort (134) or panic (101).

#[path = "loader_support/mod.rs"]
mod support;

use support::{messages, Bundle, Run};

const BASE: &str = "bundle:\n  name: hostile\n";

/// Exit 1, and a diagnostic whose message contains `needle`.
fn fails_with(r: &Run, needle: &str) -> serde_json::Value {
    assert_eq!(r.code, 1, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let v = r.json();
    let msgs = messages(&v);
    assert!(msgs.iter().any(|m| m.contains(needle)), "{msgs:?}");
    v
}

fn diag_with<'v>(v: &'v serde_json::Value, needle: &str) -> &'v serde_json::Value {
    v["diagnostics"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|d| d["message"].as_str().unwrap_or("").contains(needle))
        })
        .unwrap_or_else(|| panic!("no diagnostic with {needle:?} in {v}"))
}

#[test]
fn doubling_strings_stop_at_the_expansion_budget() {
    let mut y = format!("{BASE}variables:\n  v0:\n    default: ab\n");
    for i in 1..=40 {
        y.push_str(&format!(
            "  v{i}:\n    default: \"${{var.v{p}}}${{var.v{p}}}\"\n",
            p = i - 1
        ));
    }
    y.push_str("resources:\n  jobs:\n    j:\n      name: ${var.v40}\n");
    let b = Bundle::new(&[("databricks.yml", &y)]);
    let r = b.run(&["validate", "-o", "json"]);
    let v = fails_with(&r, "references expand the bundle beyond 64 MiB");
    let d = diag_with(&v, "expand the bundle");
    // It names the variable being built and points at its definition.
    let msg = d["message"].as_str().unwrap_or("");
    let var: usize = msg
        .split("`var.v")
        .nth(1)
        .and_then(|t| t.split('`').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no variable named in {msg}"));
    assert_eq!(d["file"], "databricks.yml");
    assert_eq!(d["line"], 4 + 2 * var as u64 + 1, "{d}");
    // The text form renders too (and one error only).
    let t = b.run(&["validate"]);
    assert_eq!(t.code, 1);
    assert_eq!(
        t.stderr.matches("expand the bundle").count(),
        1,
        "{}",
        t.stderr
    );
}

#[test]
fn doubling_complex_values_stop_at_the_expansion_budget() {
    let mut y = format!("{BASE}variables:\n  v0:\n    type: complex\n    default: [a, b]\n");
    for i in 1..=40 {
        y.push_str(&format!(
            "  v{i}:\n    type: complex\n    default: [\"${{var.v{p}}}\", \"${{var.v{p}}}\"]\n",
            p = i - 1
        ));
    }
    let b = Bundle::new(&[("databricks.yml", &y)]);
    fails_with(
        &b.run(&["validate", "-o", "json"]),
        "references expand the bundle",
    );
}

fn chain(n: usize, reverse: bool) -> String {
    let mut decls: Vec<String> = vec!["  v0:\n    default: bottom\n".to_string()];
    for i in 1..=n {
        decls.push(format!("  v{i}:\n    default: ${{var.v{}}}\n", i - 1));
    }
    if reverse {
        decls.reverse();
    }
    format!(
        "{BASE}resources:\n  jobs:\n    j:\n      name: ${{var.v{n}}}\nvariables:\n{}",
        decls.concat()
    )
}

#[test]
fn a_long_chain_of_variables_resolves_without_deep_recursion() {
    for reverse in [false, true] {
        let b = Bundle::new(&[("databricks.yml", &chain(20_000, reverse))]);
        let r = b.run(&["validate", "-o", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.json()["resources"]["jobs"]["j"]["name"], "bottom");
    }
    // The same chain ending in an undeclared variable: one error, at its use.
    let y = chain(20_000, true).replace("default: bottom", "default: ${var.nope}");
    let b = Bundle::new(&[("databricks.yml", &y)]);
    let v = fails_with(
        &b.run(&["validate", "-o", "json"]),
        "no variable `nope` is declared",
    );
    assert_eq!(messages(&v).len(), 1, "{v}");
}

#[test]
fn a_long_cycle_is_one_error_not_a_stack_overflow() {
    let n = 5_000;
    let mut y = format!("{BASE}variables:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  v{i}:\n    default: x-${{var.v{}}}\n",
            (i + 1) % n
        ));
    }
    let b = Bundle::new(&[("databricks.yml", &y)]);
    let r = b.run(&["validate", "-o", "json"]);
    let v = fails_with(&r, "cycle detected");
    let msgs = messages(&v);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("(5000 values)"), "{}", msgs[0]);
    assert!(
        msgs[0].starts_with("cycle detected: var.v0 → var.v1"),
        "{}",
        msgs[0]
    );
    let t = b.run(&["validate"]);
    assert_eq!(t.code, 1);
    // A few edges are shown, not five thousand.
    assert!(t.stderr.matches("refers to").count() <= 12, "{}", t.stderr);
}

#[test]
fn a_long_chain_of_resource_field_references_resolves() {
    let n = 5_000;
    let mut jobs: Vec<String> = vec!["    j0:\n      name: base\n".to_string()];
    for i in 1..=n {
        jobs.push(format!(
            "    j{i}:\n      name: ${{resources.jobs.j{}.name}}\n",
            i - 1
        ));
    }
    jobs.reverse();
    let y = format!("{BASE}resources:\n  jobs:\n{}", jobs.concat());
    let b = Bundle::new(&[("databricks.yml", &y)]);
    let r = b.run(&["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.json()["resources"]["jobs"][format!("j{n}")]["name"],
        "base"
    );
}

#[test]
fn computed_reference_paths_nested_too_deep_are_an_error() {
    // `${var.${var.p}N}` cannot be ordered ahead of time: it recurses, and
    // the depth is capped with a diagnostic.
    let n = 3_000;
    let mut decls: Vec<String> = vec!["  v0:\n    default: bottom\n".to_string()];
    for i in 1..=n {
        decls.push(format!(
            "  v{i}:\n    default: ${{var.${{var.p}}{}}}\n",
            i - 1
        ));
    }
    decls.reverse();
    let y = format!(
        "{BASE}resources:\n  jobs:\n    j:\n      name: ${{var.v{n}}}\nvariables:\n  p:\n    default: v\n{}",
        decls.concat()
    );
    let b = Bundle::new(&[("databricks.yml", &y)]);
    fails_with(
        &b.run(&["validate", "-o", "json"]),
        "references nest more than",
    );
}

/// One line of JSON, `size` bytes or more, with an unknown field and a bad
/// reference at its end.
fn long_json(size: usize) -> (String, usize) {
    let tags: Vec<String> = (0..size / 30)
        .map(|i| format!("\"k{i}\": \"vvvvvvvvvvvvvvvvvvvv\""))
        .collect();
    let head = format!(
        "{{\"resources\": {{\"jobs\": {{\"j\": {{\"tags\": {{{}}}, \"name\": \"",
        tags.join(", ")
    );
    let col = head.chars().count() + 1;
    (
        format!("{head}${{var.missing}}\", \"nmae\": 1}}}}}}}}"),
        col,
    )
}

#[test]
fn a_diagnostic_past_column_65535_renders() {
    let (json, col) = long_json(110_000);
    assert!(col > 65_535);
    let b = Bundle::new(&[
        ("databricks.yml", &format!("{BASE}include:\n  - big.json\n")),
        ("big.json", &json),
    ]);
    let t = b.run(&["validate"]);
    assert_eq!(t.code, 1, "{}", t.stderr);
    assert!(
        t.stderr.contains(&format!("big.json:1:{col}")),
        "{}",
        t.stderr
    );
    assert!(t.stderr.contains("nmae"), "{}", t.stderr);
    // Snippets show a window of the line, not 110 KB.
    assert!(t.stderr.len() < 10_000, "{} bytes", t.stderr.len());
    let v = fails_with(&b.run(&["validate", "-o", "json"]), "no variable `missing`");
    let d = diag_with(&v, "no variable `missing`");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(col as u64))
    );
}

#[test]
fn includes_through_symlink_loops_and_of_the_root_file_terminate() {
    let b = Bundle::new(&[
        (
            "bundle/databricks.yml",
            &format!("{BASE}include:\n  - \"**/*.yml\"\n  - ../bundle/databricks.yml\n  - ./databricks.yml\n"),
        ),
        (
            "bundle/conf/a.yml",
            "resources:\n  jobs:\n    j:\n      name: j\n",
        ),
    ]);
    let conf = b.path().join("bundle/conf");
    std::os::unix::fs::symlink("..", conf.join("up")).expect("symlink");
    std::os::unix::fs::symlink(".", conf.join("self")).expect("symlink");
    std::os::unix::fs::symlink("../conf", conf.join("again")).expect("symlink");
    let r = support::run_in(&b.path().join("bundle"), &[], &["validate", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Each file is read once: no duplicate-resource error, no root re-read.
    assert_eq!(r.json()["resources"]["jobs"]["j"]["name"], "j");
    assert!(
        !r.stderr.contains("only read from the root"),
        "{}",
        r.stderr
    );
}
