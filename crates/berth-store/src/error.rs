//! The store's error type and the kinds callers map to API statuses.

use std::path::PathBuf;

/// What class of failure an error is, so the daemon can pick a status without
/// knowing every variant (containerd's errdefs, moby's `httpstatus.FromError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The caller's input is malformed.
    InvalidArgument,
    /// The request clashes with the current state (in use, referenced, exists).
    Conflict,
    /// Something on our side failed.
    Internal,
}

/// Errors from the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format")]
    InvalidReference { input: String },
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    UppercaseReference { name: String },
    #[error("No such image: {0}")]
    ImageNotFound(String),
    #[error("reference does not exist")]
    ReferenceNotFound(String),
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    InvalidArgument { message: String },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {0} not found in the content store")]
    BlobNotFound(String),
    #[error("layer {0} not found")]
    LayerNotFound(String),
    #[error("invalid tar archive: {message}")]
    InvalidArchive { message: String },
    #[error("archive entry {entry:?} escapes the layer root")]
    UnsafeEntry { entry: String },
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt record {path}: {source}")]
    CorruptRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The class of this error, for mapping to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::UppercaseReference { .. }
            | Error::InvalidArgument { .. }
            | Error::InvalidDigest(_)
            | Error::DigestMismatch { .. }
            | Error::InvalidArchive { .. }
            | Error::UnsafeEntry { .. } => ErrorKind::InvalidArgument,
            Error::ImageNotFound(_)
            | Error::ReferenceNotFound(_)
            | Error::BlobNotFound(_)
            | Error::LayerNotFound(_) => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Io { .. } | Error::CorruptRecord { .. } | Error::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }

    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn archive(message: impl Into<String>) -> Self {
        Error::InvalidArchive {
            message: message.into(),
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
