//! `external_locations`: a Unity Catalog external location
//! (`/api/2.1/unity-catalog/external-locations`, contract part 2 §6), id = name.
//!
//! `url`, `comment`, `read_only`, `fallback` and `enable_file_events` change in place (PATCH);
//! a new `name` renames it (`new_name`); `credential_name`, `encryption_details` and
//! `file_event_queue` recreate it, as the official CLI does. `skip_validation` is a request
//! flag the service never returns (compared against the last apply). The service's
//! `effective_enable_file_events` / `effective_file_event_queue` are outputs, never drift.
//! Delete passes `force=true` (dependent external tables and volumes are the bundle's to
//! manage). Grants: securable type `external_location`, see [`super::grants`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::catalog::{lowercase, patch_body, uc_find_existing, uc_read};
use super::common::{
    self, collect_outputs, literal_str, schema_enum, schema_struct, without_keys, Lifecycle,
};
use super::grants::{self, Grant};
use super::{
    Created, DeploymentInfo, FieldRules, IdScheme, Kind, KindInfo, NameLink, ResourceKind, RunAs,
    RunStyle, UpdateStyle, WorkspacePaths,
};
use crate::api::{ApiError, Client, Method};
use crate::config::source::Node;
use crate::diag::{Diag, Diagnostics};

schema_enum! {
    /// Server-side encryption algorithm for S3.
    SseAlgorithm { AWS_SSE_S3, AWS_SSE_KMS }
}

schema_struct! {
    /// Server-side encryption of S3 objects written through this location.
    pub struct SseEncryptionDetails {
        /// The `x-amz-server-side-encryption` header value.
        algorithm: SseAlgorithm,
        /// ARN of the KMS key, with `AWS_SSE_KMS`.
        aws_kms_key_arn: String,
    }
}

schema_struct! {
    /// Encryption settings for clients reaching the cloud storage.
    pub struct EncryptionDetails {
        /// S3 server-side encryption.
        sse_encryption_details: SseEncryptionDetails,
    }
}

schema_struct! {
    /// An AWS SQS queue for file events.
    pub struct AwsSqsQueue {
        /// URL of the SQS queue (provided queues).
        queue_url: String,
    }
}

schema_struct! {
    /// An Azure storage queue for file events.
    pub struct AzureQueueStorage {
        /// URL of the queue (provided queues).
        queue_url: String,
        /// Resource group of the queue.
        resource_group: String,
        /// Azure subscription of the queue.
        subscription_id: String,
    }
}

schema_struct! {
    /// A Google Pub/Sub subscription for file events.
    pub struct GcpPubsub {
        /// The Pub/Sub subscription (provided queues).
        subscription_name: String,
    }
}

schema_struct! {
    /// Where file events of the location are queued: exactly one of the six kinds.
    pub struct FileEventQueue {
        /// A queue Databricks creates in AWS.
        managed_sqs: AwsSqsQueue,
        /// A queue Databricks creates in Azure.
        managed_aqs: AzureQueueStorage,
        /// A subscription Databricks creates in GCP.
        managed_pubsub: GcpPubsub,
        /// Your own AWS SQS queue.
        provided_sqs: AwsSqsQueue,
        /// Your own Azure storage queue.
        provided_aqs: AzureQueueStorage,
        /// Your own Pub/Sub subscription.
        provided_pubsub: GcpPubsub,
    }
}

schema_struct! {
    /// A Unity Catalog external location: a cloud storage path reached with a storage credential.
    #[schemars(extend("required" = ["name", "url", "credential_name"]))]
    pub struct ExternalLocation {
        /// Name of the external location (lower-cased by Unity Catalog). Changing it renames it.
        name: String,
        /// Cloud storage URL (`s3://bucket/path`, `abfss://...`, `gs://...`).
        url: String,
        /// Storage credential used to reach the URL. Changing it replaces the location.
        credential_name: String,
        /// User-provided description.
        comment: String,
        /// Only reads are allowed through this location.
        read_only: bool,
        /// Fall back to cluster credentials when the UC credential is not sufficient.
        fallback: bool,
        /// Create without validating the storage credential (not read back).
        skip_validation: bool,
        /// Encryption of the storage traffic. Changing it replaces the location.
        encryption_details: EncryptionDetails,
        /// Turn file events on (default) or off; the service reports the applied value as
        /// `effective_enable_file_events`.
        enable_file_events: bool,
        /// File event queue (exactly one kind). Changing it replaces the location.
        file_event_queue: FileEventQueue,
        /// Unity Catalog privileges granted on the location.
        grants: Vec<Grant>,
        /// Deployment lifecycle settings.
        lifecycle: Lifecycle,
    }
}

