//! Command-line front end: one file per command.
//!
//! Each command maps its arguments, calls the library and prints its result;
//! it returns `Result<Exit, CliError>` and never prints its own failure:
//! [`run`] renders every error once ([`error::report`]).

pub mod args;
pub mod error;
pub mod hint;
pub mod output;

mod bind;
mod context;
mod credential;
mod deploy;
mod destroy;
mod emulator;
mod generate;
mod graph;
mod init;
mod plan;
mod psql;
mod run;
mod schema;
mod summary;
mod validate;

use std::ffi::OsString;

use args::{Cli, Command, GlobalArgs, OutputFormat};
use error::CliError;

/// Process exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Error,
    /// `plan --detailed-exitcode` with changes.
    Changes,
    /// Interrupted by Ctrl-C.
    Interrupted,
    /// A script's own exit code (`run SCRIPT`).
    Status(i32),
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::Changes => 2,
            Exit::Interrupted => 130,
            Exit::Status(code) => code,
        }
    }
}

/// Parse the process arguments and run: the whole of `main`.
pub fn main() -> Exit {
    main_with(|| {})
}

/// [`main`], calling `short_reader` before any work when the command only
/// reads and exits (`plan`, `validate`): the binary then lets its allocator
/// keep freed pages for reuse (a 10,000-resource plan faulted fresh pages in
/// for a quarter of its CPU), where a long deploy returns them at once.
pub fn main_with(short_reader: impl FnOnce()) -> Exit {
    init_debug_log();
    main_from_with(std::env::args_os(), short_reader)
}

/// `LAKEBUNDLE_LOG=debug` (or any tracing filter, e.g.
/// `lakebundle::api=debug`) writes a line per HTTP request, retry and
/// transport error to stderr. Paths and status codes only: headers and bodies,
/// where credentials live, are never logged.
fn init_debug_log() {
    let Ok(filter) = std::env::var("LAKEBUNDLE_LOG") else {
        return;
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "Warning: LAKEBUNDLE_LOG={filter:?} is not a log filter ({e}); logging is off."
            );
            return;
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// Parse `args` (program name first) and run. A usage error exits 1 — exit 2
/// is reserved for `plan --detailed-exitcode` with changes; `--help` and
/// `--version` exit 0.
pub fn main_from(args: impl IntoIterator<Item = OsString>) -> Exit {
    main_from_with(args, || {})
}

fn main_from_with(args: impl IntoIterator<Item = OsString>, short_reader: impl FnOnce()) -> Exit {
    let args: Vec<OsString> = args.into_iter().collect();
    match Cli::try_parse_from_args(&args) {
        Ok(cli) => {
            if matches!(cli.command.name(), "plan" | "validate") {
                short_reader();
            }
            run(cli)
        }
        Err(e) => usage_error(&e, json_requested(&args)),
    }
}

impl Cli {
    fn try_parse_from_args(args: &[OsString]) -> Result<Cli, clap::Error> {
        <Cli as clap::Parser>::try_parse_from(args)
    }
}

/// Whether the raw arguments ask for `-o json` (clap could not parse them,
/// but a script reading JSON still wants its error as JSON).
fn json_requested(args: &[OsString]) -> bool {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        matches!(w.as_str(), "-ojson" | "-o=json" | "--output=json")
            || (matches!(w.as_str(), "-o" | "--output")
                && words.get(i + 1).is_some_and(|v| v == "json"))
    })
}

fn usage_error(e: &clap::Error, json: bool) -> Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Help and version go to stdout; a failed write is worth an error.
            return match output::out(&e.render().to_string()) {
                Ok(()) => Exit::Success,
                Err(err) => error::report(&err, OutputFormat::Text),
            };
        }
        _ => {}
    }
    if json {
        let text = e.render().to_string();
        let text = text.trim();
        let (message, help) = match text.split_once('\n') {
            Some((first, rest)) => (first, Some(rest.trim())),
            None => (text, None),
        };
        let message = message.strip_prefix("error: ").unwrap_or(message);
        let err = CliError::usage(message);
        let err = match help {
            Some(h) if !h.is_empty() => err.with_help(h),
            _ => err,
        };
        return error::report(&err, OutputFormat::Json);
    }
    // clap's own rendering (colour on a terminal, usage line, --help pointer).
    let _ = e.print();
    Exit::Error
}

/// Run one parsed command line; render its error, if any, once.
pub fn run(cli: Cli) -> Exit {
    let output = cli.output;
    match dispatch(cli) {
        Ok(exit) => exit,
        Err(e) => error::report(&e, output),
    }
}

/// Flags that do not apply to the command are usage errors.
fn check_applicable(cli: &Cli) -> Result<(), CliError> {
    let name = cli.command.name();
    if cli.command.bundle_args().is_none() {
        let given = cli.bundle.given_flags();
        if !given.is_empty() {
            return Err(CliError::usage(format!(
                "{} does not apply to `lakebundle {name}`",
                given.join(", ")
            ))
            .with_help(format!("see `lakebundle {name} --help`")));
        }
    }
    if cli.output == OutputFormat::Markdown && !cli.command.supports_markdown() {
        return Err(CliError::usage(format!(
            "`-o markdown` is not supported by `lakebundle {name}`"
        ))
        .with_help("use -o text or -o json; markdown is for `lakebundle plan`"));
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<Exit, CliError> {
    check_applicable(&cli)?;
    let bundle = match cli.command.bundle_args() {
        Some(after) => cli.bundle.merged(after),
        None => cli.bundle.clone(),
    };
    let g = &GlobalArgs::new(bundle, cli.output);
    match &cli.command {
        Command::Validate(a) => validate::run(g, a),
        Command::Graph(a) => graph::run(g, a),
        Command::Schema => schema::run(g),
        Command::Plan(a) => plan::run(g, a),
        Command::Deploy(a) => deploy::run(g, a),
        Command::Destroy(a) => destroy::run(g, a),
        Command::Summary(_) => summary::run(g),
        Command::Run(a) => run::run(g, a),
        Command::Credential(a) => credential::run(g, a),
        Command::Psql(a) => psql::run(g, a),
        Command::Emulator(c) => emulator::run(g, c),
        Command::Init(a) => init::run(g, a),
        Command::Bind(a) => bind::run_bind(g, a),
        Command::Unbind(a) => bind::run_unbind(g, a),
        Command::Generate(a) => generate::run(g, a),
    }
}
