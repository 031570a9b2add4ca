//! One place where errors become statuses and Docker's `{"message": ...}` bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_store::ErrorKind;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        } else {
            tracing::debug!(status = %self.status, "{}", self.message);
        }
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

impl ApiError {
    /// Docker's status for a class of error (moby's `httpstatus.FromError`).
    pub fn from_kind(kind: ErrorKind, message: String) -> Self {
        let status = match kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, message)
    }
}

impl From<berth_store::Error> for ApiError {
    fn from(e: berth_store::Error) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl From<berth_runtime::Error> for ApiError {
    fn from(e: berth_runtime::Error) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl From<berth_volume::Error> for ApiError {
    fn from(e: berth_volume::Error) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl From<berth_net::Error> for ApiError {
    fn from(e: berth_net::Error) -> Self {
        ApiError::from_kind(e.kind(), e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("internal task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
