//! Reading JSON request bodies the way every endpoint here does.

use std::collections::BTreeMap;

use axum::extract::Request;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};

/// The request's JSON body, up to `limit` bytes; an empty body is `{}`.
pub async fn json_body(request: Request, limit: usize) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// A JSON object of strings (`Labels`, `Options`, `DriverOpts`); other values count as "".
pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}
