//! Commands as engine operations: each takes an options struct and returns
//! an outcome or an error, with no terminal I/O. `cli/` maps clap arguments
//! to the options and the outcome to output (text, JSON, exit codes).
//!
//! Done so far: `plan`, `summary`, `destroy`'s file clean-up; the other
//! commands still do their work in `cli/` (see the module docs there).

pub mod destroy;
pub mod plan;
pub mod summary;
