//! Exclusive ownership of a data dir: one emulator process at a time.
//!
//! An `flock` on `<data-dir>/emulator.lock` is held for the life of the server; the kernel
//! drops it when the process dies (even by `kill -9`), so a stale lock never blocks a
//! restart. The lock file's content (and `emulator.json`) names the owner's pid and URL
//! so that a refusal can say who holds it and `emulator down` can stop it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::EmulatorError;

pub const LOCK_FILE: &str = "emulator.lock";
pub const INFO_FILE: &str = "emulator.json";

#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    dir: PathBuf,
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn open_lock(dir: &Path) -> Result<File, EmulatorError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .mode(0o600)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| EmulatorError::io(dir.join(LOCK_FILE), e))
}

/// The pid written into the lock file by its current holder, if any.
pub fn holder_pid(dir: &Path) -> Option<u32> {
    let mut s = String::new();
    File::open(dir.join(LOCK_FILE))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    s.trim().parse().ok()
}

/// Whether some live process holds the lock of `dir`.
pub fn is_held(dir: &Path) -> bool {
    match File::open(dir.join(LOCK_FILE)) {
        Ok(f) => {
            if try_flock(&f) {
                // SAFETY: releasing the probe lock we just took on our own descriptor.
                unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
                false
            } else {
                true
            }
        }
        Err(_) => false,
    }
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<DataDirLock, EmulatorError> {
        let mut file = open_lock(dir)?;
        if !try_flock(&file) {
            return Err(EmulatorError::InUse {
                dir: dir.to_path_buf(),
                pid: holder_pid(dir).unwrap_or(0),
                url: read_info(dir).map(|(_, u)| u),
            });
        }
        let pid = std::process::id();
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.seek(SeekFrom::Start(0))?;
            writeln!(f, "{pid}")?;
            f.sync_all()
        };
        write(&mut file).map_err(|e| EmulatorError::io(dir.join(LOCK_FILE), e))?;
        Ok(DataDirLock {
            file,
            dir: dir.to_path_buf(),
        })
    }

    /// Record the URL the server listens on, for `emulator down` and for other tools.
    pub fn publish_url(&self, url: &str) -> Result<(), EmulatorError> {
        let path = self.dir.join(INFO_FILE);
        let tmp = self.dir.join(format!("{INFO_FILE}.tmp"));
        let body = serde_json::json!({"pid": std::process::id(), "url": url}).to_string();
        std::fs::write(&tmp, body)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| EmulatorError::io(path, e))
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(INFO_FILE));
        let _ = self.file.set_len(0);
        // SAFETY: unlocking our own descriptor.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// `(pid, url)` of the emulator serving `dir`, from `emulator.json`.
pub fn read_info(dir: &Path) -> Option<(u32, String)> {
    let s = std::fs::read_to_string(dir.join(INFO_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    Some((
        v.get("pid")?.as_u64()? as u32,
        v.get("url")?.as_str()?.to_string(),
    ))
}
