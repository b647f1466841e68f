//! The dependency-driven scheduler under the executor: a DAG of operations,
//! each started as soon as its own prerequisites are done (never level by
//! level), at most `parallelism` at a time. A failure skips everything that
//! waits on it, transitively; independent work goes on. Cancellation stops
//! new starts and lets in-flight operations finish.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use crate::plan::{Action, Plan};
use crate::resources::ResourceAddr;

/// Which half of a resource's work an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Delete (a delete, or the first half of a replace).
    Remove,
    /// Create or update (or the second half of a replace).
    Apply,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub addr: ResourceAddr,
    pub step: Step,
    /// The resource's planned action.
    pub action: Action,
}

/// How each operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
    Skipped(String),
}

/// Why an operation failed; `halt` asks the scheduler to start nothing more
/// (e.g. state can no longer be saved).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub halt: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            halt: false,
        }
    }
}

/// Operations and their prerequisites, built from a plan.
#[derive(Debug, Default)]
pub struct OpGraph {
    /// In plan order.
    pub ops: Vec<Op>,
    /// `prereqs[i]` = indices that must be done before `ops[i]` starts.
    pub prereqs: Vec<BTreeSet<usize>>,
}

impl OpGraph {
    /// Creates/updates wait for their dependencies' creates/updates and for
    /// their own delete (replace); deletes wait for the deletes of whatever
    /// depends on them. `extra_deps` adds dependencies known only from state
    /// (what an old object depended on), used for delete ordering.
    pub fn from_plan(
        plan: &Plan,
        extra_deps: &HashMap<ResourceAddr, Vec<ResourceAddr>>,
    ) -> OpGraph {
        let mut g = OpGraph::default();
        let mut index: HashMap<(ResourceAddr, Step), usize> = HashMap::new();
        for c in &plan.changes {
            let steps: &[Step] = match c.action {
                Action::NoOp => &[],
                Action::Create | Action::Update => &[Step::Apply],
                Action::Delete => &[Step::Remove],
                Action::Replace => &[Step::Remove, Step::Apply],
            };
            for &step in steps {
                index.insert((c.addr.clone(), step), g.ops.len());
                g.ops.push(Op {
                    addr: c.addr.clone(),
                    step,
                    action: c.action,
                });
                g.prereqs.push(BTreeSet::new());
            }
        }
        for c in &plan.changes {
            let mut deps: BTreeSet<&ResourceAddr> = c.depends_on.iter().collect();
            deps.extend(extra_deps.get(&c.addr).into_iter().flatten());
            if let Some(&apply) = index.get(&(c.addr.clone(), Step::Apply)) {
                if let Some(&own_remove) = index.get(&(c.addr.clone(), Step::Remove)) {
                    g.prereqs[apply].insert(own_remove);
                }
                for d in &c.depends_on {
                    if let Some(&dep_apply) = index.get(&((*d).clone(), Step::Apply)) {
                        g.prereqs[apply].insert(dep_apply);
                    }
                }
            }
            // This resource's delete must precede the delete of what it depends on.
            if let Some(&remove) = index.get(&(c.addr.clone(), Step::Remove)) {
                for d in deps {
                    if let Some(&dep_remove) = index.get(&(d.clone(), Step::Remove)) {
                        if dep_remove != remove {
                            g.prereqs[dep_remove].insert(remove);
                        }
                    }
                }
            }
        }
        g
    }
}

