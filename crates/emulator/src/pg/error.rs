//! Errors of the PostgreSQL fleet. Messages never carry passwords or tokens:
//! SQL errors are reported from the server's message only (never the
//! statement), and passwords reach the server as SCRAM verifiers.

use std::path::{Path, PathBuf};

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PgError {
    #[error("PostgreSQL server binaries not found: {0}")]
    #[diagnostic(
        code(lakebundle::pg::no_binaries),
        help("install the Debian package `postgresql` (or set LAKEBUNDLE_PG_BINDIR), or run the emulator with --no-postgres")
    )]
    NoBinaries(String),

    #[error("{what} failed: {detail}")]
    #[diagnostic(code(lakebundle::pg::command))]
    Command { what: String, detail: String },

    #[error("{path}: {source}")]
    #[diagnostic(code(lakebundle::pg::io))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("PostgreSQL error on instance {uid}: {message}")]
    #[diagnostic(code(lakebundle::pg::sql))]
    Sql { uid: String, message: String },

    #[error("{0}")]
    #[diagnostic(code(lakebundle::pg::invalid))]
    Invalid(String),

    #[error("{0}")]
    #[diagnostic(code(lakebundle::pg::not_found))]
    NotFound(String),
}

impl PgError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
        move |source| PgError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn command(what: impl Into<String>, detail: impl Into<String>) -> PgError {
        PgError::Command {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// A SQL error, described by the server's own message (and detail/hint).
    pub fn sql(uid: &str, e: &tokio_postgres::Error) -> PgError {
        PgError::Sql {
            uid: uid.to_string(),
            message: describe_sql_error(e),
        }
    }
}

/// The server's message for a database error, else the client's description.
pub fn describe_sql_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_string();
            if let Some(d) = db.detail() {
                s.push_str(" (");
                s.push_str(d);
                s.push(')');
            }
            s
        }
        None => e.to_string(),
    }
}

impl From<PgError> for BackendError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Invalid(m) => BackendError::Invalid(m),
            PgError::NotFound(m) => BackendError::NotFound(m),
            other => BackendError::Internal(other.to_string()),
        }
    }
}

pub type PgResult<T> = Result<T, PgError>;
