//! Getting started: `lakebundle init` (bundle templates embedded in the
//! binary, rendered with minijinja) and where `--local` finds the sample
//! source tables (`lake`).

pub mod lake;
pub mod prompt;
pub mod template;

pub use lake::local_lake_dir;
