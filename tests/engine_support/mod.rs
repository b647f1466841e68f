//! Shared setup of the engine-core tests (`engine_core`, `engine_core_emulator`):
//! the seed bundle's resource stack and the bundle loader.
#![allow(dead_code)]

use std::path::Path;

use lakebundle::config::model::{Bundle, CurrentUser};
use lakebundle::config::{load, LoadOptions};

/// The seed's resources (lakebase-provisioned.md §8): instance, catalog,
/// synced table and job wired by references; the synced table reads
/// `{catalog}.{schema}.customer_features`.
const SEED_RESOURCES: &str = r#"
resources:
  database_instances:
    my_db:
      name: my-instance
      capacity: CU_1
      retention_window_in_days: 14

  database_catalogs:
    my_cat:
      database_instance_name: ${resources.database_instances.my_db.name}
      name: my_catalog
      database_name: my_database
      create_database_if_not_exists: true

  synced_database_tables:
    features_sync:
      name: ${resources.database_catalogs.my_cat.name}.${resources.database_catalogs.my_cat.database_name}.customer_features
      database_instance_name: ${resources.database_instances.my_db.name}
      logical_database_name: ${resources.database_catalogs.my_cat.database_name}
      spec:
        source_table_full_name: '{catalog}.{schema}.customer_features'
        scheduling_policy: SNAPSHOT
        primary_key_columns:
          - customer_id
        new_pipeline_spec:
          storage_catalog: '{catalog}'
          storage_schema: '{schema}'

  jobs:
    sync_schedule:
      name: sync-pipeline-schedule
      tasks:
        - task_key: run-sync
          pipeline_task:
            pipeline_id: ${resources.synced_database_tables.features_sync.data_synchronization_status.pipeline_id}
      schedule:
        quartz_cron_expression: '0 0 * * * ?'
        timezone_id: UTC
"#;

/// The seed's `resources:` block with the synced table's source catalog and
/// schema (literal names or `${var...}` references).
pub fn seed_resources(catalog: &str, schema: &str) -> String {
    SEED_RESOURCES
        .replace("{catalog}", catalog)
        .replace("{schema}", schema)
}

/// Writes `yaml` as `databricks.yml` in `dir` and loads it with the real
/// loader; the rendered diagnostics when it does not load.
pub fn load_bundle(
    dir: &Path,
    yaml: &str,
    current_user: Option<CurrentUser>,
) -> Result<Bundle, String> {
    std::fs::write(dir.join("databricks.yml"), yaml).unwrap();
    let loaded = load(&LoadOptions {
        dir: Some(dir.to_path_buf()),
        current_user,
        ..LoadOptions::default()
    });
    loaded
        .bundle
        .ok_or_else(|| lakebundle::diag::render(&loaded.sources, &loaded.diags))
}
