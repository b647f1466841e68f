//! The emulator as a library (`--local` runs it in-process): start, serve, shut down,
//! release the data dir, and keep secrets out of Debug output.

use lakebundle_emulator::{self as emulator, EmulatorConfig, EmulatorError};

fn config(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig {
        no_postgres: true,
        ..EmulatorConfig::local(dir.to_path_buf())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_start_serve_shutdown_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator::start(config(dir.path())).await.unwrap();
    assert!(emu.url().starts_with("http://127.0.0.1:"));
    let http = reqwest::Client::new();
    let me = format!("{}/api/2.0/preview/scim/v2/Me", emu.url());
    let r = http.get(&me).bearer_auth(emu.token()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(&me)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "only the generated token is accepted"
    );
    let created = http
        .post(format!("{}/api/2.2/jobs/create", emu.url()))
        .bearer_auth(emu.token())
        .json(&serde_json::json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());

    // The data dir is taken while it runs, by this very process.
    match emulator::start(config(dir.path())).await {
        Err(EmulatorError::InUse { pid, url, .. }) => {
            assert_eq!(pid, std::process::id());
            assert_eq!(url.as_deref(), Some(emu.url()));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    emu.shutdown().await.unwrap();

    // Released: a new server over the same folder serves the same workspace.
    let again = emulator::start(config(dir.path())).await.unwrap();
    let list: serde_json::Value = http
        .get(format!("{}/api/2.2/jobs/list", again.url()))
        .bearer_auth(again.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["jobs"][0]["settings"]["name"], "kept");
    again.shutdown().await.unwrap();
}

#[test]
fn config_debug_redacts_tokens_and_client_secret() {
    let mut cfg = EmulatorConfig::local("/tmp/x".into());
    cfg.client_secret = Some("very-secret-value".into());
    let token = cfg.tokens[0].clone();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    assert!(!shown.contains(&token), "{shown}");
    assert!(shown.contains("****"));
}

#[test]
fn from_args_rejects_bad_rates() {
    use clap::Parser;
    let cli = lakebundle::cli::args::Cli::try_parse_from([
        "lakebundle",
        "emulator",
        "serve",
        "--fail-rate",
        "1.5",
        "--data-dir",
        "/tmp/x",
    ])
    .unwrap();
    let lakebundle::cli::args::Command::Emulator(lakebundle::cli::args::EmulatorCommand::Serve(a)) =
        cli.command
    else {
        panic!("parsed another command");
    };
    let err = EmulatorConfig::from_args(&a).unwrap_err();
    assert!(err.to_string().contains("--fail-rate"), "{err}");
}

/// Issue 14.1: the in-process workspace of `--local` configures no OAuth client, so its
/// token endpoint refuses every client id and secret with the service's error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_workspace_has_no_m2m_client() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    assert!(cfg.client_id.is_none() && cfg.client_secret.is_none());
    let emu = emulator::start(cfg).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/oidc/v1/token", emu.url()))
        .basic_auth("any-client", Some("any-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(body.get("access_token").is_none());
    emu.shutdown().await.unwrap();
}
