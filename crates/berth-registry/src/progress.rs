//! What a pull or push reports as it goes; berthd turns these into Docker's JSON
//! message stream, so the docker CLI draws its usual bars.

use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A line, for a layer (`id`) or for the whole operation.
    Status { id: Option<String>, status: String },
    /// Bytes moved so far for a layer.
    Bytes {
        id: String,
        action: &'static str,
        current: u64,
        total: u64,
    },
}

impl Progress {
    pub fn status(id: Option<String>, status: impl Into<String>) -> Self {
        Progress::Status {
            id,
            status: status.into(),
        }
    }

    pub fn bytes(id: &str, action: &'static str, current: u64, total: u64) -> Self {
        Progress::Bytes {
            id: id.to_string(),
            action,
            current,
            total,
        }
    }
}

pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;
