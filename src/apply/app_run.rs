//! `lakebundle run APP_KEY`: deploy and start a deployed app, as
//! `databricks bundle run` does, and report where it runs.

use serde_json::{json, Value};

use super::DEFAULT_WAIT_TIMEOUT;
use crate::api::{ApiError, Client};
use crate::resources::app::run_app;

/// Start the app `name` if stopped, deploy the source of `applied` (its last
/// deployed configuration), wait for it to run (unless `!wait`), and print
/// its URL (a JSON object with `json`). Progress goes to stderr.
pub async fn run(
    client: &Client,
    name: &str,
    applied: &Value,
    wait: bool,
    json: bool,
) -> Result<bool, ApiError> {
    let progress = |m: String| eprintln!("app {name}: {m}");
    let (app, dep) = run_app(client, name, applied, wait, DEFAULT_WAIT_TIMEOUT, &progress).await?;
    let url = app.get("url").and_then(Value::as_str).unwrap_or("");
    if json {
        crate::cli::output::print_json(&json!({
            "app": name,
            "url": url,
            "deployment_id": dep["deployment_id"],
            "deployment_state": dep["status"]["state"],
            "app_status": app["app_status"]["state"],
        }));
    } else if wait {
        println!("App {name} is running at {url}");
    } else {
        println!("App {name}: deployment created; it will run at {url}");
    }
    Ok(true)
}
