//! The local state cache `.lakebundle/<target>/`: `resources.json` replaced by
//! atomic rename, preceded by a fsync'd line in `wal.jsonl` per change, so a
//! crash between a remote create and the snapshot never forgets the resource.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{private, DeploymentState, ResourceState, StateError};
use crate::resources::ResourceAddr;

const SNAPSHOT: &str = "resources.json";
const WAL: &str = "wal.jsonl";

/// One change, as logged before the snapshot is rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WalOp {
    Put {
        addr: ResourceAddr,
        resource: ResourceState,
    },
    Remove {
        addr: ResourceAddr,
    },
    /// A create is about to be sent.
    Intent {
        addr: ResourceAddr,
    },
    /// A created object failed to become ready.
    Taint {
        addr: ResourceAddr,
    },
}

/// One line of `wal.jsonl`: the change that produced state `serial`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalEntry {
    pub lineage: String,
    pub serial: u64,
    #[serde(flatten)]
    pub op: WalOp,
}

#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The local state, its snapshot's serial and the snapshot's SHA-256.
pub type LoadedLocal = (Option<DeploymentState>, u64, Option<[u8; 32]>);

impl LocalStore {
    /// `<bundle_root>/.lakebundle/<target>/`
    pub fn new(bundle_root: &Path, target: &str) -> Self {
        LocalStore {
            dir: bundle_root.join(".lakebundle").join(target),
        }
    }

    /// A store in an explicit directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        LocalStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT)
    }

    pub fn wal_path(&self) -> PathBuf {
        self.dir.join(WAL)
    }

    /// Create the cache directory, owner-only (0700), and tighten one left
    /// by an older version; its `.lakebundle` parent too.
    fn ensure_dir(&self) -> Result<(), StateError> {
        private::create_dir_all(&self.dir).map_err(io_err("create directory", &self.dir))?;
        private::restrict_dir(&self.dir).map_err(io_err("restrict", &self.dir))?;
        if let Some(parent) = self
            .dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == ".lakebundle"))
        {
            private::restrict_dir(parent).map_err(io_err("restrict", parent))?;
        }
        Ok(())
    }

    /// The snapshot with every logged change after it replayed; `None` when
    /// nothing was ever saved. A torn last log line (crash mid-append) is ignored.
    pub fn load(&self) -> Result<Option<DeploymentState>, StateError> {
        Ok(self.load_with_snapshot_serial()?.0)
    }

    /// [`LocalStore::load`], and the serial the snapshot file itself holds
    /// (0 when there is none): entries replayed from the log beyond it are
    /// not in `resources.json` yet.
    pub fn load_with_snapshot_serial(&self) -> Result<(Option<DeploymentState>, u64), StateError> {
        self.load_with_snapshot()
            .map(|(st, serial, _)| (st, serial))
    }

    /// [`LocalStore::load_with_snapshot_serial`], also returning the
    /// snapshot's SHA-256: when the workspace copy has the same bytes, it
    /// need not be parsed a second time.
    pub fn load_with_snapshot(&self) -> Result<LoadedLocal, StateError> {
        use sha2::Digest;
        let snap_path = self.snapshot_path();
        let (mut state, digest) = match fs::read(&snap_path) {
            Ok(bytes) => (
                Some(DeploymentState::from_json(
                    &bytes,
                    &snap_path.display().to_string(),
                )?),
                Some(sha2::Sha256::digest(&bytes).into()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(io_err("read", &snap_path)(e)),
        };
        let snapshot_serial = state.as_ref().map_or(0, |s| s.serial);
        for entry in self.read_wal()? {
            let st = state.get_or_insert_with(|| DeploymentState {
                lineage: entry.lineage.clone(),
                ..DeploymentState::new()
            });
            // Entries of another lineage belong to a cleared deployment.
            if entry.lineage != st.lineage || entry.serial <= st.serial {
                continue;
            }
            st.serial = entry.serial;
            st.apply_op(entry.op);
        }
        Ok((state, snapshot_serial, digest))
    }

    /// The logged entries. A torn last line (a crash mid-append) is cut off
    /// the file, so later appends start on a clean line; a bad line anywhere
    /// else is corruption.
    fn read_wal(&self) -> Result<Vec<WalEntry>, StateError> {
        let path = self.wal_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let mut out = Vec::new();
        let mut offset = 0;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let start = offset;
            offset += line.len();
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<WalEntry>(line) {
                Ok(e) => out.push(e),
                Err(_) if i + 1 == lines.len() => {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err("open", &path))?;
                    f.set_len(start as u64).map_err(io_err("truncate", &path))?;
                    f.sync_data().map_err(io_err("sync", &path))?;
                }
                Err(e) => {
                    return Err(StateError::Parse {
                        path: format!("{}:{}", path.display(), i + 1),
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Append one change and fsync it.
    pub fn append_wal(&self, entry: &WalEntry) -> Result<(), StateError> {
        self.ensure_dir()?;
        let path = self.wal_path();
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let mut f = private::open(&path, OpenOptions::new().create(true).append(true))
            .map_err(io_err("open", &path))?;
        f.write_all(&line).map_err(io_err("write", &path))?;
        f.sync_data().map_err(io_err("sync", &path))
    }

    /// Replace `resources.json` atomically (write temp, fsync, rename, fsync
    /// dir). The log entries it covers stay until [`LocalStore::compact_wal`].
    pub fn write_snapshot(&self, state: &DeploymentState) -> Result<(), StateError> {
        self.write_snapshot_bytes(&state.to_json())
    }

    /// [`LocalStore::write_snapshot`] of already serialised state.
    pub fn write_snapshot_bytes(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.ensure_dir()?;
        let path = self.snapshot_path();
        let tmp = self.dir.join(format!("{SNAPSHOT}.tmp"));
        {
            let mut f = private::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all(bytes).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("sync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        if let Ok(d) = File::open(&self.dir) {
            // Makes the rename durable; not every platform allows syncing a directory.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Keep only log entries newer than `serial`, i.e. not yet covered by the
    /// snapshot. Callers serialise this with [`LocalStore::append_wal`].
    pub fn compact_wal(&self, serial: u64) -> Result<(), StateError> {
        let path = self.wal_path();
        let keep: Vec<WalEntry> = self
            .read_wal()?
            .into_iter()
            .filter(|e| e.serial > serial)
            .collect();
        if keep.is_empty() {
            return match private::create(&path) {
                Ok(_) => Ok(()),
                Err(e) => Err(io_err("truncate", &path)(e)),
            };
        }
        let tmp = self.dir.join(format!("{WAL}.tmp"));
        {
            let mut f = private::create(&tmp).map_err(io_err("create", &tmp))?;
            for e in &keep {
                let mut line = serde_json::to_vec(e).unwrap_or_default();
                line.push(b'\n');
                f.write_all(&line).map_err(io_err("write", &tmp))?;
            }
            f.sync_all().map_err(io_err("sync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    /// Remove the cache (after destroy).
    pub fn clear(&self) -> Result<(), StateError> {
        for path in [self.snapshot_path(), self.wal_path()] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok(())
    }
}
