//! `postgres_branches`: a copy-on-write branch of a project (§1.6), made from
//! a source branch now, at a point in time or at an LSN. Each new branch gets
//! its own `primary` read-write endpoint from the server.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{check_duration, check_id, check_parent, check_timestamp, exclusive, id_problem, Desc};
use crate::api::{ApiError, Client};
use crate::config::source::Node;
use crate::diag::Diagnostics;
use crate::resources::common::{self, schema_struct, Lifecycle};
use crate::resources::{Created, FieldRules, Kind, KindInfo, NameLink, ResourceKind};

schema_struct! {
    /// A branch of a Lakebase Autoscaling project: its own copy-on-write PostgreSQL data, with a `primary` endpoint.
    #[schemars(extend("required" = ["parent", "branch_id"]))]
    pub struct PostgresBranch {
        /// The project, `projects/{project_id}` (e.g. `${resources.postgres_projects.my_project.id}`). Changing it replaces the branch.
        parent: String,
        /// Branch id (1-63 characters: lowercase letters, digits, hyphens; a letter first). Changing it replaces the branch.
        branch_id: String,
        /// Branch to copy from, `projects/{p}/branches/{b}` (default: the project's default branch). Changing it replaces the branch.
        source_branch: String,
        /// Copy the source as of this WAL position, e.g. "0/1A2B3C8". Changing it replaces the branch.
        source_branch_lsn: String,
        /// Copy the source as of this time (RFC 3339), within the project's history window. Changing it replaces the branch.
        source_branch_time: String,
        /// Protect the branch (and its endpoints and project) from deletion and reset.
        is_protected: bool,
        /// Expire this long after creation, e.g. "86400s". Excludes `expire_time` and `no_expiry`.
        ttl: String,
        /// Expire at this time (RFC 3339). Excludes `ttl` and `no_expiry`.
        expire_time: String,
        /// `true`: never expire. Excludes `ttl` and `expire_time`.
        no_expiry: bool,
        /// Take over an existing branch with this id (e.g. `production`, made with the project) instead of failing. Read on create only.
        replace_existing: bool,
        /// Delete for good on destroy (`?purge=true`); otherwise the branch is soft-deleted and restorable.
        purge_on_delete: bool,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const SPEC: &[&str] = &[
    "source_branch",
    "source_branch_lsn",
    "source_branch_time",
    "is_protected",
    "ttl",
    "expire_time",
    "no_expiry",
];

pub static DESC: Desc = Desc {
    kind: Kind::PostgresBranches,
    id_field: "branch_id",
    segment: "branches",
    has_parent: true,
    spec_fields: SPEC,
    noun: "postgres branch",
    replaceable: true,
};

static RULES: FieldRules = FieldRules {
    immutable: &[
        "parent",
        "branch_id",
        "source_branch",
        "source_branch_lsn",
        "source_branch_time",
    ],
    replace_on_any_change: false,
    input_only: &[
        // The status reports the effective source (default branch, LSN and time
        // filled in, times reformatted): compare with what was applied.
        ("source_branch", ""),
        ("source_branch_lsn", ""),
        ("source_branch_time", ""),
        ("is_protected", ""),
        ("ttl", ""),
        ("expire_time", ""),
        ("no_expiry", ""),
    ],
    output_only: &["uid", "status", "create_time", "update_time", "name"],
    bundle_only: &["lifecycle", "purge_on_delete", "replace_existing"],
};

const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "uid",
    "create_time",
    "update_time",
    "status",
    "current_state",
    "default",
    "source_branch",
    "source_branch_lsn",
    "source_branch_time",
    "logical_size_bytes",
];

/// Fields whose change is an update, and the mask path each goes by.
fn mask_for(changed: &[String], body: &Value) -> Vec<String> {
    let mut mask = super::spec_mask(changed, &["is_protected"], body);
    let expiry = ["ttl", "expire_time", "no_expiry"];
    let expiry_changed = changed.iter().any(|c| expiry.contains(&c.as_str()));
    let expiry_given = expiry
        .iter()
        .any(|f| common::get_path(body, &format!("spec.{f}")).is_some());
    if expiry_changed && expiry_given {
        // The three are one oneof; the API names it `spec.expiration`.
        mask.push("spec.expiration".into());
    }
    mask
}

static INFO: KindInfo = KindInfo {
    noun: "postgres branch",
    plural: "postgres branches",
    title: "Postgres branches",
    state_fields: &["status.current_state"],
    ready_states: &["READY", "ARCHIVED"],
    wait_text: "branch to become READY",
    ui_path: "/lakebase/{id}",
    ..KindInfo::GENERIC
};

pub struct PostgresBranchKind;

#[async_trait]
impl ResourceKind for PostgresBranchKind {
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn kind(&self) -> Kind {
        Kind::PostgresBranches
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<PostgresBranch>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<PostgresBranch>(self.kind(), key, node, diags);
        check_id(
            &addr,
            node,
            "branch_id",
            |id| id_problem(id, 1),
            "branch id",
            diags,
        );
        check_parent(&addr, node, 1, diags);
        exclusive(&addr, node, &["ttl", "expire_time", "no_expiry"], diags);
        exclusive(
            &addr,
            node,
            &["source_branch_lsn", "source_branch_time"],
            diags,
        );
        super::must_be_true(
            &addr,
            node,
            "no_expiry",
            "omit `no_expiry` and set `ttl` or `expire_time` to let the branch expire",
            diags,
        );
        check_duration(&addr, node, "ttl", None, diags);
        check_timestamp(&addr, node, "expire_time", diags);
        check_timestamp(&addr, node, "source_branch_time", diags);
    }
    fn name_links(&self, config: &Value) -> Vec<NameLink> {
        let mut links = super::link(config, "parent", Kind::PostgresProjects, None);
        links.extend(super::link(
            config,
            "source_branch",
            Kind::PostgresBranches,
            None,
        ));
        links
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        DESC.name_from_config(config)
    }
    fn link_names(&self, config: &Value) -> Vec<String> {
        DESC.name_as_written(config).into_iter().collect()
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        // The project's root branch exists from the start: adopt it.
        let adopt = super::flag(config, "replace_existing")
            || common::literal_str(config, "branch_id") == Some("production");
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
        DESC.update(client, id, &body, &mask_for(changed, &body))
            .await?;
        Ok(id.to_string())
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        super::delete(client, id, &[]).await
    }
    async fn delete_applied(
        &self,
        client: &Client,
        id: &str,
        applied: &Value,
    ) -> Result<(), ApiError> {
        let query: Vec<(&str, String)> = if super::flag(applied, "purge_on_delete") {
            vec![("purge", "true".into())]
        } else {
            vec![]
        };
        super::delete(client, id, &query).await
    }
    /// Ready when `current_state` is READY and nothing is pending.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ApiError> {
        super::poll_ready(client, id, timeout, |r| {
            super::by_state(r, &["READY", "ARCHIVED"], "branch")
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
        let mut out = DESC.remote_yaml(remote);
        // Expiry is a oneof the status reports only as an absolute time.
        for f in ["ttl", "no_expiry", "expire_time"] {
            out.remove(f);
        }
        for f in ["source_branch", "source_branch_lsn", "source_branch_time"] {
            out.remove(f);
        }
        Value::Object(out)
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        super::outputs(
            id,
            remote,
            &[
                "current_state",
                "default",
                "source_branch",
                "source_branch_lsn",
                "source_branch_time",
                "logical_size_bytes",
            ],
        )
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
        PostgresBranchKind.check("b", &node, &mut d);
        d.items
            .iter()
            .map(|i| i.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn expiry_fields_are_exclusive_and_no_expiry_must_be_true() {
        assert_eq!(
            check("parent: projects/p\nbranch_id: dev\nno_expiry: true\n"),
            ""
        );
        let all = check("parent: projects/p\nbranch_id: dev\nttl: 3600s\nno_expiry: false\n");
        assert!(
            all.contains("`ttl` and `no_expiry`; they are mutually exclusive"),
            "{all}"
        );
        assert!(all.contains("no_expiry is false"), "{all}");
        let all = check("parent: projects/p/branches/x\nbranch_id: Dev\nexpire_time: tomorrow\n");
        assert!(
            all.contains("is not of the form `projects/{project_id}`"),
            "{all}"
        );
        assert!(all.contains("branch_id `Dev`"), "{all}");
        assert!(all.contains("not an RFC 3339 timestamp"), "{all}");
    }

    #[test]
    fn status_maps_back_and_links_to_the_project() {
        let remote = json!({"name": "projects/p/branches/dev", "parent": "projects/p", "uid": "br-1",
            "status": {"branch_id": "dev", "current_state": "READY", "is_protected": true, "default": false,
                "source_branch": "projects/p/branches/production", "source_branch_lsn": "0/16B3748"}});
        assert_eq!(
            PostgresBranchKind.remote_to_config(&remote),
            json!({"branch_id": "dev", "parent": "projects/p", "is_protected": true})
        );
        let cfg = json!({"parent": "${resources.postgres_projects.p.id}", "branch_id": "dev"});
        assert_eq!(
            PostgresBranchKind.name_links(&cfg)[0].name,
            "${resources.postgres_projects.p.id}"
        );
        assert_eq!(
            PostgresBranchKind.link_names(&cfg),
            vec!["${resources.postgres_projects.p.id}/branches/dev".to_string()]
        );
        assert_eq!(
            PostgresBranchKind.id_from_config(&json!({"parent": "projects/p", "branch_id": "dev"})),
            Some("projects/p/branches/dev".into())
        );
    }

    #[test]
    fn expiry_goes_by_the_oneof_mask() {
        let body = DESC.spec_body(&json!({"ttl": "3600s", "is_protected": true}));
        assert_eq!(
            mask_for(&["no_expiry".into(), "ttl".into()], &body),
            vec!["spec.expiration".to_string()]
        );
        assert_eq!(
            mask_for(&["is_protected".into()], &body),
            vec!["spec.is_protected".to_string()]
        );
    }
}
