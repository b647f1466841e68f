//! The machine-learning kinds: MLflow experiments and legacy workspace models
//! (`/api/2.0/mlflow`), Unity Catalog registered models, and model serving endpoints.

pub mod experiment;
pub mod model;
pub mod registered_model;
pub mod serving_endpoint;

use serde_json::{Map, Value};

/// `config` with only the kind's API fields and bundle-only fields: a key the schema does not
/// know (warned about at validate) is neither sent nor diffed, as the official CLI drops it.
pub(crate) fn known_fields(config: &Value, api: &[&str], bundle_only: &[&str]) -> Value {
    match config {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| api.contains(&k.as_str()) || bundle_only.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}
