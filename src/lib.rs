//! lakebundle: plan and deploy DAB-style bundles of Databricks Lakebase
//! resources. The pipeline flows one way: load → resolve → graph → plan → apply.

pub mod api;
pub mod apply;
pub(crate) mod artifacts;
pub mod cli;
pub mod config;
pub mod diag;
pub mod graph;
pub(crate) mod init;
pub mod interp;
pub(crate) mod lookup;
pub(crate) mod ops;
pub mod plan;
pub(crate) mod python;
pub mod resources;
pub(crate) mod scripts;
pub mod state;
