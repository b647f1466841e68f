//! Synced tables: source files from the lake dir loaded into Postgres.
//!
//! A source is `<lake-dir>/<catalog>/<schema>/<table>.csv` (header row,
//! empty field = NULL) or `.jsonl` (one JSON object per line). Column types
//! are inferred over every value: `bigint`, `double precision`, `boolean`,
//! `timestamptz` (RFC 3339, `YYYY-MM-DD[ HH:MM:SS[.f]]` as UTC), `jsonb`
//! (objects/arrays), else `text`. Numbers with a leading zero stay text
//! (codes, not quantities); a JSON string is never a number.
//!
//! Loads: a full load creates the table, COPYs every row and then adds the
//! primary key; an incremental sync COPYs the source into a temporary table
//! and applies upserts (only rows that changed count) and deletes of keys no
//! longer in the source, in one transaction. `timeseries_key` keeps the
//! latest row per key; without it duplicate keys are an error, as in the
//! real pipeline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::SinkExt;

use super::error::{PgError, PgResult};
use super::server::ident;
use crate::backend::SyncStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    BigInt,
    Double,
    Boolean,
    Timestamptz,
    Jsonb,
    Text,
}

impl PgType {
    pub fn sql(self) -> &'static str {
        match self {
            PgType::BigInt => "bigint",
            PgType::Double => "double precision",
            PgType::Boolean => "boolean",
            PgType::Timestamptz => "timestamptz",
            PgType::Jsonb => "jsonb",
            PgType::Text => "text",
        }
    }

    /// From `format_type()` output; None for types the sync never makes.
    pub fn from_format_type(s: &str) -> Option<PgType> {
        Some(match s {
            "bigint" => PgType::BigInt,
            "double precision" => PgType::Double,
            "boolean" => PgType::Boolean,
            "timestamp with time zone" => PgType::Timestamptz,
            "jsonb" => PgType::Jsonb,
            "text" => PgType::Text,
            _ => return None,
        })
    }

    /// The column type that holds values of both `self` (existing) and `new`.
    pub fn widen(self, new: PgType) -> PgType {
        match (self, new) {
            (a, b) if a == b => a,
            (PgType::Text, _) => PgType::Text,
            (PgType::Double, PgType::BigInt) | (PgType::BigInt, PgType::Double) => PgType::Double,
            _ => PgType::Text,
        }
    }
}

// Bit set of the types a value could be; text is always possible.
const T_BIGINT: u8 = 1;
const T_DOUBLE: u8 = 2;
const T_BOOL: u8 = 4;
const T_TS: u8 = 8;
const T_JSON: u8 = 16;
const T_TEXT: u8 = 32;
const T_ALL: u8 = 63;

fn type_of(mask: u8) -> PgType {
    [
        (T_BIGINT, PgType::BigInt),
        (T_DOUBLE, PgType::Double),
        (T_BOOL, PgType::Boolean),
        (T_TS, PgType::Timestamptz),
        (T_JSON, PgType::Jsonb),
    ]
    .into_iter()
    .find(|(bit, _)| mask & bit != 0)
    .map(|(_, t)| t)
    .unwrap_or(PgType::Text)
}

fn has_leading_zero(digits: &str) -> bool {
    let d = digits.strip_prefix('-').unwrap_or(digits);
    d.len() > 1 && d.starts_with('0') && !d.starts_with("0.")
}

fn is_int(v: &str) -> bool {
    !has_leading_zero(v) && v.parse::<i64>().is_ok()
}

fn is_float(v: &str) -> bool {
    !has_leading_zero(v)
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && v.parse::<f64>().is_ok()
}

fn is_bool(v: &str) -> bool {
    v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
}

