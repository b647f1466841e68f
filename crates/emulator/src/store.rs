//! Durable record store of the emulated workspace.
//!
//! Design: one generic SQLite table `records(collection, key, json)` in WAL mode with
//! `synchronous=FULL`, fronted by an in-memory copy of every record.
//!
//! Why SQLite rather than a hand-written write-ahead log: SQLite already gives atomic
//! multi-record transactions, crash recovery and fsync discipline that survive `kill -9`
//! (WAL + FULL syncs the log on every commit, so an acknowledged write is on disk), and
//! its file can be inspected with any sqlite tool. Why one generic table rather than a
//! table per collection: every resource is a JSON document addressed by a string key, the
//! service code (not the schema) owns validation, and new collections need no migration.
//! Why an in-memory mirror: reads are the hot path (pollers, plans); serving them from a
//! `BTreeMap` under a short lock keeps GET throughput far above what clients need, while
//! every mutation is committed to SQLite *before* it becomes visible in memory and before
//! the HTTP reply is sent.
//!
//! All mutations go through [`Store::txn`], which runs the closure under the store lock,
//! so concurrent clients observe a single serial order of writes.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection};
use serde_json::Value;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("cannot open the emulator database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("emulator database write failed: {0}")]
    Write(rusqlite::Error),
    #[error("emulator database holds an unreadable record {collection}/{key}: {source}")]
    Corrupt {
        collection: String,
        key: String,
        source: serde_json::Error,
    },
}

type Collection = BTreeMap<String, Value>;

thread_local! {
    /// Set while this thread runs a `Store::txn` closure, which holds the store lock.
    static IN_TXN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as inside a transaction until dropped (also on unwind).
struct TxnMark;

impl TxnMark {
    fn enter() -> TxnMark {
        IN_TXN.with(|f| f.set(true));
        TxnMark
    }
}

impl Drop for TxnMark {
    fn drop(&mut self) {
        IN_TXN.with(|f| f.set(false));
    }
}

/// A store read from inside a transaction would wait forever for the lock the
/// transaction holds; fail loudly instead (a bug in a handler, never input-driven).
fn assert_not_in_txn() {
    assert!(
        !IN_TXN.with(|f| f.get()),
        "Store read inside Store::txn would deadlock: read through the Txn instead"
    );
}

struct Inner {
    conn: Connection,
    data: HashMap<String, Collection>,
}

pub struct Store {
    inner: Mutex<Inner>,
    /// Int64 ids above 2^53 (`--large-ids`) instead of ones a JavaScript number holds.
    large_ids: std::sync::atomic::AtomicBool,
}

/// The int64 ids the workspace hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Job,
    Run,
    WorkspaceObject,
    AppServicePrincipal,
}

/// 2^53: the first integer a JavaScript number (an f64) cannot tell from its neighbour.
pub const JS_SAFE_LIMIT: i64 = 1 << 53;

impl IdKind {
    fn counter(self) -> &'static str {
        match self {
            IdKind::Job => "job_id",
            IdKind::Run => "run_id",
            IdKind::WorkspaceObject => "workspace_object_id",
            IdKind::AppServicePrincipal => "app_sp_id",
        }
    }

    /// First id with `--large-ids`: above 2^53, so a client that routes ids through an
    /// f64 corrupts them visibly.
    fn large_first(self) -> i64 {
        match self {
            IdKind::Job => 10_000_000_000_000_001,
            IdKind::Run => 20_000_000_000_000_001,
            IdKind::WorkspaceObject => 1_000_000_000_000_000_001,
            IdKind::AppServicePrincipal => 7_000_000_000_000_001,
        }
    }

    /// Default ids look like the service's (about 10^15, 15-16 digits) and stay below 2^53
    /// (~9.007 * 10^15), so the official JavaScript SDK reads them exactly.
    fn base(self) -> i64 {
        match self {
            IdKind::Job => 1_000_000_000_000_000,
            IdKind::Run => 500_000_000_000_000,
            IdKind::WorkspaceObject => 3_000_000_000_000_000,
            IdKind::AppServicePrincipal => 4_000_000_000_000_000,
        }
    }
}

/// One pending change, kept to roll memory back if the commit fails.
struct Undo {
    collection: String,
    key: String,
    previous: Option<Value>,
}