/// Run every operation of `graph` through `run`, respecting prerequisites.
/// Returns one outcome per operation (same order as `graph.ops`) and whether
/// the run was interrupted. `cancel` is polled before each start; `run`
/// returning `Err` fails the operation and skips what waits on it.
pub async fn run_graph<'g, F, Fut>(
    graph: &'g OpGraph,
    parallelism: usize,
    cancel: Option<&watch::Receiver<bool>>,
    run: F,
) -> (Vec<Outcome>, bool)
where
    F: Fn(usize, &'g Op) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let n = graph.ops.len();
    let mut remaining: Vec<usize> = graph.prereqs.iter().map(BTreeSet::len).collect();
    let mut waiters: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, pre) in graph.prereqs.iter().enumerate() {
        for &p in pre {
            waiters[p].push(i);
        }
    }
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut running = FuturesUnordered::new();
    let mut halted = false;
    let cancelled = |c: Option<&watch::Receiver<bool>>| c.is_some_and(|rx| *rx.borrow());
    let parallelism = parallelism.max(1);

    loop {
        while running.len() < parallelism && !halted && !cancelled(cancel) {
            let Some(i) = ready.pop_front() else { break };
            let fut = run(i, &graph.ops[i]);
            running.push(async move { (i, fut.await) });
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                outcome[i] = Some(Outcome::Done);
                for &w in &waiters[i] {
                    remaining[w] -= 1;
                    if remaining[w] == 0 && outcome[w].is_none() {
                        ready.push_back(w);
                    }
                }
            }
            Err(Failure { message, halt }) => {
                halted |= halt;
                outcome[i] = Some(Outcome::Failed(message));
                skip_waiters(graph, &waiters, i, &mut outcome);
            }
        }
    }
    let interrupted = cancelled(cancel);
    let reason = if interrupted {
        "interrupted"
    } else {
        "stopped after an earlier error"
    };
    let outcomes = outcome
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Skipped(reason.to_string())))
        .collect();
    (outcomes, interrupted)
}

