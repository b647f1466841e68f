//! The resource dependency graph (petgraph) over `ResourceAddr`s.
//!
//! Edges point from a dependent to its dependency and come from two sources:
//! explicit `${resources...}` references (`ResourceConfig.refs`, labelled with
//! the `${...}` text) and implicit links by name (`ResourceKind::name_links`,
//! labelled `implicit: <field>`), matched against other resources' literal
//! `name`. No I/O here.
//!
//! Public API (used by planning, the executor and `lakebundle graph`):
//! - [`ResourceGraph::build`]`(&Bundle) -> Result<ResourceGraph, Diagnostics>`
//!   (a cycle is one error diagnostic listing the whole cycle with every edge's span)
//! - [`ResourceGraph::nodes`], [`ResourceGraph::edges`] (`Vec<Edge>`),
//!   [`ResourceGraph::dependencies`], [`ResourceGraph::dependents`],
//!   [`ResourceGraph::topo_order`] (dependencies first, ties in declaration order)
//! - [`ResourceGraph::to_json`] (`{"nodes":[addr...],"edges":[{"from","to","via"}]}`),
//!   [`ResourceGraph::to_dot`], [`ResourceGraph::to_text_tree`]

use std::collections::{BTreeSet, HashMap};

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use serde_json::{json, Value};

use crate::config::model::Bundle;
use crate::config::source::Span;
use crate::diag::{Diag, Diagnostics};
use crate::resources::{kind_impl, Kind, ResourceAddr};

/// One dependency: `from` (the dependent) needs `to` (the dependency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: ResourceAddr,
    pub to: ResourceAddr,
    /// The `${...}` text, or `implicit: <field>`.
    pub via: String,
    /// Where the dependency is written (the reference, or the named field).
    pub span: Option<Span>,
}

#[derive(Debug, Clone)]
struct EdgeInfo {
    via: String,
    span: Option<Span>,
}

/// The DAG of a bundle's resources.
#[derive(Debug, Clone, Default)]
pub struct ResourceGraph {
    graph: DiGraph<ResourceAddr, EdgeInfo>,
    index: HashMap<ResourceAddr, NodeIndex>,
}

/// One edge of a dependency cycle, for [`cycle_diag`].
pub(crate) struct CycleHop<'a> {
    pub from: &'a ResourceAddr,
    pub to: &'a ResourceAddr,
    /// The reference text (`${resources.jobs.b.id}`) or `implicit: <field>`.
    pub via: &'a str,
    pub span: Option<Span>,
}

/// One cycle per strongly connected component (or self-loop), as the edges
/// of a cycle through the component's lowest node. Depth-first, lowest index
/// first, so the output is stable. Shared by the loader (references) and the
/// resource graph (references and implicit links).
pub(crate) fn cycles<N, E>(g: &DiGraph<N, E>) -> Vec<Vec<EdgeIndex>> {
    let mut sccs = petgraph::algo::tarjan_scc(g);
    sccs.iter_mut().for_each(|scc| scc.sort());
    sccs.sort();
    let mut out = Vec::new();
    for scc in sccs {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        let start = scc[0];
        let mut path: Vec<EdgeIndex> = Vec::new();
        let mut visited: BTreeSet<NodeIndex> = BTreeSet::from([start]);
        find_cycle(g, start, start, &members, &mut visited, &mut path);
        out.push(path);
    }
    out
}

