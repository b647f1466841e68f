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

/// Messages of a load's diagnostics.
fn msgs(l: &lakebundle::config::Loaded) -> Vec<String> {
    l.diags.items.iter().map(|d| d.message.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Values that each repeat the previous one: exact below the budget, one
    /// error above it, never an abort.
    #[test]
    fn repeated_references_are_capped(depth in 1usize..32, fan in 2usize..4, base in 1usize..6, complex in any::<bool>()) {
        let mut y = String::from("bundle:\n  name: f\nvariables:\n");
        if complex {
            y.push_str(&format!("  v0:\n    type: complex\n    default: [{}]\n", vec!["x"; base].join(", ")));
        } else {
            y.push_str(&format!("  v0:\n    default: {}\n", "x".repeat(base)));
        }
        for i in 1..=depth {
            let r = format!("${{var.v{}}}", i - 1);
            if complex {
                let items = vec![format!("\"{r}\""); fan].join(", ");
                y.push_str(&format!("  v{i}:\n    type: complex\n    default: [{items}]\n"));
            } else {
                y.push_str(&format!("  v{i}:\n    default: \"{}\"\n", r.repeat(fan)));
            }
        }
        let loaded = load_text(&y);
        let size = (base as f64) * (fan as f64).powi(depth as i32);
        let m = msgs(&loaded);
        if size > 4.0 * lakebundle::interp::resolve::MAX_EXPANSION as f64 {
            prop_assert!(m.iter().any(|x| x.contains("expand the bundle")), "{m:?}");
        }
        // Each level is charged once as a variable and once more in the
        // output `variables` section: ~3x the final size in all.
        if !complex && size * 4.0 < lakebundle::interp::resolve::MAX_EXPANSION as f64 {
            prop_assert!(!loaded.diags.has_errors(), "{m:?}");
            let b = loaded.bundle.as_ref().expect("bundle");
            let top = b.tree.pointer(&["variables", &format!("v{depth}"), "value"]).and_then(|n| n.as_str()).map(str::len);
            prop_assert_eq!(top, Some(size as usize));
        }
        // Rendering the result never panics either.
        let _ = lakebundle::diag::render(&loaded.sources, &loaded.diags);
    }

    /// Chains of variables or of resource fields, in any declaration order,
    /// optionally closed into a cycle: resolved exactly, or one cycle error.
    #[test]
    fn long_reference_chains_resolve_or_report_one_cycle(n in 1usize..4_000, order in 0u8..3, resources in any::<bool>(), cycle in any::<bool>()) {
        let mut items: Vec<String> = Vec::with_capacity(n + 1);
        for i in 0..=n {
            let value = if i == 0 {
                if cycle { format!("${{{}}}", if resources { format!("resources.jobs.j{n}.name") } else { format!("var.v{n}") }) } else { "bottom".to_string() }
            } else if resources {
                format!("${{resources.jobs.j{}.name}}", i - 1)
            } else {
                format!("${{var.v{}}}", i - 1)
            };
            items.push(if resources {
                format!("    j{i}:\n      name: \"{value}\"\n")
            } else {
                format!("  v{i}:\n    default: \"{value}\"\n")
            });
        }
        match order {
            0 => {}
            1 => items.reverse(),
            // Interleave the halves (the back half is the longer one): neither
            // order nor its reverse.
            _ => {
                let back = items.split_off(items.len() / 2);
                let front = std::mem::take(&mut items);
                for (i, it) in back.into_iter().enumerate() {
                    items.push(it);
                    if let Some(f) = front.get(i) { items.push(f.clone()); }
                }
            }
        }
        let y = if resources {
            format!("bundle:\n  name: f\nresources:\n  jobs:\n{}", items.concat())
        } else {
            format!("bundle:\n  name: f\nresources:\n  jobs:\n    top:\n      name: ${{var.v{n}}}\nvariables:\n{}", items.concat())
        };
        let loaded = load_text(&y);
        let m = msgs(&loaded);
        if cycle {
            // One value-level cycle (a resource chain may add the resource-level one).
            prop_assert_eq!(m.iter().filter(|x| x.starts_with("cycle detected:")).count(), 1, "{:?}", m);
            prop_assert!(loaded.diags.has_errors());
        } else {
            prop_assert!(!loaded.diags.has_errors(), "{m:?}");
            let b = loaded.bundle.as_ref().expect("bundle");
            let key = if resources { format!("j{n}") } else { "top".to_string() };
            let name = b.tree.pointer(&["resources", "jobs", &key, "name"]).and_then(|x| x.as_str()).map(str::to_string);
            prop_assert_eq!(name.as_deref(), Some("bottom"));
        }
    }

    /// A diagnostic anywhere on a very long line renders with the right
    /// line and column (miette cannot draw past column 65,535 by itself).
    #[test]
    fn diagnostics_on_long_lines_render_with_their_column(pad in 0usize..150_000, lines_before in 0usize..3, multibyte in any::<bool>()) {
        let filler = if multibyte { "é" } else { "x" };
        let head = format!("bundle:\n  name: f\n{}resources:\n  jobs:\n    j:\n      tags:\n        t: \"{}\"\n      name: \"", "# c\n".repeat(lines_before), filler.repeat(pad / 2));
        // The unknown reference sits on the last line after `pad` bytes of text.
        let last_line = format!("{}{}", "      name: \"", "y".repeat(pad));
        let text = format!("{head}\"\n{last_line}${{var.nope}}\"\n");
        let text = text.replacen("      name: \"\"\n", "", 1);
        let loaded = load_text(&text);
        let out = lakebundle::diag::render(&loaded.sources, &loaded.diags);
        let line = text.lines().position(|l| l.contains("${var.nope}")).map(|i| i + 1).unwrap_or(0);
        let col = last_line.len() + 1;
        prop_assert!(out.contains(&format!("databricks.yml:{line}:{col}")), "{}", &out[..out.len().min(2000)]);
        prop_assert!(out.len() < 20_000, "{} bytes", out.len());
        let json = lakebundle::diag::to_json(&loaded.sources, &loaded.diags);
        let d = json["diagnostics"].as_array().and_then(|a| a.iter().find(|d| d["message"].as_str().unwrap_or("").contains("nope")).cloned()).unwrap_or_default();
        prop_assert_eq!(d["column"].as_u64(), Some(col as u64));
    }
}
