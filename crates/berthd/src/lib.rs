//! berthd: the daemon behind the Docker Engine API.
#![recursion_limit = "256"]
//!
//! # Layout
//! - [`config`]: flags and daemon.json
//! - [`api`]: HTTP routing and the handlers; the only module that knows HTTP
//! - [`state`]: the handles the handlers share (stores, event hub, config)
//! - [`events`]: the event hub behind `/events`
//! - [`lock`]: one daemon per data root

pub mod api;
pub mod config;
pub mod events;
pub mod lock;
pub mod logging;
pub mod socket_activation;
pub mod state;
pub mod sysinfo;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::config::DaemonConfig;
use crate::state::Daemon;

/// Runs the daemon until SIGTERM or SIGINT. `activated` are the sockets systemd passed
/// in ([`socket_activation::take_listeners`], called before any thread starts).
pub async fn run(
    config: DaemonConfig,
    mut activated: Vec<socket_activation::Activated>,
) -> anyhow::Result<()> {
    for dir in [&config.data_root, &config.exec_root] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _lock = lock::DataRootLock::acquire(&config.data_root)?;
    let pidfile = config.pidfile.clone();
    if let Some(pidfile) = &pidfile {
        std::fs::write(pidfile, std::process::id().to_string())
            .with_context(|| format!("writing pidfile {}", pidfile.display()))?;
    }
    let daemon = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Daemon::open(config)).await??
    };
    let daemon = Arc::new(daemon);
    // Bridges, rules and resolvers come up in the background: the API is served at
    // once and the first container to need a network waits for them.
    {
        let networks = daemon.runtime.networks().clone();
        tokio::spawn(async move {
            if let Err(e) = networks.ready().await {
                tracing::error!("{e}");
            }
        });
    }
    daemon.runtime.recover().await;

    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();
    let mut sockets: Vec<PathBuf> = Vec::new();
    for host in &config.hosts {
        if let Some(which) = host.strip_prefix("fd://") {
            let chosen = socket_activation::select(&mut activated, which)
                .with_context(|| format!("listening on {host}"))?;
            for listener in chosen {
                tracing::info!("API listen on socket-activated fd {}", listener.fd);
                servers.push(tokio::spawn(api::serve(
                    listener.into_tokio()?,
                    daemon.clone(),
                    shutdown.clone(),
                )));
            }
        } else if let Some(path) = host.strip_prefix("unix://") {
            let listener = bind_unix(Path::new(path))?;
            sockets.push(PathBuf::from(path));
            tracing::info!("API listen on {path}");
            servers.push(tokio::spawn(api::serve(
                listener,
                daemon.clone(),
                shutdown.clone(),
            )));
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            tracing::warn!(
                "!!! LISTENING ON {addr} WITHOUT TLS: anyone who can reach this port has root on this machine !!!"
            );
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {host}"))?;
            servers.push(tokio::spawn(api::serve(
                listener,
                daemon.clone(),
                shutdown.clone(),
            )));
        } else {
            anyhow::bail!("unsupported host {host}");
        }
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "daemon has completed initialization"
    );

    wait_for_signal(&daemon).await;
    tracing::info!("shutting down");
    shutdown.cancel();
    for server in servers {
        // Streams such as `events -f` end with the token; give the rest a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    for socket in sockets {
        let _ = std::fs::remove_file(socket);
    }
    if let Some(pidfile) = pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    Ok(())
}

/// Binds the API socket with mode 0660. A stale socket file is replaced: the data-root
/// lock already proved no other daemon owns it.
fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing stale socket {}", path.display()))
        }
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting mode of {}", path.display()))?;
    Ok(listener)
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the configuration.
async fn wait_for_signal(daemon: &Arc<Daemon>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop berthd with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                let daemon = daemon.clone();
                let _ = tokio::task::spawn_blocking(move || daemon.reload()).await;
            }
        }
    }
}