fn find_cycle<N, E>(
    g: &DiGraph<N, E>,
    at: NodeIndex,
    start: NodeIndex,
    members: &BTreeSet<NodeIndex>,
    visited: &mut BTreeSet<NodeIndex>,
    path: &mut Vec<EdgeIndex>,
) -> bool {
    let mut out: Vec<_> = g
        .edges(at)
        .filter(|e| members.contains(&e.target()))
        .collect();
    out.sort_by_key(|e| (e.target().index(), e.id().index()));
    for e in out {
        path.push(e.id());
        if e.target() == start {
            return true;
        }
        if visited.insert(e.target()) && find_cycle(g, e.target(), start, members, visited, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// The error for one cycle: every resource in order, each edge located.
pub(crate) fn cycle_diag(hops: &[CycleHop<'_>]) -> Diag {
    let mut names: Vec<String> = hops.iter().map(|h| h.from.to_string()).collect();
    if let Some(first) = names.first().cloned() {
        names.push(first);
    }
    let mut diag = Diag::error(format!(
        "cycle detected between resources: {}",
        names.join(" → ")
    ))
    .help("resources cannot depend on each other in a loop; remove one of these references");
    let mut primary_set = false;
    for hop in hops {
        let label = format!("{} refers to {} via {}", hop.from, hop.to, hop.via);
        match hop.span {
            Some(span) if !primary_set => {
                diag = diag.at(span, label);
                primary_set = true;
            }
            Some(span) => diag = diag.related(span, label),
            None => {}
        }
    }
    diag
}

impl ResourceGraph {
    /// Build the graph of every resource in the bundle. Errors: references to
    /// resources that do not exist, and dependency cycles.
    pub fn build(bundle: &Bundle) -> Result<Self, Diagnostics> {
        let mut g = ResourceGraph::default();
        for addr in bundle.resources.keys() {
            g.add_node(addr.clone());
        }
        let mut diags = Diagnostics::default();
        for (addr, rc) in &bundle.resources {
            for r in &rc.refs {
                if !g.index.contains_key(&r.target) {
                    diags.push(
                        Diag::error(format!(
                            "{addr} refers to {}, which is not defined in this bundle",
                            r.target
                        ))
                        .at(r.span, "unknown resource"),
                    );
                    continue;
                }
                // Permissions are applied after their resource and do not
                // order deployment (the loader's cycle check ignores them too).
                if r.at_path == "permissions" || r.at_path.starts_with("permissions[") {
                    continue;
                }
                g.add_edge(addr, &r.target, r.text.clone(), Some(r.span));
            }
        }
        // Literal names of every resource, for implicit links.
        let mut by_name: HashMap<(Kind, String), &ResourceAddr> = HashMap::new();
        for (addr, rc) in &bundle.resources {
            let names = crate::resources::kind_impl(addr.kind).link_names(&rc.value);
            for name in names {
                by_name.entry((addr.kind, name)).or_insert(addr);
            }
        }
        for (addr, rc) in &bundle.resources {
            let kind = kind_impl(addr.kind);
            for link in kind.name_links(&rc.value) {
                let Some(&target) = by_name.get(&(link.target_kind, link.name.clone())) else {
                    continue;
                };
                if target == addr || g.has_edge(addr, target) {
                    continue;
                }
                let span = rc.node.at_path(&link.field).map(|n| n.span);
                g.add_edge(addr, target, format!("implicit: {}", link.field), span);
            }
        }
        g.check_cycles(&mut diags);
        if diags.has_errors() {
            Err(diags)
        } else {
            Ok(g)
        }
    }

    /// A graph from explicit parts (e.g. resources only in state, whose
    /// dependencies come from `depends_on`). Edges naming unknown nodes are dropped.
    pub fn from_parts(
        nodes: impl IntoIterator<Item = ResourceAddr>,
        edges: impl IntoIterator<Item = Edge>,
    ) -> Self {
        let mut g = ResourceGraph::default();
        for n in nodes {
            g.add_node(n);
        }
        for e in edges {
            if g.index.contains_key(&e.from) && g.index.contains_key(&e.to) {
                g.add_edge(&e.from, &e.to, e.via, e.span);
            }
        }
        g
    }

    fn add_node(&mut self, addr: ResourceAddr) {
        if !self.index.contains_key(&addr) {
            let ix = self.graph.add_node(addr.clone());
            self.index.insert(addr, ix);
        }
    }

    fn add_edge(
        &mut self,
        from: &ResourceAddr,
        to: &ResourceAddr,
        via: String,
        span: Option<Span>,
    ) {
        let (f, t) = (self.index[from], self.index[to]);
        // The same reference used in several fields is one dependency.
        let duplicate = self
            .graph
            .edges_connecting(f, t)
            .any(|e| e.weight().via == via);
        if !duplicate {
            self.graph.add_edge(f, t, EdgeInfo { via, span });
        }
    }

    fn has_edge(&self, from: &ResourceAddr, to: &ResourceAddr) -> bool {
        self.graph
            .find_edge(self.index[from], self.index[to])
            .is_some()
    }

    pub fn contains(&self, addr: &ResourceAddr) -> bool {
        self.index.contains_key(addr)
    }

    /// Every resource, in declaration order.
    pub fn nodes(&self) -> Vec<ResourceAddr> {
        self.graph
            .node_indices()
            .map(|i| self.graph[i].clone())
            .collect()
    }

    /// Every edge, in the order they were found.
    pub fn edges(&self) -> Vec<Edge> {
        self.graph
            .edge_references()
            .map(|e| Edge {
                from: self.graph[e.source()].clone(),
                to: self.graph[e.target()].clone(),
                via: e.weight().via.clone(),
                span: e.weight().span,
            })
            .collect()
    }

    fn neighbours(&self, addr: &ResourceAddr, dir: Direction) -> Vec<ResourceAddr> {
        let Some(&ix) = self.index.get(addr) else {
            return vec![];
        };
        let set: BTreeSet<NodeIndex> = self.graph.neighbors_directed(ix, dir).collect();
        set.into_iter().map(|i| self.graph[i].clone()).collect()
    }

    /// What `addr` needs (deduplicated, declaration order).
    pub fn dependencies(&self, addr: &ResourceAddr) -> Vec<ResourceAddr> {
        self.neighbours(addr, Direction::Outgoing)
    }

    /// What needs `addr` (deduplicated, declaration order).
    pub fn dependents(&self, addr: &ResourceAddr) -> Vec<ResourceAddr> {
        self.neighbours(addr, Direction::Incoming)
    }

    /// Dependencies before dependents; among ready nodes, declaration order.
    /// (Kahn's algorithm; on a cyclic graph the cycle's nodes are left out.)
    pub fn topo_order(&self) -> Vec<ResourceAddr> {
        let n = self.graph.node_count();
        let mut pending: Vec<usize> = (0..n)
            .map(|i| self.dependencies(&self.graph[NodeIndex::new(i)]).len())
            .collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
        let mut out = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            let addr = &self.graph[NodeIndex::new(i)];
            out.push(addr.clone());
            for d in self.dependents(addr) {
                let j = self.index[&d].index();
                pending[j] -= 1;
                if pending[j] == 0 {
                    ready.insert(j);
                }
            }
        }
        out
    }

    fn check_cycles(&self, diags: &mut Diagnostics) {
        for cycle in cycles(&self.graph) {
            let hops: Vec<CycleHop<'_>> = cycle
                .iter()
                .filter_map(|&e| {
                    let (s, t) = self.graph.edge_endpoints(e)?;
                    let info = &self.graph[e];
                    Some(CycleHop {
                        from: &self.graph[s],
                        to: &self.graph[t],
                        via: &info.via,
                        span: info.span,
                    })
                })
                .collect();
            diags.push(cycle_diag(&hops));
        }
    }

    /// `{"nodes": [addr...], "edges": [{"from", "to", "via"}]}`
    pub fn to_json(&self) -> Value {
        let nodes: Vec<String> = self.nodes().iter().map(|a| a.to_string()).collect();
        let edges: Vec<Value> = self
            .edges()
            .iter()
            .map(|e| json!({"from": e.from.to_string(), "to": e.to.to_string(), "via": e.via}))
            .collect();
        json!({"nodes": nodes, "edges": edges})
    }

    /// One edge per dependent → dependency pair, with every reference that
    /// makes it (in declaration order): several references between the same
    /// two resources are one dependency.
    fn merged_edges(&self) -> Vec<(ResourceAddr, ResourceAddr, Vec<String>)> {
        let mut merged: Vec<(ResourceAddr, ResourceAddr, Vec<String>)> = Vec::new();
        let mut at: HashMap<(NodeIndex, NodeIndex), usize> = HashMap::new();
        let mut refs: Vec<_> = self.graph.edge_references().collect();
        refs.sort_by_key(|e| e.id().index());
        for e in refs {
            let via = &e.weight().via;
            match at.get(&(e.source(), e.target())) {
                Some(&i) => {
                    if !merged[i].2.contains(via) {
                        merged[i].2.push(via.clone());
                    }
                }
                None => {
                    at.insert((e.source(), e.target()), merged.len());
                    merged.push((
                        self.graph[e.source()].clone(),
                        self.graph[e.target()].clone(),
                        vec![via.clone()],
                    ));
                }
            }
        }
        merged
    }

    /// Graphviz DOT; edges point from dependent to dependency.
    pub fn to_dot(&self) -> String {
        fn quote(s: &str) -> String {
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        }
        let mut out = String::from("digraph resources {\n  rankdir=LR;\n  node [shape=box];\n");
        for n in self.nodes() {
            out.push_str(&format!("  {};\n", quote(&n.to_string())));
        }
        for (from, to, via) in self.merged_edges() {
            out.push_str(&format!(
                "  {} -> {} [label={}];\n",
                quote(&from.to_string()),
                quote(&to.to_string()),
                quote(&via.join(", "))
            ));
        }
        out.push_str("}\n");
        out
    }

    /// Each resource in deploy order, with what it depends on beneath it.
    pub fn to_text_tree(&self) -> String {
        let mut out = String::new();
        let mut by_from: HashMap<ResourceAddr, Vec<(ResourceAddr, Vec<String>)>> = HashMap::new();
        for (from, to, via) in self.merged_edges() {
            by_from.entry(from).or_default().push((to, via));
        }
        for addr in self.topo_order() {
            out.push_str(&addr.to_string());
            out.push('\n');
            let deps = by_from.remove(&addr).unwrap_or_default();
            let count = deps.len();
            for (i, (to, via)) in deps.into_iter().enumerate() {
                let branch = if i + 1 == count { "└─" } else { "├─" };
                out.push_str(&format!("  {branch} {to} ({})\n", via.join(", ")));
            }
        }
        out
    }
}
