//! Command-line front end: one file per command.

pub mod args;
pub mod output;

mod context;
mod credential;
mod deploy;
mod destroy;
mod emulator;
mod graph;
mod init;
mod plan;
mod psql;
mod run;
mod schema;
mod summary;
mod validate;

use args::{Cli, Command};

/// Process exit status of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Error,
    /// `plan --detailed-exitcode` with changes.
    Changes,
    /// Interrupted by Ctrl-C.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::Changes => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// Run one parsed command line. Errors are printed by the command itself
/// (diagnostics need the source map); the return value is the exit status.
pub fn run(cli: Cli) -> Exit {
    let g = &cli.global;
    match &cli.command {
        Command::Validate(a) => validate::run(g, a),
        Command::Graph(a) => graph::run(g, a),
        Command::Schema => schema::run(g),
        Command::Plan(a) => plan::run(g, a),
        Command::Deploy(a) => deploy::run(g, a),
        Command::Destroy(a) => destroy::run(g, a),
        Command::Summary => summary::run(g),
        Command::Run(a) => run::run(g, a),
        Command::Credential(a) => credential::run(g, a),
        Command::Psql(a) => psql::run(g, a),
        Command::Emulator(c) => emulator::run(g, c),
        Command::Init(a) => init::run(g, a),
    }
}
