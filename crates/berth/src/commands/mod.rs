//! One module per command group; each function is one command.

mod image;
mod system;

use anyhow::Result;

use crate::cli::{Cli, Command, ImageCommand, SystemCommand};
use crate::client::Client;

pub async fn run(cli: Cli) -> Result<()> {
    let client = Client::from_host(cli.host.as_deref())?;
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(());
    };
    match command {
        Command::Version(args) => system::version(&client, args).await,
        Command::Info(args) | Command::System(SystemCommand::Info(args)) => {
            system::info(&client, args).await
        }
        Command::Events(args) | Command::System(SystemCommand::Events(args)) => {
            system::events(&client, args).await
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            image::list(&client, args).await
        }
        Command::Inspect(args) => image::inspect(&client, args).await,
        Command::Image(ImageCommand::Inspect(args)) => image::inspect(&client, args).await,
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            image::import(&client, args).await
        }
        Command::Tag(args) | Command::Image(ImageCommand::Tag(args)) => {
            image::tag(&client, args).await
        }
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => {
            image::remove(&client, args).await
        }
        Command::History(args) | Command::Image(ImageCommand::History(args)) => {
            image::history(&client, args).await
        }
        Command::Save(args) | Command::Image(ImageCommand::Save(args)) => {
            image::save(&client, args).await
        }
        Command::Load(args) | Command::Image(ImageCommand::Load(args)) => {
            image::load(&client, args).await
        }
        Command::Image(ImageCommand::Prune(args)) => image::prune(&client, args).await,
    }
}

/// Asks a yes/no question on the terminal; anything but y/Y is no.
pub fn confirm(prompt: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{prompt} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y")
}