/// Parse a timestamp the way the sync types it (naive times are UTC).
pub fn parse_ts(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if v.len() < 10 || !v.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

fn is_json_container(v: &str) -> bool {
    let t = v.trim_start();
    (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(v).is_ok()
}

/// Types an untyped (CSV) value could have.
fn mask_of_text(v: &str) -> u8 {
    let mut m = T_TEXT;
    if is_int(v) {
        m |= T_BIGINT | T_DOUBLE;
    } else if is_float(v) {
        m |= T_DOUBLE;
    } else if is_bool(v) {
        m |= T_BOOL;
    } else if parse_ts(v).is_some() {
        m |= T_TS;
    } else if is_json_container(v) {
        m |= T_JSON;
    }
    m
}

/// A source table held compactly: every cell's text in one buffer.
#[derive(Debug, Default)]
pub struct SourceTable {
    pub columns: Vec<String>,
    pub types: Vec<PgType>,
    buf: String,
    /// `(start, len)` per cell, row-major; `len == NULL` marks NULL.
    cells: Vec<(u32, u32)>,
    masks: Vec<u8>,
}

const NULL: u32 = u32::MAX;

impl SourceTable {
    pub fn rows(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.cells.len() / self.columns.len()
        }
    }

    pub fn cell(&self, row: usize, col: usize) -> Option<&str> {
        let (start, len) = self.cells[row * self.columns.len() + col];
        if len == NULL {
            None
        } else {
            Some(&self.buf[start as usize..start as usize + len as usize])
        }
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    fn add_column(&mut self, name: &str) -> usize {
        self.columns.push(name.to_string());
        self.masks.push(T_ALL);
        self.columns.len() - 1
    }

    fn push_cell(&mut self, value: Option<&str>, mask: u8, col: usize) -> PgResult<()> {
        match value {
            None => self.cells.push((0, NULL)),
            Some(v) => {
                let start = u32::try_from(self.buf.len())
                    .map_err(|_| PgError::Invalid("source table is larger than 4 GiB".into()))?;
                self.buf.push_str(v);
                self.cells.push((start, v.len() as u32));
                self.masks[col] &= mask;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> SourceTable {
        self.types = self.masks.iter().map(|m| type_of(*m)).collect();
        self
    }
}

/// The source file for a spec path: the path itself, else with `.csv` or
/// `.jsonl` appended.
pub fn resolve_source(path: &Path) -> PgResult<PathBuf> {
    // Only the absolute, checked paths the API layer hands over (never relative to the cwd).
    if !path.is_absolute() {
        return Err(PgError::NotFound(format!(
            "source table not found: {:?} is not a located source file",
            path.display().to_string()
        )));
    }
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    for ext in ["csv", "jsonl"] {
        let mut p = path.as_os_str().to_owned();
        p.push(".");
        p.push(ext);
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(PgError::NotFound(format!(
        "source table not found: no {} (.csv or .jsonl) in the lake dir",
        path.display()
    )))
}

pub fn read_source(path: &Path) -> PgResult<SourceTable> {
    let file = resolve_source(path)?;
    let bytes = std::fs::read(&file).map_err(PgError::io(&file))?;
    let is_jsonl = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "jsonl" || e == "json");
    let table = if is_jsonl {
        parse_jsonl(&bytes, &file)?
    } else {
        parse_csv(&bytes, &file)?
    };
    if table.columns.is_empty() {
        return Err(PgError::Invalid(format!(
            "source table {} has no columns",
            file.display()
        )));
    }
    Ok(table)
}

pub fn parse_csv(bytes: &[u8], file: &Path) -> PgResult<SourceTable> {
    let bad = |e: csv::Error| PgError::Invalid(format!("{}: {e}", file.display()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let mut t = SourceTable::default();
    for h in reader.headers().map_err(bad)?.iter() {
        if t.column_index(h).is_some() {
            return Err(PgError::Invalid(format!(
                "{}: duplicate column {h:?}",
                file.display()
            )));
        }
        t.add_column(h);
    }
    let n = t.columns.len();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(bad)? {
        if record.len() != n {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            return Err(PgError::Invalid(format!(
                "{}:{line}: {} fields, the header has {n}",
                file.display(),
                record.len()
            )));
        }
        for (col, v) in record.iter().enumerate() {
            if v.is_empty() {
                t.push_cell(None, T_ALL, col)?;
            } else {
                t.push_cell(Some(v), mask_of_text(v), col)?;
            }
        }
    }
    Ok(t.finish())
}

pub fn parse_jsonl(bytes: &[u8], file: &Path) -> PgResult<SourceTable> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| PgError::Invalid(format!("{}: not UTF-8 ({e})", file.display())))?;
    let objects: Vec<(usize, serde_json::Map<String, serde_json::Value>)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(
            |(i, l)| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(serde_json::Value::Object(o)) => Ok((i + 1, o)),
                Ok(_) => Err(PgError::Invalid(format!(
                    "{}:{}: not a JSON object",
                    file.display(),
                    i + 1
                ))),
                Err(e) => Err(PgError::Invalid(format!(
                    "{}:{}: {e}",
                    file.display(),
                    i + 1
                ))),
            },
        )
        .collect::<PgResult<_>>()?;
    let mut t = SourceTable::default();
    // Columns in order of first appearance.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (_, o) in &objects {
        for k in o.keys() {
            if !index.contains_key(k) {
                let i = t.add_column(k);
                index.insert(k.clone(), i);
            }
        }
    }
    let mut scratch: String;
    for (_, o) in &objects {
        for col in 0..t.columns.len() {
            let value = o.get(&t.columns[col]).unwrap_or(&serde_json::Value::Null);
            let (text, mask): (Option<&str>, u8) = match value {
                serde_json::Value::Null => (None, T_ALL),
                serde_json::Value::Bool(b) => {
                    (Some(if *b { "true" } else { "false" }), T_BOOL | T_TEXT)
                }
                serde_json::Value::Number(n) => {
                    scratch = n.to_string();
                    let m = if n.is_i64() {
                        T_BIGINT | T_DOUBLE | T_TEXT
                    } else {
                        T_DOUBLE | T_TEXT
                    };
                    (Some(scratch.as_str()), m)
                }
                serde_json::Value::String(s) => {
                    let m = if parse_ts(s).is_some() {
                        T_TS | T_TEXT
                    } else {
                        T_TEXT
                    };
                    (Some(s.as_str()), m)
                }
                other => {
                    scratch = other.to_string();
                    (Some(scratch.as_str()), T_JSON | T_TEXT)
                }
            };
            t.push_cell(text, mask, col)?;
        }
    }
    Ok(t.finish())
}

// ---------------------------------------------------------------------------------------------
// Selecting rows: primary keys and de-duplication

/// The rows to load (indices into the source), one per primary key.
pub fn select_rows(
    src: &SourceTable,
    pk: &[String],
    timeseries_key: Option<&str>,
) -> PgResult<Vec<u32>> {
    let pk_cols: Vec<usize> = pk
        .iter()
        .map(|k| {
            src.column_index(k).ok_or_else(|| {
                PgError::Invalid(format!(
                    "primary key column {k:?} is not a column of the source table"
                ))
            })
        })
        .collect::<PgResult<_>>()?;
    if pk_cols.is_empty() {
        return Err(PgError::Invalid(
            "primary_key_columns must name at least one column".into(),
        ));
    }
    let ts_col = match timeseries_key {
        Some(k) => Some(src.column_index(k).ok_or_else(|| {
            PgError::Invalid(format!(
                "timeseries_key {k:?} is not a column of the source table"
            ))
        })?),
        None => None,
    };
    let mut slots: HashMap<String, usize> = HashMap::with_capacity(src.rows());
    let mut chosen: Vec<u32> = Vec::with_capacity(src.rows());
    let mut key = String::new();
    for row in 0..src.rows() {
        key.clear();
        for (i, &c) in pk_cols.iter().enumerate() {
            let v = src.cell(row, c).ok_or_else(|| {
                PgError::Invalid(format!(
                    "source row {} has a NULL primary key column {:?}",
                    row + 1,
                    pk[i]
                ))
            })?;
            if i > 0 {
                key.push('\u{1f}');
            }
            key.push_str(v);
        }
        match slots.get(key.as_str()) {
            None => {
                slots.insert(key.clone(), chosen.len());
                chosen.push(row as u32);
            }
            Some(&slot) => {
                let Some(ts) = ts_col else {
                    return Err(PgError::Invalid(format!(
                        "duplicate primary key ({}) in the source table (row {}); set timeseries_key to keep the latest row",
                        key.replace('\u{1f}', ", "),
                        row + 1
                    )));
                };
                let current = chosen[slot] as usize;
                if cmp_ts(src, ts, row, current).is_ge() {
                    // Ties go to the later row.
                    chosen[slot] = row as u32;
                }
            }
        }
    }
    Ok(chosen)
}

/// Order of row `a`'s timeseries value against row `b`'s (NULL is oldest).
fn cmp_ts(src: &SourceTable, col: usize, a: usize, b: usize) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (va, vb) = match (src.cell(a, col), src.cell(b, col)) {
        (None, None) => return Ordering::Equal,
        (None, Some(_)) => return Ordering::Less,
        (Some(_), None) => return Ordering::Greater,
        (Some(x), Some(y)) => (x, y),
    };
    match src.types[col] {
        PgType::BigInt => va.parse::<i64>().ok().cmp(&vb.parse::<i64>().ok()),
        PgType::Double => va
            .parse::<f64>()
            .ok()
            .partial_cmp(&vb.parse::<f64>().ok())
            .unwrap_or(Ordering::Equal),
        PgType::Timestamptz => parse_ts(va).cmp(&parse_ts(vb)),
        _ => va.cmp(vb),
    }
}

// ---------------------------------------------------------------------------------------------
// COPY

/// Append one value in COPY text format.
fn push_copy_value(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(v) => {
            for b in v.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

const COPY_CHUNK: usize = 1 << 20;

/// COPY the chosen rows into `table` (already quoted) in text format.
async fn copy_rows(
    client: &tokio_postgres::Transaction<'_>,
    uid: &str,
    table: &str,
    src: &SourceTable,
    rows: &[u32],
) -> PgResult<u64> {
    let cols: Vec<String> = src.columns.iter().map(|c| ident(c)).collect();
    let stmt = format!("COPY {table} ({}) FROM STDIN", cols.join(", "));
    let sink = client
        .copy_in::<_, Bytes>(&stmt)
        .await
        .map_err(|e| PgError::sql(uid, &e))?;
    futures::pin_mut!(sink);
    let n = src.columns.len();
    let mut buf: Vec<u8> = Vec::with_capacity(COPY_CHUNK + 4096);
    for &row in rows {
        for col in 0..n {
            if col > 0 {
                buf.push(b'\t');
            }
            push_copy_value(&mut buf, src.cell(row as usize, col));
        }
        buf.push(b'\n');
        if buf.len() >= COPY_CHUNK {
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(COPY_CHUNK + 4096));
            sink.send(Bytes::from(chunk))
                .await
                .map_err(|e| PgError::sql(uid, &e))?;
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf))
            .await
            .map_err(|e| PgError::sql(uid, &e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| PgError::sql(uid, &e))
}

// ---------------------------------------------------------------------------------------------
// Loads

/// Where a synced table lives in Postgres.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub uid: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub primary_key: &'a [String],
}

impl Target<'_> {
    fn qualified(&self) -> String {
        format!("{}.{}", ident(self.schema), ident(self.table))
    }
}

/// Columns (name, type) of the target table, None when it does not exist.
async fn existing_columns(
    tx: &tokio_postgres::Transaction<'_>,
    t: &Target<'_>,
) -> PgResult<Option<Vec<(String, Option<PgType>)>>> {
    let rows = tx
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&t.schema, &t.table],
        )
        .await
        .map_err(|e| PgError::sql(t.uid, &e))?;
    if rows.is_empty() {
        let exists = tx
            .query_opt(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&t.schema, &t.table],
            )
            .await
            .map_err(|e| PgError::sql(t.uid, &e))?;
        return Ok(exists.map(|_| Vec::new()));
    }
    Ok(Some(
        rows.iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    PgType::from_format_type(&r.get::<_, String>(1)),
                )
            })
            .collect(),
    ))
}

