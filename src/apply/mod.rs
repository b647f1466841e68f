//! The executor: bounded-concurrency walk of the plan graph.
pub mod files;
