//! `postgres_endpoints`: compute serving a branch (§1.7) — the read-write
//! `primary` the server makes with each branch, or read-only replicas —
//! with autoscaling limits and scale to zero.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{check_compute, check_id, check_parent, id_problem, Desc};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::resources::common::{self, schema_enum, schema_struct, Lifecycle};
use crate::resources::{Connection, Created, FieldRules, Kind, KindInfo, NameLink, ResourceKind};

schema_enum! {
    /// Endpoint type: the branch's one read-write endpoint, or a read-only replica.
    PgEndpointType { ENDPOINT_TYPE_READ_WRITE, ENDPOINT_TYPE_READ_ONLY }
}

schema_struct! {
    /// High-availability group of computes behind the endpoint.
    #[schemars(extend("required" = ["min", "max"]))]
    pub struct PgEndpointGroup {
        /// Minimum computes (at least 1; currently equal to `max`).
        min: i64,
        /// Maximum computes (currently equal to `min`).
        max: i64,
        /// Let read-only connections use the secondaries of a read-write endpoint.
        enable_readable_secondaries: bool,
    }
}

schema_struct! {
    /// Settings of the endpoint's PostgreSQL.
    pub struct PgEndpointSettings {
        /// Raw PostgreSQL settings.
        pg_settings: std::collections::BTreeMap<String, String>,
    }
}

schema_struct! {
    /// A compute endpoint of a Lakebase Autoscaling branch.
    #[schemars(extend("required" = ["parent", "endpoint_id", "endpoint_type"]))]
    pub struct PostgresEndpoint {
        /// The branch, `projects/{p}/branches/{b}`. Changing it replaces the endpoint.
        parent: String,
        /// Endpoint id (1-63 characters: lowercase letters, digits, hyphens; a letter first). `primary` adopts the branch's own read-write endpoint. Changing it replaces the endpoint.
        endpoint_id: String,
        /// ENDPOINT_TYPE_READ_WRITE (one per branch) or ENDPOINT_TYPE_READ_ONLY. Changing it replaces the endpoint.
        endpoint_type: PgEndpointType,
        /// Minimum compute units (at least 0.5).
        autoscaling_limit_min_cu: f64,
        /// Maximum compute units (at most 64, and at most 16 above the minimum).
        autoscaling_limit_max_cu: f64,
        /// Idle time before the endpoint suspends (scale to zero), e.g. "300s" (60s-604800s). Excludes `no_suspension`.
        suspend_timeout_duration: String,
        /// `true`: never suspend. Excludes `suspend_timeout_duration`.
        no_suspension: bool,
        /// Suspend now and refuse connections until re-enabled.
        disabled: bool,
        /// High-availability settings.
        group: PgEndpointGroup,
        /// PostgreSQL settings.
        settings: PgEndpointSettings,
        /// Take over an existing endpoint with this id instead of failing. Read on create only.
        replace_existing: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &[
    "endpoint_type",
    "autoscaling_limit_min_cu",
    "autoscaling_limit_max_cu",
    "suspend_timeout_duration",
    "no_suspension",
    "disabled",
    "group",
    "settings",
];

const UPDATABLE: &[&str] = &[
    "autoscaling_limit_min_cu",
    "autoscaling_limit_max_cu",
    "suspend_timeout_duration",
    "no_suspension",
    "disabled",
    "group",
    "settings",
];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresEndpoints,
    id_field: "endpoint_id",
    segment: "endpoints",
    has_parent: true,
    spec_fields: SPEC,
    noun: "postgres endpoint",
    replaceable: true,
};

static RULES: FieldRules = FieldRules {
    immutable: &["parent", "endpoint_id", "endpoint_type"],
    replace_on_any_change: false,
    input_only: &[
        ("endpoint_type", ""),
        ("autoscaling_limit_min_cu", ""),
        ("autoscaling_limit_max_cu", ""),
        ("suspend_timeout_duration", ""),
        ("no_suspension", ""),
        ("disabled", ""),
        ("group", ""),
        ("settings", ""),
    ],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["lifecycle", "replace_existing"],
};

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "create_time",
    "update_time",
    "status",
    "host",
    "hosts",
    "current_state",
];

