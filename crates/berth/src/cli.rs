//! The command tree, mirroring docker's: management commands (`image ls`) and the
//! short forms people type (`images`, `rmi`).

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The top-level commands `docker --help` lists first, in its order.
const COMMON_COMMANDS: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

/// The clap command of `berth`, with docker's grouped top-level help.
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    let help = root_help(&cmd);
    cmd.help_template(help)
}

/// Parses the process's arguments against `command()`.
pub fn parse() -> Result<Cli, clap::Error> {
    let matches = command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// `berth --help` in the shape of `docker --help`: the common commands, the
/// management commands (those with subcommands), the rest, then the global options
/// in cobra's layout. Hidden commands and clap's `help` are left out, as docker
/// leaves out its `completion`.
fn root_help(cmd: &clap::Command) -> String {
    let listed: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect();
    let line = |c: &clap::Command| {
        let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
        format!("  {:<12}{about}\n", c.get_name())
    };
    let mut common = String::new();
    for name in COMMON_COMMANDS {
        if let Some(c) = listed.iter().find(|c| c.get_name() == *name) {
            common.push_str(&line(c));
        }
    }
    let mut sorted = listed.clone();
    sorted.sort_by_key(|c| c.get_name());
    let mut management = String::new();
    let mut others = String::new();
    for c in sorted {
        if c.has_subcommands() {
            management.push_str(&line(c));
        } else if !COMMON_COMMANDS.contains(&c.get_name()) {
            others.push_str(&line(c));
        }
    }
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    format!(
        "Usage:  berth [OPTIONS] COMMAND\n\n{about}\n\nCommon Commands:\n{common}\n\
         Management Commands:\n{management}\nCommands:\n{others}\n\
         Global Options:\n{}\n\
         Run 'berth COMMAND --help' for more information on a command.\n",
        global_options(cmd)
    )
}

/// cobra's flag list: `-s, --long type` (or `    --long type`), the help text
/// three columns after the longest, flags sorted by long name.
fn global_options(cmd: &clap::Command) -> String {
    let mut flags: Vec<(&str, String, String)> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set() && a.get_id() != "help")
        .filter_map(|a| {
            let long = a.get_long()?;
            let mut name = match a.get_short() {
                Some(short) => format!("  -{short}, --{long}"),
                None => format!("      --{long}"),
            };
            if a.get_action().takes_values() {
                let value = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or("string".to_string(), |v| v.to_string());
                name.push(' ');
                name.push_str(&value);
            }
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            Some((long, name, help))
        })
        .collect();
    flags.sort_by_key(|(long, _, _)| *long);
    let width = flags
        .iter()
        .map(|(_, name, _)| name.len())
        .max()
        .unwrap_or(0)
        + 3;
    flags
        .iter()
        .map(|(_, name, help)| format!("{name:<width$}{help}\n"))
        .collect()
}

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-sufficient runtime for containers, compatible with Docker",
    disable_version_flag = true
)]
pub struct Cli {
    /// Location of client config files (default "~/.docker")
    #[arg(long = "config", value_name = "string")]
    pub config: Option<String>,
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Show the berth version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// List images
    Images(ImageLsArgs),
    /// Return low-level information on objects
    Inspect(InspectArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Authenticate to a registry
    #[command(
        long_about = "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified."
    )]
    Login(LoginArgs),
    /// Log out from a registry
    #[command(
        long_about = "Log out from a registry.\nIf no server is specified, the default is defined by the daemon."
    )]
    Logout(LogoutArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Generate the autocompletion script for the specified shell
    #[command(hide = true)]
    Completion(CompletionArgs),
}

// `completion`: a shell's completion script for the whole command tree.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_name = "SHELL")]
    pub shell: CompletionShell,
}

/// The shells `completion` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImageLsArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show berth disk usage
    Df(DfArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum BuilderCommand {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove build cache
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Amount of disk space to keep for cache
    #[arg(long = "keep-storage", value_name = "bytes")]
    pub keep_storage: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused local volumes
    Prune(VolumePruneArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImageLsArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only images of this repository (and tag)
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

// `build`, as docker's classic (non-BuildKit) `image build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub build_arg: Vec<String>,
    /// Name of the Dockerfile (Default is 'PATH/Dockerfile')
    #[arg(
        short = 'f',
        long = "file",
        value_name = "string",
        allow_hyphen_values = true
    )]
    pub file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    pub iidfile: Option<String>,
    /// Set metadata for an image
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "string", default_value = "default")]
    pub network: String,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        hide_env = true
    )]
    pub platform: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(long, value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub rm: bool,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub tag: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long, value_name = "string")]
    pub target: Option<String>,
    /// The context: a directory, or `-` for a tar (or a Dockerfile) on stdin
    #[arg(value_name = "PATH | URL | -")]
    pub context: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

