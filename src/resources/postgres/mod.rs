//! Lakebase Autoscaling (`/api/2.0/postgres/...`, contract part 2 §1): the
//! seven `postgres_*` kinds, one file each, and what they share here.
//!
//! Every resource is named by a path (`projects/p/branches/b/endpoints/e`),
//! which is also its state id; the user picks only the last segment (the
//! `*_id` field, sent as a query parameter). Every create, update and delete
//! answers a long-running operation that is polled until done. GET returns
//! `status` and never `spec`, so each kind maps the status mirrors back to
//! the bundle's (flattened) YAML shape, and every spec field is also input-only
//! against the last applied value for the fields status does not mirror.

pub mod branch;
pub mod catalog;
pub mod database;
pub mod endpoint;
pub mod project;
pub mod role;
pub mod synced_table;

use std::time::Duration;

use serde_json::{Map, Value};

use super::common::{self, has_interpolation, none_if_missing, not_ready, Poll};
use super::{Created, Kind, NameLink};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

/// Base of every postgres call.
pub const API: &str = "/api/2.0/postgres";

/// Longest wait for one long-running operation (create, update, delete).
/// Generous: a real branch from a large parent or a project's first compute
/// can take minutes; the emulator answers in seconds.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long a mutation is retried while its resource (an endpoint) is reconciling
/// (409 "reconciliation"), as the official CLI does.
const RECONCILIATION_RETRY: Duration = Duration::from_secs(120);

/// Static description of one postgres kind: how its name is built and which
/// fields go into `spec`.
pub struct Desc {
    pub kind: Kind,
    /// The id field (`project_id`), passed as a query parameter on create.
    pub id_field: &'static str,
    /// Collection segment (`projects`, `branches`, ...).
    pub segment: &'static str,
    /// Whether the config names its parent (`parent` field); otherwise the
    /// name is `{segment}/{id}` (projects, catalogs, synced tables).
    pub has_parent: bool,
    /// Fields sent inside `spec`.
    pub spec_fields: &'static [&'static str],
    /// What to call one of these in messages.
    pub noun: &'static str,
    /// `replace_existing=true` is accepted on create.
    pub replaceable: bool,
}

impl Desc {
    /// The resource name (state id) the config will have, when its id and
    /// parent are literal.
    pub fn name_from_config(&self, config: &Value) -> Option<String> {
        let id = common::literal_str(config, self.id_field)?;
        if self.has_parent {
            let parent = common::literal_str(config, "parent")?;
            Some(format!(
                "{}/{}/{id}",
                parent.trim_end_matches('/'),
                self.segment
            ))
        } else {
            Some(format!("{}/{id}", self.segment))
        }
    }

    /// The name as written, `${...}` references kept as text: what another
    /// resource writing the same reference form links to.
    pub fn name_as_written(&self, config: &Value) -> Option<String> {
        let id = config.get(self.id_field)?.as_str()?;
        if self.has_parent {
            let parent = config.get("parent")?.as_str()?;
            Some(format!(
                "{}/{}/{id}",
                parent.trim_end_matches('/'),
                self.segment
            ))
        } else {
            Some(format!("{}/{id}", self.segment))
        }
    }

