//! The network component's errors, classed by the same kinds as the store's.

use berth_store::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    /// The kernel refused a netlink request.
    #[error("{context}: {message}")]
    Netlink { context: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// iptables refused our rules; the message is its stderr.
    #[error("iptables: {0}")]
    Firewall(String),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Store(e) => e.kind(),
            Error::Netlink { .. } | Error::Io { .. } | Error::Firewall(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn netlink(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Netlink {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
