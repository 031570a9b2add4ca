//! The runtime's errors, classed by the same kinds as the store's.

use berth_store::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such container: {0}")]
    NotFound(String),
    /// A path inside a container that does not exist (the message is complete).
    #[error("{0}")]
    PathNotFound(String),
    #[error("No such exec instance: {0}")]
    ExecNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Network(#[from] berth_net::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The OCI runtime refused to create or start the process.
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::ExecNotFound(_) | Error::PathNotFound(_) => {
                ErrorKind::NotFound
            }
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Store(e) => e.kind(),
            Error::Network(e) => e.kind(),
            Error::Start(message)
                if message.contains("executable file not found")
                    || message.contains("not found in $PATH")
                    || message.contains("no such file or directory")
                    || message.contains("permission denied") =>
            {
                ErrorKind::InvalidArgument
            }
            Error::Io { .. } | Error::Start(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