    /// Collection path a create is POSTed to.
    fn collection(&self, config: &Value) -> Result<String, ApiError> {
        if self.has_parent {
            let parent = config
                .get("parent")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty() && !has_interpolation(p))
                .ok_or_else(|| self.bad_config("has no resolved `parent`"))?;
            Ok(format!(
                "{API}/{}/{}",
                parent.trim_matches('/'),
                self.segment
            ))
        } else {
            Ok(format!("{API}/{}", self.segment))
        }
    }

    fn bad_config(&self, what: &str) -> ApiError {
        ApiError::Other {
            method: "POST".into(),
            path: format!("{API}/{}", self.segment),
            status: 0,
            error_code: "INVALID_CONFIG".into(),
            message: format!("the {} {what}", self.noun),
        }
    }

    /// `{"spec": {...}}` with the config's spec fields.
    pub fn spec_body(&self, config: &Value) -> Value {
        let mut spec = Map::new();
        for f in self.spec_fields {
            if let Some(v) = config.get(*f).filter(|v| !v.is_null()) {
                spec.insert((*f).to_string(), v.clone());
            }
        }
        serde_json::json!({ "spec": spec })
    }

    /// The bundle YAML shape of a remote object: the id, the parent, and
    /// each spec field from its `status` mirror (or `spec`, should a server
    /// echo it).
    pub fn remote_yaml(&self, remote: &Value) -> Map<String, Value> {
        let mut out = Map::new();
        let name = remote.get("name").and_then(Value::as_str).unwrap_or("");
        let id = remote
            .get(self.id_field)
            .or_else(|| common::get_path(remote, &format!("status.{}", self.id_field)))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| name.rsplit('/').next().map(str::to_string))
            .filter(|s| !s.is_empty());
        if let Some(id) = id {
            out.insert(self.id_field.into(), Value::String(id));
        }
        if self.has_parent {
            let parent = remote
                .get("parent")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| parent_of(name, self.segment));
            if let Some(p) = parent {
                out.insert("parent".into(), Value::String(p));
            }
        }
        for f in self.spec_fields {
            let v = common::get_path(remote, &format!("status.{f}"))
                .or_else(|| common::get_path(remote, &format!("spec.{f}")));
            if let Some(v) = v.filter(|v| !v.is_null()) {
                out.insert((*f).to_string(), v.clone());
            }
        }
        out
    }

    /// POST the create and await its operation; the result is the resource.
    pub async fn create(
        &self,
        client: &Client,
        config: &Value,
        replace_existing: bool,
    ) -> Result<Created, ApiError> {
        let id = common::literal_str(config, self.id_field)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.bad_config(&format!("has no resolved `{}`", self.id_field)))?;
        let path = self.collection(config)?;
        let mut query = vec![(self.id_field, id.to_string())];
        if replace_existing && self.replaceable {
            query.push(("replace_existing", "true".into()));
        }
        let op = mutation(
            client,
            Method::POST,
            &path,
            &query,
            Some(&self.spec_body(config)),
        )
        .await?;
        let remote = await_operation(client, &path, op, OPERATION_TIMEOUT).await?;
        let id = remote
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.name_from_config(config))
            .unwrap_or_default();
        Ok(Created { id, remote })
    }

    /// PATCH with a mask and await the operation.
    pub async fn update(
        &self,
        client: &Client,
        id: &str,
        body: &Value,
        mask: &[String],
    ) -> Result<(), ApiError> {
        if mask.is_empty() {
            return Ok(());
        }
        let path = path_for(id);
        let query = [("update_mask", mask.join(","))];
        let op = mutation(client, Method::PATCH, &path, &query, Some(body)).await?;
        await_operation(client, &path, op, OPERATION_TIMEOUT).await?;
        Ok(())
    }

    /// `find_existing`: read the name the config will have.
    pub async fn find(&self, client: &Client, config: &Value) -> Result<Option<Created>, ApiError> {
        let Some(name) = self.name_from_config(config) else {
            return Ok(None);
        };
        Ok(read(client, &name)
            .await?
            .map(|remote| Created { id: name, remote }))
    }
}

/// `projects/p/branches/b` → parent of a `branches` child: `projects/p`.
fn parent_of(name: &str, segment: &str) -> Option<String> {
    let marker = format!("/{segment}/");
    name.rfind(&marker).map(|i| name[..i].to_string())
}

/// `/api/2.0/postgres/{name}` with the name raw (slashes and dots kept).
pub fn path_for(name: &str) -> String {
    format!("{API}/{}", name.trim_start_matches('/'))
}

/// GET a resource; `None` when it does not exist.
pub async fn read(client: &Client, name: &str) -> Result<Option<Value>, ApiError> {
    none_if_missing(client.call(Method::GET, &path_for(name), &[], None).await)
}

