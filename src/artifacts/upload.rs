//! Uploading built artifact files to `${workspace.artifact_path}/.internal`.

use super::build::BuiltFile;
use super::internal_dir;
use crate::api::{ApiError, Client};
use crate::config::model::Bundle;
use crate::config::source::NodeKind;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum UploadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("uploading {path}: {source}")]
    Api {
        path: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error(
        "artifact_path {path} is a volume; uploading artifacts to volumes is not supported yet"
    )]
    #[diagnostic(help("use a workspace folder for `workspace.artifact_path` (the default is `${{workspace.root_path}}/artifacts`)"))]
    Volume { path: String },
}

fn api_err(path: &str) -> impl FnOnce(ApiError) -> UploadError + '_ {
    move |source| UploadError::Api {
        path: path.to_string(),
        source: Box::new(source),
    }
}

/// Replace the contents of `.internal` with `files` (each overwritten at
/// `.internal/<file name>`), printing `Uploading <file>...`. With
/// `experimental.skip_artifact_cleanup` older files stay.
pub async fn upload(
    client: &Client,
    bundle: &Bundle,
    files: &[BuiltFile],
) -> Result<(), UploadError> {
    if files.is_empty() {
        return Ok(());
    }
    let dir = internal_dir(&bundle.workspace.artifact_path);
    if dir.starts_with("/Volumes/") {
        return Err(UploadError::Volume {
            path: bundle.workspace.artifact_path.clone(),
        });
    }
    let skip_cleanup = bundle
        .tree
        .pointer(&["experimental", "skip_artifact_cleanup"])
        .is_some_and(|n| matches!(n.kind, NodeKind::Bool(true)));
    let ws = client.workspace();
    if !skip_cleanup {
        match ws.delete(&dir, true).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(api_err(&dir)(e)),
        }
    }
    ws.mkdirs(&dir).await.map_err(api_err(&dir))?;
    for f in files {
        eprintln!("Uploading {}...", f.shown);
        let bytes = std::fs::read(&f.local).map_err(|source| UploadError::Read {
            path: f.shown.clone(),
            source,
        })?;
        let remote = format!("{dir}/{}", f.file_name());
        ws.import_file(&remote, &bytes, true)
            .await
            .map_err(api_err(&remote))?;
    }
    Ok(())
}
