//! Workspace files (reference §6): what deployment state and the deploy lock need.
//!
//! Paths are canonicalised without the `/Workspace` prefix (both spellings name the same
//! object) and echoed back in the spelling of the request. `/`, `/Users`, `/Shared` and
//! every `/Users/<name>` home folder exist implicitly; everything else is created by
//! `mkdirs` or an import. Imports never create parent folders (404 instead).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::http::{body, now_ms, ok, opt_bool, opt_str, qbool, query, req_str, ApiErr, ApiResult};
use super::server::{Emu, Shared};
use super::store::Txn;

pub(super) const COLLECTION: &str = "workspace";
/// Documented limit of `workspace/import` content (reference §6.1: 10 MB, too big ⇒
/// `MAX_NOTEBOOK_SIZE_EXCEEDED`).
pub(super) const MAX_IMPORT: usize = 10 * 1024 * 1024;
/// The JSON body of an import carries the content in base64 (4/3 larger) plus the other
/// fields; past this the content cannot fit [`MAX_IMPORT`], so reading stops early.
const MAX_IMPORT_BODY: usize = MAX_IMPORT / 3 * 4 + 1024 * 1024;
/// Workspace files (`import-file`) are limited to 500 MB by the real service.
pub(super) const MAX_WORKSPACE_FILE: usize = 500 * 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/import", post(import))
        .route("/api/2.0/workspace/export", get(export))
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/list", get(list))
        .route("/api/2.0/workspace/delete", post(delete))
        .route(
            "/api/2.0/workspace-files/import-file/{*path}",
            post(import_file),
        )
}

/// `(canonical, as requested)`; rejects relative paths and `..`.
pub(super) fn canonical(path: &str) -> Result<String, ApiErr> {
    if !path.starts_with('/') {
        return Err(ApiErr::invalid(format!("Path ({path}) must be absolute")));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return Err(ApiErr::invalid(format!(
            "Path ({path}) must not contain '.' or '..' segments"
        )));
    }
    let parts = if parts.first() == Some(&"Workspace") {
        &parts[1..]
    } else {
        &parts[..]
    };
    Ok(format!("/{}", parts.join("/")))
}

pub(super) fn parent(canon: &str) -> Option<String> {
    if canon == "/" {
        return None;
    }
    let idx = canon.rfind('/')?;
    Some(if idx == 0 {
        "/".into()
    } else {
        canon[..idx].to_string()
    })
}

pub(super) fn implicit_dir(canon: &str) -> bool {
    let parts: Vec<&str> = canon.split('/').filter(|p| !p.is_empty()).collect();
    matches!(parts.as_slice(), [] | ["Users"] | ["Shared"] | ["Users", _])
}

pub(super) fn not_exists(path: &str) -> ApiErr {
    ApiErr::not_found(format!("Path ({path}) doesn't exist."))
}

fn get_obj(t: &Txn<'_>, canon: &str) -> Option<Value> {
    t.get(COLLECTION, canon).cloned().or_else(|| {
        implicit_dir(canon).then(|| json!({"object_type": "DIRECTORY", "object_id": 0}))
    })
}

pub(super) fn lookup(emu: &Emu, canon: &str) -> Option<Value> {
    emu.store.get(COLLECTION, canon).or_else(|| {
        implicit_dir(canon).then(|| json!({"object_type": "DIRECTORY", "object_id": 0}))
    })
}

/// Whether `path` is a folder of the workspace (app deployments snapshot one).
pub fn is_directory(emu: &Emu, path: &str) -> bool {
    canonical(path)
        .ok()
        .and_then(|c| lookup(emu, &c))
        .is_some_and(|o| o["object_type"] == json!("DIRECTORY"))
}

fn object_info(shown: &str, obj: &Value) -> Value {
    let mut info = json!({
        "object_type": obj["object_type"],
        "path": shown,
        "object_id": obj["object_id"],
        "resource_id": obj["object_id"].as_i64().unwrap_or(0).to_string(),
    });
    for f in ["language", "size", "created_at", "modified_at"] {
        if let Some(v) = obj.get(f) {
            info[f] = v.clone();
        }
    }
    info
}

