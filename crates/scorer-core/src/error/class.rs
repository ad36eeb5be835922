//! What kind of failure an error is, decided from its type (an `object_store::Error` variant, a
//! transport error kind, a SQLSTATE), never from its message. The class picks the exit code, and
//! the exit code tells cron, Airflow, Kubernetes and `scorer schedule` whether to retry:
//! configuration never, data once the data changes, transient infrastructure at once.

use std::error::Error as StdError;

use parquet::errors::ParquetError;

use super::exit;

/// The four kinds of failure the exit codes distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The job, model, credentials or an existing table do not fit: retrying cannot help.
    Config,
    /// The input is missing, corrupt or does not fit the job: retry once the data changes.
    Data,
    /// The database or object store could not be reached, timed out or refused for now, an
    /// object changed while it was read, or the run lost its lock: retry.
    Transient,
    /// A defect in scorer: see the message.
    Internal,
}

impl ErrorClass {
    /// The documented exit code of this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Config => exit::CONFIG,
            Self::Data => exit::INPUT,
            Self::Transient => exit::TRANSIENT,
            Self::Internal => exit::INTERNAL,
        }
    }
}

/// An object in the store changed (its etag) between listing and reading: the run read two
/// versions of the input, so it fails; a new run lists and reads the new version.
#[derive(Debug, thiserror::Error)]
#[error(
    "the object changed after it was listed (etag was {etag}); nothing from this run is kept, \
     run again to score the new version"
)]
pub struct ObjectChanged {
    pub etag: String,
}

/// The class of an object-store failure, by variant: missing objects are data, refused
/// credentials and bad paths are configuration, a changed object and every failure of the
/// transport or the service (connection refused or reset, timeouts, 5xx after object_store's own
/// retries) are transient.
pub fn object_store_class(e: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => ErrorClass::Data,
        E::Precondition { .. } | E::NotModified { .. } => ErrorClass::Transient,
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => ErrorClass::Config,
        E::JoinError { .. } => ErrorClass::Internal,
        E::Generic { source, .. } => generic_store_class(source.as_ref()),
        _ => ErrorClass::Transient,
    }
}

/// `Generic` wraps the transport's errors (typed as `HttpError`) and the service's error
/// responses that object_store has already retried. A local file system's I/O errors are
/// classed by their kind.
fn generic_store_class(source: &(dyn StdError + Send + Sync + 'static)) -> ErrorClass {
    let mut current: Option<&(dyn StdError + 'static)> = Some(source);
    while let Some(e) = current {
        if e.downcast_ref::<object_store::client::HttpError>()
            .is_some()
        {
            return ErrorClass::Transient;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_class(io);
        }
        current = e.source();
    }
    ErrorClass::Transient
}

/// Local I/O: a refused permission or a missing directory is configuration; the rest (disk
/// full, interrupted, a network file system timing out) is transient.
pub fn io_class(e: &std::io::Error) -> ErrorClass {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied | K::NotFound | K::ReadOnlyFilesystem => ErrorClass::Config,
        K::InvalidData | K::UnexpectedEof => ErrorClass::Data,
        _ => ErrorClass::Transient,
    }
}

/// The class of a Parquet read failure: the store's errors and a changed object travel inside
/// `ParquetError::External` with their types; everything else is the file's content.
pub fn parquet_class(e: &ParquetError) -> ErrorClass {
    match e {
        ParquetError::External(inner) => {
            if let Some(store) = inner.downcast_ref::<object_store::Error>() {
                object_store_class(store)
            } else if inner.downcast_ref::<ObjectChanged>().is_some() {
                ErrorClass::Transient
            } else if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                io_class(io)
            } else {
                ErrorClass::Data
            }
        }
        _ => ErrorClass::Data,
    }
}

/// The class of a database failure: connection trouble, timeouts, lock and serialization
/// conflicts and a server going away are transient; refused logins, missing databases, missing
/// privileges and SQL that does not fit the schema are configuration; constraint violations are
/// data; the rest is scorer's.
pub fn sqlx_class(e: &sqlx::Error) -> ErrorClass {
    use sqlx::Error as E;
    match e {
        // A TLS handshake that refused the server's certificate (a wrong host name, an unknown
        // CA): rustls reports it as invalid data, and retrying cannot help.
        E::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => ErrorClass::Config,
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
            ErrorClass::Transient
        }
        E::Configuration(_) | E::Tls(_) | E::InvalidArgument(_) => ErrorClass::Config,
        E::Database(db) => database_class(db.as_ref()),
        _ => ErrorClass::Internal,
    }
}

