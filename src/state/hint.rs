//! Where a target's workspace state was last found
//! (`.lakebundle/state-paths.json`, per `-t` given), so `plan` can fetch it
//! while the bundle is still loading. Only a head start: the fetch is used
//! when the loaded bundle names the same state path, and made again if not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A target and the workspace folder its state was found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePathHint {
    pub target: String,
    pub state_path: String,
}

type Hints = BTreeMap<String, StatePathHint>;

fn hints_file(root: &Path) -> PathBuf {
    root.join(".lakebundle").join("state-paths.json")
}

fn read_all(path: &Path) -> Option<Hints> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The hint for a command run with `-t target_arg` (`None`: the bundle's
/// default target). A missing or unreadable file is no hint.
pub fn read_hint(root: &Path, target_arg: Option<&str>) -> Option<StatePathHint> {
    read_all(&hints_file(root))?.remove(target_arg.unwrap_or(""))
}

/// Remember where this command found the state. Best effort (a hint that
/// cannot be written costs the next `plan` its head start, nothing else), and
/// only in a bundle that has a `.lakebundle` folder already: a command never
/// creates it for this.
pub fn record_hint(root: &Path, target_arg: Option<&str>, hint: StatePathHint) {
    let path = hints_file(root);
    if !path.parent().is_some_and(Path::is_dir) {
        return;
    }
    let mut hints = read_all(&path).unwrap_or_default();
    let key = target_arg.unwrap_or("").to_string();
    if hints.get(&key) == Some(&hint) {
        return;
    }
    hints.insert(key, hint);
    let Ok(bytes) = serde_json::to_vec_pretty(&hints) else {
        return;
    };
    // Owner-only like the rest of the cache (it names workspace folders).
    let _ = super::private::write_atomic(&path, &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(target: &str, path: &str) -> StatePathHint {
        StatePathHint {
            target: target.into(),
            state_path: path.into(),
        }
    }

    #[test]
    fn hints_are_kept_per_target_argument_and_only_in_an_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        record_hint(dir.path(), None, hint("dev", "/a"));
        assert!(
            !dir.path().join(".lakebundle").exists(),
            "never creates the folder"
        );
        std::fs::create_dir(dir.path().join(".lakebundle")).unwrap();
        record_hint(dir.path(), None, hint("dev", "/a"));
        record_hint(dir.path(), Some("prod"), hint("prod", "/b"));
        assert_eq!(read_hint(dir.path(), None), Some(hint("dev", "/a")));
        assert_eq!(
            read_hint(dir.path(), Some("prod")),
            Some(hint("prod", "/b"))
        );
        assert_eq!(read_hint(dir.path(), Some("stage")), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(hints_file(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, super::super::private::FILE_MODE, "owner-only");
        }
        record_hint(dir.path(), None, hint("dev", "/c"));
        assert_eq!(read_hint(dir.path(), None), Some(hint("dev", "/c")));
        std::fs::write(hints_file(dir.path()), "not json").unwrap();
        assert_eq!(read_hint(dir.path(), None), None);
    }
}