pub(super) fn mkdirs_in(t: &mut Txn<'_>, canon: &str, shown: &str) -> Result<(), ApiErr> {
    let mut prefix = String::new();
    let now = now_ms();
    for part in canon.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        match get_obj(t, &prefix) {
            Some(o) if o["object_type"] == json!("DIRECTORY") => {}
            Some(_) => {
                return Err(ApiErr::new(
                    StatusCode::BAD_REQUEST,
                    "RESOURCE_ALREADY_EXISTS",
                    format!(
                        "Cannot create directory {shown}: {prefix} exists and is not a directory"
                    ),
                ))
            }
            None => {
                let id = t.next_int64_id(super::store::IdKind::WorkspaceObject);
                t.put(COLLECTION, &prefix, json!({"object_type": "DIRECTORY", "object_id": id, "created_at": now, "modified_at": now}));
            }
        }
    }
    Ok(())
}

async fn mkdirs(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let path = req_str(&b, "path")?.to_string();
    let canon = canonical(&path)?;
    emu.store.txn(|t| mkdirs_in(t, &canon, &path))?;
    ok(json!({}))
}

/// What an import writes.
pub(super) struct Import {
    pub shown: String,
    pub canon: String,
    pub content: Vec<u8>,
    pub overwrite: bool,
    /// `Some(language)` makes a NOTEBOOK.
    pub language: Option<String>,
}

fn notebook_language(
    canon: &str,
    content: &[u8],
    format: &str,
    language: Option<&str>,
) -> Option<String> {
    if format == "RAW" {
        return None;
    }
    if let Some(l) = language {
        return Some(l.to_uppercase());
    }
    if format == "AUTO" || format == "SOURCE" {
        let (ext_lang, header) = match canon
            .rsplit('.')
            .next()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("py") => ("PYTHON", "# Databricks notebook source"),
            Some("sql") => ("SQL", "-- Databricks notebook source"),
            Some("scala") => ("SCALA", "// Databricks notebook source"),
            Some("r") => ("R", "# Databricks notebook source"),
            _ => return None,
        };
        if content.starts_with(header.as_bytes()) {
            return Some(ext_lang.to_string());
        }
    }
    None
}

fn import_too_big(shown: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::BAD_REQUEST,
        "MAX_NOTEBOOK_SIZE_EXCEEDED",
        format!("File {shown} is larger than the import limit of 10 MB"),
    )
}

fn file_too_big(shown: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::BAD_REQUEST,
        "RESOURCE_LIMIT_EXCEEDED",
        format!("File {shown} is larger than the workspace file limit of 500 MB"),
    )
}

/// Read a request body of at most `limit` bytes; `None` when it is larger. Handlers read
/// their body themselves so each endpoint answers an oversized body with its own
/// documented error rather than the router's default limit.
pub(super) async fn read_body(body: Body, limit: usize) -> Result<Option<Bytes>, ApiErr> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut over = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiErr::bad_request(format!("Could not read the request body: {e}")))?;
        if over || buf.len() + chunk.len() > limit {
            // Keep reading without storing: replying before the client finished sending
            // would reach it as a broken pipe instead of the error.
            over = true;
            buf.clear();
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((!over).then(|| buf.freeze()))
}

