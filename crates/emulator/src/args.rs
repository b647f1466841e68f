//! `emulator serve` flags. They live with the emulator so the CLI crate only flattens them.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// TCP port on 127.0.0.1 (0: any free port, printed on the first line)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Where the workspace state lives (default: $LAKEBUNDLE_HOME/local-workspace)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Accepted bearer token (repeatable; default: any non-empty token)
    #[arg(long = "token")]
    pub tokens: Vec<String>,
    /// The workspace's current user
    #[arg(long, default_value = "local-user@example.com")]
    pub user: String,
    /// OAuth M2M client id accepted by /oidc/v1/token
    #[arg(long)]
    pub client_id: Option<String>,
    /// OAuth M2M client secret accepted by /oidc/v1/token
    #[arg(
        long,
        env = "LAKEBUNDLE_EMULATOR_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Extra latency per request
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of requests answered 429/503 with Retry-After
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of mutating requests applied but answered 503
    #[arg(long, default_value_t = 0.0)]
    pub lost_response_rate: f64,
    /// Seed for fault injection
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Time for a new instance to become AVAILABLE
    #[arg(long, default_value_t = 2000)]
    pub instance_ready_ms: u64,
    /// Duration of other asynchronous transitions (app start/stop/delete, deployments, run phases)
    #[arg(long, default_value_t = 500)]
    pub transition_ms: u64,
    /// Source tables for synced tables: <catalog>/<schema>/<table>.csv|.jsonl
    #[arg(long)]
    pub lake_dir: Option<PathBuf>,
    /// Database instances are records only, with no PostgreSQL server
    #[arg(long)]
    pub no_postgres: bool,
    /// Hand out job/run/object ids above 2^53 (tests a client's int64 handling; the default
    /// ids, like the service's, fit a JavaScript number)
    #[arg(long)]
    pub large_ids: bool,
    /// Multiply every Lakebase endpoint's suspend timeout (scale to zero) by this factor
    /// (e.g. 0.05 makes a 60 s timeout 3 s)
    #[arg(long, default_value_t = 1.0)]
    pub suspend_scale: f64,
}
