//! Follow-up commands lakebundle suggests (`deploy --plan FILE`,
//! `deploy --force-lock`, ...). They carry the bundle flags the user gave
//! (`-C`, `--local`, `-t`, `-p`, `--var`) so that a printed hint runs as
//! printed; every hint naming a command is built here.

use super::args::GlobalArgs;

/// Characters a POSIX shell takes literally outside quotes.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c)
}

/// Quote one word for a POSIX shell (unchanged when nothing needs quoting).
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `lakebundle <the user's bundle flags> <rest...>`, shell-quoted.
pub fn command<S: AsRef<str>>(g: &GlobalArgs, rest: &[S]) -> String {
    let mut words: Vec<String> = vec!["lakebundle".into()];
    if let Some(d) = &g.dir {
        words.push("-C".into());
        words.push(d.display().to_string());
    }
    if g.local {
        words.push("--local".into());
    }
    if let Some(t) = &g.target {
        words.push("-t".into());
        words.push(t.clone());
    }
    if let Some(p) = &g.profile {
        words.push("-p".into());
        words.push(p.clone());
    }
    for v in &g.vars {
        words.push("--var".into());
        words.push(v.clone());
    }
    words.extend(rest.iter().map(|s| s.as_ref().to_string()));
    words
        .iter()
        .map(|w| shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("dev"), "dev");
        assert_eq!(shell_quote("a=b"), "a=b");
        assert_eq!(shell_quote("/tmp/x y"), "'/tmp/x y'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn carries_every_bundle_flag() {
        let g = GlobalArgs {
            dir: Some("my dir".into()),
            target: Some("dev".into()),
            vars: vec!["a=b".into(), "c=d e".into()],
            profile: Some("p1".into()),
            local: true,
            ..GlobalArgs::default()
        };
        assert_eq!(
            command(&g, &["deploy", "--plan", "p.json"]),
            "lakebundle -C 'my dir' --local -t dev -p p1 --var a=b --var 'c=d e' deploy --plan p.json"
        );
        assert_eq!(
            command(&GlobalArgs::default(), &["deploy"]),
            "lakebundle deploy"
        );
    }
}
