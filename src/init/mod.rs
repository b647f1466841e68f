//! Getting started: `lakebundle init` (bundle templates embedded in the
//! binary) and the sample source tables `--local` reads (`lake`).

pub mod lake;

pub use lake::local_lake_dir;
