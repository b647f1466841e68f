//! `secret_scopes`: secret scopes (contract part 2 §5), identified by name.
//! There is no get call (read = list the scopes and pick this one) and no
//! update: every field is immutable. The bundle `permissions` become secret
//! ACLs, as the CLI's direct engine applies them: one ACL per principal at its
//! highest level, plus MANAGE for the deploying identity (a scope's creator
//! always holds it); applied one call at a time. The bundle-wide
//! `permissions:` reach a scope through the loader (`CAN_MANAGE` → MANAGE,
//! `CAN_VIEW` → READ, see [`SecretScopeKind::permission_levels`]). A read
//! also lists the ACLs, so an ACL changed outside lakebundle plans an update
//! that puts them back.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::common::{self, literal_str, ok_if_missing, schema_enum, schema_struct, Lifecycle};
use super::database_catalog::no_update;
use super::{
    Created, ExtraChanges, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};
use crate::plan::FieldChange;

schema_enum! {
    /// Where the scope keeps its secrets.
    ScopeBackendType { DATABRICKS, AZURE_KEYVAULT }
}
schema_enum! {
    /// Secret ACL levels.
    SecretScopePermissionLevel { READ, WRITE, MANAGE }
}

schema_struct! {
    /// The Azure Key Vault behind an `AZURE_KEYVAULT` scope.
    #[schemars(extend("required" = ["resource_id", "dns_name"]))]
    pub struct KeyvaultMetadata {
        /// Azure resource id of the key vault.
        resource_id: String,
        /// DNS name of the key vault.
        dns_name: String,
    }
}
schema_struct! {
    /// One ACL on the scope.
    #[schemars(extend("required" = ["level"]))]
    pub struct SecretScopePermission {
        /// READ, WRITE or MANAGE.
        level: SecretScopePermissionLevel,
        /// The user (email) receiving the level. Set exactly one principal.
        user_name: String,
        /// The workspace group receiving the level.
        group_name: String,
        /// The service principal (application id) receiving the level.
        service_principal_name: String,
    }
}
schema_struct! {
    /// A secret scope. Changing any field replaces the scope (its secrets are lost).
    #[schemars(extend("required" = ["name"]))]
    pub struct SecretScope {
        /// Scope name: letters, digits, `-`, `_` and `.`, at most 128 characters.
        #[schemars(length(max = 128), regex(pattern = r"^([A-Za-z0-9._-]|\$\{[^}]+\})+$"))]
        name: String,
        /// Backend: `DATABRICKS` (default) or `AZURE_KEYVAULT`.
        backend_type: ScopeBackendType,
        /// The key vault of an `AZURE_KEYVAULT` scope.
        keyvault_metadata: KeyvaultMetadata,
        /// ACLs on the scope (applied as secret ACLs).
        permissions: Vec<SecretScopePermission>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.0/secrets";
const OUTPUT_FIELDS: &[&str] = &["id", "name", "backend_type"];
const LEVELS: [&str; 3] = ["READ", "WRITE", "MANAGE"];

static RULES: FieldRules = FieldRules {
    immutable: &["name", "backend_type", "keyvault_metadata"],
    replace_on_any_change: true,
    input_only: &[],
    output_only: &[],
    bundle_only: crate::resources::common::ENGINE_FIELDS,
};

static INFO: KindInfo = KindInfo {
    noun: "secret scope",
    plural: "secret scopes",
    title: "Secret scopes",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::Replace,
    state_fields: &[],
    ready_states: &[],
    wait_text: "secret scope",
    grants_securable: None,
    workspace_paths: WorkspacePaths::None,
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "",
};

pub struct SecretScopeKind;

fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// The ACLs a config asks for: principal → highest level, with MANAGE for
/// `me`. None when the config has no `permissions` block (ACLs left alone).
pub fn desired_acls(config: &Value, me: &str) -> Option<BTreeMap<String, String>> {
    let entries = config.get("permissions")?.as_array()?;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut grant = |principal: &str, level: &str| {
        let slot = out.entry(principal.to_string()).or_default();
        if slot.is_empty() || rank(level) > rank(slot) {
            *slot = level.to_string();
        }
    };
    for e in entries {
        let principal = ["user_name", "group_name", "service_principal_name"]
            .iter()
            .find_map(|p| e.get(*p).and_then(Value::as_str));
        if let (Some(p), Some(level)) = (principal, e.get("level").and_then(Value::as_str)) {
            grant(p, level);
        }
    }
    grant(me, "MANAGE");
    Some(out)
}

async fn list_acls(client: &Client, scope: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let resp = client
        .call(
            Method::GET,
            &format!("{BASE}/acls/list"),
            &[("scope", scope.to_string())],
            None,
        )
        .await?;
    // The SDK parses `items`; the API docs' example says `acls`.
    let items = resp
        .get("items")
        .or_else(|| resp.get("acls"))
        .and_then(Value::as_array);
    Ok(items
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                a.get("principal")?.as_str()?.to_string(),
                a.get("permission")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Where a read keeps the scope's ACLs (principal → level); not a field of
/// the scope's YAML shape.
const ACLS_FIELD: &str = "acls";

/// `[{principal, level}]`, sorted: how an ACL set shows in a plan.
fn acl_list(acls: &BTreeMap<String, String>) -> Value {
    Value::Array(
        acls.iter()
            .map(|(p, l)| json!({"level": l, "principal": p}))
            .collect(),
    )
}

/// The ACLs a config's (loader-completed) `permissions` ask for; None
/// without a block. The loader already added the deploying identity.
fn config_acls(config: &Value) -> Option<BTreeMap<String, String>> {
    let entries = config.get("permissions")?.as_array()?;
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for e in entries {
        let principal = ["user_name", "group_name", "service_principal_name"]
            .iter()
            .find_map(|p| e.get(*p).and_then(Value::as_str));
        if let (Some(p), Some(level)) = (principal, e.get("level").and_then(Value::as_str)) {
            let slot = out.entry(p.to_string()).or_default();
            if slot.is_empty() || rank(level) > rank(slot) {
                *slot = level.to_string();
            }
        }
    }
    Some(out)
}

/// The ACLs a read found (see [`ACLS_FIELD`]).
fn remote_acls(remote: &Value) -> Option<BTreeMap<String, String>> {
    let m = remote.get(ACLS_FIELD)?.as_object()?;
    Some(
        m.iter()
            .filter_map(|(p, l)| Some((p.clone(), l.as_str()?.to_string())))
            .collect(),
    )
}

#[async_trait]
impl ResourceKind for SecretScopeKind {
    fn kind(&self) -> Kind {
        Kind::SecretScopes
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_secret_scope")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn permission_levels(&self) -> Option<&'static str> {
        Some("secret-acls")
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<SecretScope>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<SecretScope>(self.kind(), key, node, diags);
        common::check_permissions(&addr, node, diags);
        let backend = node.get("backend_type").and_then(Node::as_str);
        if backend == Some("AZURE_KEYVAULT") && node.get("keyvault_metadata").is_none() {
            if let Some(b) = node.get("backend_type") {
                diags.push(
                    Diag::error(format!(
                        "{addr}: an AZURE_KEYVAULT scope needs keyvault_metadata"
                    ))
                    .at(b.span, "Key Vault backend")
                    .help("add `keyvault_metadata: {resource_id: ..., dns_name: ...}`"),
                );
            }
        }
    }
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        vec![]
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_string)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let name = literal_str(config, "name").unwrap_or_default().to_string();
        let mut body = json!({"scope": name});
        if let Some(b) = config.get("backend_type") {
            body["scope_backend_type"] = b.clone();
        }
        if let Some(k) = config.get("keyvault_metadata") {
            body["backend_azure_keyvault"] = k.clone();
        }
        client
            .call(
                Method::POST,
                &format!("{BASE}/scopes/create"),
                &[],
                Some(&body),
            )
            .await?;
        let backend = config
            .get("backend_type")
            .cloned()
            .unwrap_or(json!("DATABRICKS"));
        Ok(Created {
            id: name.clone(),
            remote: json!({"name": name, "backend_type": backend}),
        })
    }
    /// No get call: list the scopes and pick this one; then its ACLs
    /// (under [`ACLS_FIELD`], for [`Self::extra_changes`]).
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        let resp = client
            .call(Method::GET, &format!("{BASE}/scopes/list"), &[], None)
            .await?;
        let Some(mut scope) = resp
            .get("scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(id))
            .cloned()
        else {
            return Ok(None);
        };
        let acls = match list_acls(client, id).await {
            Ok(acls) => acls,
            // Deleted between the two calls: gone.
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(m) = scope.as_object_mut() {
            m.insert(
                ACLS_FIELD.into(),
                Value::Object(acls.into_iter().map(|(p, l)| (p, json!(l))).collect()),
            );
        }
        Ok(Some(scope))
    }
    /// ACLs that differ from the `permissions` block: an update that puts
    /// them back (apply lists, puts and deletes). Without a block nothing is
    /// compared: removing it changes nothing remotely.
    fn extra_changes(
        &self,
        desired: &Value,
        applied: &Value,
        remote: Option<&Value>,
    ) -> ExtraChanges {
        let mut out = ExtraChanges::default();
        let (Some(want), Some(have)) = (config_acls(desired), remote.and_then(remote_acls)) else {
            return out;
        };
        // A changed block is the plan's own permissions change already.
        let block_changed = crate::plan::build::desired_permissions(desired)
            != crate::plan::build::desired_permissions(applied);
        if want != have && !block_changed {
            out.fields.push(FieldChange {
                path: "permissions".into(),
                old: Some(acl_list(&have)),
                new: Some(acl_list(&want)),
                unknown: false,
                forces_replacement: false,
            });
        }
        if let Some(before) = config_acls(applied).filter(|b| *b != have) {
            out.drift.push(FieldChange {
                path: "permissions".into(),
                old: Some(acl_list(&before)),
                new: Some(acl_list(&have)),
                unknown: false,
                forces_replacement: false,
            });
        }
        out
    }
    async fn update(
        &self,
        _client: &Client,
        id: &str,
        _config: &Value,
        _changed: &[String],
    ) -> Result<String, ApiError> {
        Err(no_update(&format!("{BASE}/scopes/{id}"), "a secret scope"))
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        ok_if_missing(
            client
                .call(
                    Method::POST,
                    &format!("{BASE}/scopes/delete"),
                    &[],
                    Some(&json!({"scope": id})),
                )
                .await,
        )
    }
    /// Creation is synchronous: ready once listed.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        self.read(client, id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                method: "GET".into(),
                path: format!("{BASE}/scopes/list"),
                message: format!("Scope {id} does not exist!"),
            })
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        common::find_by_name(self, client, config).await
    }
    /// YAML shape: name, backend and key vault (the list's fields).
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(
            remote,
            &["name", "backend_type", "keyvault_metadata"],
        ))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        common::collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    fn applies_own_permissions(&self) -> bool {
        true
    }
    /// List the ACLs, put every missing or different one, then delete the
    /// ones not asked for, one call at a time (parallel ACL calls gave
    /// inconsistent results on the service). No `permissions` block: nothing.
    async fn apply_own_permissions(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        _applied: Option<&Value>,
    ) -> Result<(), ApiError> {
        if config.get("permissions").is_none() {
            return Ok(());
        }
        let me = client
            .call_typed::<crate::api::types::scim::User>(
                Method::GET,
                "/api/2.0/preview/scim/v2/Me",
                &[],
                None,
            )
            .await?
            .user_name;
        let Some(desired) = desired_acls(config, &me) else {
            return Ok(());
        };
        let current = list_acls(client, id).await?;
        for (principal, level) in &desired {
            if current.get(principal) != Some(level) {
                client
                    .call(
                        Method::POST,
                        &format!("{BASE}/acls/put"),
                        &[],
                        Some(&json!({"scope": id, "principal": principal, "permission": level})),
                    )
                    .await?;
            }
        }
        for principal in current.keys().filter(|p| !desired.contains_key(*p)) {
            ok_if_missing(
                client
                    .call(
                        Method::POST,
                        &format!("{BASE}/acls/delete"),
                        &[],
                        Some(&json!({"scope": id, "principal": principal})),
                    )
                    .await,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_keep_the_highest_level_and_add_the_deployer() {
        let cfg = json!({"permissions": [
            {"level": "READ", "user_name": "a@x"},
            {"level": "WRITE", "user_name": "a@x"},
            {"level": "READ", "group_name": "users"},
            {"level": "READ", "user_name": "me@x"},
        ]});
        let acls = desired_acls(&cfg, "me@x").unwrap();
        assert_eq!(acls["a@x"], "WRITE");
        assert_eq!(acls["users"], "READ");
        assert_eq!(acls["me@x"], "MANAGE");
        assert!(desired_acls(&json!({"name": "s"}), "me@x").is_none());
    }

    #[test]
    fn acl_drift_is_an_update() {
        let desired = json!({"name": "s", "permissions": [
            {"level": "READ", "group_name": "users"},
            {"level": "MANAGE", "user_name": "me@x"},
        ]});
        let same = json!({"name": "s", "acls": {"users": "READ", "me@x": "MANAGE"}});
        let ch = SecretScopeKind.extra_changes(&desired, &desired, Some(&same));
        assert!(ch.fields.is_empty() && ch.drift.is_empty());
        // Changed outside: a planned change back, and drift from the last apply.
        let drifted =
            json!({"name": "s", "acls": {"users": "WRITE", "x@y": "READ", "me@x": "MANAGE"}});
        let ch = SecretScopeKind.extra_changes(&desired, &desired, Some(&drifted));
        assert_eq!(ch.fields.len(), 1);
        assert_eq!(ch.fields[0].path, "permissions");
        assert!(!ch.fields[0].forces_replacement);
        assert_eq!(
            ch.fields[0].new,
            Some(acl_list(&config_acls(&desired).unwrap()))
        );
        assert_eq!(ch.drift.len(), 1);
        // No block: nothing compared; not read: nothing known.
        let bare = json!({"name": "s"});
        assert!(SecretScopeKind
            .extra_changes(&bare, &desired, Some(&drifted))
            .fields
            .is_empty());
        assert!(SecretScopeKind
            .extra_changes(&desired, &desired, None)
            .fields
            .is_empty());
        // The ACLs are no field of the YAML shape.
        assert_eq!(
            SecretScopeKind.remote_to_config(&same),
            json!({"name": "s"})
        );
    }

    #[test]
    fn remote_shape() {
        let r = json!({"name": "s", "backend_type": "DATABRICKS"});
        assert_eq!(SecretScopeKind.remote_to_config(&r), r);
        assert_eq!(SecretScopeKind.id_from_config(&r), Some("s".into()));
    }
}
