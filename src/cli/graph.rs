//! `lakebundle graph`: the resource dependency graph, offline.
//!
//! Text (default): each resource in deploy order with its dependencies;
//! `--format dot`: Graphviz; `-o json`: `{"nodes": [...], "edges": [...]}`.

use super::args::{GlobalArgs, GraphArgs, GraphFormat, OutputFormat};
use super::{context, output, Exit};
use crate::graph::ResourceGraph;

pub fn run(g: &GlobalArgs, a: &GraphArgs) -> Exit {
    let bundle = match context::load_offline(g) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let graph = match ResourceGraph::build(&bundle) {
        Ok(graph) => graph,
        Err(diags) => {
            context::print_diags(g, &bundle.sources, &diags);
            return Exit::Error;
        }
    };
    match (g.output, a.format) {
        (OutputFormat::Json, _) => output::print_json(&graph.to_json()),
        (_, Some(GraphFormat::Dot)) => print!("{}", graph.to_dot()),
        _ => print!("{}", graph.to_text_tree()),
    }
    Exit::Success
}
