//! The local workspace: an axum server speaking the REST contract of
//! `../shared/reference/databricks-api.md`. Shares no code with the client
//! beyond `api::types`.

pub mod backend;
pub mod postgres;
