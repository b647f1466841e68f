//! `lakebundle schema`: print the bundle JSON Schema (the text checked in as
//! `schemas/bundle.schema.json`).

use super::args::GlobalArgs;
use super::error::CliError;
use super::{output, Exit};

pub fn run(_g: &GlobalArgs) -> Result<Exit, CliError> {
    output::out(&crate::resources::schema::bundle_schema_text())?;
    Ok(Exit::Success)
}
