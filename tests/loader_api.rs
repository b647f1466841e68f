//! The loader's library API as the engine uses it: a current user, resolved
//! lookups, an explicit environment snapshot, and the `Bundle` fields
//! (resources with their references, workspace paths, pending lookups).

#[path = "loader_support/mod.rs"]
mod support;

use std::collections::HashMap;

use lakebundle::config::model::{CurrentUser, Mode};
use lakebundle::config::{load, warm_parse_cache, LoadOptions, ParseCache};
use lakebundle::resources::{Kind, ResourceAddr};
use support::{example, Bundle};

fn user() -> CurrentUser {
    CurrentUser {
        user_name: "ann.lee@example.com".into(),
        short_name: "ann_lee".into(),
        attributes: Default::default(),
    }
}

#[test]
fn bundle_fields_for_the_production_example() {
    let loaded = load(&LoadOptions {
        dir: Some(example("production")),
        ..LoadOptions::default()
    });
    assert!(
        !loaded.diags.has_errors(),
        "{}",
        lakebundle::diag::render(&loaded.sources, &loaded.diags)
    );
    let b = loaded.bundle.expect("bundle");
    assert_eq!(
        (b.name.as_str(), b.target.as_str(), b.mode),
        ("lakebase-app", "dev", Some(Mode::Development))
    );
    assert_eq!(b.resources.len(), 5);
    let cat = &b.resources[&ResourceAddr::new(Kind::DatabaseCatalogs, "my_cat")];
    assert_eq!(cat.value["database_instance_name"], "my-instance");
    assert_eq!(cat.refs.len(), 1);
    assert!(cat.refs[0].resolved);
    assert_eq!(cat.refs[0].at_path, "database_instance_name");
    assert_eq!(
        cat.refs[0].target,
        ResourceAddr::new(Kind::DatabaseInstances, "my_db")
    );
    let job = &b.resources[&ResourceAddr::new(Kind::Jobs, "sync_schedule")];
    let r = &job.refs[0];
    assert!(!r.resolved, "an output field stays deferred");
    assert_eq!(r.at_path, "tasks[0].pipeline_task.pipeline_id");
    assert_eq!(r.field, "data_synchronization_status.pipeline_id");
    assert_eq!(
        r.text,
        "${resources.synced_database_tables.features_sync.data_synchronization_status.pipeline_id}"
    );
    // The span points at the reference in the YAML.
    let file = loaded.sources.get(r.span.file).expect("file");
    assert!(
        file.text[r.span.start..r.span.end].contains("features_sync.data_synchronization_status")
    );
    let sync = &b.resources[&ResourceAddr::new(Kind::SyncedDatabaseTables, "features_sync")];
    assert_eq!(sync.refs.iter().filter(|r| r.resolved).count(), 4);
    assert_eq!(b.workspace.root_path, "~/.bundle/lakebase-app/dev");
    assert_eq!(b.sync["paths"], serde_json::json!(["."]));
    assert!(b.root.ends_with("examples/production"));
}

#[test]
fn current_user_resolves_paths_and_the_dev_prefix() {
    let opts = LoadOptions {
        dir: Some(example("production")),
        current_user: Some(user()),
        ..LoadOptions::default()
    };
    let b = load(&opts).bundle.expect("bundle");
    assert_eq!(
        b.workspace.root_path,
        "/Workspace/Users/ann.lee@example.com/.bundle/lakebase-app/dev"
    );
    assert_eq!(
        b.workspace.state_path,
        "/Workspace/Users/ann.lee@example.com/.bundle/lakebase-app/dev/state"
    );
    assert_eq!(
        b.workspace.file_path,
        "/Workspace/Users/ann.lee@example.com/.bundle/lakebase-app/dev/files"
    );
    let job = &b.resources[&ResourceAddr::new(Kind::Jobs, "sync_schedule")];
    assert_eq!(job.value["name"], "[dev ann_lee] sync-pipeline-schedule");
    assert_eq!(job.value["tags"]["dev"], "ann_lee");
    assert_eq!(
        b.tree
            .pointer(&["workspace", "current_user", "userName"])
            .and_then(|n| n.as_str()),
        Some("ann.lee@example.com")
    );
}