/// Poll an operation (`GET /api/2.0/postgres/{operation.name}`) until it is
/// done; its `response` on success, its `error` as an [`ApiError`] on failure.
pub async fn await_operation(
    client: &Client,
    path: &str,
    op: Value,
    timeout: Duration,
) -> Result<Value, ApiError> {
    let done = |op: &Value| op.get("done").and_then(Value::as_bool) == Some(true);
    let finish = |op: Value| -> Result<Value, ApiError> {
        if let Some(err) = op.get("error").filter(|e| !e.is_null()) {
            let code = err
                .get("error_code")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(ApiError::Other {
                method: "GET".into(),
                path: path.to_string(),
                status: 0,
                error_code: code.to_string(),
                message: format!("operation failed: [{code}] {message}"),
            });
        }
        Ok(op.get("response").cloned().unwrap_or(Value::Null))
    };
    if done(&op) {
        return finish(op);
    }
    let Some(op_name) = op.get("name").and_then(Value::as_str).map(str::to_string) else {
        return Err(ApiError::invalid_response(
            "POST",
            path,
            "the reply is neither a finished operation nor one with a name to poll",
        ));
    };
    let op_path = path_for(&op_name);
    let last = common::poll_until(&op_path, timeout, || async {
        let op = client.call(Method::GET, &op_path, &[], None).await?;
        Ok(if done(&op) {
            Poll::Ready(op)
        } else {
            Poll::Pending("running".into())
        })
    })
    .await?;
    finish(last)
}

/// A delete the server refuses because the parent owns the object (the root
/// branch, a branch's read-write endpoint): it goes when the parent goes.
pub fn is_managed_by_parent(e: &ApiError) -> bool {
    match e {
        ApiError::BadRequest { message, .. } | ApiError::InvalidState { message, .. } => {
            message.contains("MANAGED_BY_PARENT")
                || message.starts_with("Cannot delete root branch")
                || message.starts_with("Cannot delete read-write endpoint")
        }
        _ => false,
    }
}