/// Primary key columns of the target table, in key order.
async fn primary_key_of(
    tx: &tokio_postgres::Transaction<'_>,
    t: &Target<'_>,
) -> PgResult<Vec<String>> {
    let rows = tx
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
            &[&t.schema, &t.table],
        )
        .await
        .map_err(|e| PgError::sql(t.uid, &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn create_table_sql(t: &Target<'_>, src: &SourceTable) -> String {
    let cols: Vec<String> = src
        .columns
        .iter()
        .zip(&src.types)
        .map(|(c, ty)| {
            let not_null = if t.primary_key.contains(c) {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{not_null}", ident(c), ty.sql())
        })
        .collect();
    format!("CREATE TABLE {} ({})", t.qualified(), cols.join(", "))
}

fn pk_list(pk: &[String]) -> String {
    pk.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

async fn exec(tx: &tokio_postgres::Transaction<'_>, uid: &str, sql: &str) -> PgResult<()> {
    tx.batch_execute(sql)
        .await
        .map_err(|e| PgError::sql(uid, &e))
}

async fn count(tx: &tokio_postgres::Transaction<'_>, uid: &str, sql: &str) -> PgResult<u64> {
    let row = tx
        .query_one(sql, &[])
        .await
        .map_err(|e| PgError::sql(uid, &e))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Replace the table's contents with the source. With `recreate` (a new
/// synced table) the table is dropped and made anew from the source's
/// columns; otherwise it is truncated when its shape still fits.
pub async fn full_load(
    client: &mut tokio_postgres::Client,
    t: &Target<'_>,
    src: &SourceTable,
    rows: &[u32],
    recreate: bool,
) -> PgResult<SyncStats> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| PgError::sql(t.uid, &e))?;
    exec(&tx, t.uid, "SET LOCAL synchronous_commit = off").await?;
    exec(
        &tx,
        t.uid,
        &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(t.schema)),
    )
    .await?;
    let existing = existing_columns(&tx, t).await?;
    let fits = match &existing {
        Some(cols) if !recreate => {
            let same_cols = cols.len() == src.columns.len()
                && cols.iter().zip(src.columns.iter().zip(&src.types)).all(
                    |((n, ty), (sn, sty))| n == sn && ty.is_some_and(|ty| ty.widen(*sty) == ty),
                );
            same_cols && primary_key_of(&tx, t).await? == t.primary_key
        }
        _ => false,
    };
    let mut deleted = 0;
    if fits {
        deleted = count(
            &tx,
            t.uid,
            &format!("SELECT count(*) FROM {}", t.qualified()),
        )
        .await?;
        exec(&tx, t.uid, &format!("TRUNCATE {}", t.qualified())).await?;
        copy_rows(&tx, t.uid, &t.qualified(), src, rows).await?;
    } else {
        if existing.is_some() {
            exec(&tx, t.uid, &format!("DROP TABLE {} CASCADE", t.qualified())).await?;
        }
        exec(&tx, t.uid, &create_table_sql(t, src)).await?;
        copy_rows(&tx, t.uid, &t.qualified(), src, rows).await?;
        // The key after the load: building the index once is faster.
        exec(
            &tx,
            t.uid,
            &format!(
                "ALTER TABLE {} ADD PRIMARY KEY ({})",
                t.qualified(),
                pk_list(t.primary_key)
            ),
        )
        .await?;
    }
    tx.commit().await.map_err(|e| PgError::sql(t.uid, &e))?;
    let n = rows.len() as u64;
    Ok(SyncStats {
        rows_upserted: n,
        rows_deleted: deleted,
        total_rows: n,
    })
}

/// Apply the source as upserts and deletes by primary key.
pub async fn incremental(
    client: &mut tokio_postgres::Client,
    t: &Target<'_>,
    src: &SourceTable,
    rows: &[u32],
) -> PgResult<SyncStats> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| PgError::sql(t.uid, &e))?;
    exec(&tx, t.uid, "SET LOCAL synchronous_commit = off").await?;
    let existing = match existing_columns(&tx, t).await? {
        Some(cols) if !cols.is_empty() && primary_key_of(&tx, t).await? == t.primary_key => cols,
        _ => {
            drop(tx);
            return full_load(client, t, src, rows, true).await;
        }
    };
    // Evolve the table: new source columns are added, narrower types widened.
    for (name, ty) in src.columns.iter().zip(&src.types) {
        match existing.iter().find(|(n, _)| n == name) {
            None => {
                exec(
                    &tx,
                    t.uid,
                    &format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        t.qualified(),
                        ident(name),
                        ty.sql()
                    ),
                )
                .await?
            }
            Some((_, Some(old))) if old.widen(*ty) != *old => {
                let wide = old.widen(*ty).sql();
                exec(
                    &tx,
                    t.uid,
                    &format!(
                        "ALTER TABLE {q} ALTER COLUMN {c} TYPE {wide} USING {c}::text::{wide}",
                        q = t.qualified(),
                        c = ident(name)
                    ),
                )
                .await?
            }
            Some(_) => {}
        }
    }
    exec(
        &tx,
        t.uid,
        &format!(
            "CREATE TEMP TABLE lb_stage (LIKE {}) ON COMMIT DROP",
            t.qualified()
        ),
    )
    .await?;
    copy_rows(&tx, t.uid, "lb_stage", src, rows).await?;
    exec(&tx, t.uid, "ANALYZE lb_stage").await?;

    let cols: Vec<String> = src.columns.iter().map(|c| ident(c)).collect();
    let non_key: Vec<&String> = src
        .columns
        .iter()
        .filter(|c| !t.primary_key.contains(c))
        .collect();
    let on_conflict = if non_key.is_empty() {
        "DO NOTHING".to_string()
    } else {
        let set: Vec<String> = non_key
            .iter()
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(c)))
            .collect();
        let old: Vec<String> = non_key.iter().map(|c| format!("t.{}", ident(c))).collect();
        let new: Vec<String> = non_key
            .iter()
            .map(|c| format!("EXCLUDED.{}", ident(c)))
            .collect();
        format!(
            "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
            set.join(", "),
            old.join(", "),
            new.join(", ")
        )
    };
    let upsert = format!(
        "WITH up AS (INSERT INTO {q} AS t ({c}) SELECT {c} FROM lb_stage ON CONFLICT ({pk}) {on_conflict} RETURNING 1) \
         SELECT count(*) FROM up",
        q = t.qualified(),
        c = cols.join(", "),
        pk = pk_list(t.primary_key),
    );
    let upserted = count(&tx, t.uid, &upsert).await?;
    let key_match: Vec<String> = t
        .primary_key
        .iter()
        .map(|c| format!("s.{0} = t.{0}", ident(c)))
        .collect();
    let delete = format!(
        "DELETE FROM {} t WHERE NOT EXISTS (SELECT 1 FROM lb_stage s WHERE {})",
        t.qualified(),
        key_match.join(" AND ")
    );
    let deleted = tx
        .execute(delete.as_str(), &[])
        .await
        .map_err(|e| PgError::sql(t.uid, &e))?;
    tx.commit().await.map_err(|e| PgError::sql(t.uid, &e))?;
    Ok(SyncStats {
        rows_upserted: upserted,
        rows_deleted: deleted,
        total_rows: rows.len() as u64,
    })
}