#[test]
fn lookups_env_snapshot_and_strict() {
    let b = Bundle::new(&[(
        "databricks.yml",
        "bundle:\n  name: api\nvariables:\n  wh:\n    lookup:\n      warehouse: Shared\n  who:\n    default: nobody\nresources:\n  jobs:\n    j:\n      name: ${var.who}-${var.wh}\n      unknown_field_here: 1\n",
    )]);
    let base = LoadOptions {
        dir: Some(b.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let pending = load(&base).bundle.expect("bundle");
    assert_eq!(pending.pending_lookups.len(), 1);
    assert_eq!(pending.pending_lookups[0].variable, "wh");
    assert_eq!(
        pending.pending_lookups[0].lookup,
        serde_json::json!({"warehouse": "Shared"})
    );

    let resolved = load(&LoadOptions {
        lookups: HashMap::from([("wh".to_string(), serde_json::json!("abc123"))]),
        env: HashMap::from([("BUNDLE_VAR_who".to_string(), "env-user".to_string())]),
        ..base.clone()
    })
    .bundle
    .expect("bundle");
    assert!(resolved.pending_lookups.is_empty());
    assert_eq!(
        resolved.resources[&ResourceAddr::new(Kind::Jobs, "j")].value["name"],
        "env-user-abc123"
    );

    let strict = load(&LoadOptions {
        strict: true,
        ..base
    });
    assert!(
        strict.bundle.is_none() && strict.diags.has_errors(),
        "an unknown field is an error under --strict"
    );
}

#[test]
fn a_parse_cache_warmed_without_the_user_gives_the_same_bundle_and_diagnostics() {
    let b = Bundle::new(&[
        (
            "databricks.yml",
            "bundle:\n  name: warm\ninclude:\n  - resources/*.yml\nresources:\n  jobs:\n    j:\n      name: ${workspace.current_user.userName}\n",
        ),
        (
            "resources/a.yml",
            "resources:\n  jobs:\n    k:\n      name: k\n      unknown_field_here: 1\n",
        ),
        ("resources/b.yml", "resources:\n  jobs:\n    m:\n      name: m\n"),
    ]);
    let cold_opts = LoadOptions {
        dir: Some(b.path().to_path_buf()),
        current_user: Some(user()),
        ..LoadOptions::default()
    };
    let cold = load(&cold_opts);
    let cache = std::sync::Arc::new(ParseCache::default());
    let warm_opts = LoadOptions {
        parse_cache: Some(cache.clone()),
        ..cold_opts.clone()
    };
    // As the CLI does: warmed before the user is known, then loaded with it.
    warm_parse_cache(&LoadOptions {
        current_user: None,
        ..warm_opts.clone()
    });
    assert_eq!(cache.len(), 3, "the root and both includes");
    let warm = load(&warm_opts);
    // Spans point into the right files only if the warm-up gave each file the load's id.
    let render = |l: &lakebundle::config::Loaded| lakebundle::diag::render(&l.sources, &l.diags);
    assert!(
        render(&cold).contains("resources/a.yml"),
        "{}",
        render(&cold)
    );
    assert_eq!(render(&warm), render(&cold));
    let cold_text = render(&cold);
    let (cold, warm) = (cold.bundle.expect("bundle"), warm.bundle.expect("bundle"));
    for key in ["j", "k", "m"] {
        let addr = ResourceAddr::new(Kind::Jobs, key);
        assert_eq!(
            warm.resources.get(&addr).map(|r| &r.value),
            cold.resources.get(&addr).map(|r| &r.value),
            "{key}"
        );
    }
    assert_eq!(
        warm.resources[&ResourceAddr::new(Kind::Jobs, "j")].value["name"],
        "ann.lee@example.com"
    );
    assert_eq!(cache.len(), 3, "a load that copies leaves the cache whole");

    // The last load takes the files out (no copy); one after it parses again
    // and gives the same bundle.
    let taking = load(&LoadOptions {
        take_from_cache: true,
        ..warm_opts.clone()
    });
    assert!(cache.is_empty(), "the taking load emptied the cache");
    assert_eq!(render(&taking), cold_text);
    let again = load(&warm_opts);
    assert_eq!(render(&again), cold_text);
    let (taking, again) = (
        taking.bundle.expect("bundle"),
        again.bundle.expect("bundle"),
    );
    for key in ["j", "k", "m"] {
        let addr = ResourceAddr::new(Kind::Jobs, key);
        let want = cold.resources.get(&addr).map(|r| &r.value);
        assert_eq!(taking.resources.get(&addr).map(|r| &r.value), want, "{key}");
        assert_eq!(again.resources.get(&addr).map(|r| &r.value), want, "{key}");
    }
}