/// DELETE and await the operation. Gone already, or owned by its parent,
/// counts as deleted; an endpoint still reconciling is retried.
pub async fn delete(client: &Client, name: &str, query: &[(&str, String)]) -> Result<(), ApiError> {
    let path = path_for(name);
    match mutation(client, Method::DELETE, &path, query, None).await {
        Ok(op) => match await_operation(client, &path, op, OPERATION_TIMEOUT).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        },
        Err(e) if e.is_not_found() || is_managed_by_parent(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the server refused a mutation because the resource (an endpoint) is still
/// reconciling an earlier change (409, message naming `reconciliation`).
pub fn is_reconciling(e: &ApiError) -> bool {
    matches!(e, ApiError::Conflict { message, .. } if message.contains("reconciliation"))
}

/// A create, update or delete call: while the resource is reconciling, retried every 2 s
/// (at most [`RECONCILIATION_RETRY`]), as the official CLI does.
async fn mutation(
    client: &Client,
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let deadline = tokio::time::Instant::now() + RECONCILIATION_RETRY;
    loop {
        match client.call(method.clone(), path, query, body).await {
            Err(e) if is_reconciling(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!("{method} {path}: the resource is reconciling; retrying in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return other,
        }
    }
}

/// Poll GET until `classify` is satisfied (see [`common::poll_get`]).
pub async fn poll_ready<F>(
    client: &Client,
    name: &str,
    timeout: Duration,
    classify: F,
) -> Result<Value, ApiError>
where
    F: Fn(Value) -> Poll,
{
    common::poll_get(client, &path_for(name), timeout, classify).await
}

/// Readiness by `status.current_state` / `status.pending_state`.
pub fn by_state(remote: Value, ready: &[&str], what: &str) -> Poll {
    let pending = common::state_at(&remote, "status.pending_state");
    let current = common::state_at(&remote, "status.current_state");
    if !pending.is_empty() {
        return Poll::Pending(format!("{current} → {pending}"));
    }
    if current.is_empty() || ready.contains(&current) {
        // No state reported at all: the finished operation is all there is.
        return Poll::Ready(remote);
    }
    if current == "DELETED" {
        return Poll::Failed(format!("the {what} is being deleted"));
    }
    Poll::Pending(current.to_string())
}

/// Outputs: `id`, `name`, `uid`, times, the whole `status`, and the listed
/// dotted paths (status fields referencable as `status.x` and as `x`).
pub fn outputs(id: &str, remote: &Value, flat: &[&str]) -> Value {
    let mut out = common::collect_outputs(
        id,
        remote,
        &[
            "name",
            "uid",
            "parent",
            "create_time",
            "update_time",
            "status",
        ],
    );
    if let Value::Object(m) = &mut out {
        m.entry("name")
            .or_insert_with(|| Value::String(id.to_string()));
        for f in flat {
            if let Some(v) = common::get_path(remote, &format!("status.{f}")) {
                m.entry((*f).to_string()).or_insert_with(|| v.clone());
            }
        }
    }
    out
}

/// A link from `field` (a literal name or one written with `${...}`) to the
/// resource of `target_kind` with that name.
pub fn link(config: &Value, field: &str, target_kind: Kind, cut: Option<&str>) -> Vec<NameLink> {
    let Some(value) = config.get(field).and_then(Value::as_str) else {
        return vec![];
    };
    let value = value.trim_end_matches('/');
    // `projects/p/branches/b/roles/r` → the branch part, for kinds that
    // name a grandchild.
    let name = match cut.and_then(|seg| value.find(&format!("/{seg}/"))) {
        Some(i) => &value[..i],
        None => value,
    };
    if name.is_empty() {
        return vec![];
    }
    vec![NameLink {
        field: field.to_string(),
        target_kind,
        name: name.to_string(),
    }]
}

// ---------------------------------------------------------------------------
// Validation shared by the kinds.

/// Why `id` breaks the server's rule for a branch/endpoint/project id
/// (1–63 chars, lowercase letter first, then lowercase letters, digits, hyphens).
pub fn id_problem(id: &str, min: usize) -> Option<String> {
    let n = id.chars().count();
    if n < min || n > 63 {
        return Some(format!("must be {min}-63 characters (is {n})"));
    }
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("must start with a lowercase letter".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some("may contain only lowercase letters, digits and hyphens".into());
    }
    None
}

/// Database ids also must not end in a hyphen (`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`).
pub fn database_id_problem(id: &str) -> Option<String> {
    id_problem(id, 1).or_else(|| {
        id.ends_with('-')
            .then(|| "must end with a lowercase letter or digit".to_string())
    })
}

/// Check a literal id field with `rule`.
pub fn check_id(
    addr: &str,
    node: &Node,
    field: &str,
    rule: impl Fn(&str) -> Option<String>,
    what: &str,
    diags: &mut Diagnostics,
) {
    let Some(n) = node.get(field) else { return };
    let Some(id) = n.as_str().filter(|s| !has_interpolation(s)) else {
        return;
    };
    if let Some(problem) = rule(id) {
        diags.push(
            Diag::error(format!("{addr}.{field} `{id}` is not a valid {what}: it {problem}"))
                .at(n.span, problem)
                .help(format!("{what}s are lowercase letters, digits and hyphens, starting with a letter, e.g. `my-{}`", field.trim_end_matches("_id"))),
        );
    }
}

/// A literal `parent` must have the expected shape (`projects/{p}` or
/// `projects/{p}/branches/{b}`).
pub fn check_parent(addr: &str, node: &Node, depth: usize, diags: &mut Diagnostics) {
    let Some(n) = node.get("parent") else { return };
    let Some(p) = n.as_str().filter(|s| !has_interpolation(s)) else {
        return;
    };
    let segs: Vec<&str> = p.split('/').collect();
    let shape_ok = segs.len() == depth * 2
        && segs[0] == "projects"
        && (depth < 2 || segs[2] == "branches")
        && segs.iter().all(|s| !s.is_empty());
    if !shape_ok {
        let want = if depth == 1 {
            "projects/{project_id}"
        } else {
            "projects/{project_id}/branches/{branch_id}"
        };
        diags.push(
            Diag::error(format!("{addr}.parent `{p}` is not of the form `{want}`"))
                .at(n.span, "not a resource path")
                .help(if depth == 1 {
                    "write `${resources.postgres_projects.<key>.id}` or `projects/<project_id>`".to_string()
                } else {
                    "write `${resources.postgres_branches.<key>.id}`, or `${resources.postgres_projects.<key>.id}/branches/production` for the default branch".to_string()
                }),
        );
    }
}

/// Numeric value of a literal node.
pub fn number(node: &Node) -> Option<f64> {
    use crate::config::source::NodeKind;
    match &node.kind {
        NodeKind::Int(i) => Some(*i as f64),
        NodeKind::Float(f) => Some(*f),
        NodeKind::String(s, _) if !has_interpolation(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Seconds of a literal duration like `"300s"` (the API's only form).
pub fn duration_secs(s: &str) -> Option<f64> {
    s.trim().strip_suffix('s')?.trim().parse::<f64>().ok()
}

/// Compute limits in `map` (an endpoint or `default_endpoint_settings`):
/// min ≥ 0.5, max ≤ 64, max ≥ min, max − min ≤ 16; suspend timeout 60s–604800s
/// and exclusive with `no_suspension: true`.
pub fn check_compute(addr: &str, map: &Node, diags: &mut Diagnostics) {
    let min = map
        .get("autoscaling_limit_min_cu")
        .and_then(|n| Some((n, number(n)?)));
    let max = map
        .get("autoscaling_limit_max_cu")
        .and_then(|n| Some((n, number(n)?)));
    if let Some((n, v)) = min {
        if v < 0.5 {
            diags.push(
                Diag::error(format!(
                    "{addr}.autoscaling_limit_min_cu is {v}; the minimum is 0.5 CU"
                ))
                .at(n.span, "below 0.5")
                .help("set autoscaling_limit_min_cu to 0.5 or more"),
            );
        }
    }
    if let Some((n, v)) = max {
        if v > 64.0 {
            diags.push(
                Diag::error(format!(
                    "{addr}.autoscaling_limit_max_cu is {v}; the maximum is 64 CU"
                ))
                .at(n.span, "above 64")
                .help("set autoscaling_limit_max_cu to 64 or less"),
            );
        }
    }
    if let (Some((_, lo)), Some((n, hi))) = (min, max) {
        if hi < lo {
            diags.push(
                Diag::error(format!(
                    "{addr}.autoscaling_limit_max_cu ({hi}) is below autoscaling_limit_min_cu ({lo})"
                ))
                .at(n.span, "below the minimum")
                .help("the maximum must be at least the minimum"),
            );
        } else if hi - lo > 16.0 {
            diags.push(
                Diag::error(format!(
                    "{addr}: autoscaling_limit_max_cu ({hi}) − autoscaling_limit_min_cu ({lo}) is {}; the range may span at most 16 CU",
                    hi - lo
                ))
                .at(n.span, "more than 16 CU above the minimum")
                .help(format!("raise the minimum to at least {} or lower the maximum to at most {}", hi - 16.0, lo + 16.0)),
            );
        }
    }
    if let Some(n) = map.get("suspend_timeout_duration") {
        if let Some(s) = n.as_str().filter(|s| !has_interpolation(s)) {
            match duration_secs(s) {
                None => diags.push(
                    Diag::error(format!(
                        "{addr}.suspend_timeout_duration `{s}` is not a duration"
                    ))
                    .at(n.span, "expected seconds, like \"300s\"")
                    .help("write durations as a number of seconds with an `s` suffix, e.g. \"300s\""),
                ),
                Some(v) if !(60.0..=604800.0).contains(&v) => diags.push(
                    Diag::error(format!(
                        "{addr}.suspend_timeout_duration `{s}` is outside 60s–604800s"
                    ))
                    .at(n.span, "out of range")
                    .help("suspend after between 60s (1 minute) and 604800s (1 week), or set `no_suspension: true` to never suspend"),
                ),
                Some(_) => {}
            }
        }
    }
    exclusive(
        addr,
        map,
        &["suspend_timeout_duration", "no_suspension"],
        diags,
    );
    must_be_true(
        addr,
        map,
        "no_suspension",
        "omit it and set `suspend_timeout_duration` to suspend when idle",
        diags,
    );
}

/// At most one of `fields` may be set.
pub fn exclusive(addr: &str, map: &Node, fields: &[&str], diags: &mut Diagnostics) {
    let set: Vec<(&str, &Node)> = fields
        .iter()
        .filter_map(|f| map.get(f).map(|n| (*f, n)))
        .filter(|(_, n)| !matches!(n.kind, crate::config::source::NodeKind::Null))
        .collect();
    if set.len() > 1 {
        let names: Vec<String> = set.iter().map(|(f, _)| format!("`{f}`")).collect();
        let mut d = Diag::error(format!(
            "{addr} sets {}; they are mutually exclusive",
            names.join(" and ")
        ));
        for (f, n) in &set[1..] {
            d = d.at(n.span, format!("{f} conflicts with {}", set[0].0));
        }
        diags.push(d.help(format!("keep only one of {}", fields.join(", "))));
    }
}

/// `field`, when given, must be `true` (`false` is rejected by the API).
pub fn must_be_true(addr: &str, map: &Node, field: &str, help: &str, diags: &mut Diagnostics) {
    if let Some(n) = map.get(field) {
        if matches!(n.kind, crate::config::source::NodeKind::Bool(false)) {
            diags.push(
                Diag::error(format!(
                    "{addr}.{field} is false; the API accepts only `true`"
                ))
                .at(n.span, "must be true when given")
                .help(help.to_string()),
            );
        }
    }
}

/// A literal duration field must look like `"<seconds>s"` and lie in `range`.
pub fn check_duration(
    addr: &str,
    node: &Node,
    field: &str,
    range: Option<(f64, f64)>,
    diags: &mut Diagnostics,
) {
    let Some(n) = node.get(field) else { return };
    let Some(s) = n.as_str().filter(|s| !has_interpolation(s)) else {
        return;
    };
    match (duration_secs(s), range) {
        (None, _) => diags.push(
            Diag::error(format!("{addr}.{field} `{s}` is not a duration"))
                .at(n.span, "expected seconds, like \"604800s\"")
                .help("write durations as a number of seconds with an `s` suffix"),
        ),
        (Some(v), Some((lo, hi))) if !(lo..=hi).contains(&v) => diags.push(
            Diag::error(format!("{addr}.{field} `{s}` is outside {lo}s–{hi}s"))
                .at(n.span, "out of range")
                .help(format!("choose a value between {lo}s and {hi}s")),
        ),
        _ => {}
    }
}

/// A literal timestamp field must be RFC 3339.
pub fn check_timestamp(addr: &str, node: &Node, field: &str, diags: &mut Diagnostics) {
    let Some(n) = node.get(field) else { return };
    let Some(s) = n.as_str().filter(|s| !has_interpolation(s)) else {
        return;
    };
    if chrono::DateTime::parse_from_rfc3339(s).is_err() {
        diags.push(
            Diag::error(format!("{addr}.{field} `{s}` is not an RFC 3339 timestamp"))
                .at(n.span, "not a timestamp")
                .help("write it like \"2026-01-15T10:00:00Z\""),
        );
    }
}

/// Update mask entries (`spec.<field>`) for the changed top-level fields the
/// kind can update, skipping fields absent from the body (the API rejects a
/// mask path without a value).
pub fn spec_mask(changed: &[String], updatable: &[&str], body: &Value) -> Vec<String> {
    updatable
        .iter()
        .filter(|f| changed.iter().any(|c| c == *f))
        .filter(|f| common::get_path(body, &format!("spec.{f}")).is_some())
        .map(|f| format!("spec.{f}"))
        .collect()
}

/// Whether a config field is literally `true`.
pub fn flag(config: &Value, field: &str) -> bool {
    config.get(field).and_then(Value::as_bool) == Some(true)
}

/// Error for kinds without an update API.
pub fn no_update(id: &str, what: &str) -> ApiError {
    super::database_catalog::no_update(&path_for(id), what)
}

/// Build a not-ready error (for waits that cannot succeed).
pub fn failed(name: &str, why: String) -> ApiError {
    not_ready(&path_for(name), why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_postgres_kind_describes_itself() {
        use crate::resources::{Kind, UpdateStyle};
        for kind in [
            Kind::PostgresProjects,
            Kind::PostgresBranches,
            Kind::PostgresEndpoints,
            Kind::PostgresDatabases,
            Kind::PostgresRoles,
            Kind::PostgresCatalogs,
            Kind::PostgresSyncedTables,
        ] {
            let info = kind.info();
            assert!(info.noun.starts_with("postgres "), "{kind}");
            assert!(
                !info.wait_text.is_empty() && !info.ui_path.is_empty(),
                "{kind}"
            );
        }
        assert_eq!(Kind::PostgresCatalogs.info().update, UpdateStyle::Replace);
        assert_eq!(
            Kind::PostgresRoles.info().update,
            UpdateStyle::PatchWithMask
        );
        let url =
            |kind: Kind, id: &str| crate::resources::kind_impl(kind).ui_url("https://h/", id, None);
        assert_eq!(
            url(Kind::PostgresDatabases, "projects/p/branches/b/databases/d"),
            "https://h/lakebase/projects/p/branches/b"
        );
        assert_eq!(
            url(Kind::PostgresCatalogs, "catalogs/c"),
            "https://h/explore/data/c"
        );
        assert_eq!(
            url(Kind::PostgresProjects, "projects/p"),
            "https://h/lakebase/projects/p"
        );
    }

    #[test]
    fn ids_follow_the_server_rules() {
        assert_eq!(id_problem("my-app", 1), None);
        assert!(id_problem("My-app", 1)
            .unwrap()
            .contains("lowercase letter"));
        assert!(id_problem("1app", 1).unwrap().contains("start"));
        assert!(id_problem("my_app", 1).unwrap().contains("hyphens"));
        assert!(id_problem(&"a".repeat(64), 1).unwrap().contains("1-63"));
        assert!(id_problem("abc", 4).unwrap().contains("4-63"));
        assert_eq!(database_id_problem("app-db"), None);
        assert!(database_id_problem("app-").is_some());
    }

    #[test]
    fn parent_is_cut_from_a_name() {
        assert_eq!(
            parent_of("projects/p/branches/b/endpoints/e", "endpoints"),
            Some("projects/p/branches/b".into())
        );
        assert_eq!(
            parent_of("projects/p/branches/b", "branches"),
            Some("projects/p".into())
        );
        assert_eq!(parent_of("projects/p", "branches"), None);
    }

    #[test]
    fn masks_name_only_changed_fields_with_values() {
        let body = json!({"spec": {"display_name": "x", "pg_version": 16}});
        let changed = vec!["display_name".to_string(), "custom_tags".to_string()];
        assert_eq!(
            spec_mask(&changed, &["display_name", "custom_tags"], &body),
            vec!["spec.display_name".to_string()]
        );
    }

    #[test]
    fn managed_by_parent_is_recognised() {
        let e = ApiError::BadRequest {
            method: "DELETE".into(),
            path: "/x".into(),
            error_code: "BAD_REQUEST".into(),
            message: "Cannot delete root branch 'projects/p/branches/production'".into(),
        };
        assert!(is_managed_by_parent(&e));
        let other = ApiError::BadRequest {
            method: "DELETE".into(),
            path: "/x".into(),
            error_code: "BAD_REQUEST".into(),
            message: "Cannot delete protected branch".into(),
        };
        assert!(!is_managed_by_parent(&other));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(duration_secs("300s"), Some(300.0));
        assert_eq!(duration_secs("1.5s"), Some(1.5));
        assert_eq!(duration_secs("5m"), None);
    }
}
