//! Asking for template values on a terminal. Generic over the reader and
//! writer so the dialogue is testable without a TTY.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use super::template::{names, InitError, Template, DEFAULT_TEMPLATE};

fn read_line(input: &mut dyn BufRead) -> Option<String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Ask which template, by name or number; empty input takes the default.
pub fn choose_template(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    describe: &dyn Fn(&str) -> String,
) -> String {
    let all = names();
    let _ = writeln!(out, "Templates:");
    for (i, n) in all.iter().enumerate() {
        let _ = writeln!(out, "  {}. {n}: {}", i + 1, describe(n));
    }
    loop {
        let _ = write!(out, "Template [{DEFAULT_TEMPLATE}]: ");
        let _ = out.flush();
        let Some(answer) = read_line(input) else {
            return DEFAULT_TEMPLATE.to_string();
        };
        if answer.is_empty() {
            return DEFAULT_TEMPLATE.to_string();
        }
        if let Ok(i) = answer.parse::<usize>() {
            if let Some(n) = i.checked_sub(1).and_then(|i| all.get(i)) {
                return n.to_string();
            }
        }
        if all.contains(&answer.as_str()) {
            return answer;
        }
        let _ = writeln!(
            out,
            "no template `{answer}`; enter a number from 1 to {} or one of: {}",
            all.len(),
            all.join(", ")
        );
    }
}

/// Every prompt not already in `preset`, asked in order; an empty answer takes
/// the default, an invalid one is explained and asked again, end of input takes
/// the defaults of the rest.
pub fn ask(
    template: &Template,
    mut preset: BTreeMap<String, String>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<BTreeMap<String, String>, InitError> {
    let mut eof = false;
    for (key, prompt) in &template.schema.properties {
        if preset.contains_key(key) {
            continue;
        }
        let value = loop {
            if eof {
                break prompt.default.clone();
            }
            let choices = prompt
                .choices
                .as_ref()
                .map(|c| format!(" ({})", c.join(", ")))
                .unwrap_or_default();
            let _ = write!(
                out,
                "{}{choices} [{}]: ",
                prompt.description, prompt.default
            );
            let _ = out.flush();
            let answer = match read_line(input) {
                Some(a) => a,
                None => {
                    eof = true;
                    let _ = writeln!(out);
                    continue;
                }
            };
            let value = if answer.is_empty() {
                prompt.default.clone()
            } else {
                answer
            };
            match prompt.check(key, &value) {
                Ok(()) => break value,
                Err(e) => {
                    let _ = writeln!(out, "{e}");
                }
            }
        };
        // Defaults are checked too (a template defect must not write a bad bundle).
        prompt.check(key, &value)?;
        preset.insert(key.clone(), value);
    }
    Ok(preset)
}

/// The values without asking: `preset`, else each prompt's default.
pub fn defaults(
    template: &Template,
    mut preset: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, InitError> {
    for (key, prompt) in &template.schema.properties {
        if !preset.contains_key(key) {
            prompt.check(key, &prompt.default)?;
            preset.insert(key.clone(), prompt.default.clone());
        }
    }
    Ok(preset)
}

#[cfg(test)]
mod tests {
    use super::super::template::find;
    use super::*;

    #[test]
    fn answers_defaults_and_a_retry_after_an_invalid_value() {
        let t = find("lakebase-app").expect("template");
        // project_name: invalid, then valid; capacity: default; catalog: given; schema: EOF.
        let mut input: &[u8] = b"Bad Name\norders_app\n\nraw\n";
        let mut out = Vec::new();
        let v = ask(&t, BTreeMap::new(), &mut input, &mut out).expect("values");
        assert_eq!(v["project_name"], "orders_app");
        assert_eq!(v["capacity"], "CU_1");
        assert_eq!(v["source_catalog"], "raw");
        assert_eq!(v["source_schema"], "sales");
        let shown = String::from_utf8(out).expect("utf8");
        assert!(
            shown.contains("invalid project_name \"Bad Name\""),
            "{shown}"
        );
        assert!(
            shown.contains("(CU_1, CU_2, CU_4, CU_8) [CU_1]: "),
            "{shown}"
        );
    }

    #[test]
    fn preset_values_are_not_asked() {
        let t = find("minimal").expect("template");
        let preset = BTreeMap::from([("project_name".to_string(), "given".to_string())]);
        let mut input: &[u8] = b"CU_2\n";
        let mut out = Vec::new();
        let v = ask(&t, preset, &mut input, &mut out).expect("values");
        assert_eq!(v["project_name"], "given");
        assert_eq!(v["capacity"], "CU_2");
        assert!(!String::from_utf8(out)
            .expect("utf8")
            .contains("Project name"));
    }

    #[test]
    fn templates_are_chosen_by_number_or_name() {
        let d = |_: &str| String::from("d");
        let mut out = Vec::new();
        assert_eq!(
            choose_template(&mut &b"2\n"[..], &mut out, &d),
            "lakebase-autoscaling"
        );
        assert_eq!(choose_template(&mut &b"3\n"[..], &mut out, &d), "minimal");
        assert_eq!(
            choose_template(&mut &b"nope\nminimal\n"[..], &mut out, &d),
            "minimal"
        );
        assert_eq!(
            choose_template(&mut &b"\n"[..], &mut out, &d),
            "lakebase-app"
        );
        assert_eq!(choose_template(&mut &b""[..], &mut out, &d), "lakebase-app");
    }
}
