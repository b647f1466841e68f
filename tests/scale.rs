//! Scale (issue 15): request body limits of the emulator follow the real service,
//! the workspace copy of the state is uploaded on a time basis, and identical
//! diagnostics are grouped.

mod common;

use std::time::Duration;

use base64::Engine;
use common::Emulator;
use serde_json::{json, Value};

const MB: usize = 1024 * 1024;

fn http() -> reqwest::Client {
    // Bounded, so a server hang fails the test instead of stalling it.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = if text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(&text).unwrap_or(json!({ "raw": text }))
    };
    (status, v)
}

fn import_body(path: &str, size: usize) -> Value {
    let content = vec![b'x'; size];
    json!({
        "path": path,
        "content": base64::engine::general_purpose::STANDARD.encode(content),
        "format": "AUTO",
        "overwrite": true,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn request_body_limits_follow_the_real_service() {
    let emu = Emulator::start_with(&["--no-postgres"]);
    let c = http();
    let url = |p: &str| format!("{}{p}", emu.url);
    let root = "/Users/local-user@example.com/big";
    let (s, _) = send(
        c.post(url("/api/2.0/workspace/mkdirs"))
            .bearer_auth(&emu.token)
            .json(&json!({ "path": root })),
    )
    .await;
    assert_eq!(s, 200);

    // 8 MB of content (~10.7 MB of base64) is under the documented 10 MB import limit.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/eight.bin"), 8 * MB)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, st) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/eight.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["size"], json!(8 * MB));

    // 11 MB is over it: the documented 400 MAX_NOTEBOOK_SIZE_EXCEEDED, in the error shape.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/eleven.bin"), 11 * MB)),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    assert!(v["message"].as_str().unwrap_or("").contains("10 MB"), "{v}");
    // A body far past the limit is cut off early with the same error.
    let (s, v) = send(
        c.post(url("/api/2.0/workspace/import"))
            .bearer_auth(&emu.token)
            .json(&import_body(&format!("{root}/thirty.bin"), 30 * MB)),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "MAX_NOTEBOOK_SIZE_EXCEEDED");
    let (s, _) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/eleven.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 404, "a refused import writes nothing");

    // Workspace files (import-file, what state uploads use) and the Files API take
    // more than the JSON import.
    let (s, v) = send(
        c.post(url(&format!(
            "/api/2.0/workspace-files/import-file{root}/file.bin?overwrite=true"
        )))
        .bearer_auth(&emu.token)
        .body(vec![b'y'; 12 * MB]),
    )
    .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, v) = send(
        c.put(url(&format!(
            "/api/2.0/fs/files{root}/put.bin?overwrite=true"
        )))
        .bearer_auth(&emu.token)
        .header("content-type", "application/octet-stream")
        .body(vec![b'z'; 12 * MB]),
    )
    .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, st) = send(
        c.get(url(&format!(
            "/api/2.0/workspace/get-status?path={root}/put.bin"
        )))
        .bearer_auth(&emu.token),
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["size"], json!(12 * MB));

    // A JSON API past its limit answers in the error shape, not axum's plain text.
    let big = "j".repeat(11 * MB);
    let (s, v) = send(
        c.post(url("/api/2.2/jobs/create"))
            .bearer_auth(&emu.token)
            .json(&json!({ "name": "big", "description": big })),
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_LIMIT_EXCEEDED");
}
