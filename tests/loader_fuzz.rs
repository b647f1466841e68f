//! Property tests: no input makes the loader panic or overflow the stack —
//! arbitrary bytes, YAML-ish text, deep nesting, reference-heavy strings.

use lakebundle::config::source::{parse_file, FileId};
use lakebundle::config::{load, LoadOptions};
use lakebundle::interp::parse_template;
use proptest::prelude::*;

fn load_text(text: &str) -> lakebundle::config::Loaded {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("databricks.yml"), text).expect("write");
    load(&LoadOptions {
        dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
}

/// Fragments that exercise the grammar's corners.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just("  ".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("<<: ".to_string()),
        Just("!!str ".to_string()),
        Just("|\n".to_string()),
        Just("'q'".to_string()),
        Just("\"é\"".to_string()),
        Just("# c\n".to_string()),
        Just("---\n".to_string()),
        Just("${var.a}".to_string()),
        Just("${resources.jobs.j.id}".to_string()),
        Just("$${x}".to_string()),
        Just("${".to_string()),
        Just("bundle".to_string()),
        Just("resources".to_string()),
        Just("variables".to_string()),
        Just("targets".to_string()),
        Just("jobs".to_string()),
        "[a-z0-9_]{1,6}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let (_node, _diags) = parse_file(FileId(0), &text);
    }

    #[test]
    fn parser_never_panics_on_yamlish(text in yamlish()) {
        let (node, diags) = parse_file(FileId(0), &text);
        // Every span lies inside the text and on char boundaries.
        if !diags.has_errors() {
            let mut stack = vec![&node];
            while let Some(n) = stack.pop() {
                prop_assert!(n.span.start <= n.span.end && n.span.end <= text.len());
                prop_assert!(text.is_char_boundary(n.span.start) && text.is_char_boundary(n.span.end));
                match &n.kind {
                    lakebundle::config::source::NodeKind::Seq(items) => stack.extend(items.iter()),
                    lakebundle::config::source::NodeKind::Map(m) => stack.extend(m.entries.iter().map(|(_, v)| v)),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn templates_never_panic(s in "[$\\{\\}a-z._\\[\\]0-9:\\- é]{0,80}") {
        let _ = parse_template(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn whole_loader_never_panics(body in yamlish()) {
        let _ = load_text(&format!("bundle:\n  name: fuzz\n{body}"));
        let _ = load_text(&body);
    }

    #[test]
    fn deep_nesting_is_an_error_not_an_overflow(depth in 1usize..20_000, style in 0u8..3) {
        let text = match style {
            0 => format!("a: {}{}", "[".repeat(depth), "]".repeat(depth)),
            1 => format!("a: {}1{}", "{k: ".repeat(depth), "}".repeat(depth)),
            _ => (0..depth.min(3000)).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
        };
        let loaded = load_text(&format!("bundle:\n  name: deep\n{text}"));
        if depth > 200 {
            prop_assert!(loaded.diags.has_errors());
        }
    }

    #[test]
    fn reference_soup_resolves_or_reports(vals in prop::collection::vec("[a-c]|\\$\\{var\\.[a-d]\\}|\\$\\{var\\.\\$\\{var\\.[a-c]\\}\\}|-", 1..6)) {
        // Variables referring to each other in arbitrary ways: cycles must be
        // diagnostics, never a hang or a stack overflow.
        let mut yaml = String::from("bundle:\n  name: soup\nvariables:\n");
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let v = vals.get(i % vals.len()).cloned().unwrap_or_default();
            yaml.push_str(&format!("  {name}:\n    default: \"{v}\"\n"));
        }
        yaml.push_str("resources:\n  jobs:\n    j:\n      name: \"${var.a}${var.b}${var.c}\"\n");
        let _ = load_text(&yaml);
    }
}
