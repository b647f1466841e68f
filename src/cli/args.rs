//! clap types for the whole CLI (DESIGN.md §4). Command owners may add flags
//! to their own subcommand struct.
//!
//! The bundle flags (`-C`, `-t`, `--var`, `-p`, `--local`) are accepted both
//! before the subcommand (`lakebundle -C dir plan`) and after it
//! (`lakebundle plan -C dir`), but only by the commands that load a bundle:
//! each of those flattens its own [`BundleArgs`], and the copy on [`Cli`] is
//! refused for the others (`schema`, `emulator`). [`Cli::global_args`]
//! merges the two copies.

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
    pub bundle: BundleArgs,
    /// Output format (markdown: `plan` only)
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Which bundle and workspace a command works on.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub struct BundleArgs {
    /// Bundle root directory (default: $DATABRICKS_BUNDLE_ROOT, else the nearest ancestor with databricks.yml)
    #[arg(short = 'C', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Target to use (default: $DATABRICKS_BUNDLE_TARGET, else the only or default target)
    #[arg(short = 't', long, value_name = "TARGET")]
    pub target: Option<String>,
    /// Set a variable: --var name=value (repeatable)
    #[arg(long = "var", value_name = "K=V")]
    pub vars: Vec<String>,
    /// ~/.databrickscfg profile
    #[arg(short = 'p', long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Use the embedded local workspace ($LAKEBUNDLE_HOME/local-workspace)
    #[arg(long)]
    pub local: bool,
}

impl BundleArgs {
    /// `self` (given before the subcommand) with `after` (given after it)
    /// on top: a flag given after wins; `--var`s add up.
    pub fn merged(&self, after: &BundleArgs) -> BundleArgs {
        BundleArgs {
            dir: after.dir.clone().or_else(|| self.dir.clone()),
            target: after.target.clone().or_else(|| self.target.clone()),
            vars: self.vars.iter().chain(&after.vars).cloned().collect(),
            profile: after.profile.clone().or_else(|| self.profile.clone()),
            local: self.local || after.local,
        }
    }

    /// The flags given, as the user would type them (for error messages).
    pub fn given_flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.dir.is_some() {
            v.push("-C/--dir");
        }
        if self.target.is_some() {
            v.push("-t/--target");
        }
        if !self.vars.is_empty() {
            v.push("--var");
        }
        if self.profile.is_some() {
            v.push("-p/--profile");
        }
        if self.local {
            v.push("--local");
        }
        v
    }
}

/// The bundle flags and output format a command runs with (both positions merged).
#[derive(Debug, Clone, Default)]
pub struct GlobalArgs {
    pub dir: Option<PathBuf>,
    pub target: Option<String>,
    pub vars: Vec<String>,
    pub profile: Option<String>,
    pub local: bool,
    pub output: OutputFormat,
}

impl GlobalArgs {
    pub fn new(bundle: BundleArgs, output: OutputFormat) -> GlobalArgs {
        GlobalArgs {
            dir: bundle.dir,
            target: bundle.target,
            vars: bundle.vars,
            profile: bundle.profile,
            local: bundle.local,
            output,
        }
    }
}

impl Command {
    /// The subcommand's own bundle flags; None for commands without a bundle.
    pub fn bundle_args(&self) -> Option<&BundleArgs> {
        match self {
            Command::Validate(a) => Some(&a.bundle),
            Command::Graph(a) => Some(&a.bundle),
            Command::Plan(a) => Some(&a.bundle),
            Command::Deploy(a) => Some(&a.bundle),
            Command::Destroy(a) => Some(&a.bundle),
            Command::Summary(a) => Some(&a.bundle),
            Command::Run(a) => Some(&a.bundle),
            Command::Credential(a) => Some(&a.bundle),
            Command::Psql(a) => Some(&a.bundle),
            Command::Bind(a) => Some(&a.bundle),
            Command::Unbind(a) => Some(&a.bundle),
            Command::Generate(a) => Some(&a.bundle),
            Command::Schema | Command::Init(_) | Command::Emulator(_) => None,
        }
    }