// `pull`, as docker's `image pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image verification
    #[arg(long = "disable-content-trust", value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub disable_content_trust: bool,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        hide_env = true
    )]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub name: String,
}

// `push`, as docker's `image push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image signing
    #[arg(long = "disable-content-trust", value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub disable_content_trust: bool,
    /// Push a platform-specific manifest as a single-platform image to the registry.
    /// Image index won't be pushed, meaning that other manifests, including
    /// attestations won't be preserved. 'os[/arch[/variant]]': Explicit platform (eg.
    /// linux/amd64)
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub name: String,
}

// `login`. The flags are kept as typed (`None` when not given) so that an empty
// value is told from a missing one, as docker's checks need.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Password or Personal Access Token (PAT), or `-` to read from stdin
    #[arg(short = 'p', long, value_name = "string", allow_hyphen_values = true)]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub username: Option<String>,
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

// The options `create` and `run` share: everything that shapes the container.
//
// Values are kept as the strings the user typed; `commands::container::opts` parses
// them after clap, so malformed ones get docker's own wording (and exit status 125).
#[derive(Debug, Args, Clone, Default)]
pub struct ContainerOpts {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub attach: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string")]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub cidfile: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int")]
    pub cpu_quota: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before starting health-retries
    /// countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes")]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", value_name = "int")]
    pub memory_swappiness: Option<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long, value_name = "list")]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver", value_name = "string")]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    /// The image, then the command and its arguments; everything after the image
    /// belongs to the command, flags included (as docker stops parsing there)
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

// `create`: docker reserves `-h` for the host name, so help is `--help` only.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

// `run`: `create`'s options plus the ones about attaching.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

// `stop` and `restart`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

// Commands that only name containers: `pause`, `unpause`, `wait`.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

// Commands that name exactly one container: `diff`.
#[derive(Debug, Args)]
pub struct ContainerArg {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1,
          allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub workdir: Option<String>,
    /// The container, then the command and its arguments (flags after the container
    /// belong to the command)
    #[arg(
        value_name = "CONTAINER COMMAND [ARG...]",
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options passed to ps
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH or -
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub source: String,
    /// DEST_PATH or CONTAINER:DEST_PATH or -
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Disable pausing container during commit
    #[arg(long = "no-pause")]
    pub no_pause: bool,
    /// Pause container during commit (deprecated: use --no-pause to disable)
    #[arg(short = 'p', long, value_name = "bool", default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", hide = true)]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

// `update`: resource limits and the restart policy of existing containers. Values
// are kept as typed and parsed after clap, with `create`'s parsers and wording.
#[derive(Debug, Args, Default)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period", value_name = "int", allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(
        long = "cpu-rt-runtime",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub cpu_rt_runtime: Option<String>,
    /// CPU shares (relative weight)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string", hide = true)]
    pub name: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    #[arg(value_name = "VOLUME")]
    pub volume: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct VolumeInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

// `network create`. Addresses are kept as typed; `commands::network` checks them
// after clap, so malformed ones get docker's wording (and exit status 125).
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", value_name = "string")]
    pub config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub config_only: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "ipSlice", value_delimiter = ',')]
    pub gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "ipNetSlice", value_delimiter = ',')]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub ipam_opt: Vec<String>,
    /// Enable or disable IPv4 address assignment (default true)
    #[arg(long, value_name = "bool", action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(long, value_name = "bool", action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, value_name = "map")]
    pub opt: Vec<String>,
    /// Control the network's scope
    #[arg(long, value_name = "string")]
    pub scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "stringSlice", value_delimiter = ',')]
    pub subnet: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

