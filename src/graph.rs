//! The resource dependency graph (petgraph) over `ResourceAddr`s.
