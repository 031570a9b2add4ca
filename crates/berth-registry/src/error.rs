//! Registry errors, classed by the store's kinds so the API can map them to statuses.

use berth_store::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry refused our credentials (or wants some).
    #[error("{0}")]
    Unauthorized(String),
    /// No such repository, tag or blob.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The registry answered something we cannot use.
    #[error("{0}")]
    Protocol(String),
    /// The registry could not be reached or the connection broke.
    #[error("{0}")]
    Transport(String),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Store(e) => e.kind(),
            Error::Unauthorized(_) | Error::Protocol(_) | Error::Transport(_) => {
                ErrorKind::Internal
            }
        }
    }

    /// Whether the registry said no to our identity (HTTP 401 to the API client).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
