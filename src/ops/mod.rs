//! Commands as engine operations: each takes an options struct and returns
//! an outcome or an error, with no terminal I/O. `cli/` maps clap arguments
//! to the options and the outcome to output (text, JSON, exit codes), and
//! owns what needs the terminal: confirmations, progress rendering, Ctrl-C.
//!
//! `deploy` and `destroy` come as stages the CLI runs in order (printing
//! the plan and asking between them); `run` reports progress lines through
//! a callback. `bind`, `generate`, `credential` and `psql` still do their
//! work in `cli/`.

pub mod deploy;
pub mod destroy;
pub mod plan;
pub mod run;
pub mod summary;
pub mod validate;