/// A read-write view over the store inside [`Store::txn`].
pub struct Txn<'a> {
    data: &'a mut HashMap<String, Collection>,
    undo: Vec<Undo>,
    large_ids: bool,
}

impl Txn<'_> {
    pub fn get(&self, collection: &str, key: &str) -> Option<&Value> {
        self.data.get(collection).and_then(|c| c.get(key))
    }

    pub fn put(&mut self, collection: &str, key: &str, value: Value) {
        let previous = self
            .data
            .entry(collection.to_string())
            .or_default()
            .insert(key.to_string(), value);
        self.undo.push(Undo {
            collection: collection.into(),
            key: key.into(),
            previous,
        });
    }

    pub fn delete(&mut self, collection: &str, key: &str) -> Option<Value> {
        let previous = self.data.get_mut(collection).and_then(|c| c.remove(key));
        if previous.is_some() {
            self.undo.push(Undo {
                collection: collection.into(),
                key: key.into(),
                previous: previous.clone(),
            });
        }
        previous
    }

    pub fn values(&self, collection: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.data.get(collection).into_iter().flat_map(|c| c.iter())
    }

    pub fn count(&self, collection: &str) -> usize {
        self.data.get(collection).map_or(0, |c| c.len())
    }

    /// The next id of a kind. Default ids start at a random point in the kind's range
    /// (so ids of different data dirs rarely coincide); the two modes count separately, so
    /// switching `--large-ids` on a data dir never mixes them in one counter.
    pub fn next_int64_id(&mut self, kind: IdKind) -> i64 {
        if self.large_ids {
            return self.next_id(kind.counter(), kind.large_first());
        }
        use rand::Rng;
        let first = kind.base() + rand::rng().random_range(1..100_000_000_000_000);
        self.next_id(&format!("{}/js", kind.counter()), first)
    }

    /// Next value of a named counter, starting at `first`.
    pub fn next_id(&mut self, counter: &str, first: i64) -> i64 {
        let current = self.get("counters", counter).and_then(Value::as_i64);
        let next = current.map_or(first, |c| c.saturating_add(1));
        self.put("counters", counter, Value::from(next));
        next
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS records (
                 collection TEXT NOT NULL,
                 key TEXT NOT NULL,
                 json TEXT NOT NULL,
                 PRIMARY KEY (collection, key)
             ) WITHOUT ROWID;",
        )
        .map_err(open_err)?;
        let mut data: HashMap<String, Collection> = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT collection, key, json FROM records")
                .map_err(open_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(open_err)?;
            for row in rows {
                let (collection, key, json) = row.map_err(open_err)?;
                let value = serde_json::from_str(&json).map_err(|source| StoreError::Corrupt {
                    collection: collection.clone(),
                    key: key.clone(),
                    source,
                })?;
                data.entry(collection).or_default().insert(key, value);
            }
        }
        Ok(Store {
            inner: Mutex::new(Inner { conn, data }),
            large_ids: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Hand out ids above 2^53 (`--large-ids`).
    pub fn set_large_ids(&self, on: bool) {
        self.large_ids
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, collection: &str, key: &str) -> Option<Value> {
        assert_not_in_txn();
        self.inner
            .lock()
            .data
            .get(collection)
            .and_then(|c| c.get(key))
            .cloned()
    }

    /// Look at one record in place (no copy): `f` runs under the store's lock,
    /// so it must be short (a read handler serialising its answer).
    pub fn read<R>(&self, collection: &str, key: &str, f: impl FnOnce(&Value) -> R) -> Option<R> {
        assert_not_in_txn();
        let inner = self.inner.lock();
        inner.data.get(collection).and_then(|c| c.get(key)).map(f)
    }

    /// Records of a collection in key order, starting after `after` (exclusive), at most
    /// `limit` of those accepted by `filter`. Returns the page and whether more remain.
    pub fn page(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: usize,
        filter: impl Fn(&Value) -> bool,
    ) -> (Vec<(String, Value)>, bool) {
        assert_not_in_txn();
        let inner = self.inner.lock();
        let Some(c) = inner.data.get(collection) else {
            return (Vec::new(), false);
        };
        let lower = match after {
            Some(a) => Bound::Excluded(a.to_string()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut more = false;
        for (k, v) in c.range((lower, Bound::Unbounded)) {
            if !filter(v) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push((k.clone(), v.clone()));
        }
        (out, more)
    }

    /// Every record of a collection (key order).
    pub fn all(&self, collection: &str) -> Vec<(String, Value)> {
        assert_not_in_txn();
        let inner = self.inner.lock();
        inner
            .data
            .get(collection)
            .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Run `f` atomically: its writes are committed to SQLite (fsync'd) before they are
    /// visible to anyone else; if `f` fails or the commit fails, memory is rolled back.
    pub fn txn<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        assert_not_in_txn();
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let mut txn = Txn {
            data: &mut inner.data,
            undo: Vec::new(),
            large_ids: self.large_ids.load(std::sync::atomic::Ordering::Relaxed),
        };
        let result = {
            let _mark = TxnMark::enter();
            f(&mut txn)
        };
        let undo = std::mem::take(&mut txn.undo);
        match result {
            Ok(r) => {
                if undo.is_empty() {
                    return Ok(r);
                }
                let commit = blocking(|| commit(&mut inner.conn, &inner.data, &undo));
                match commit {
                    Ok(()) => Ok(r),
                    Err(e) => {
                        rollback(&mut inner.data, undo);
                        Err(E::from(e))
                    }
                }
            }
            Err(e) => {
                rollback(&mut inner.data, undo);
                Err(e)
            }
        }
    }
}

/// Run a blocking disk operation without starving the async runtime when we are on a
/// multi-threaded one (a current-thread runtime cannot hand its worker over).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn commit(
    conn: &mut Connection,
    data: &HashMap<String, Collection>,
    undo: &[Undo],
) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(StoreError::Write)?;
    {
        let mut put = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO records (collection, key, json) VALUES (?1, ?2, ?3)",
            )
            .map_err(StoreError::Write)?;
        let mut del = tx
            .prepare_cached("DELETE FROM records WHERE collection = ?1 AND key = ?2")
            .map_err(StoreError::Write)?;
        // Several changes to one key: only the final value matters.
        let mut seen = std::collections::HashSet::new();
        for u in undo.iter().rev() {
            if !seen.insert((u.collection.as_str(), u.key.as_str())) {
                continue;
            }
            match data.get(&u.collection).and_then(|c| c.get(&u.key)) {
                Some(v) => {
                    put.execute(params![u.collection, u.key, v.to_string()])
                        .map_err(StoreError::Write)?;
                }
                None => {
                    del.execute(params![u.collection, u.key])
                        .map_err(StoreError::Write)?;
                }
            }
        }
    }
    tx.commit().map_err(StoreError::Write)
}

fn rollback(data: &mut HashMap<String, Collection>, undo: Vec<Undo>) {
    for u in undo.into_iter().rev() {
        let c = data.entry(u.collection).or_default();
        match u.previous {
            Some(v) => {
                c.insert(u.key, v);
            }
            None => {
                c.remove(&u.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_survive_reopen_and_failed_txn_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = Store::open(&path).unwrap();
            s.txn(|t| {
                t.put("a", "k1", json!({"v": 1}));
                t.put("a", "k2", json!({"v": 2}));
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let r: Result<(), StoreError> = s.txn(|t| {
                t.put("a", "k3", json!(3));
                t.delete("a", "k1");
                Err(StoreError::Write(rusqlite::Error::InvalidQuery))
            });
            assert!(r.is_err());
            assert_eq!(s.get("a", "k1"), Some(json!({"v": 1})));
            assert_eq!(s.get("a", "k3"), None);
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.all("a").len(), 2);
        let (page, more) = s.page("a", Some("k1"), 10, |_| true);
        assert_eq!(page.len(), 1);
        assert!(!more);
        let reentrant = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = s.txn(|_| Ok::<_, StoreError>(s.get("a", "k1")));
        }));
        assert!(
            reentrant.is_err(),
            "a store read inside txn is refused, not deadlocked"
        );
        assert!(
            s.get("a", "k1").is_some(),
            "the lock and the mark are released after the panic"
        );
        let id = s
            .txn(|t| Ok::<_, StoreError>((t.next_id("c", 5), t.next_id("c", 5))))
            .unwrap();
        assert_eq!(id, (5, 6));
    }
}
