//! The records-only backend (`emulator serve --no-postgres`): no PostgreSQL server runs.
//!
//! Instances get a `read_write_dns` of the form `instance-<uid>.database.local:5432`, which
//! is NOT connectable: it only has the shape of the real service's host names so that
//! plans, state files and summaries look realistic. Databases are tracked by name (each
//! instance starts with `databricks_postgres`) in `<data-dir>/records-backend.json`, so
//! catalog registration behaves as it would against a server. Synced tables count the
//! rows of their source file; nothing is loaded anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::backend::{
    BackendError, DbBackend, Endpoints, InstanceSpec, SyncStats, SyncedTableSpec,
};

const DEFAULT_DATABASE: &str = "databricks_postgres";

pub struct NoPostgres {
    path: PathBuf,
    /// instance uid → database names
    databases: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl NoPostgres {
    pub fn new(data_dir: &Path) -> Result<NoPostgres, BackendError> {
        let path = data_dir.join("records-backend.json");
        let databases = match std::fs::read_to_string(&path) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| {
                BackendError::Internal(format!("{} is unreadable: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(BackendError::Internal(format!("{}: {e}", path.display()))),
        };
        Ok(NoPostgres {
            path,
            databases: Mutex::new(databases),
        })
    }

    fn save(&self, dbs: &BTreeMap<String, BTreeSet<String>>) -> Result<(), BackendError> {
        let tmp = self.path.with_extension("json.tmp");
        let body = serde_json::to_vec(dbs).map_err(|e| BackendError::Internal(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| BackendError::Internal(format!("{}: {e}", self.path.display())))
    }

    fn endpoints(spec: &InstanceSpec) -> Endpoints {
        Endpoints {
            read_write_dns: format!("instance-{}.database.local:5432", spec.uid),
            read_only_dns: spec
                .enable_readable_secondaries
                .then(|| format!("instance-ro-{}.database.local:5432", spec.uid)),
            pg_version: "PG_VERSION_16".into(),
            replica_dns: Vec::new(),
        }
    }
}

/// Rows of a `.csv` (minus header) or `.jsonl` (non-blank lines) source file.
fn count_rows(source: &Path) -> Result<u64, BackendError> {
    let text = std::fs::read_to_string(source).map_err(|e| {
        BackendError::NotFound(format!(
            "source table file {} cannot be read: {e}",
            source.display()
        ))
    })?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let is_csv = source.extension().is_some_and(|e| e == "csv");
    Ok(if is_csv {
        lines.saturating_sub(1)
    } else {
        lines
    })
}

#[async_trait]
impl DbBackend for NoPostgres {
    async fn create_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError> {
        let mut dbs = self.databases.lock();
        let mut set: BTreeSet<String> = match &spec.parent {
            Some((parent, _)) => dbs.get(parent).cloned().unwrap_or_default(),
            None => BTreeSet::new(),
        };
        set.insert(DEFAULT_DATABASE.into());
        dbs.insert(spec.uid.clone(), set);
        self.save(&dbs)?;
        Ok(Self::endpoints(spec))
    }

    async fn update_instance(&self, spec: &InstanceSpec) -> Result<Endpoints, BackendError> {
        Ok(Self::endpoints(spec))
    }

    async fn delete_instance(&self, uid: &str, _purge: bool) -> Result<(), BackendError> {
        let mut dbs = self.databases.lock();
        if dbs.remove(uid).is_some() {
            self.save(&dbs)?;
        }
        Ok(())
    }

    async fn set_credential(
        &self,
        uid: &str,
        _role: &str,
        _password: &str,
        _valid_until: &str,
    ) -> Result<(), BackendError> {
        if self.databases.lock().contains_key(uid) {
            Ok(())
        } else {
            Err(BackendError::NotFound(format!(
                "no instance with uid {uid}"
            )))
        }
    }

    async fn database_exists(&self, uid: &str, database: &str) -> Result<bool, BackendError> {
        Ok(self
            .databases
            .lock()
            .get(uid)
            .is_some_and(|s| s.contains(database)))
    }

    async fn create_database(&self, uid: &str, database: &str) -> Result<(), BackendError> {
        let mut dbs = self.databases.lock();
        let set = dbs
            .get_mut(uid)
            .ok_or_else(|| BackendError::NotFound(format!("no instance with uid {uid}")))?;
        if set.insert(database.to_string()) {
            self.save(&dbs)?;
        }
        Ok(())
    }

    async fn create_synced_table(&self, spec: &SyncedTableSpec) -> Result<SyncStats, BackendError> {
        self.refresh_synced_table(spec).await
    }

    async fn refresh_synced_table(
        &self,
        spec: &SyncedTableSpec,
    ) -> Result<SyncStats, BackendError> {
        // Callers locate the source first; no source is never a success.
        if spec.source.as_os_str().is_empty() {
            return Err(BackendError::NotFound(
                "the synced table's source table was not found".into(),
            ));
        }
        let rows = count_rows(&spec.source)?;
        Ok(SyncStats {
            rows_upserted: rows,
            rows_deleted: 0,
            total_rows: rows,
        })
    }

    async fn delete_synced_table(
        &self,
        _spec: &SyncedTableSpec,
        _purge_data: bool,
    ) -> Result<(), BackendError> {
        Ok(())
    }

    async fn adopt(
        &self,
        specs: &[InstanceSpec],
    ) -> Result<Vec<(String, Endpoints)>, BackendError> {
        Ok(specs
            .iter()
            .map(|s| (s.uid.clone(), Self::endpoints(s)))
            .collect())
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