const BASE: &str = "/api/2.1/unity-catalog/external-locations";
const SECURABLE: &str = "external_location";
/// Not sent with the object: applied through the grants API (or never sent).
const NOT_IN_BODY: &[&str] = &["lifecycle", "grants"];
const OUTPUT_FIELDS: &[&str] = &[
    "id",
    "name",
    "url",
    "credential_name",
    "credential_id",
    "owner",
    "metastore_id",
    "isolation_mode",
    "effective_enable_file_events",
    "effective_file_event_queue",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
];
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "url",
    "credential_name",
    "comment",
    "read_only",
    "fallback",
    "encryption_details",
    "enable_file_events",
    "file_event_queue",
    "grants",
];
const UPDATABLE: &[&str] = &[
    "url",
    "comment",
    "read_only",
    "fallback",
    "enable_file_events",
    "skip_validation",
];

static RULES: FieldRules = FieldRules {
    immutable: &["credential_name", "encryption_details", "file_event_queue"],
    replace_on_any_change: false,
    input_only: &[("skip_validation", "")],
    output_only: &[
        "owner",
        "metastore_id",
        "credential_id",
        "isolation_mode",
        "browse_only",
        "effective_enable_file_events",
        "effective_file_event_queue",
    ],
    bundle_only: &["lifecycle"],
};

static INFO: KindInfo = KindInfo {
    noun: "external location",
    plural: "external locations",
    title: "External Locations",
    id_scheme: IdScheme::Name,
    update: UpdateStyle::PatchWithMask,
    state_fields: &[],
    ready_states: &[],
    wait_text: "external location",
    grants_securable: Some(SECURABLE),
    workspace_paths: WorkspacePaths::None,
    // The location is metadata: the files at its URL stay.
    replace_loses_data: false,
    run: RunStyle::None,
    run_as: RunAs::NotApplicable,
    database_access: false,
    workspace_limit: None,
    ui_path: "/explore/location/{id}/browse",
};

pub struct ExternalLocationKind;

const QUEUE_KINDS: &[&str] = &[
    "managed_sqs",
    "managed_aqs",
    "managed_pubsub",
    "provided_sqs",
    "provided_aqs",
    "provided_pubsub",
];

/// `url` must be a cloud storage URL; `file_event_queue` must set exactly one queue kind.
fn check_fields(addr: &str, node: &Node, diags: &mut Diagnostics) {
    if let Some(url) = node.get("url") {
        if let Some(s) = url.as_str().filter(|s| !common::has_interpolation(s)) {
            let ok = s.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty() && !rest.trim_matches('/').is_empty()
            });
            if !ok {
                diags.push(
                    Diag::error(format!("{addr}.url is not a cloud storage URL: {s:?}"))
                        .at(url.span, "not scheme://bucket/path")
                        .help("use a URL such as `s3://my-bucket/landing`, `abfss://container@account.dfs.core.windows.net/path` or `gs://bucket/path`"),
                );
            }
        }
    }
    if let Some(queue) = node.get("file_event_queue") {
        if let Some(map) = queue.as_map() {
            let set: Vec<&str> = QUEUE_KINDS
                .iter()
                .copied()
                .filter(|k| map.get(k).is_some())
                .collect();
            if set.len() != 1 {
                let what = if set.is_empty() {
                    "sets no queue".to_string()
                } else {
                    format!("sets {} queues ({})", set.len(), set.join(", "))
                };
                diags.push(
                    Diag::error(format!("{addr}.file_event_queue {what}"))
                        .at(queue.span, "exactly one queue kind goes here")
                        .help(format!("keep exactly one of {}", QUEUE_KINDS.join(", "))),
                );
            }
        }
    }
}

/// The URL as Unity Catalog stores it (no trailing slash).
fn normalized_url(config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(u) = literal_str(config, "url") {
        if u.len() > 1 && u.ends_with('/') {
            out["url"] = Value::String(u.trim_end_matches('/').to_string());
        }
    }
    out
}

