//! The machine-learning kinds: MLflow experiments and legacy workspace models
//! (`/api/2.0/mlflow`), Unity Catalog registered models, and model serving endpoints.

pub mod experiment;
pub mod model;
pub mod registered_model;
pub mod serving_endpoint;