// `network connect`. Addresses are kept as typed and checked after clap, as for
// `network create`.
#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "stringSlice", value_delimiter = ',')]
    pub alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "stringSlice", value_delimiter = ',')]
    pub driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative
    /// values.
    #[arg(
        long = "gw-priority",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub gw_priority: Option<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "ip")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_name = "ipSlice", value_delimiter = ',')]
    pub link_local_ip: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    #[test]
    fn root_help_is_grouped_like_dockers() {
        let help = command().render_help().to_string();
        assert!(help.starts_with(
            "Usage:  berth [OPTIONS] COMMAND\n\nA self-sufficient runtime for containers, compatible with Docker\n\nCommon Commands:\n  run         Create and run a new container from an image\n  exec        "
        ));
        let section = |title: &str| -> Vec<String> {
            let start = help
                .find(title)
                .unwrap_or_else(|| panic!("{title} missing"))
                + title.len();
            help[start..]
                .lines()
                .skip(1)
                .take_while(|l| !l.is_empty())
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            section("Common Commands:"),
            [
                "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout",
                "version", "info"
            ]
        );
        assert_eq!(
            section("Management Commands:"),
            [
                "builder",
                "container",
                "image",
                "network",
                "system",
                "volume"
            ]
        );
        let others = section("\nCommands:");
        assert_eq!(others.first().map(String::as_str), Some("attach"));
        assert!(others.contains(&"update".to_string()));
        assert!(!others
            .iter()
            .any(|c| c == "help" || c == "completion" || c == "run"));
        assert!(help.contains(
            "Global Options:\n      --config string   Location of client config files (default \"~/.docker\")\n  -D, --debug           Enable debug mode\n  -H, --host list       Daemon socket to connect to\n  -v, --version         Print version information and quit\n\nRun 'berth COMMAND --help' for more information on a command.\n"
        ));
    }

    #[test]
    fn new_commands_parse() {
        assert!(matches!(
            parse(&["completion", "zsh"]).command,
            Some(Command::Completion(CompletionArgs {
                shell: CompletionShell::Zsh
            }))
        ));
        assert!(Cli::try_parse_from(["berth", "completion", "tcsh"]).is_err());
        assert!(matches!(
            parse(&["system", "prune", "-af", "--volumes", "--filter", "label=x"]).command,
            Some(Command::System(SystemCommand::Prune(SystemPruneArgs {
                all: true,
                force: true,
                volumes: true,
                ..
            })))
        ));
        let Some(Command::Builder(BuilderCommand::Prune(prune))) = parse(&[
            "builder",
            "prune",
            "-a",
            "--keep-storage",
            "1g",
            "--filter",
            "until=24h",
        ])
        .command
        else {
            panic!("not builder prune");
        };
        assert!(prune.all && !prune.force);
        assert_eq!(prune.keep_storage.as_deref(), Some("1g"));
        assert_eq!(prune.filter, ["until=24h"]);
        assert!(matches!(
            parse(&["builder", "build", "-t", "x", "."]).command,
            Some(Command::Builder(BuilderCommand::Build(_)))
        ));
        assert!(matches!(
            parse(&["system", "df", "-v", "--format", "json"]).command,
            Some(Command::System(SystemCommand::Df(DfArgs {
                verbose: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["logs", "--details", "c"]).command,
            Some(Command::Logs(LogsArgs { details: true, .. }))
        ));
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn run_stops_parsing_flags_at_the_image() {
        let Some(Command::Run(run)) = parse(&[
            "run",
            "-d",
            "--rm",
            "-h",
            "box",
            "-e",
            "A=1",
            "busybox",
            "sh",
            "-c",
            "echo -n hi",
            "-x",
            "--name",
            "n",
        ])
        .command
        else {
            panic!("not run");
        };
        assert!(run.detach);
        assert!(run.opts.rm);
        assert_eq!(run.opts.hostname.as_deref(), Some("box"));
        assert_eq!(run.opts.name, None);
        assert_eq!(
            run.opts.args,
            ["busybox", "sh", "-c", "echo -n hi", "-x", "--name", "n"]
        );
    }

    #[test]
    fn run_flags_combine_and_help_is_long_only() {
        let Some(Command::Container(ContainerCommand::Run(run))) =
            parse(&["container", "run", "-it", "--sig-proxy=false", "img"]).command
        else {
            panic!("not container run");
        };
        assert!(run.opts.interactive && run.opts.tty && !run.sig_proxy);
        assert_eq!(run.opts.args, ["img"]);
        let err = Cli::try_parse_from(["berth", "create", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(Cli::try_parse_from(["berth", "run"]).is_err());
    }

    #[test]
    fn exec_keeps_command_flags() {
        let Some(Command::Exec(exec)) = parse(&["exec", "-it", "c1", "ls", "-la"]).command else {
            panic!("not exec");
        };
        assert!(exec.interactive && exec.tty);
        assert_eq!(exec.args, ["c1", "ls", "-la"]);
        assert!(Cli::try_parse_from(["berth", "exec", "c1"]).is_err());
    }

    #[test]
    fn volume_commands() {
        let Some(Command::Volume(VolumeCommand::Create(create))) = parse(&[
            "volume", "create", "-d", "fake", "-o", "a=b", "--opt", "c", "--label", "x=1", "v1",
        ])
        .command
        else {
            panic!("not volume create");
        };
        assert_eq!(create.driver, "fake");
        assert_eq!(create.opt, ["a=b", "c"]);
        assert_eq!(create.label, ["x=1"]);
        assert_eq!(create.volume.as_deref(), Some("v1"));
        let Some(Command::Volume(VolumeCommand::Create(create))) =
            parse(&["volume", "create"]).command
        else {
            panic!("not volume create");
        };
        assert_eq!(create.driver, "local");
        assert_eq!(create.volume, None);
        assert!(matches!(
            parse(&["volume", "list", "-q", "-f", "dangling=true"]).command,
            Some(Command::Volume(VolumeCommand::Ls(VolumeLsArgs {
                quiet: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["volume", "remove", "-f", "a", "b"]).command,
            Some(Command::Volume(VolumeCommand::Rm(VolumeRmArgs {
                force: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["volume", "prune", "-af", "--filter", "label=x"]).command,
            Some(Command::Volume(VolumeCommand::Prune(VolumePruneArgs {
                all: true,
                force: true,
                ..
            })))
        ));
        assert!(Cli::try_parse_from(["berth", "volume", "inspect"]).is_err());
        assert!(Cli::try_parse_from(["berth", "volume", "rm"]).is_err());
        assert!(Cli::try_parse_from(["berth", "volume", "create", "a", "b"]).is_err());
    }

    #[test]
    fn network_commands() {
        let Some(Command::Network(NetworkCommand::Create(create))) = parse(&[
            "network",
            "create",
            "--subnet",
            "10.1.0.0/16,10.2.0.0/16",
            "--gateway=10.1.0.254",
            "--ip-range",
            "10.1.5.0/24",
            "--ipv6",
            "-o",
            "mtu=1400",
            "--label",
            "x=1",
            "net1",
        ])
        .command
        else {
            panic!("not network create");
        };
        assert_eq!(create.driver, "bridge");
        assert_eq!(create.ipam_driver, "default");
        assert_eq!(create.subnet, ["10.1.0.0/16", "10.2.0.0/16"]);
        assert_eq!(create.gateway, ["10.1.0.254"]);
        assert_eq!(create.ip_range, ["10.1.5.0/24"]);
        assert_eq!((create.ipv4, create.ipv6), (None, Some(true)));
        assert_eq!(create.opt, ["mtu=1400"]);
        assert_eq!(create.name, "net1");
        let Some(Command::Network(NetworkCommand::Create(create))) =
            parse(&["network", "create", "-d", "macvlan", "--ipv6=false", "n"]).command
        else {
            panic!("not network create");
        };
        assert_eq!(
            (create.driver.as_str(), create.ipv6),
            ("macvlan", Some(false))
        );
        assert!(matches!(
            parse(&["network", "list", "-q", "--no-trunc", "-f", "driver=bridge"]).command,
            Some(Command::Network(NetworkCommand::Ls(NetworkLsArgs {
                quiet: true,
                no_trunc: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["network", "inspect", "-v", "-f", "{{.Id}}", "a", "b"]).command,
            Some(Command::Network(NetworkCommand::Inspect(
                NetworkInspectArgs { verbose: true, .. }
            )))
        ));
        let Some(Command::Network(NetworkCommand::Connect(connect))) = parse(&[
            "network",
            "connect",
            "--alias",
            "db,mysql",
            "--alias",
            "x",
            "--ip",
            "10.1.0.9",
            "--gw-priority",
            "-5",
            "net1",
            "c1",
        ])
        .command
        else {
            panic!("not network connect");
        };
        assert_eq!(connect.alias, ["db", "mysql", "x"]);
        assert_eq!(connect.gw_priority.as_deref(), Some("-5"));
        assert_eq!(
            (connect.network.as_str(), connect.container.as_str()),
            ("net1", "c1")
        );
        assert!(matches!(
            parse(&["network", "disconnect", "-f", "n", "c"]).command,
            Some(Command::Network(NetworkCommand::Disconnect(
                NetworkDisconnectArgs { force: true, .. }
            )))
        ));
        assert!(matches!(
            parse(&["network", "remove", "-f", "a", "b"]).command,
            Some(Command::Network(NetworkCommand::Rm(NetworkRmArgs {
                force: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["network", "prune", "-f", "--filter", "until=24h"]).command,
            Some(Command::Network(NetworkCommand::Prune(NetworkPruneArgs {
                force: true,
                ..
            })))
        ));
        assert!(matches!(
            parse(&["container", "port", "web", "80/tcp"]).command,
            Some(Command::Container(ContainerCommand::Port(_)))
        ));
        assert!(Cli::try_parse_from(["berth", "network", "create"]).is_err());
        assert!(Cli::try_parse_from(["berth", "network", "create", "a", "b"]).is_err());
        assert!(Cli::try_parse_from(["berth", "network", "rm"]).is_err());
        assert!(Cli::try_parse_from(["berth", "network", "connect", "n"]).is_err());
        assert!(Cli::try_parse_from(["berth", "network", "ls", "x"]).is_err());
    }

    #[test]
    fn registry_commands() {
        let Some(Command::Login(login)) =
            parse(&["login", "-u", "me", "-p", "-", "localhost:5000"]).command
        else {
            panic!("not login");
        };
        assert_eq!(login.username.as_deref(), Some("me"));
        assert_eq!(login.password.as_deref(), Some("-"));
        assert_eq!(login.server.as_deref(), Some("localhost:5000"));
        let Some(Command::Login(login)) = parse(&["login", "--password-stdin", "-u", ""]).command
        else {
            panic!("not login");
        };
        assert!(login.password_stdin && login.password.is_none());
        assert_eq!(login.username.as_deref(), Some(""));
        assert!(matches!(
            parse(&["logout"]).command,
            Some(Command::Logout(LogoutArgs { server: None }))
        ));
        assert!(Cli::try_parse_from(["berth", "logout", "a", "b"]).is_err());
        let Some(Command::Pull(pull)) =
            parse(&["pull", "-aq", "--platform", "linux/arm64", "busybox"]).command
        else {
            panic!("not pull");
        };
        assert!(pull.all_tags && pull.quiet && pull.disable_content_trust);
        assert_eq!(pull.platform.as_deref(), Some("linux/arm64"));
        assert!(matches!(
            parse(&["image", "pull", "--disable-content-trust=false", "x"]).command,
            Some(Command::Image(ImageCommand::Pull(PullArgs {
                disable_content_trust: false,
                ..
            })))
        ));
        let Some(Command::Image(ImageCommand::Push(push))) =
            parse(&["image", "push", "-a", "localhost:5000/app"]).command
        else {
            panic!("not image push");
        };
        assert!(push.all_tags && !push.quiet);
        assert!(Cli::try_parse_from(["berth", "push"]).is_err());
        assert!(Cli::try_parse_from(["berth", "pull", "a", "b"]).is_err());
        let cli = parse(&["--config", "/tmp/cfg", "logout"]);
        assert_eq!(cli.config.as_deref(), Some("/tmp/cfg"));
    }

    #[test]
    fn build_flags() {
        let Some(Command::Build(build)) = parse(&[
            "build",
            "-t",
            "a:1",
            "--tag=b",
            "-f-",
            "--build-arg",
            "X=1",
            "--build-arg",
            "Y",
            "--rm=false",
            "--no-cache",
            "-q",
            "-",
        ])
        .command
        else {
            panic!("not build");
        };
        assert_eq!(build.tag, ["a:1", "b"]);
        assert_eq!(build.file.as_deref(), Some("-"));
        assert_eq!(build.build_arg, ["X=1", "Y"]);
        assert!(!build.rm && build.no_cache && build.quiet && !build.pull);
        assert_eq!(build.network, "default");
        assert_eq!(build.context, "-");
        let Some(Command::Image(ImageCommand::Build(build))) = parse(&[
            "image",
            "build",
            "--rm",
            "-f",
            "-",
            "--network",
            "host",
            ".",
        ])
        .command
        else {
            panic!("not image build");
        };
        assert!(build.rm);
        assert_eq!(build.file.as_deref(), Some("-"));
        assert_eq!(
            (build.network.as_str(), build.context.as_str()),
            ("host", ".")
        );
        assert!(Cli::try_parse_from(["berth", "build"]).is_err());
        assert!(Cli::try_parse_from(["berth", "build", "a", "b"]).is_err());
    }

    #[test]
    fn container_aliases() {
        assert!(matches!(
            parse(&["container", "list", "-aq"]).command,
            Some(Command::Container(ContainerCommand::Ls(_)))
        ));
        assert!(matches!(
            parse(&["container", "remove", "-f", "x"]).command,
            Some(Command::Container(ContainerCommand::Rm(_)))
        ));
        assert!(matches!(
            parse(&["stop", "--time", "3", "x"]).command,
            Some(Command::Stop(StopArgs {
                timeout: Some(3),
                ..
            }))
        ));
    }
}
