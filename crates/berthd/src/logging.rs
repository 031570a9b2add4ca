//! Daemon logs on stderr, as text or JSON, at a level SIGHUP can change.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::DaemonConfig;

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter_for(level: &str) -> EnvFilter {
    EnvFilter::new(match level {
        "fatal" => "error",
        other => other,
    })
}

pub fn init(config: &DaemonConfig) {
    let filter =
        EnvFilter::try_from_env("BERTHD_LOG").unwrap_or_else(|_| filter_for(&config.log_level));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = LEVEL.set(handle);
    let registry = tracing_subscriber::registry().with(filter);
    if config.log_format == "json" {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .init();
    } else {
        registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    .with_ansi(false),
            )
            .init();
    }
}

/// Applies a reloaded `log-level` (or `debug`) to the running daemon.
pub fn set_level(level: &str) {
    if std::env::var_os("BERTHD_LOG").is_some() {
        return; // the environment wins, as at start
    }
    if let Some(handle) = LEVEL.get() {
        if let Err(e) = handle.reload(filter_for(level)) {
            tracing::warn!("changing the log level: {e}");
        }
    }
}