pub(super) fn write(emu: &Emu, imp: Import) -> ApiResult {
    // A notebook loses its extension.
    let canon = match &imp.language {
        Some(_) => imp
            .canon
            .rsplit_once('.')
            .map(|(stem, _)| stem.to_string())
            .unwrap_or(imp.canon.clone()),
        None => imp.canon.clone(),
    };
    if canon == "/" {
        return Err(ApiErr::invalid("Cannot write to the workspace root"));
    }
    let now = now_ms();
    emu.store.txn(|t| {
        let par = parent(&canon).unwrap_or_else(|| "/".into());
        match get_obj(t, &par) {
            Some(o) if o["object_type"] == json!("DIRECTORY") => {}
            _ => {
                return Err(ApiErr::not_found(format!(
                    "The parent folder ({}) does not exist.",
                    parent(&imp.shown).unwrap_or_default()
                )))
            }
        }
        let existing = t.get(COLLECTION, &canon).cloned();
        if let Some(e) = &existing {
            if e["object_type"] == json!("DIRECTORY") {
                return Err(ApiErr::new(
                    StatusCode::BAD_REQUEST,
                    "RESOURCE_ALREADY_EXISTS",
                    format!("{} already exists as a directory.", imp.shown),
                ));
            }
            if !imp.overwrite {
                return Err(ApiErr::exists(format!("{} already exists.", imp.shown)));
            }
        }
        let id = match existing.as_ref().and_then(|e| e["object_id"].as_i64()) {
            Some(id) => id,
            None => t.next_int64_id(super::store::IdKind::WorkspaceObject),
        };
        let created = existing
            .as_ref()
            .and_then(|e| e["created_at"].as_i64())
            .unwrap_or(now);
        let mut obj = json!({
            "object_type": if imp.language.is_some() { "NOTEBOOK" } else { "FILE" },
            "object_id": id,
            "size": imp.content.len(),
            "created_at": created,
            "modified_at": now,
            "content": B64.encode(&imp.content),
        });
        if let Some(l) = &imp.language {
            obj["language"] = json!(l);
        }
        t.put(COLLECTION, &canon, obj);
        Ok::<_, ApiErr>(())
    })?;
    ok(json!({}))
}

async fn import_file(
    State(emu): Shared,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    raw: Body,
) -> ApiResult {
    let q = query(q.as_deref());
    let shown = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let canon = canonical(&shown)?;
    let raw = read_body(raw, MAX_WORKSPACE_FILE)
        .await?
        .ok_or_else(|| file_too_big(&shown))?;
    let overwrite = qbool(&q, "overwrite")?.unwrap_or(false);
    write(
        &emu,
        Import {
            shown,
            canon,
            content: raw.to_vec(),
            overwrite,
            language: None,
        },
    )
}

/// The fields of a `multipart/form-data` body: `(name, bytes)`.
fn multipart_fields(content_type: &str, raw: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ApiErr> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| ApiErr::invalid("multipart body without a boundary"))?;
    let delim = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut rest = raw;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, &delim).ok_or_else(|| ApiErr::invalid("malformed multipart body"))?;
    rest = &rest[start + delim.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let head_end =
            find(rest, b"\r\n\r\n").ok_or_else(|| ApiErr::invalid("malformed multipart part"))?;
        let headers = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let content = &rest[head_end + 4..];
        let next =
            find(content, &delim).ok_or_else(|| ApiErr::invalid("unterminated multipart body"))?;
        let mut value = &content[..next];
        value = value.strip_suffix(b"\r\n").unwrap_or(value);
        let name = headers
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .unwrap_or_default();
        fields.push((name, value.to_vec()));
        rest = &content[next + delim.len()..];
    }
    Ok(fields)
}

async fn import(State(emu): Shared, headers: HeaderMap, raw: Body) -> ApiResult {
    // The path is inside the oversized body, so the error names no file.
    let raw = read_body(raw, MAX_IMPORT_BODY)
        .await?
        .ok_or_else(|| import_too_big("(request body)"))?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (path, content, format, overwrite, language) = if ct.starts_with("multipart/form-data") {
        let fields = multipart_fields(&ct, &raw)?;
        let text = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        };
        let path = text("path").ok_or_else(|| ApiErr::missing("path"))?;
        let content = fields
            .iter()
            .find(|(n, _)| n == "content")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let overwrite = matches!(text("overwrite").as_deref(), Some("true") | Some("True"));
        (
            path,
            content,
            text("format").unwrap_or_else(|| "SOURCE".into()),
            overwrite,
            text("language"),
        )
    } else {
        let b = body(&raw)?;
        let path = req_str(&b, "path")?.to_string();
        let content = match opt_str(&b, "content")? {
            Some(c) => B64
                .decode(c)
                .map_err(|e| ApiErr::invalid(format!("content is not valid base64: {e}")))?,
            None => Vec::new(),
        };
        let format = opt_str(&b, "format")?.unwrap_or("SOURCE").to_string();
        let language = opt_str(&b, "language")?.map(str::to_string);
        (
            path,
            content,
            format,
            opt_bool(&b, "overwrite")?.unwrap_or(false),
            language,
        )
    };
    const FORMATS: [&str; 7] = [
        "SOURCE",
        "AUTO",
        "RAW",
        "HTML",
        "JUPYTER",
        "DBC",
        "R_MARKDOWN",
    ];
    if !FORMATS.contains(&format.as_str()) {
        return Err(ApiErr::invalid(format!(
            "Invalid format '{format}': must be one of {}",
            FORMATS.join(", ")
        )));
    }
    if content.len() > MAX_IMPORT {
        return Err(import_too_big(&path));
    }
    let canon = canonical(&path)?;
    let language = notebook_language(&canon, &content, &format, language.as_deref());
    write(
        &emu,
        Import {
            shown: path,
            canon,
            content,
            overwrite,
            language,
        },
    )
}

