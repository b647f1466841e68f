//! Where `--local` reads synced tables' source tables from: `$LAKEBUNDLE_LAKE_DIR`,
//! else `<bundle root>/lake` when that directory exists, else nowhere (sources
//! are not read and synced tables come up empty). A source table `a.b.c` is the
//! file `<lake>/a/b/c.csv` (or `.jsonl`).

use std::path::{Path, PathBuf};

/// The environment variable naming the lake dir for `--local`.
pub const LAKE_DIR_ENV: &str = "LAKEBUNDLE_LAKE_DIR";

/// The conventional lake dir inside a bundle.
pub const BUNDLE_LAKE_DIR: &str = "lake";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LakeDirError {
    // The CLI prints only the message, so it carries the fix too.
    #[error(
        "{LAKE_DIR_ENV}={} is not a directory; point it at a directory of \
         <catalog>/<schema>/<table>.csv files, or unset it to use <bundle root>/lake",
        .0.display()
    )]
    #[diagnostic(code(lakebundle::local::lake_dir))]
    NotADirectory(PathBuf),
}

/// The lake dir for a `--local` command on the bundle at `bundle_root`, as an
/// absolute path (the emulator records each synced table's source path, and
/// later refreshes may run from another working directory).
pub fn local_lake_dir(bundle_root: &Path) -> Result<Option<PathBuf>, LakeDirError> {
    resolve(
        std::env::var_os(LAKE_DIR_ENV).map(PathBuf::from),
        bundle_root,
    )
}

fn resolve(env: Option<PathBuf>, bundle_root: &Path) -> Result<Option<PathBuf>, LakeDirError> {
    match env {
        // Set but empty: explicitly no lake dir, even when the bundle has one.
        Some(p) if p.as_os_str().is_empty() => Ok(None),
        Some(p) if p.is_dir() => Ok(Some(absolute(&p))),
        Some(p) => Err(LakeDirError::NotADirectory(p)),
        None => {
            let p = bundle_root.join(BUNDLE_LAKE_DIR);
            Ok(p.is_dir().then(|| absolute(&p)))
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_then_the_bundle_convention_then_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bundle = tmp.path().join("bundle");
        let other = tmp.path().join("other-lake");
        std::fs::create_dir_all(&bundle).expect("mkdir");
        std::fs::create_dir_all(&other).expect("mkdir");

        assert_eq!(resolve(None, &bundle).expect("ok"), None);

        std::fs::create_dir_all(bundle.join("lake")).expect("mkdir");
        let conv = resolve(None, &bundle).expect("ok").expect("bundle lake");
        assert!(conv.is_absolute());
        assert_eq!(conv, bundle.join("lake").canonicalize().expect("canon"));

        let env = resolve(Some(other.clone()), &bundle).expect("ok");
        assert_eq!(env, Some(other.canonicalize().expect("canon")));

        assert_eq!(resolve(Some(PathBuf::new()), &bundle).expect("ok"), None);
    }

    #[test]
    fn a_missing_env_dir_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let missing = tmp.path().join("nope");
        let e = resolve(Some(missing.clone()), tmp.path()).expect_err("not a dir");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        assert!(e.to_string().starts_with("LAKEBUNDLE_LAKE_DIR="), "{e}");
    }
}