fn database_class(db: &dyn sqlx::error::DatabaseError) -> ErrorClass {
    let Some(code) = db.code() else {
        return ErrorClass::Internal;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return sqlite_class(&code);
    }
    sqlstate_class(&code)
}

/// PostgreSQL's SQLSTATE classes (appendix A of its manual).
pub fn sqlstate_class(code: &str) -> ErrorClass {
    match code.get(..2).unwrap_or("") {
        // connection exception, transaction rollback (serialization, deadlock), insufficient
        // resources, operator intervention (shutdown, statement timeout), system error
        "08" | "40" | "53" | "57" | "58" => ErrorClass::Transient,
        // lock not available (lock_timeout): someone else holds it for now
        "55" if code == "55P03" => ErrorClass::Transient,
        // invalid authorization, invalid catalog (no such database), syntax or access rule
        // (missing privilege, undefined table or column), object state, configuration file
        "28" | "3D" | "3F" | "42" | "55" | "F0" => ErrorClass::Config,
        // data exception, integrity constraint violation (duplicate ids)
        "22" | "23" => ErrorClass::Data,
        _ => ErrorClass::Internal,
    }
}

/// SQLite's result codes (the primary code is the low byte of the extended one).
fn sqlite_class(code: &str) -> ErrorClass {
    let primary = code.parse::<i32>().map_or(-1, |c| c & 0xff);
    match primary {
        // BUSY, LOCKED, NOMEM, IOERR, FULL, PROTOCOL
        5 | 6 | 7 | 10 | 13 | 15 => ErrorClass::Transient,
        // PERM, READONLY, CANTOPEN, AUTH, NOTADB
        3 | 8 | 14 | 23 | 26 => ErrorClass::Config,
        // CONSTRAINT, MISMATCH, TOOBIG
        18..=20 => ErrorClass::Data,
        _ => ErrorClass::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_point_retries_the_right_way() {
        assert_eq!(sqlstate_class("08006"), ErrorClass::Transient);
        assert_eq!(sqlstate_class("57P01"), ErrorClass::Transient);
        assert_eq!(sqlstate_class("40P01"), ErrorClass::Transient);
        assert_eq!(sqlstate_class("55P03"), ErrorClass::Transient);
        assert_eq!(sqlstate_class("28P01"), ErrorClass::Config);
        assert_eq!(sqlstate_class("3D000"), ErrorClass::Config);
        assert_eq!(sqlstate_class("42501"), ErrorClass::Config);
        assert_eq!(sqlstate_class("23505"), ErrorClass::Data);
        assert_eq!(sqlstate_class("XX000"), ErrorClass::Internal);
        assert_eq!(sqlite_class("2067"), ErrorClass::Data);
        assert_eq!(sqlite_class("5"), ErrorClass::Transient);
        assert_eq!(sqlite_class("8"), ErrorClass::Config);
    }

    #[test]
    fn store_errors_by_variant_and_transport_kind() {
        use object_store::client::{HttpError, HttpErrorKind};
        let boxed = |e: Box<dyn StdError + Send + Sync>| e;
        let refused = object_store::Error::Generic {
            store: "S3",
            source: boxed(Box::new(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            ))),
        };
        assert_eq!(object_store_class(&refused), ErrorClass::Transient);
        let missing = object_store::Error::NotFound {
            path: "x".into(),
            source: boxed("gone".into()),
        };
        assert_eq!(object_store_class(&missing), ErrorClass::Data);
        let denied = object_store::Error::PermissionDenied {
            path: "x".into(),
            source: boxed("no".into()),
        };
        assert_eq!(object_store_class(&denied), ErrorClass::Config);
        let changed = ParquetError::External(Box::new(ObjectChanged { etag: "e1".into() }));
        assert_eq!(parquet_class(&changed), ErrorClass::Transient);
        let corrupt = ParquetError::General("bad page".into());
        assert_eq!(parquet_class(&corrupt), ErrorClass::Data);
        let via_parquet = ParquetError::External(Box::new(refused));
        assert_eq!(parquet_class(&via_parquet), ErrorClass::Transient);
    }
}
