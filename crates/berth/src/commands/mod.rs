//! One module per command group; each function is one command.

mod build;
mod common;
mod container;
mod image;
mod network;
mod progress;
mod prune;
mod registry;
mod system;
mod volume;

use anyhow::Result;

use crate::cli::{
    BuilderCommand, Cli, Command, CompletionShell, ContainerCommand as C, ImageCommand,
    NetworkCommand as N, SystemCommand, VolumeCommand as V,
};
use crate::client::Client;

pub async fn run(cli: Cli) -> Result<()> {
    if let Some(dir) = cli.config.as_deref() {
        crate::credentials::set_config_dir(dir);
    }
    let client = Client::from_host(cli.host.as_deref())?;
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let Some(command) = cli.command else {
        crate::cli::command().print_help()?;
        return Ok(());
    };
    match command {
        Command::Completion(args) => {
            completion(args.shell);
            Ok(())
        }
        Command::Version(args) => system::version(&client, args).await,
        Command::Info(args) | Command::System(SystemCommand::Info(args)) => {
            system::info(&client, args).await
        }
        Command::System(SystemCommand::Df(args)) => system::df(&client, args).await,
        Command::Events(args) | Command::System(SystemCommand::Events(args)) => {
            system::events(&client, args).await
        }
        Command::Build(args) => build::build(&client, args, "build").await,
        Command::Image(ImageCommand::Build(args)) => {
            build::build(&client, args, "image build").await
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            image::list(&client, args).await
        }
        Command::Inspect(args) => container::inspect(&client, args).await,
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
        Command::Image(ImageCommand::Prune(args)) => prune::image(&client, args).await,
        Command::System(SystemCommand::Prune(args)) => prune::system(&client, args).await,
        Command::Builder(BuilderCommand::Prune(args)) => prune::builder(&client, args).await,
        Command::Builder(BuilderCommand::Build(args)) => {
            build::build(&client, args, "builder build").await
        }
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            image::pull(&client, args).await
        }
        Command::Push(args) | Command::Image(ImageCommand::Push(args)) => {
            image::push(&client, args).await
        }
        Command::Login(args) => registry::login(&client, args).await,
        Command::Logout(args) => registry::logout(args).await,
        Command::Run(args) | Command::Container(C::Run(args)) => {
            container::run(&client, args).await
        }
        Command::Create(args) | Command::Container(C::Create(args)) => {
            container::create(&client, args).await
        }
        Command::Start(args) | Command::Container(C::Start(args)) => {
            container::start(&client, args).await
        }
        Command::Stop(args) | Command::Container(C::Stop(args)) => {
            container::stop(&client, args).await
        }
        Command::Kill(args) | Command::Container(C::Kill(args)) => {
            container::kill(&client, args).await
        }
        Command::Restart(args) | Command::Container(C::Restart(args)) => {
            container::restart(&client, args).await
        }
        Command::Rm(args) | Command::Container(C::Rm(args)) => {
            container::remove(&client, args).await
        }
        Command::Ps(args) | Command::Container(C::Ls(args)) => container::ps(&client, args).await,
        Command::Logs(args) | Command::Container(C::Logs(args)) => {
            container::logs(&client, args).await
        }
        Command::Exec(args) | Command::Container(C::Exec(args)) => {
            container::exec(&client, args).await
        }
        Command::Attach(args) | Command::Container(C::Attach(args)) => {
            container::attach(&client, args).await
        }
        Command::Pause(args) | Command::Container(C::Pause(args)) => {
            container::pause(&client, args).await
        }
        Command::Unpause(args) | Command::Container(C::Unpause(args)) => {
            container::unpause(&client, args).await
        }
        Command::Rename(args) | Command::Container(C::Rename(args)) => {
            container::rename(&client, args).await
        }
        Command::Wait(args) | Command::Container(C::Wait(args)) => {
            container::wait(&client, args).await
        }
        Command::Top(args) | Command::Container(C::Top(args)) => {
            container::top(&client, args).await
        }
        Command::Stats(args) | Command::Container(C::Stats(args)) => {
            container::stats(&client, args).await
        }
        Command::Port(args) | Command::Container(C::Port(args)) => {
            container::port(&client, args).await
        }
        Command::Diff(args) | Command::Container(C::Diff(args)) => {
            container::diff(&client, args).await
        }
        Command::Cp(args) | Command::Container(C::Cp(args)) => container::cp(&client, args).await,
        Command::Export(args) | Command::Container(C::Export(args)) => {
            container::export(&client, args).await
        }
        Command::Commit(args) | Command::Container(C::Commit(args)) => {
            container::commit(&client, args).await
        }
        Command::Update(args) => container::update(&client, args, "update").await,
        Command::Container(C::Update(args)) => {
            container::update(&client, args, "container update").await
        }
        Command::Container(C::Inspect(args)) => container::inspect_containers(&client, args).await,
        Command::Container(C::Prune(args)) => prune::container(&client, args).await,
        Command::Volume(V::Create(args)) => volume::create(&client, args).await,
        Command::Volume(V::Ls(args)) => volume::list(&client, args).await,
        Command::Volume(V::Inspect(args)) => volume::inspect(&client, args).await,
        Command::Volume(V::Rm(args)) => volume::remove(&client, args).await,
        Command::Volume(V::Prune(args)) => prune::volume(&client, args).await,
        Command::Network(N::Create(args)) => network::create(&client, args).await,
        Command::Network(N::Ls(args)) => network::list(&client, args).await,
        Command::Network(N::Inspect(args)) => network::inspect(&client, args).await,
        Command::Network(N::Connect(args)) => network::connect(&client, args).await,
        Command::Network(N::Disconnect(args)) => network::disconnect(&client, args).await,
        Command::Network(N::Rm(args)) => network::remove(&client, args).await,
        Command::Network(N::Prune(args)) => prune::network(&client, args).await,
    }
}

/// Writes the completion script of `shell` for the whole command tree to stdout.
fn completion(shell: CompletionShell) {
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut command = crate::cli::command();
    // Generated into memory first: clap_complete panics on a write error, and a
    // reader such as `head` may close the pipe early.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "berth", &mut script);
    use std::io::Write;
    let _ = std::io::stdout().write_all(&script);
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
