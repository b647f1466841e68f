//! Owner-only files and directories for what lakebundle keeps on disk
//! (state snapshot, write-ahead log, sync manifest, saved plans): they hold
//! resource ids, configurations and workspace paths that other local users
//! have no business reading. Files are 0600, directories 0700 (Unix; other
//! platforms keep their defaults).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of the files lakebundle writes.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories lakebundle creates for them.
pub const DIR_MODE: u32 = 0o700;

/// Create `dir` and its missing parents; the directories created are owner-only.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)
}

/// Replace `path` whole and owner-only: a temp file beside it (named for this
/// process, so two writers never share one), then a rename; a reader never
/// sees half a file. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Make an existing directory owner-only (caches made before this rule, or
/// under a permissive umask).
pub fn restrict_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != DIR_MODE {
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Open a file for writing with `options`, owner-only. The mode is also set on
/// the open file, so a file that already existed (a stale temp file, a log
/// written by an older version) is tightened too.
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// `File::create`, owner-only.
pub fn create(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new().write(true).create(true).truncate(true),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_dirs_are_owner_only_even_when_they_existed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&t.path().join("a")), DIR_MODE);
        let f = dir.join("f");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        create(&f).unwrap();
        assert_eq!(mode(&f), FILE_MODE);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        restrict_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
    }
}
