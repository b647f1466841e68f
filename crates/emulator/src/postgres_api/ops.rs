//! Long-running operations (§1.3): every create/update/delete answers one at once; its work
//! runs in the background, serialised per project, and the operation (with the resource,
//! or an Empty for deletes, as `response`) stays fetchable after it is done.

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::{not_found, PgErr, PgResult, OPERATIONS};
use crate::http::ApiErr;
use crate::server::Emu;

/// What a delete operation answers: an Empty (the SDK refuses a done op without response).
pub fn empty() -> Value {
    json!({"@type": "type.googleapis.com/google.protobuf.Empty"})
}

/// Record a new operation on `resource` and run `work` in the background under
/// `lock_key`; returns the operation as the mutation's reply (`done: false`).
pub fn start<F>(
    emu: &Arc<Emu>,
    resource: &str,
    kind: &str,
    lock_key: String,
    work: F,
) -> PgResult<Value>
where
    F: Future<Output = PgResult<Value>> + Send + 'static,
{
    let mut raw = [0u8; 10];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    // Real op ids are opaque, base64-like, and may hold `/`, `+`, `=` (§1.3).
    let id = base64::engine::general_purpose::STANDARD.encode(raw);
    let name = format!("{resource}/operations/{id}");
    let op = json!({
        "name": name,
        "done": false,
        "metadata": {"@type": format!("type.googleapis.com/databricks.postgres.v1.{kind}OperationMetadata")},
    });
    emu.store.txn(|t| {
        t.put(OPERATIONS, &name, op.clone());
        Ok::<_, ApiErr>(())
    })?;
    let emu = emu.clone();
    let op_name = name.clone();
    let endpoint = super::computes::is_endpoint_name(resource).then(|| resource.to_string());
    if let Some(e) = &endpoint {
        super::computes::begin_reconcile(&emu, e);
    }
    tokio::spawn(async move {
        let lock = emu.instance_op_lock(&lock_key);
        let result = {
            let _turn = lock.lock().await;
            work.await
        };
        if let Some(e) = &endpoint {
            super::computes::end_reconcile(&emu, e);
        }
        finish(&emu, &op_name, result);
    });
    Ok(op)
}

fn finish(emu: &Emu, name: &str, result: PgResult<Value>) {
    let saved = emu.store.txn(|t| {
        let Some(mut op) = t.get(OPERATIONS, name).cloned() else {
            return Ok::<_, ApiErr>(());
        };
        if let Some(m) = op.as_object_mut() {
            m.insert("done".into(), json!(true));
            match &result {
                Ok(v) => {
                    m.insert("response".into(), v.clone());
                }
                Err(e) => {
                    if let PgErr::Api(a) = e {
                        tracing::warn!("postgres operation {name} failed: {}", a.message);
                    }
                    m.insert(
                        "error".into(),
                        json!({"error_code": e.code(), "message": e.message(), "details": []}),
                    );
                }
            }
        }
        t.put(OPERATIONS, name, op);
        Ok(())
    });
    if let Err(e) = saved {
        tracing::error!("cannot record operation {name}: {}", e.message);
    }
}

pub fn get(emu: &Emu, name: &str) -> PgResult<Value> {
    emu.store
        .get(OPERATIONS, name)
        .ok_or_else(|| not_found("operation", name))
}

/// On start: operations whose process died with them fail (a poller must not wait forever).
pub fn fail_orphans(emu: &Emu) {
    let orphans: Vec<String> = emu
        .store
        .all(OPERATIONS)
        .into_iter()
        .filter(|(_, op)| op["done"] != json!(true))
        .map(|(k, _)| k)
        .collect();
    for name in orphans {
        finish(
            emu,
            &name,
            Err(PgErr::Api(ApiErr::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "ABORTED",
                "the operation was interrupted: the local workspace restarted; retry it",
            ))),
        );
    }
}
