//! The official Databricks JS packages against the emulator on real PostgreSQL
//! (`tests/sdk_js/autoscaling.mjs`): `@databricks/sdk-experimental`'s client creates a
//! Lakebase Autoscaling project and waits for its operation, lists its branches and
//! endpoints; `@databricks/lakebase` gets a credential for the primary endpoint and queries
//! through its pool. Install: `npm ci --prefix tests/sdk_js`.

mod common;
mod e2e_support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn js_sdk_creates_a_project_and_queries_its_primary_endpoint() {
    if !common::prereq::node() || !common::prereq::postgres() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_js");
    if !dir.join("node_modules/@databricks/lakebase").exists() {
        common::prereq::skip(
            "the Databricks JS packages are not installed",
            "`npm ci --prefix tests/sdk_js` (needs Node.js and npm)",
        );
        return;
    }
    let emu = common::Emulator::start();
    let out = Command::new("node")
        .arg("autoscaling.mjs")
        .arg("js-sdk")
        .current_dir(&dir)
        .env("DATABRICKS_HOST", &emu.url)
        .env("DATABRICKS_TOKEN", &emu.token)
        .env_remove("DATABRICKS_CONFIG_PROFILE")
        .env("DATABRICKS_CONFIG_FILE", dir.join("no-such-databrickscfg"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node failed:\n{stdout}\n{stderr}");
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["project"], "projects/js-sdk", "{seen}");
    assert_eq!(
        seen["branches"],
        serde_json::json!(["projects/js-sdk/branches/production"])
    );
    assert_eq!(
        seen["endpoints"],
        serde_json::json!(["projects/js-sdk/branches/production/endpoints/primary"])
    );
    assert!(seen["token_length"].as_u64().unwrap_or(0) > 20, "{seen}");
    assert_eq!(
        seen["rows"],
        serde_json::json!([{"who": "local-user@example.com", "replica": false}])
    );
    // The script deleted the project (purged): nothing left.
    let api = e2e_support::Api::new(&emu);
    assert!(api.get("/api/2.0/postgres/projects/js-sdk", &[]).is_none());
}
