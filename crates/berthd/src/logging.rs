//! Daemon logs on stderr, as text or JSON.

use tracing_subscriber::EnvFilter;

use crate::config::DaemonConfig;

pub fn init(config: &DaemonConfig) {
    let level = match config.log_level.as_str() {
        "fatal" => "error",
        other => other,
    };
    let filter = EnvFilter::try_from_env("BERTHD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}