#[async_trait]
impl ResourceKind for ExternalLocationKind {
    fn kind(&self) -> Kind {
        Kind::ExternalLocations
    }
    fn terraform_type(&self) -> Option<&'static str> {
        Some("databricks_external_location")
    }
    fn info(&self) -> &'static KindInfo {
        &INFO
    }
    fn rules(&self) -> &FieldRules {
        &RULES
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<ExternalLocation>()
    }
    fn output_fields(&self) -> &'static [&'static str] {
        OUTPUT_FIELDS
    }
    fn check(&self, key: &str, node: &Node, diags: &mut Diagnostics) {
        let addr = common::check_schema::<ExternalLocation>(self.kind(), key, node, diags);
        grants::check(&addr, node, diags);
        check_fields(&addr, node, diags);
    }
    /// A storage credential is not a bundle kind: nothing to link by name.
    fn name_links(&self, _config: &Value) -> Vec<NameLink> {
        Vec::new()
    }
    fn id_from_config(&self, config: &Value) -> Option<String> {
        literal_str(config, "name").map(str::to_lowercase)
    }

    async fn create(&self, client: &Client, config: &Value) -> Result<Created, ApiError> {
        let body = without_keys(config, NOT_IN_BODY);
        let remote = client.call(Method::POST, BASE, &[], Some(&body)).await?;
        let created = common::created_by_name(config, remote);
        let want = grants::desired(config);
        if !want.is_empty() {
            grants::apply(client, SECURABLE, &created.id, &want).await?;
        }
        Ok(created)
    }
    async fn read(&self, client: &Client, id: &str) -> Result<Option<Value>, ApiError> {
        uc_read(client, BASE, SECURABLE, id).await
    }
    async fn update(
        &self,
        client: &Client,
        id: &str,
        config: &Value,
        changed: &[String],
    ) -> Result<String, ApiError> {
        let rename = changed
            .iter()
            .any(|c| c == "name")
            .then(|| literal_str(config, "name"))
            .flatten();
        let body: Map<String, Value> = patch_body(config, changed, UPDATABLE, rename);
        let mut new_id = id.to_string();
        if !body.is_empty() {
            let remote = client
                .call(
                    Method::PATCH,
                    &format!("{BASE}/{id}"),
                    &[],
                    Some(&Value::Object(body)),
                )
                .await?;
            if let Some(n) = remote.get("name").and_then(Value::as_str) {
                new_id = n.to_string();
            }
        }
        if changed.iter().any(|c| c == "grants") {
            grants::apply(client, SECURABLE, &new_id, &grants::desired(config)).await?;
        }
        Ok(new_id)
    }
    async fn delete(&self, client: &Client, id: &str) -> Result<(), ApiError> {
        common::delete_if_exists(client, &format!("{BASE}/{id}"), &[("force", "true".into())]).await
    }
    /// Creation is synchronous: ready once it can be read.
    async fn wait_ready(
        &self,
        client: &Client,
        id: &str,
        _timeout: Duration,
    ) -> Result<Value, ApiError> {
        client
            .call(Method::GET, &format!("{BASE}/{id}"), &[], None)
            .await
    }
    async fn find_existing(
        &self,
        client: &Client,
        config: &Value,
    ) -> Result<Option<Created>, ApiError> {
        uc_find_existing(self, client, SECURABLE, config).await
    }
    fn remote_to_config(&self, remote: &Value) -> Value {
        Value::Object(common::only_keys(remote, CONFIG_FIELDS))
    }
    fn outputs(&self, id: &str, remote: &Value) -> Value {
        collect_outputs(id, remote, OUTPUT_FIELDS)
    }
    /// Name lower-cased, URL without its trailing slash, grants normalised: the config as
    /// Unity Catalog reads it back.
    fn with_deployment_marker(&self, config: &Value, _info: &DeploymentInfo<'_>) -> Value {
        grants::normalize_config(&normalized_url(&lowercase(config, &["name"])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_and_read_back_shape() {
        let cfg = json!({"name": "Landing", "url": "s3://b/landing/", "credential_name": "c"});
        assert_eq!(
            ExternalLocationKind.id_from_config(&cfg),
            Some("landing".into())
        );
        assert_eq!(normalized_url(&cfg)["url"], "s3://b/landing");
        let remote = json!({"name": "landing", "url": "s3://b/landing", "credential_name": "c",
                            "effective_enable_file_events": false, "owner": "me"});
        assert_eq!(
            ExternalLocationKind.remote_to_config(&remote),
            json!({"name": "landing", "url": "s3://b/landing", "credential_name": "c"})
        );
    }
}