/// Mark everything waiting (transitively) on failed `from` as skipped.
fn skip_waiters(
    graph: &OpGraph,
    waiters: &[Vec<usize>],
    from: usize,
    outcome: &mut [Option<Outcome>],
) {
    let failed = &graph.ops[from];
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        for &w in &waiters[i] {
            if outcome[w].is_some() {
                continue;
            }
            let why = if graph.ops[w].addr == failed.addr {
                format!(
                    "its {} step failed",
                    if failed.step == Step::Remove {
                        "delete"
                    } else {
                        "apply"
                    }
                )
            } else if failed.step == Step::Remove && graph.ops[w].step == Step::Remove {
                format!("{} (which depends on it) could not be deleted", failed.addr)
            } else {
                format!("dependency {} failed", failed.addr)
            };
            outcome[w] = Some(Outcome::Skipped(why));
            stack.push(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ResourceChange, FORMAT_VERSION};
    use crate::resources::Kind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn change(key: &str, action: Action, deps: &[&str]) -> ResourceChange {
        ResourceChange {
            addr: ResourceAddr::new(Kind::Jobs, key),
            action,
            fields: vec![],
            drift: vec![],
            reason: None,
            id: None,
            before: None,
            after: None,
            after_unknown: vec![],
            replace_paths: vec![],
            depends_on: deps
                .iter()
                .map(|d| ResourceAddr::new(Kind::Jobs, *d))
                .collect(),
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            bundle: "b".into(),
            target: "t".into(),
            lineage: None,
            serial: 0,
            config_hash: String::new(),
            changes,
        }
    }

    /// Runs ops with a per-key delay, recording start/end order.
    async fn run_with(
        g: &OpGraph,
        par: usize,
        delay_ms: impl Fn(&str) -> u64,
        fail: &[&str],
    ) -> (Vec<Outcome>, Vec<String>, usize) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (outcomes, _) = run_graph(g, par, None, |_, op| {
            let (log, live, peak) = (log.clone(), live.clone(), peak.clone());
            let key = format!("{}:{:?}", op.addr.key, op.step);
            let d = delay_ms(&op.addr.key);
            let fails = fail.contains(&op.addr.key.as_str());
            async move {
                let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                log.lock().unwrap().push(format!("start {key}"));
                tokio::time::sleep(Duration::from_millis(d)).await;
                log.lock().unwrap().push(format!("end {key}"));
                live.fetch_sub(1, Ordering::SeqCst);
                if fails {
                    Err(Failure::new("boom"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        let log = log.lock().unwrap().clone();
        (outcomes, log, peak.load(Ordering::SeqCst))
    }

    fn pos(log: &[String], entry: &str) -> usize {
        log.iter()
            .position(|l| l == entry)
            .unwrap_or_else(|| panic!("{entry} not in {log:?}"))
    }

    #[tokio::test]
    async fn starts_as_soon_as_own_dependencies_finish() {
        // a (slow) <- b ; c (fast) <- d : d must not wait for a.
        let p = plan(vec![
            change("a", Action::Create, &[]),
            change("b", Action::Create, &["a"]),
            change("c", Action::Create, &[]),
            change("d", Action::Create, &["c"]),
        ]);
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (out, log, _) = run_with(&g, 4, |k| if k == "a" { 200 } else { 10 }, &[]).await;
        assert!(out.iter().all(|o| *o == Outcome::Done));
        assert!(
            pos(&log, "start d:Apply") < pos(&log, "end a:Apply"),
            "{log:?}"
        );
        assert!(pos(&log, "start b:Apply") > pos(&log, "end a:Apply"));
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let p = plan(
            (0..12)
                .map(|i| change(&format!("r{i}"), Action::Create, &[]))
                .collect(),
        );
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (_, _, peak) = run_with(&g, 3, |_| 20, &[]).await;
        assert_eq!(peak, 3);
    }

    #[tokio::test]
    async fn failure_skips_dependents_only() {
        let p = plan(vec![
            change("a", Action::Create, &[]),
            change("b", Action::Create, &["a"]),
            change("c", Action::Create, &["b"]),
            change("x", Action::Create, &[]),
        ]);
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (out, _, _) = run_with(&g, 2, |_| 5, &["a"]).await;
        assert_eq!(out[0], Outcome::Failed("boom".into()));
        assert_eq!(
            out[1],
            Outcome::Skipped("dependency resources.jobs.a failed".into())
        );
        assert!(matches!(out[2], Outcome::Skipped(_)));
        assert_eq!(out[3], Outcome::Done);
    }

    #[tokio::test]
    async fn deletes_run_dependents_first_and_replace_deletes_before_create() {
        // b depends on a; both deleted: b's delete first. c replaced: delete then create.
        let p = plan(vec![
            change("a", Action::Delete, &[]),
            change("b", Action::Delete, &["a"]),
            change("c", Action::Replace, &[]),
        ]);
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (_, log, _) = run_with(&g, 4, |_| 10, &[]).await;
        assert!(
            pos(&log, "end b:Remove") < pos(&log, "start a:Remove"),
            "{log:?}"
        );
        assert!(
            pos(&log, "end c:Remove") < pos(&log, "start c:Apply"),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn replace_of_dependency_orders_all_four_steps() {
        // cat depends on inst; both replaced: del cat, del inst, create inst, create cat.
        let p = plan(vec![
            change("inst", Action::Replace, &[]),
            change("cat", Action::Replace, &["inst"]),
        ]);
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (_, log, _) = run_with(&g, 4, |_| 5, &[]).await;
        let order: Vec<&str> = log
            .iter()
            .filter(|l| l.starts_with("start"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            order,
            vec![
                "start cat:Remove",
                "start inst:Remove",
                "start inst:Apply",
                "start cat:Apply"
            ]
        );
    }

    #[tokio::test]
    async fn cancellation_stops_new_work_and_reports_interrupted() {
        let p = plan(vec![
            change("a", Action::Create, &[]),
            change("b", Action::Create, &["a"]),
        ]);
        let g = OpGraph::from_plan(&p, &HashMap::new());
        let (tx, rx) = watch::channel(false);
        let (out, interrupted) = run_graph(&g, 2, Some(&rx), |_, _| {
            let tx = tx.clone();
            async move {
                tx.send_replace(true);
                Ok(())
            }
        })
        .await;
        assert!(interrupted);
        assert_eq!(out[0], Outcome::Done);
        assert_eq!(out[1], Outcome::Skipped("interrupted".into()));
    }
}
