//! Local state store: write-ahead log, atomic snapshot, crash recovery.

use std::fs;
use std::io::Write;

use lakebundle::resources::{Kind, ResourceAddr};
use lakebundle::state::{DeploymentState, LocalStore, ResourceState, StateStore, WalEntry, WalOp};
use serde_json::json;

fn addr(key: &str) -> ResourceAddr {
    ResourceAddr::new(Kind::Jobs, key)
}

fn resource(id: &str) -> ResourceState {
    ResourceState {
        id: id.into(),
        applied: json!({"name": id}),
        outputs: json!({"id": id}),
        depends_on: vec![],
    }
}

#[tokio::test]
async fn every_record_is_durable_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(LocalStore::at(dir.path()), None)
        .await
        .unwrap();
    assert!(store.snapshot().is_new());
    store.put(&addr("a"), resource("1")).await.unwrap();
    store.put(&addr("b"), resource("2")).await.unwrap();
    store.remove(&addr("a")).await.unwrap();
    let lineage = store.snapshot().lineage;

    let reloaded = LocalStore::at(dir.path())
        .load()
        .unwrap()
        .expect("state saved");
    assert_eq!(reloaded.serial, 3);
    assert_eq!(reloaded.lineage, lineage);
    assert_eq!(
        reloaded.resources.keys().cloned().collect::<Vec<_>>(),
        vec![addr("b")]
    );
    // Until a flush the log carries the changes; a flush rewrites the
    // snapshot, which then covers everything, and compacts the log.
    let wal = fs::read_to_string(dir.path().join("wal.jsonl")).unwrap();
    assert_eq!(wal.lines().count(), 3, "every change is logged: {wal}");
    store.sync_remote().await.unwrap();
    let wal = fs::read_to_string(dir.path().join("wal.jsonl")).unwrap();
    assert!(wal.trim().is_empty(), "log not compacted: {wal}");
    let flushed = LocalStore::at(dir.path()).load().unwrap().unwrap();
    assert_eq!(flushed.serial, 3);
}

#[test]
fn crash_before_rename_is_recovered_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::at(dir.path());
    let mut state = DeploymentState::new();
    state.serial = 1;
    state.resources.insert(addr("a"), resource("1"));
    local.write_snapshot(&state).unwrap();

    // A create succeeded and was logged; the process died before the rename.
    let entry = WalEntry {
        lineage: state.lineage.clone(),
        serial: 2,
        op: WalOp::Put {
            addr: addr("b"),
            resource: resource("2"),
        },
    };
    local.append_wal(&entry).unwrap();
    // ...leaving a half-written temp file behind, as a crash mid-write would.
    fs::write(
        dir.path().join("resources.json.tmp"),
        b"{\"format_version\": 1, \"lin",
    )
    .unwrap();

    let loaded = local.load().unwrap().unwrap();
    assert_eq!(loaded.serial, 2);
    assert_eq!(loaded.get(&addr("b")).map(|r| r.id.as_str()), Some("2"));
    assert_eq!(loaded.get(&addr("a")).map(|r| r.id.as_str()), Some("1"));
}

#[test]
fn torn_last_log_line_is_ignored_but_earlier_corruption_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::at(dir.path());
    let lineage = "lin-1".to_string();
    local
        .append_wal(&WalEntry {
            lineage: lineage.clone(),
            serial: 1,
            op: WalOp::Put {
                addr: addr("a"),
                resource: resource("1"),
            },
        })
        .unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(local.wal_path())
        .unwrap();
    f.write_all(b"{\"lineage\":\"lin-1\",\"serial\":2,\"op\":\"put\",\"ad")
        .unwrap();
    drop(f);

    let loaded = local.load().unwrap().unwrap();
    assert_eq!(loaded.lineage, lineage);
    assert_eq!(loaded.serial, 1);
    assert!(loaded.get(&addr("a")).is_some());

    // The torn bytes were cut off, so the next append is a clean line.
    local
        .append_wal(&WalEntry {
            lineage: lineage.clone(),
            serial: 2,
            op: WalOp::Remove { addr: addr("a") },
        })
        .unwrap();
    let loaded = local.load().unwrap().unwrap();
    assert_eq!(loaded.serial, 2);
    assert!(loaded.resources.is_empty());

    // Garbage followed by a valid line is corruption, not a torn write.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(local.wal_path())
        .unwrap();
    f.write_all(b"not json\n").unwrap();
    drop(f);
    local
        .append_wal(&WalEntry {
            lineage,
            serial: 3,
            op: WalOp::Put {
                addr: addr("c"),
                resource: resource("3"),
            },
        })
        .unwrap();
    let err = local.load().unwrap_err().to_string();
    assert!(err.contains("wal.jsonl:3"), "{err}");
}

#[test]
fn log_entries_already_in_the_snapshot_are_not_replayed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::at(dir.path());
    let mut state = DeploymentState::new();
    // Crash after the rename but before the log was compacted: entry 1 is in both.
    let put = WalOp::Put {
        addr: addr("a"),
        resource: resource("1"),
    };
    local
        .append_wal(&WalEntry {
            lineage: state.lineage.clone(),
            serial: 1,
            op: put.clone(),
        })
        .unwrap();
    state.apply_op(put);
    state.serial = 1;
    local.write_snapshot(&state).unwrap();
    // A later removal logged but not yet in a snapshot.
    local
        .append_wal(&WalEntry {
            lineage: state.lineage.clone(),
            serial: 2,
            op: WalOp::Remove { addr: addr("a") },
        })
        .unwrap();
    let loaded = local.load().unwrap().unwrap();
    assert_eq!(loaded.serial, 2);
    assert!(loaded.resources.is_empty());
}

#[tokio::test]
async fn create_intents_survive_a_crash_and_clear_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(LocalStore::at(dir.path()), None)
        .await
        .unwrap();
    store.put(&addr("a"), resource("1")).await.unwrap();
    store.intend(&addr("b")).unwrap();
    drop(store);

    // "Crash": reopen from disk. The interrupted create is known.
    let store = StateStore::open(LocalStore::at(dir.path()), None)
        .await
        .unwrap();
    assert!(store.is_pending(&addr("b")));
    assert!(!store.is_pending(&addr("a")));
    store.put(&addr("b"), resource("2")).await.unwrap();
    assert!(!store.is_pending(&addr("b")));
    let reloaded = LocalStore::at(dir.path()).load().unwrap().unwrap();
    assert!(reloaded.pending.is_empty());
}

#[test]
fn state_file_from_a_newer_lakebundle_is_refused() {
    let text = br#"{"format_version": 99, "lineage": "x", "serial": 1, "resources": {}}"#;
    let err = DeploymentState::from_json(text, "resources.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("format version 99"), "{err}");
}

#[tokio::test]
async fn concurrent_records_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(LocalStore::at(dir.path()), None)
        .await
        .unwrap();
    let futs = (0..40).map(|i| {
        let store = &store;
        async move {
            store
                .put(&addr(&format!("r{i}")), resource(&i.to_string()))
                .await
        }
    });
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
    let reloaded = LocalStore::at(dir.path()).load().unwrap().unwrap();
    assert_eq!(reloaded.resources.len(), 40);
    assert_eq!(reloaded.serial, 40);
}