fn path_param(q: &std::collections::HashMap<String, String>) -> Result<(String, String), ApiErr> {
    let p = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiErr::missing("path"))?;
    Ok((p.clone(), canonical(p)?))
}

async fn export(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let (shown, canon) = path_param(&q)?;
    if qbool(&q, "direct_download")?.unwrap_or(false) {
        // Only the content is copied out (a state file is tens of MB),
        // decoded outside the store's lock.
        let content = emu.store.read(COLLECTION, &canon, |obj| {
            (obj["object_type"] != json!("DIRECTORY"))
                .then(|| obj["content"].as_str().unwrap_or_default().to_owned())
        });
        if let Some(Some(b64)) = content {
            let bytes = B64
                .decode(&b64)
                .map_err(|e| ApiErr::internal(format!("stored content is corrupt: {e}")))?;
            return Ok(
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
            );
        }
    }
    let obj = lookup(&emu, &canon).ok_or_else(|| not_exists(&shown))?;
    if obj["object_type"] == json!("DIRECTORY") {
        return Err(ApiErr::invalid(format!(
            "Path ({shown}) is a directory; export a file or use format=DBC"
        )));
    }
    let b64 = obj["content"].as_str().unwrap_or_default().to_string();
    let ext = canon
        .rsplit_once('.')
        .map(|(_, e)| e.to_string())
        .filter(|e| !e.contains('/'));
    let file_type = match obj["language"].as_str() {
        Some("PYTHON") => "py".to_string(),
        Some("SQL") => "sql".into(),
        Some("SCALA") => "scala".into(),
        Some("R") => "r".into(),
        _ => ext.unwrap_or_default(),
    };
    ok(json!({"content": b64, "file_type": file_type}))
}

async fn get_status(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let (shown, canon) = path_param(&q)?;
    let obj = lookup(&emu, &canon).ok_or_else(|| not_exists(&shown))?;
    ok(object_info(&shown, &obj))
}

async fn list(State(emu): Shared, RawQuery(q): RawQuery) -> ApiResult {
    let q = query(q.as_deref());
    let (shown, canon) = path_param(&q)?;
    let obj = lookup(&emu, &canon).ok_or_else(|| not_exists(&shown))?;
    if obj["object_type"] != json!("DIRECTORY") {
        return ok(json!({"objects": [object_info(&shown, &obj)]}));
    }
    let after: Option<i64> =
        match q.get("notebooks_modified_after") {
            Some(s) => Some(s.parse().map_err(|_| {
                ApiErr::invalid("notebooks_modified_after must be epoch milliseconds")
            })?),
            None => None,
        };
    let shown_prefix = if shown.ends_with('/') {
        shown.clone()
    } else {
        format!("{shown}/")
    };
    let children = children(&emu, &canon);
    let objects: Vec<Value> = children
        .iter()
        .filter(|(_, o)| {
            after.is_none_or(|a| {
                o["object_type"] != json!("NOTEBOOK") || o["modified_at"].as_i64().unwrap_or(0) > a
            })
        })
        .map(|(name, o)| object_info(&format!("{shown_prefix}{name}"), o))
        .collect();
    if objects.is_empty() {
        return ok(json!({}));
    }
    ok(json!({"objects": objects}))
}