    /// The name users type (for messages).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Validate(_) => "validate",
            Command::Graph(_) => "graph",
            Command::Schema => "schema",
            Command::Init(_) => "init",
            Command::Plan(_) => "plan",
            Command::Deploy(_) => "deploy",
            Command::Destroy(_) => "destroy",
            Command::Summary(_) => "summary",
            Command::Run(_) => "run",
            Command::Credential(_) => "credential",
            Command::Psql(_) => "psql",
            Command::Bind(_) => "bind",
            Command::Unbind(_) => "unbind",
            Command::Generate(_) => "generate",
            Command::Emulator(EmulatorCommand::Serve(_)) => "emulator serve",
            Command::Emulator(EmulatorCommand::Down(_)) => "emulator down",
        }
    }

    /// Output formats beyond text and JSON: markdown is for `plan` only.
    pub fn supports_markdown(&self) -> bool {
        matches!(self, Command::Plan(_))
    }
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
    Summary(SummaryArgs),
    /// Run a job, deploy and start an app, or refresh a synced table's pipeline
    Run(RunArgs),
    /// Print a fresh database credential and connection string for an instance or postgres endpoint
    Credential(CredentialArgs),
    /// Open psql on a deployed database instance or postgres endpoint with fresh credentials
    Psql(PsqlArgs),
    /// Create a new bundle from a built-in template (lakebase-app, lakebase-autoscaling, minimal)
    Init(InitArgs),
    /// Adopt an existing workspace object as a resource of the target
    Bind(BindArgs),
    /// Forget a resource's object (the object itself is left as it is)
    Unbind(UnbindArgs),
    /// Write the configuration of an existing workspace object
    Generate(GenerateArgs),
    /// The local workspace emulator
    #[command(subcommand)]
    Emulator(EmulatorCommand),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
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
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// dot prints Graphviz; -o json prints nodes and edges
    #[arg(long, value_enum)]
    pub format: Option<GraphFormat>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
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
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Apply exactly this saved plan
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask before destructive changes
    #[arg(long)]
    pub auto_approve: bool,
    /// Concurrent remote operations
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Take over a held deployment lock (only when its holder is dead)
    #[arg(long)]
    pub force_lock: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Do not ask before deleting (required without a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// Take over a held deployment lock (only when its holder is dead)
    #[arg(long)]
    pub force_lock: bool,
    /// Concurrent remote deletes
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Resource key of a job, pipeline, app or synced table
    pub key: String,
    /// Return as soon as the run is triggered
    #[arg(long)]
    pub no_wait: bool,
    /// Pipelines: tables to update (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    pub refresh: Vec<String>,
    /// Pipelines: update the full graph
    #[arg(long)]
    pub refresh_all: bool,
    /// Pipelines: tables to reset and recompute (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "TABLES")]
    pub full_refresh: Vec<String>,
    /// Pipelines: reset and recompute the full graph
    #[arg(long)]
    pub full_refresh_all: bool,
    /// Pipelines: only validate the graph
    #[arg(long)]
    pub validate_only: bool,
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Resource key (or name) of a database instance or postgres endpoint (or an endpoint name projects/.../endpoints/...)
    pub key: String,
    /// Database named in the printed connection string
    #[arg(long, default_value = "databricks_postgres")]
    pub database: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Template name: lakebase-app, lakebase-autoscaling or minimal (asked on a TTY; default lakebase-app)
    pub template: Option<String>,
    /// Directory to create the project directory in
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub output_dir: PathBuf,
    /// JSON object of prompt values (e.g. {"project_name": "orders"}); those are not asked
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PsqlArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Resource key (or name) of a database instance or postgres endpoint (or an endpoint name projects/.../endpoints/...)
    pub key: String,
    /// Database to connect to
    #[arg(long, default_value = "databricks_postgres")]
    pub database: String,
    /// Extra arguments for psql (after --)
    #[arg(last = true)]
    pub psql_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BindArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Resource key in the bundle (e.g. `my_job`)
    pub key: String,
    /// The object's id: a job's numeric id; the name of an app, database instance, catalog or synced table
    pub id: String,
    /// Do not ask before binding an object the next deploy would change
    #[arg(long)]
    pub auto_approve: bool,
    /// Take over a held deployment lock (only when its holder is dead)
    #[arg(long)]
    pub force_lock: bool,
}

#[derive(Debug, Args)]
pub struct UnbindArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Resource key in the bundle (e.g. `my_job`)
    pub key: String,
    /// Take over a held deployment lock (only when its holder is dead)
    #[arg(long)]
    pub force_lock: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Kind of object: job, app, dashboard, alert, database-instance, database-catalog,
    /// synced-database-table, ... (any kind of the bundle schema)
    pub kind: String,
    /// Id of an existing job
    #[arg(long, value_name = "ID")]
    pub existing_job_id: Option<String>,
    /// Id of an existing pipeline
    #[arg(long, value_name = "ID")]
    pub existing_pipeline_id: Option<String>,
    /// Name of an existing app
    #[arg(long, value_name = "NAME")]
    pub existing_app_name: Option<String>,
    /// Name of an existing database instance
    #[arg(long, value_name = "NAME")]
    pub existing_database_instance_name: Option<String>,
    /// Name of an existing database catalog
    #[arg(long, value_name = "NAME")]
    pub existing_database_catalog_name: Option<String>,
    /// Full name of an existing synced database table
    #[arg(long, value_name = "NAME")]
    pub existing_synced_database_table_name: Option<String>,
    /// Id (or name) of an existing object of any kind
    #[arg(long, value_name = "ID")]
    pub existing_id: Option<String>,
    /// Resource key to write (default: from the object's name)
    #[arg(long)]
    pub key: Option<String>,
    /// Directory of the YAML file, relative to the bundle root
    #[arg(
        short = 'd',
        long,
        default_value = "resources",
        visible_alias = "resource-dir"
    )]
    pub config_dir: PathBuf,
    /// Directory of downloaded source files and definitions (default: src;
    /// src/app for apps)
    #[arg(short = 's', long, visible_aliases = ["dashboard-dir", "genie-space-dir"])]
    pub source_dir: Option<PathBuf>,
    /// Overwrite existing files
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Bind the new resource to the object right away
    #[arg(long)]
    pub bind: bool,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Serve the local workspace over HTTP
    Serve(lakebundle_emulator::args::ServeArgs),
    /// Stop whatever an emulator left running for a data dir
    Down(EmulatorDownArgs),
}

#[derive(Debug, Args)]
pub struct EmulatorDownArgs {
    /// The data dir of the emulator to stop (default: $LAKEBUNDLE_HOME/local-workspace)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}
