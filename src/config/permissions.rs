//! `permissions`: the top-level (and target) list applies to every resource
//! of a kind with a Permissions API object type, its levels mapped per kind
//! as the official CLI maps them; entries naming one principal collapse to
//! the highest level; the deploying identity gets the owner (jobs) or manage
//! level the CLI gives it. Also the CLI's warnings about permissions.
//!
//! [`apply_identity`] is the loader's hook: it runs this stage and the
//! `run_as` one on the resolved tree, before the resources' typed checks.

use std::collections::HashSet;

use indexmap::IndexMap;

use crate::config::model::{CurrentUser, ResourceConfig};
use crate::config::source::{Key, Map, Node, NodeKind, ScalarStyle, Span};
use crate::diag::{did_you_mean, Diag, Diagnostics};
use crate::resources::common::PRINCIPALS;
use crate::resources::ResourceAddr;

/// Levels the top-level `permissions` accepts.
pub const TOP_LEVELS: [&str; 3] = ["CAN_MANAGE", "CAN_VIEW", "CAN_RUN"];

/// The deploying identity while it is not known (offline `validate`).
pub const PENDING_USER: &str = "${workspace.current_user.userName}";

/// How one Permissions API object type ranks and names its levels.
struct Levels {
    /// Lowest to highest.
    order: &'static [&'static str],
    /// The level the deployer gets (jobs: IS_OWNER unless someone else owns it).
    owner: &'static str,
    /// Top-level level → this kind's level; unmapped levels are skipped.
    from_top: &'static [(&'static str, &'static str)],
}

/// Every level of the generic set, lowest to highest (for kinds without a
/// table of their own and for levels a table does not list).
const GENERIC_ORDER: &[&str] = &[
    "CAN_VIEW",
    "CAN_READ",
    "CAN_VIEW_METADATA",
    "CAN_ATTACH_TO",
    "CAN_RUN",
    "CAN_QUERY",
    "CAN_USE",
    "CAN_BIND",
    "CAN_MONITOR_ONLY",
    "CAN_MONITOR",
    "CAN_RESTART",
    "CAN_MANAGE_RUN",
    "CAN_EDIT_METADATA",
    "CAN_EDIT",
    "CAN_CREATE",
    "CAN_CREATE_APP",
    "CAN_MANAGE_STAGING_VERSIONS",
    "CAN_MANAGE_PRODUCTION_VERSIONS",
    "CAN_MANAGE",
    "IS_OWNER",
];

