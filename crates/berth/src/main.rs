//! `berth`: the command-line client. Parses docker's command tree and talks to berthd.

mod cli;
mod client;
mod commands;
mod credentials;
mod output;
mod reference;
mod template;

use std::process::ExitCode;

/// Exit code of a command that ended with a message already printed.
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct ExitStatus(pub u8);

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(status) = e.downcast_ref::<ExitStatus>() {
                return ExitCode::from(status.0);
            }
            if let Some(client_error) = e.downcast_ref::<client::ClientError>() {
                eprintln!("{client_error}");
            } else {
                eprintln!("Error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}
