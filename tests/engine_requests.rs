//! What the engine sends, counted: the client talks to the real emulator
//! through a small loopback proxy that records every request line.

mod common;
mod engine_support;
#[path = "common/proxy.rs"]
mod proxy;

use std::time::Duration;

use common::Emulator;
use engine_support::load_bundle;
use lakebundle::api::{Client, ClientConfig, Secret};
use lakebundle::apply::{apply, ApplyOptions};
use lakebundle::config::model::CurrentUser;
use lakebundle::plan::{make_plan, PlanOptions};
use lakebundle::resources::{Kind, ResourceAddr};
use lakebundle::state::StateStore;
use proxy::CountingProxy;

const USER: &str = "tester@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_create_reads_the_job_back_once() {
    let emu = Emulator::start_with(&["--no-postgres", "--user", USER]);
    let proxy = CountingProxy::start(emu.url.clone()).await;
    let client = Client::with_token(
        &proxy.url,
        Secret::new(emu.token.clone()),
        ClientConfig {
            backoff_base: Duration::from_millis(10),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut yaml = String::from("bundle:\n  name: counted\nresources:\n  jobs:\n");
    for i in 0..3 {
        yaml.push_str(&format!(
            "    j{i}:\n      name: counted-{i}\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: /Shared/n\n"
        ));
    }
    let user = CurrentUser {
        user_name: USER.into(),
        short_name: "tester".into(),
        attributes: Default::default(),
    };
    let bundle = load_bundle(dir.path(), &yaml, Some(user)).expect("bundle loads");
    let store = StateStore::for_bundle(&bundle, Some(&client))
        .await
        .expect("state");
    let plan = make_plan(
        &bundle,
        &store.snapshot(),
        Some(&client),
        &PlanOptions::default(),
    )
    .await
    .expect("plan");
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let report = apply(
        &bundle,
        &plan,
        &store,
        &client,
        &ApplyOptions::default(),
        tx,
    )
    .await
    .expect("apply");
    assert!(report.ok(), "{:?}", report.failed);

    assert_eq!(proxy.count("POST /api/2.2/jobs/create"), 3);
    assert_eq!(
        proxy.count("GET /api/2.2/jobs/get"),
        3,
        "one read-back per created job"
    );
    // That one read is what fills the outputs offered to references.
    let state = store.snapshot();
    for i in 0..3 {
        let rs = state
            .get(&ResourceAddr::new(Kind::Jobs, format!("j{i}")))
            .expect("recorded");
        assert_eq!(rs.outputs["name"], format!("counted-{i}"));
        assert!(
            rs.outputs.get("creator_user_name").is_some(),
            "{}",
            rs.outputs
        );
    }
}