async fn delete(State(emu): Shared, raw: Bytes) -> ApiResult {
    let b = body(&raw)?;
    let path = req_str(&b, "path")?.to_string();
    let recursive = opt_bool(&b, "recursive")?.unwrap_or(false);
    let canon = canonical(&path)?;
    remove(&emu, &canon, &path, recursive)?;
    ok(json!({}))
}

/// The direct children of directory `canon`, by name.
pub(super) fn children(emu: &Emu, canon: &str) -> std::collections::BTreeMap<String, Value> {
    let prefix = if canon == "/" {
        "/".to_string()
    } else {
        format!("{canon}/")
    };
    let mut children: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for (k, v) in emu.store.all(COLLECTION) {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let child = rest.split('/').next().unwrap_or_default().to_string();
        if child.is_empty() {
            continue;
        }
        if rest.contains('/') {
            // Something deeper exists: its first segment is (at least implicitly) a directory.
            let canon_child = format!("{prefix}{child}");
            if let Some(o) = emu.store.get(COLLECTION, &canon_child).or_else(|| {
                implicit_dir(&canon_child)
                    .then(|| json!({"object_type": "DIRECTORY", "object_id": 0}))
            }) {
                children.entry(child).or_insert(o);
            }
        } else {
            children.insert(child, v);
        }
    }
    if canon == "/" {
        for d in ["Users", "Shared"] {
            children
                .entry(d.into())
                .or_insert(json!({"object_type": "DIRECTORY", "object_id": 0}));
        }
    }
    children
}

/// Delete `canon` (shown as `path`), with everything below it when `recursive`.
pub(super) fn remove(emu: &Emu, canon: &str, path: &str, recursive: bool) -> Result<(), ApiErr> {
    emu.store.txn(|t| {
        if t.get(COLLECTION, canon).is_none() {
            if implicit_dir(canon) {
                return Err(ApiErr::permission_denied(format!(
                    "Path ({path}) is a system folder and cannot be deleted"
                )));
            }
            return Err(not_exists(path));
        }
        let prefix = format!("{canon}/");
        let below: Vec<String> = t
            .values(COLLECTION)
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        if !below.is_empty() && !recursive {
            return Err(ApiErr::new(
                StatusCode::BAD_REQUEST,
                "DIRECTORY_NOT_EMPTY",
                format!("Folder ({path}) is not empty; pass recursive=true to delete it"),
            ));
        }
        for k in below {
            t.delete(COLLECTION, &k);
        }
        t.delete(COLLECTION, canon);
        Ok::<_, ApiErr>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_canonicalise_and_multipart_parses() {
        assert_eq!(
            canonical("/Workspace/Users/a@b.c/x").unwrap(),
            "/Users/a@b.c/x"
        );
        assert_eq!(canonical("/Users//a/").unwrap(), "/Users/a");
        assert!(canonical("rel").is_err());
        assert!(canonical("/a/../b").is_err());
        assert_eq!(parent("/Users/a").as_deref(), Some("/Users"));
        assert_eq!(parent("/x").as_deref(), Some("/"));
        assert!(implicit_dir("/Users/someone"));
        assert!(!implicit_dir("/Users/someone/dir"));
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n/Users/a/f.txt\r\n--XX\r\nContent-Disposition: form-data; name=\"content\"; filename=\"f\"\r\n\r\nhello\r\nworld\r\n--XX--\r\n";
        let f = multipart_fields("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(f[0], ("path".into(), b"/Users/a/f.txt".to_vec()));
        assert_eq!(f[1], ("content".into(), b"hello\r\nworld".to_vec()));
        assert_eq!(
            notebook_language("/a/n.py", b"# Databricks notebook source\nx", "AUTO", None)
                .as_deref(),
            Some("PYTHON")
        );
        assert_eq!(
            notebook_language("/a/n.py", b"print(1)", "AUTO", None),
            None
        );
    }
}