fn levels(object_type: &str) -> Levels {
    match object_type {
        "jobs" => Levels {
            order: &["CAN_VIEW", "CAN_MANAGE_RUN", "CAN_MANAGE", "IS_OWNER"],
            owner: "IS_OWNER",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_VIEW"),
                ("CAN_RUN", "CAN_MANAGE_RUN"),
            ],
        },
        "pipelines" => Levels {
            order: &["CAN_VIEW", "CAN_RUN", "CAN_MANAGE", "IS_OWNER"],
            owner: "IS_OWNER",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_VIEW"),
                ("CAN_RUN", "CAN_RUN"),
            ],
        },
        "sql/warehouses" => Levels {
            order: &[
                "CAN_VIEW",
                "CAN_MONITOR",
                "CAN_USE",
                "CAN_MANAGE",
                "IS_OWNER",
            ],
            owner: "IS_OWNER",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_VIEW"),
                ("CAN_RUN", "CAN_MONITOR"),
            ],
        },
        "clusters" => Levels {
            order: &["CAN_ATTACH_TO", "CAN_RESTART", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_ATTACH_TO"),
                ("CAN_RUN", "CAN_RESTART"),
            ],
        },
        "instance-pools" => Levels {
            order: &["CAN_ATTACH_TO", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_ATTACH_TO")],
        },
        "vector-search-endpoints" => Levels {
            order: &["CAN_USE", "CAN_CREATE", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_USE")],
        },
        "experiments" => Levels {
            order: &["CAN_READ", "CAN_EDIT", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_READ")],
        },
        "registered-models" => Levels {
            order: &[
                "CAN_READ",
                "CAN_EDIT",
                "CAN_MANAGE_STAGING_VERSIONS",
                "CAN_MANAGE_PRODUCTION_VERSIONS",
                "CAN_MANAGE",
            ],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_READ")],
        },
        "serving-endpoints" => Levels {
            order: &["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_VIEW"),
                ("CAN_RUN", "CAN_QUERY"),
            ],
        },
        // Secret ACLs (contract §5): the deployer keeps MANAGE.
        "secret-acls" => Levels {
            order: &["READ", "WRITE", "MANAGE"],
            owner: "MANAGE",
            from_top: &[("CAN_MANAGE", "MANAGE"), ("CAN_VIEW", "READ")],
        },
        "apps" | "database-instances" => Levels {
            order: &["CAN_USE", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_USE")],
        },
        "dashboards" | "genie" => Levels {
            order: &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_READ")],
        },
        "alertsv2" => Levels {
            order: &["CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"],
            owner: "CAN_MANAGE",
            from_top: &[
                ("CAN_MANAGE", "CAN_MANAGE"),
                ("CAN_VIEW", "CAN_READ"),
                ("CAN_RUN", "CAN_RUN"),
            ],
        },
        _ => Levels {
            order: GENERIC_ORDER,
            owner: "CAN_MANAGE",
            from_top: &[("CAN_MANAGE", "CAN_MANAGE"), ("CAN_VIEW", "CAN_VIEW")],
        },
    }
}

impl Levels {
    fn rank(&self, level: &str) -> usize {
        match self.order.iter().position(|l| *l == level) {
            Some(i) => 100 + i,
            None => GENERIC_ORDER.iter().position(|l| *l == level).unwrap_or(0),
        }
    }
}

/// The single principal an entry names, as (field, value).
fn principal(entry: &Node) -> Option<(&'static str, String)> {
    let map = entry.as_map()?;
    let mut set = PRINCIPALS.iter().filter_map(|p| {
        map.get(p)
            .and_then(Node::as_str)
            .map(|v| (*p, v.to_string()))
    });
    let first = set.next()?;
    set.next().is_none().then_some(first)
}

fn level_of(entry: &Node) -> Option<&str> {
    entry.get("level").and_then(Node::as_str)
}

fn string_node(s: &str, span: Span) -> Node {
    Node::new(NodeKind::String(s.to_string(), ScalarStyle::Plain), span)
}

fn set_level(entry: &mut Node, level: &str) {
    let entry_span = entry.span;
    if let Some(map) = entry.as_map_mut() {
        let span = map
            .get_entry("level")
            .map(|(k, _)| k.span)
            .unwrap_or(entry_span);
        let vspan = map.get("level").map(|n| n.span).unwrap_or(span);
        map.insert(
            Key {
                name: "level".into(),
                span,
            },
            string_node(level, vspan),
        );
    }
}

/// `{level, <principal field>: name}` with one span.
fn entry_node(level: &str, field: &str, name: &str, span: Span) -> Node {
    let mut m = Map::default();
    m.insert(
        Key {
            name: "level".into(),
            span,
        },
        string_node(level, span),
    );
    m.insert(
        Key {
            name: field.into(),
            span,
        },
        string_node(name, span),
    );
    Node::new(NodeKind::Map(m), span)
}

/// One checked entry of the top-level list.
struct TopEntry {
    node: Node,
    level: String,
}

/// Check the top-level `permissions`; the valid entries, in order.
fn read_top_level(tree: &Node, diags: &mut Diagnostics) -> Vec<TopEntry> {
    let Some((key, list)) = tree.as_map().and_then(|m| m.get_entry("permissions")) else {
        return vec![];
    };
    let items = match &list.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => return vec![],
        _ => {
            // The CLI's normaliser only warns and drops a value of the wrong
            // type (bundles use the key to hold a YAML anchor), so do we.
            diags.push(
                Diag::warning(format!(
                    "the top-level permissions must be a list, not {}; it is ignored",
                    list.type_name()
                ))
                .at(list.span, "not a list")
                .related(key.span, "permissions")
                .help("write a list of `- level: CAN_MANAGE|CAN_VIEW|CAN_RUN` entries with one of user_name, group_name, service_principal_name"),
            );
            return vec![];
        }
    };
    let mut out: Vec<TopEntry> = Vec::new();
    let mut seen: Vec<((&'static str, String), Span)> = Vec::new();
    for (i, entry) in items.iter().enumerate() {
        let at = format!("permissions[{i}]");
        let Some(map) = entry.as_map() else {
            diags.push(
                Diag::error(format!("{at} must be a map, not {}", entry.type_name()))
                    .at(entry.span, "not a permission entry"),
            );
            continue;
        };
        for (k, _) in &map.entries {
            if k.name != "level" && !PRINCIPALS.contains(&k.name.as_str()) {
                let mut d = Diag::error(format!("unknown field `{}` in {at}", k.name))
                    .at(k.span, "unknown field");
                let fields = std::iter::once("level").chain(PRINCIPALS);
                if let Some(s) = did_you_mean(&k.name, fields) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
        let level = match map.get("level") {
            Some(l) => match l.as_str() {
                Some(s) if TOP_LEVELS.contains(&s) => s.to_string(),
                other => {
                    let shown = other
                        .map(str::to_string)
                        .unwrap_or_else(|| l.type_name().into());
                    let mut d = Diag::error(format!(
                        "{at}: `{shown}` is not a top-level permission level"
                    ))
                    .at(l.span, "invalid level");
                    d = match other.and_then(|s| did_you_mean(s, TOP_LEVELS)) {
                        Some(s) => d.help(format!("did you mean `{s}`? The top-level levels are CAN_MANAGE, CAN_VIEW and CAN_RUN")),
                        None => d.help("the top-level levels are CAN_MANAGE, CAN_VIEW and CAN_RUN; they are mapped to each resource kind's own levels"),
                    };
                    diags.push(d);
                    continue;
                }
            },
            None => {
                diags.push(
                    Diag::error(format!("{at} has no `level`"))
                        .at(entry.span, "this permission entry")
                        .help("add `level: CAN_MANAGE`, `CAN_VIEW` or `CAN_RUN`"),
                );
                continue;
            }
        };
        let named: Vec<&str> = PRINCIPALS
            .iter()
            .copied()
            .filter(|p| map.get(p).is_some())
            .collect();
        let Some(p) = principal(entry).filter(|(_, v)| !v.trim().is_empty()) else {
            let msg = if named.len() > 1 {
                format!("{at} names more than one principal ({})", named.join(", "))
            } else {
                format!("{at} names no principal")
            };
            diags.push(
                Diag::error(msg)
                    .at(entry.span, "this permission entry")
                    .help(
                        "set exactly one of `user_name`, `group_name` or `service_principal_name`",
                    ),
            );
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(q, _)| *q == p) {
            diags.push(
                Diag::warning(format!(
                    "{at}: `{}: {}` is already listed in the top-level permissions; the entries collapse to the highest level",
                    p.0, p.1
                ))
                .at(entry.span, "listed again here")
                .related(*first, "first listed here")
                .help("keep one entry per principal"),
            );
        } else {
            seen.push((p, entry.span));
        }
        out.push(TopEntry {
            node: entry.clone(),
            level,
        });
    }
    out
}

/// Is this principal value the deploying identity?
fn is_deployer(value: &str, user: Option<&CurrentUser>) -> bool {
    match user {
        Some(u) => value == u.user_name,
        None => value == PENDING_USER,
    }
}

/// Merge, collapse and complete one resource's list. Returns the new list,
/// or None when the resource keeps what it has.
fn complete(
    addr: &ResourceAddr,
    node: &Node,
    object_type: &str,
    top: &[TopEntry],
    user: Option<&CurrentUser>,
    diags: &mut Diagnostics,
) -> Option<Vec<Node>> {
    let lv = levels(object_type);
    let own: Vec<Node> = match node.get("permissions").map(|n| &n.kind) {
        None | Some(NodeKind::Null) => vec![],
        Some(NodeKind::Seq(items)) => items.clone(),
        // Any other shape is the schema check's to report.
        Some(_) => return None,
    };
    let own_len = own.len();
    let mut list = own;
    for t in top {
        let Some((_, mapped)) = lv.from_top.iter().find(|(from, _)| *from == t.level) else {
            continue;
        };
        let mut n = t.node.clone();
        set_level(&mut n, mapped);
        list.push(n);
    }
    if list.is_empty() {
        return None;
    }

    // Collapse: one entry per principal, at its first position, highest level.
    let mut out: Vec<Node> = Vec::with_capacity(list.len());
    let mut firsts: Vec<((&'static str, String), usize, bool)> = Vec::new();
    for (i, entry) in list.into_iter().enumerate() {
        let is_own = i < own_len;
        let Some(p) = principal(&entry) else {
            out.push(entry);
            continue;
        };
        match firsts.iter().find(|(q, _, _)| *q == p) {
            Some(&(_, at, first_own)) => {
                let (old, new) = (
                    level_of(&out[at]).unwrap_or("").to_string(),
                    level_of(&entry).unwrap_or("").to_string(),
                );
                if is_own && first_own {
                    diags.push(
                        Diag::warning(format!(
                            "{addr}.permissions lists `{}: {}` more than once ({old}, {new}); they collapse to the highest level",
                            p.0, p.1
                        ))
                        .at(entry.span, "listed again here")
                        .related(out[at].span, "first listed here")
                        .help("keep one entry per principal"),
                    );
                }
                if lv.rank(&new) > lv.rank(&old) {
                    set_level(&mut out[at], &new);
                }
            }
            None => {
                firsts.push((p, out.len(), is_own));
                out.push(entry);
            }
        }
    }

    // The deployer: jobs get IS_OWNER unless another principal owns the job
    // (then CAN_MANAGE); other kinds get CAN_MANAGE.
    let other_owner = lv.owner == "IS_OWNER"
        && out.iter().any(|e| {
            level_of(e) == Some("IS_OWNER")
                && principal(e).is_some_and(|(_, v)| !is_deployer(&v, user))
        });
    let want = match lv.owner {
        "IS_OWNER" if other_owner => "CAN_MANAGE",
        owner => owner,
    };
    match out
        .iter()
        .position(|e| principal(e).is_some_and(|(_, v)| is_deployer(&v, user)))
    {
        Some(i) => {
            let have = level_of(&out[i]).unwrap_or("").to_string();
            if lv.rank(want) > lv.rank(&have) {
                set_level(&mut out[i], want);
            }
        }
        None => {
            let (field, name) = match user {
                Some(u) if u.user_name.contains('@') => ("user_name", u.user_name.as_str()),
                Some(u) => ("service_principal_name", u.user_name.as_str()),
                None => ("user_name", PENDING_USER),
            };
            out.push(entry_node(want, field, name, Span::synthetic()));
        }
    }
    if lv.owner == "IS_OWNER" {
        let owners: Vec<&Node> = out
            .iter()
            .filter(|e| level_of(e) == Some("IS_OWNER"))
            .collect();
        if let [first, rest @ ..] = owners.as_slice() {
            if !rest.is_empty() {
                let mut d = Diag::error(format!(
                    "{addr}.permissions gives IS_OWNER to more than one principal"
                ))
                .at(rest[0].span, "another owner")
                .help("a job has exactly one owner; give the others CAN_MANAGE");
                if !first.span.is_synthetic() {
                    d = d.related(first.span, "first owner");
                }
                diags.push(d);
            }
        }
    }
    Some(out)
}

/// The groups the deploying identity belongs to (SCIM `Me` `groups[].display`).
fn deployer_groups(user: &CurrentUser) -> Vec<&str> {
    user.attributes
        .get("groups")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("display").and_then(serde_json::Value::as_str))
        .collect()
}

/// The CLI's warning when the top-level list lets neither the deploying
/// identity nor one of its groups manage the bundle (CAN_MANAGE or
/// IS_OWNER): the deployment folder would be left to others.
fn recommend_deployer(tree: &Node, top: &[TopEntry], user: &CurrentUser, diags: &mut Diagnostics) {
    if top.is_empty() {
        return;
    }
    let groups = deployer_groups(user);
    let manages = top.iter().any(|t| {
        matches!(t.level.as_str(), "CAN_MANAGE" | "IS_OWNER")
            && principal(&t.node).is_some_and(|(field, v)| match field {
                "group_name" => groups.contains(&v.as_str()),
                _ => v == user.user_name,
            })
    });
    if manages {
        return;
    }
    let span = tree
        .get("permissions")
        .and_then(Node::as_seq)
        .and_then(|s| s.first())
        .map(|n| n.span)
        .unwrap_or_else(Span::synthetic);
    diags.push(
        Diag::warning(format!(
            "permissions section should include {} or one of their groups with CAN_MANAGE permissions",
            user.user_name
        ))
        .at(span, "permissions")
        .help(format!(
            "add `- user_name: {}\n  level: CAN_MANAGE` (or a group of it) to the top-level permissions",
            user.user_name
        )),
    );
}

/// Write changed resources back into the tree `validate -o json` prints.
fn sync_tree(
    tree: &mut Node,
    resources: &IndexMap<ResourceAddr, ResourceConfig>,
    touched: &HashSet<ResourceAddr>,
) {
    for addr in touched {
        let Some(rc) = resources.get(addr) else {
            continue;
        };
        let slot = tree
            .as_map_mut()
            .and_then(|m| m.get_mut("resources"))
            .and_then(Node::as_map_mut)
            .and_then(|m| m.get_mut(addr.kind.key()))
            .and_then(Node::as_map_mut)
            .and_then(|m| m.get_mut(&addr.key));
        if let Some(slot) = slot {
            *slot = rc.node.clone();
        }
    }
}

/// The loader hook: `run_as`, then `permissions`, on the resolved tree and
/// resources (before the typed checks). Returns the updated tree.
pub(crate) fn apply_identity(
    mut tree: Node,
    resources: &mut IndexMap<ResourceAddr, ResourceConfig>,
    user: Option<&CurrentUser>,
    diags: &mut Diagnostics,
) -> Node {
    let mut touched: HashSet<ResourceAddr> = HashSet::new();
    super::run_as::apply(&tree, resources, user, diags, &mut touched);

    let top = read_top_level(&tree, diags);
    if let Some(u) = user {
        recommend_deployer(&tree, &top, u, diags);
    }
    for (addr, rc) in resources.iter_mut() {
        let Some(object_type) = crate::resources::registry()
            .iter()
            .find(|k| k.kind() == addr.kind)
            .and_then(|k| k.permission_levels())
        else {
            continue;
        };
        let Some(list) = complete(addr, &rc.node, object_type, &top, user, diags) else {
            continue;
        };
        if let Some(map) = rc.node.as_map_mut() {
            let key_span = map
                .get_entry("permissions")
                .map(|(k, _)| k.span)
                .unwrap_or_else(Span::synthetic);
            let span = map.get("permissions").map(|n| n.span).unwrap_or(key_span);
            map.insert(
                Key {
                    name: "permissions".into(),
                    span: key_span,
                },
                Node::new(NodeKind::Seq(list), span),
            );
            touched.insert(addr.clone());
        }
    }
    // Kind-specific checks across resources (an app referencing a job whose
    // permissions would drop the app's grant).
    for (addr, rc) in resources.iter() {
        crate::resources::kind_impl(addr.kind).check_in_bundle(addr, rc, resources, diags);
    }
    sync_tree(&mut tree, resources, &touched);
    tree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use crate::resources::Kind;

    fn node(yaml: &str) -> Node {
        parse_file(FileId(0), yaml).0
    }

    fn levels_of(list: &[Node]) -> Vec<(String, String)> {
        list.iter()
            .map(|e| {
                let (p, v) = principal(e).expect("one principal");
                (format!("{p}={v}"), level_of(e).unwrap_or("").to_string())
            })
            .collect()
    }

    fn user() -> CurrentUser {
        CurrentUser {
            user_name: "me@example.com".into(),
            short_name: "me".into(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn job_collapses_to_highest_and_owner_is_added() {
        let job = node("permissions:\n  - {level: CAN_MANAGE_RUN, group_name: g}\n  - {level: CAN_VIEW, group_name: g}\n  - {level: CAN_MANAGE, group_name: g}\n");
        let mut diags = Diagnostics::default();
        let addr = ResourceAddr::new(Kind::Jobs, "j");
        let out = complete(&addr, &job, "jobs", &[], Some(&user()), &mut diags).unwrap();
        assert_eq!(
            levels_of(&out),
            [
                ("group_name=g".to_string(), "CAN_MANAGE".to_string()),
                ("user_name=me@example.com".into(), "IS_OWNER".into()),
            ]
        );
        assert_eq!(diags.count(crate::diag::Severity::Warning), 2);
    }

    #[test]
    fn job_with_other_owner_gives_deployer_manage() {
        let job = node("permissions:\n  - {level: IS_OWNER, user_name: other@example.com}\n  - {level: CAN_VIEW, user_name: me@example.com}\n");
        let mut diags = Diagnostics::default();
        let addr = ResourceAddr::new(Kind::Jobs, "j");
        let out = complete(&addr, &job, "jobs", &[], Some(&user()), &mut diags).unwrap();
        assert_eq!(
            levels_of(&out),
            [
                (
                    "user_name=other@example.com".to_string(),
                    "IS_OWNER".to_string()
                ),
                ("user_name=me@example.com".into(), "CAN_MANAGE".into()),
            ]
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn top_level_maps_levels_per_kind_and_skips_unmapped() {
        let tree = node("permissions:\n  - {level: CAN_RUN, group_name: g}\n  - {level: CAN_VIEW, user_name: v@example.com}\n");
        let mut diags = Diagnostics::default();
        let top = read_top_level(&tree, &mut diags);
        assert!(diags.is_empty());
        let empty = node("name: x\n");
        let job = complete(
            &ResourceAddr::new(Kind::Jobs, "j"),
            &empty,
            "jobs",
            &top,
            None,
            &mut diags,
        )
        .unwrap();
        assert_eq!(
            levels_of(&job),
            [
                ("group_name=g".to_string(), "CAN_MANAGE_RUN".to_string()),
                ("user_name=v@example.com".into(), "CAN_VIEW".into()),
                (format!("user_name={PENDING_USER}"), "IS_OWNER".into()),
            ]
        );
        let app = complete(
            &ResourceAddr::new(Kind::Apps, "a"),
            &empty,
            "apps",
            &top,
            Some(&user()),
            &mut diags,
        )
        .unwrap();
        assert_eq!(
            levels_of(&app),
            [
                ("user_name=v@example.com".to_string(), "CAN_USE".to_string()),
                ("user_name=me@example.com".into(), "CAN_MANAGE".into()),
            ]
        );
    }

    /// Secret scopes: CAN_MANAGE → MANAGE, CAN_VIEW → READ, CAN_RUN has no
    /// ACL; the deployer keeps MANAGE; own entries keep their ACL levels.
    #[test]
    fn top_level_maps_to_secret_acls() {
        let tree = node("permissions:\n  - {level: CAN_MANAGE, group_name: admins}\n  - {level: CAN_VIEW, group_name: users}\n  - {level: CAN_RUN, user_name: r@example.com}\n");
        let mut diags = Diagnostics::default();
        let top = read_top_level(&tree, &mut diags);
        let scope = node("name: s\npermissions:\n  - {level: WRITE, group_name: users}\n");
        let out = complete(
            &ResourceAddr::new(Kind::SecretScopes, "s"),
            &scope,
            "secret-acls",
            &top,
            Some(&user()),
            &mut diags,
        )
        .unwrap();
        assert_eq!(
            levels_of(&out),
            [
                ("group_name=users".to_string(), "WRITE".to_string()),
                ("group_name=admins".into(), "MANAGE".into()),
                ("user_name=me@example.com".into(), "MANAGE".into()),
            ]
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            crate::resources::kind_impl(Kind::SecretScopes).permission_levels(),
            Some("secret-acls")
        );
    }

    #[test]
    fn database_instances_give_the_deployer_manage_in_place() {
        let tree = node("permissions:\n  - {level: CAN_VIEW, group_name: readers}\n  - {level: CAN_RUN, group_name: runners}\n");
        let mut diags = Diagnostics::default();
        let top = read_top_level(&tree, &mut diags);
        let inst = node(
            "name: i\npermissions:\n  - {level: CAN_USE, service_principal_name: me@example.com}\n",
        );
        let out = complete(
            &ResourceAddr::new(Kind::DatabaseInstances, "i"),
            &inst,
            "database-instances",
            &top,
            Some(&user()),
            &mut diags,
        )
        .unwrap();
        // The deployer's own entry is raised where it stands (keeping its
        // principal field); CAN_RUN has no instance level and is skipped.
        assert_eq!(
            levels_of(&out),
            [
                (
                    "service_principal_name=me@example.com".to_string(),
                    "CAN_MANAGE".to_string()
                ),
                ("group_name=readers".into(), "CAN_USE".into()),
            ]
        );
        assert!(diags.is_empty());
    }

    #[test]
    fn no_permissions_means_nothing_added() {
        let mut diags = Diagnostics::default();
        for yaml in ["name: x\n", "permissions: []\n"] {
            let n = node(yaml);
            assert!(complete(
                &ResourceAddr::new(Kind::Jobs, "j"),
                &n,
                "jobs",
                &[],
                Some(&user()),
                &mut diags
            )
            .is_none());
        }
    }

    #[test]
    fn invalid_top_level_entries_are_errors() {
        let tree = node("permissions:\n  - {level: CAN_USE, group_name: g}\n  - {level: CAN_VIEW}\n  - {level: CAN_VIEW, user_name: a, group_name: b}\n");
        let mut diags = Diagnostics::default();
        assert!(read_top_level(&tree, &mut diags).is_empty());
        assert_eq!(diags.count(crate::diag::Severity::Error), 3);
    }
}