/// The host clients connect to (`status.hosts.host`).
pub fn host_of(remote: &Value) -> Option<&str> {
    common::get_path(remote, "status.hosts.host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
}

static INFO: KindInfo = KindInfo {
    noun: "postgres endpoint",
    plural: "postgres endpoints",
    title: "Postgres endpoints",
    state_fields: &["status.current_state"],
    ready_states: &["ACTIVE", "IDLE"],
    wait_text: "endpoint to become ACTIVE or IDLE",
    // Shown on its branch's page.
    ui_path: "/lakebase/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresEndpointKind;

#[async_trait]
impl ResourceKind for PostgresEndpointKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    /// The page of the branch the endpoint serves.
    fn ui_url(&self, host: &str, id: &str, _remote: Option<&Value>) -> String {
        let branch = id.split("/endpoints/").next().unwrap_or(id);
        format!("{}/lakebase/{branch}", host.trim_end_matches('/'))
    }
    fn kind(&self) -> Kind {
        Kind::PostgresEndpoints
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresEndpoint>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresEndpoint>(self.kind(), key, node, diags);
        check_id(
            &addr,
            node,
            "endpoint_id",
            |id| id_problem(id, 1),
            "endpoint id",
            diags,
        );
        check_parent(&addr, node, 2, diags);
        check_compute(&addr, node, diags);
        if let Some(group) = node.get("group") {
            let min = group.get("min").and_then(super::number);
            let max = group.get("max").and_then(super::number);
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo < 1.0 || (hi - lo).abs() > f64::EPSILON {
                    diags.push(
                        Diag::error(format!(
                            "{addr}.group has min {lo} and max {hi}; both must be equal and at least 1"
                        ))
                        .at(group.span, "unequal or below 1")
                        .help("set `min` and `max` to the same number of computes (1 disables high availability)"),
                    );
                }
            }
        }
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        super::link(config, "parent", Kind::PostgresBranches, None)
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        DESC.name_from_config(config)
    }
    fn link_names(&self, config: &Value) -> Vec<String> {
        DESC.name_as_written(config).into_iter().collect()
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        // Every branch comes with its `primary` read-write endpoint: adopt it.
        let adopt = super::flag(config, "replace_existing")
            || common::literal_str(config, "endpoint_id") == Some("primary");
        DESC.create(client, config, adopt).await
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        super::read(client, id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let body = DESC.spec_body(config);
        let mask = super::spec_mask(changed, UPDATABLE, &body);
        DESC.update(client, id, &body, &mask).await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        super::delete(client, id, &[]).await
    }
    /// Ready when nothing is pending and the endpoint is ACTIVE or IDLE
    /// (suspended; a connection wakes it).
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        super::poll_ready(client, id, timeout, |r| {
            super::by_state(r, &["ACTIVE", "IDLE"], "endpoint")
        })
        .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        DESC.find(client, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(DESC.remote_yaml(remote))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        let mut out = super::outputs(id, remote, &["hosts", "current_state"]);
        if let (Some(host), Value::Object(m)) = (host_of(remote), &mut out) {
            m.insert("host".into(), Value::String(host.to_string()));
        }
        out
    }
    fn connectable(&self) -> bool {
        true
    }
    fn is_remote_name(&self, name: &str) -> bool {
        let segs: Vec<&str> = name.split('/').collect();
        segs.len() == 6
            && segs[0] == "projects"
            && segs[2] == "branches"
            && segs[4] == "endpoints"
            && segs.iter().all(|s| !s.is_empty())
    }
    /// The endpoint's host (it must be ACTIVE, or IDLE: a connection wakes
    /// it) and a token from `POST /api/2.0/postgres/credentials`.
    async fn connect(&self, client: &Client, id: &str) -> Result<Connection, ApiError> {
        let path = super::path_for(id);
        let remote = client.call(Method::GET, &path, &[], None).await?;
        let state = common::state_at(&remote, "status.current_state");
        let pending = common::state_at(&remote, "status.pending_state");
        if !matches!(state, "ACTIVE" | "IDLE") || !pending.is_empty() {
            let now = if pending.is_empty() {
                state.to_string()
            } else {
                format!("{state} (becoming {pending})")
            };
            return Err(super::failed(
                id,
                format!("endpoint {id} is {now}; it must be ACTIVE or IDLE to connect"),
            ));
        }
        let Some(host) = host_of(&remote) else {
            return Err(ApiError::invalid_response(
                "GET",
                &path,
                format!("endpoint {id} reports no status.hosts.host"),
            ));
        };
        let cred = client
            .call(
                Method::POST,
                &format!("{}/credentials", super::API),
                &[],
                Some(&serde_json::json!({ "endpoint": id })),
            )
            .await?;
        let Some(token) = cred.get("token").and_then(Value::as_str) else {
            return Err(ApiError::invalid_response(
                "POST",
                &format!("{}/credentials", super::API),
                "the credential response has no token",
            ));
        };
        Ok(Connection {
            host: host.to_string(),
            token: token.to_string(),
            expire_time: common::state_at(&cred, "expire_time").to_string(),
        })
    }
    fn connect_host(&self, remote: &Value) -> Option<String> {
        host_of(remote).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::{parse_file, FileId};
    use serde_json::json;

    fn check(yaml: &str) -> String {
        let (node, _) = parse_file(FileId(0), yaml);
        let mut d = Diagnostics::default();
        PostgresEndpointKind.check("e", &node, &mut d);
        d.items
            .iter()
            .map(|i| i.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn cu_limits_and_types_are_checked() {
        assert_eq!(
            check("parent: projects/p/branches/b\nendpoint_id: ro\nendpoint_type: ENDPOINT_TYPE_READ_ONLY\nautoscaling_limit_min_cu: 0.5\nautoscaling_limit_max_cu: 2\nsuspend_timeout_duration: 300s\n"),
            ""
        );
        let all = check("parent: projects/p\nendpoint_id: ro\nendpoint_type: READ_ONLY\nautoscaling_limit_min_cu: 4\nautoscaling_limit_max_cu: 2\nsuspend_timeout_duration: 10s\ngroup:\n  min: 1\n  max: 2\n");
        assert!(all.contains("endpoint_type"), "{all}");
        assert!(all.contains("is below autoscaling_limit_min_cu"), "{all}");
        assert!(all.contains("outside 60s–604800s"), "{all}");
        assert!(
            all.contains("projects/{project_id}/branches/{branch_id}"),
            "{all}"
        );
        assert!(all.contains("group has min 1 and max 2"), "{all}");
    }

    #[test]
    fn status_maps_back_and_hosts_are_outputs() {
        let remote = json!({"name": "projects/p/branches/b/endpoints/ro", "parent": "projects/p/branches/b",
            "status": {"endpoint_id": "ro", "endpoint_type": "ENDPOINT_TYPE_READ_ONLY", "current_state": "ACTIVE",
                "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 2.0, "suspend_timeout_duration": "300s",
                "disabled": false, "hosts": {"host": "ep-1.local", "read_only_host": "ep-1.local"}}});
        assert_eq!(
            PostgresEndpointKind.remote_to_config(&remote),
            json!({"endpoint_id": "ro", "parent": "projects/p/branches/b", "endpoint_type": "ENDPOINT_TYPE_READ_ONLY",
                "autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 2.0, "suspend_timeout_duration": "300s",
                "disabled": false})
        );
        let out = PostgresEndpointKind.outputs("projects/p/branches/b/endpoints/ro", &remote);
        assert_eq!(out["host"], "ep-1.local");
        assert_eq!(out["status"]["hosts"]["host"], "ep-1.local");
        // The summary's state field for the kind reads the live state.
        assert_eq!(common::state_at(&remote, INFO.state_fields[0]), "ACTIVE");
    }

    #[test]
    fn only_changed_updatable_fields_are_masked() {
        let body = DESC.spec_body(&json!({"endpoint_type": "ENDPOINT_TYPE_READ_ONLY", "autoscaling_limit_max_cu": 4, "no_suspension": true}));
        assert_eq!(
            super::super::spec_mask(
                &[
                    "autoscaling_limit_max_cu".into(),
                    "suspend_timeout_duration".into(),
                    "no_suspension".into()
                ],
                UPDATABLE,
                &body
            ),
            vec![
                "spec.autoscaling_limit_max_cu".to_string(),
                "spec.no_suspension".to_string()
            ]
        );
    }
}
