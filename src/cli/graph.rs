//! `lakebundle graph`: the resource dependency graph, offline.
//!
//! Text (default): each resource in deploy order with its dependencies;
//! `--format dot`: Graphviz; `-o json`: `{"nodes": [...], "edges": [...]}`.

use super::args::{GlobalArgs, GraphArgs, GraphFormat, OutputFormat};
use super::error::CliError;
use super::{context, output, Exit};
use crate::graph::ResourceGraph;

pub fn run(g: &GlobalArgs, a: &GraphArgs) -> Result<Exit, CliError> {
    let bundle = context::load_offline(g)?;
    let graph = ResourceGraph::build(&bundle).map_err(|d| CliError::diags(&bundle.sources, d))?;
    match (g.output, a.format) {
        (OutputFormat::Json, _) => output::print_json(&graph.to_json())?,
        (_, Some(GraphFormat::Dot)) => output::out(&graph.to_dot())?,
        _ => output::out(&graph.to_text_tree())?,
    }
    Ok(Exit::Success)
}