/// `DROP TABLE IF EXISTS` for `delete_synced_table(purge_data)`.
pub async fn drop_table(client: &tokio_postgres::Client, t: &Target<'_>) -> PgResult<()> {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", t.qualified()))
        .await
        .map_err(|e| PgError::sql(t.uid, &e))
}

/// What identifies a version of a source file for the CONTINUOUS watcher.
pub fn source_signature(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let file = resolve_source(path).ok()?;
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> SourceTable {
        parse_csv(text.as_bytes(), Path::new("t.csv")).unwrap_or_default()
    }

    #[test]
    fn csv_types_are_inferred_over_all_values() {
        let t = csv("id,score,ok,at,doc,zip,name\n\
             1,1.5,true,2026-01-01T00:00:00Z,{\"a\":1},007,x\n\
             2,2,false,2026-01-02 10:00:00,[1],010,\n");
        assert_eq!(
            t.types,
            vec![
                PgType::BigInt,
                PgType::Double,
                PgType::Boolean,
                PgType::Timestamptz,
                PgType::Jsonb,
                PgType::Text,
                PgType::Text
            ]
        );
        assert_eq!(t.rows(), 2);
        assert_eq!(t.cell(1, 6), None);
        assert_eq!(t.cell(0, 5), Some("007"));
    }

    #[test]
    fn jsonl_keeps_json_types_and_first_appearance_order() {
        let t = parse_jsonl(
            b"{\"id\": 1, \"v\": 2.5, \"s\": \"12\"}\n\n{\"id\": 2, \"tags\": [\"a\"], \"v\": 3}\n",
            Path::new("t.jsonl"),
        )
        .unwrap_or_default();
        assert_eq!(t.columns, vec!["id", "v", "s", "tags"]);
        assert_eq!(
            t.types,
            vec![PgType::BigInt, PgType::Double, PgType::Text, PgType::Jsonb]
        );
        assert_eq!(t.cell(1, 2), None);
        assert_eq!(t.cell(1, 3), Some("[\"a\"]"));
    }

    #[test]
    fn bad_sources_are_invalid_not_panics() {
        assert!(parse_csv(b"a,b\n1\n", Path::new("x.csv")).is_err());
        assert!(parse_csv(b"a,a\n1,2\n", Path::new("x.csv")).is_err());
        assert!(parse_jsonl(b"[1,2]\n", Path::new("x.jsonl")).is_err());
        assert!(parse_jsonl(b"{nope\n", Path::new("x.jsonl")).is_err());
    }

    #[test]
    fn duplicate_keys_need_a_timeseries_key() {
        let t = csv("id,ts,v\n1,5,a\n2,1,b\n1,9,c\n1,7,d\n");
        let pk = vec!["id".to_string()];
        assert!(matches!(
            select_rows(&t, &pk, None),
            Err(PgError::Invalid(_))
        ));
        let rows = select_rows(&t, &pk, Some("ts")).unwrap_or_default();
        assert_eq!(rows, vec![2, 1]);
        assert!(select_rows(&t, &["nope".to_string()], None).is_err());
    }

    #[test]
    fn timeseries_compares_typed_values() {
        let t = csv("id,ts\n1,10\n1,9\n");
        // 10 > 9 numerically though "10" < "9" as text.
        assert_eq!(
            select_rows(&t, &["id".to_string()], Some("ts")).unwrap_or_default(),
            vec![0]
        );
    }

    #[test]
    fn copy_text_escapes_control_characters() {
        let mut out = Vec::new();
        push_copy_value(&mut out, Some("a\tb\\c\nd"));
        out.push(b'|');
        push_copy_value(&mut out, None);
        assert_eq!(out, b"a\\tb\\\\c\\nd|\\N");
    }

    #[test]
    fn widening_prefers_the_existing_type() {
        assert_eq!(PgType::Double.widen(PgType::BigInt), PgType::Double);
        assert_eq!(PgType::BigInt.widen(PgType::Double), PgType::Double);
        assert_eq!(PgType::Text.widen(PgType::Jsonb), PgType::Text);
        assert_eq!(PgType::Boolean.widen(PgType::BigInt), PgType::Text);
    }
}
