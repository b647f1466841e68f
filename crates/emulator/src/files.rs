//! The Files API over workspace paths (reference §6.1, "Alternative"):
//! `PUT|GET|HEAD|DELETE /api/2.0/fs/files{path}` and `/api/2.0/fs/directories{path}`.
//! Same objects as the workspace API; uploads create missing parent folders.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::http::{ok, qbool, query, ApiErr, ApiResult};
use super::server::{Emu, Shared};
use super::workspace::{canonical, children, lookup, mkdirs_in, not_exists, remove, write, Import};

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            put(upload).get(download).head(metadata).delete(delete_file),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            put(create_dir)
                .get(list_dir)
                .head(dir_exists)
                .delete(delete_dir),
        )
}

fn paths(path: &str) -> Result<(String, String), ApiErr> {
    let shown = format!("/{}", path.trim_start_matches('/'));
    let canon = canonical(&shown)?;
    Ok((shown, canon))
}

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn file_of(emu: &Emu, shown: &str, canon: &str) -> Result<Value, ApiErr> {
    let obj = lookup(emu, canon).ok_or_else(|| not_exists(shown))?;
    if obj["object_type"] == json!("DIRECTORY") {
        return Err(ApiErr::invalid(format!("Path ({shown}) is a directory")));
    }
    Ok(obj)
}

fn file_headers(obj: &Value, body: Vec<u8>, with_body: bool) -> Response {
    let modified =
        chrono::DateTime::from_timestamp_millis(obj["modified_at"].as_i64().unwrap_or(0))
            .unwrap_or_default()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
    let len = body.len().to_string();
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, len),
        (header::LAST_MODIFIED, modified),
    ];
    if with_body {
        (headers, body).into_response()
    } else {
        (headers, ()).into_response()
    }
}

fn content(obj: &Value) -> Result<Vec<u8>, ApiErr> {
    base64::engine::general_purpose::STANDARD
        .decode(obj["content"].as_str().unwrap_or_default())
        .map_err(|e| ApiErr::internal(format!("stored content is corrupt: {e}")))
}

async fn upload(
    State(emu): Shared,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    raw: Bytes,
) -> ApiResult {
    let q = query(q.as_deref());
    let (shown, canon) = paths(&path)?;
    let overwrite = qbool(&q, "overwrite")?.unwrap_or(false);
    if let Some((parent, _)) = canon.rsplit_once('/').filter(|(p, _)| !p.is_empty()) {
        emu.store.txn(|t| mkdirs_in(t, parent, &shown))?;
    }
    write(
        &emu,
        Import {
            shown,
            canon,
            content: raw.to_vec(),
            overwrite,
            language: None,
        },
    )?;
    no_content()
}

async fn download(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    let obj = file_of(&emu, &shown, &canon)?;
    Ok(file_headers(&obj, content(&obj)?, true))
}

async fn metadata(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    let obj = file_of(&emu, &shown, &canon)?;
    Ok(file_headers(&obj, content(&obj)?, false))
}

async fn delete_file(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    file_of(&emu, &shown, &canon)?;
    remove(&emu, &canon, &shown, false)?;
    no_content()
}

async fn create_dir(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    emu.store.txn(|t| mkdirs_in(t, &canon, &shown))?;
    no_content()
}

fn dir_of(emu: &Emu, shown: &str, canon: &str) -> Result<(), ApiErr> {
    let obj = lookup(emu, canon).ok_or_else(|| not_exists(shown))?;
    if obj["object_type"] != json!("DIRECTORY") {
        return Err(ApiErr::invalid(format!(
            "Path ({shown}) is not a directory"
        )));
    }
    Ok(())
}

async fn list_dir(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    dir_of(&emu, &shown, &canon)?;
    let base = shown.trim_end_matches('/');
    let contents: Vec<Value> = children(&emu, &canon)
        .iter()
        .map(|(name, o)| {
            let is_dir = o["object_type"] == json!("DIRECTORY");
            let mut e =
                json!({"path": format!("{base}/{name}"), "name": name, "is_directory": is_dir});
            if !is_dir {
                e["file_size"] = o["size"].clone();
                e["last_modified"] = o["modified_at"].clone();
            }
            e
        })
        .collect();
    if contents.is_empty() {
        return ok(json!({}));
    }
    ok(json!({"contents": contents}))
}

async fn dir_exists(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    dir_of(&emu, &shown, &canon)?;
    Ok(StatusCode::OK.into_response())
}

async fn delete_dir(State(emu): Shared, Path(path): Path<String>) -> ApiResult {
    let (shown, canon) = paths(&path)?;
    dir_of(&emu, &shown, &canon)?;
    remove(&emu, &canon, &shown, false)?;
    no_content()
}
