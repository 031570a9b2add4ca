//! `berthd`: parses flags and daemon.json, then runs the daemon until SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let flags = berthd::config::Flags::parse();
    let config = match berthd::config::DaemonConfig::resolve(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            return ExitCode::from(1);
        }
    };
    if config.validate_only {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    // Before any thread exists: this reads and clears the LISTEN_* variables.
    let activated = berthd::socket_activation::take_listeners();
    berthd::logging::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berthd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(berthd::run(config, activated)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berthd: {e:#}");
            ExitCode::from(1)
        }
    }
}
