//! clap types for the whole CLI (DESIGN.md §4). Command owners may add flags
//! to their own subcommand struct.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lakebundle",
    version,
    about = "Plan and deploy Databricks Lakebase bundles"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Bundle root directory (default: $DATABRICKS_BUNDLE_ROOT, else the nearest ancestor with databricks.yml)
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Target to use (default: $DATABRICKS_BUNDLE_TARGET, else the only or default target)
    #[arg(short = 't', long, global = true, value_name = "TARGET")]
    pub target: Option<String>,
    /// Set a variable: --var name=value (repeatable)
    #[arg(long = "var", global = true, value_name = "K=V")]
    pub vars: Vec<String>,
    /// ~/.databrickscfg profile
    #[arg(short = 'p', long, global = true)]
    pub profile: Option<String>,
    /// Use the embedded local workspace ($LAKEBUNDLE_HOME/local-workspace)
    #[arg(long, global = true)]
    pub local: bool,
    /// Output format
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load, resolve and check the bundle
    Validate(ValidateArgs),
    /// Print the resource dependency graph
    Graph(GraphArgs),
    /// Print the bundle JSON Schema
    Schema,
    /// Show what deploy would change
    Plan(PlanArgs),
    /// Apply the bundle to the workspace
    Deploy(DeployArgs),
    /// Delete every deployed resource of the target
    Destroy(DestroyArgs),
    /// Deployed resources with ids, state, endpoints and URLs
    Summary,
    /// Run a job, deploy and start an app, or refresh a synced table's pipeline
    Run(RunArgs),
    /// Print a fresh database credential and connection string for an instance
    Credential(CredentialArgs),
    /// Open psql on a deployed database instance with fresh credentials
    Psql(PsqlArgs),
    /// The local workspace emulator
    #[command(subcommand)]
    Emulator(EmulatorCommand),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// dot prints Graphviz; -o json prints nodes and edges
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan for `deploy --plan`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Read the remote before planning (false: plan from state alone)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub refresh: bool,
    /// Concurrent remote reads
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Apply exactly this saved plan
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask before destructive changes
    #[arg(long)]
    pub auto_approve: bool,
    /// Concurrent remote operations
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Take over a held deployment lock
    #[arg(long)]
    pub force_lock: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long)]
    pub force_lock: bool,
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Resource key of a job, app or synced table
    pub key: String,
    /// Return as soon as the run is triggered
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// Resource key (or name) of a database instance
    pub key: String,
    /// Database named in the printed connection string
    #[arg(long, default_value = "databricks_postgres")]
    pub database: String,
}

#[derive(Debug, Args)]
pub struct PsqlArgs {
    /// Resource key (or name) of a database instance
    pub key: String,
    /// Database to connect to
    #[arg(long, default_value = "databricks_postgres")]
    pub database: String,
    /// Extra arguments for psql (after --)
    #[arg(last = true)]
    pub psql_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Serve the local workspace over HTTP
    Serve(EmulatorServeArgs),
    /// Stop whatever an emulator left running for a data dir
    Down(EmulatorDownArgs),
}

#[derive(Debug, Args, Clone)]
pub struct EmulatorServeArgs {
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
}

#[derive(Debug, Args)]
pub struct EmulatorDownArgs {
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}
