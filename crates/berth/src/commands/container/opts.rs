//! Turns the options of `create` and `run` into the body of `POST /containers/create`,
//! as the docker CLI builds it (its `parse` in cli/command/container/opts.go), with
//! docker's parsers for sizes, CPUs, ports, ulimits, mounts and env files.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Map, Value};

use crate::cli::ContainerOpts;

/// A malformed option, reported before any request is sent (exit status 125).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptError {
    /// A flag's value was refused by its parser: docker's pflag wording.
    Flag {
        flag: &'static str,
        value: String,
        message: String,
    },
    /// The options are inconsistent or refer to something unusable.
    Plain(String),
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptError::Flag {
                flag,
                value,
                message,
            } => write!(
                f,
                "invalid argument \"{value}\" for \"{flag}\" flag: {message}"
            ),
            OptError::Plain(message) => f.write_str(message),
        }
    }
}

pub(super) fn flag_err<'a>(
    flag: &'static str,
    value: &'a str,
) -> impl FnOnce(String) -> OptError + 'a {
    move |message| OptError::Flag {
        flag,
        value: value.to_string(),
        message,
    }
}

/// Reads a variable of the CLI's own environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `ExposedPorts` and `PortBindings`, as JSON objects keyed by `port/proto`.
pub type PortMaps = (Map<String, Value>, Map<String, Value>);

/// When to pull the image before creating the container (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

/// Everything `create` needs to send, once the options are parsed.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    pub cidfile: Option<String>,
    pub pull: PullPolicy,
    pub quiet: bool,
    /// The JSON body: `Config` fields at the top level, plus `HostConfig` and
    /// `NetworkingConfig`.
    pub body: Value,
}

impl CreateRequest {
    pub fn config_bool(&self, field: &str) -> bool {
        self.body[field].as_bool().unwrap_or(false)
    }
}

/// Parses the options. `lookup_env` reads the CLI's own environment (for `-e KEY`),
/// `read_file` reads env/label files and seccomp profiles, `console_size` is the
/// terminal's `[rows, cols]` when a TTY is requested and stdout is one.
pub fn parse(
    opts: &ContainerOpts,
    lookup_env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
    console_size: [u16; 2],
) -> Result<CreateRequest, OptError> {
    let (image, command) = match opts.args.split_first() {
        Some((image, command)) => (image.clone(), command.to_vec()),
        None => return Err(OptError::Plain("requires at least 1 argument".into())),
    };

    // -a: only the three stream names, in any case.
    let mut attach_stdin = false;
    let mut attach_stdout = false;
    let mut attach_stderr = false;
    for stream in &opts.attach {
        match stream.to_lowercase().as_str() {
            "stdin" => attach_stdin = true,
            "stdout" => attach_stdout = true,
            "stderr" => attach_stderr = true,
            _ => {
                return Err(flag_err("-a, --attach", stream)(
                    "valid streams are STDIN, STDOUT and STDERR".into(),
                ))
            }
        }
    }
    if opts.interactive {
        attach_stdin = true;
    }
    if opts.attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }

    let memory = opt_bytes(&opts.memory, "-m, --memory")?;
    let memory_reservation = opt_bytes(&opts.memory_reservation, "--memory-reservation")?;
    let memory_swap = match &opts.memory_swap {
        Some(v) if v == "-1" => -1,
        Some(v) => ram_in_bytes(v).map_err(flag_err("--memory-swap", v))?,
        None => 0,
    };
    let shm_size = opt_bytes(&opts.shm_size, "--shm-size")?;
    let nano_cpus = match &opts.cpus {
        Some(v) => parse_cpus(v).map_err(flag_err("--cpus", v))?,
        None => 0,
    };
    let cpu_shares = opt_int(&opts.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0);
    let cpu_period = opt_int(&opts.cpu_period, "--cpu-period")?.unwrap_or(0);
    let cpu_quota = opt_int(&opts.cpu_quota, "--cpu-quota")?.unwrap_or(0);
    let pids_limit = opt_int(&opts.pids_limit, "--pids-limit")?;
    let oom_score_adj = opt_int(&opts.oom_score_adj, "--oom-score-adj")?.unwrap_or(0);
    let stop_timeout = opt_int(&opts.stop_timeout, "--stop-timeout")?;
    let swappiness = opt_int(&opts.memory_swappiness, "--memory-swappiness")?.unwrap_or(-1);
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(OptError::Plain(format!(
            "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
        )));
    }

    let mut ulimits = Vec::new();
    for u in &opts.ulimit {
        ulimits.push(parse_ulimit(u).map_err(flag_err("--ulimit", u))?);
    }

    // Ports: --expose, then -p (long syntax converted to the short one first).
    let mut exposed = Map::new();
    for e in &opts.expose {
        if e.contains(':') {
            return Err(OptError::Plain(format!(
                "invalid port format for --expose: {e}"
            )));
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) = parse_port_range(&port).map_err(|err| {
            OptError::Plain(format!(
                "invalid range format for --expose: {e}, error: {err}"
            ))
        })?;
        for p in start..=end {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }
    let publish = convert_publish_notation(&opts.publish).map_err(OptError::Plain)?;
    let (published_exposed, port_bindings) = parse_port_specs(&publish).map_err(OptError::Plain)?;
    for (k, v) in published_exposed {
        exposed.entry(k).or_insert(v);
    }

    // Environment: env files first, then -e, as docker's ReadKVEnvStrings.
    let mut env = Vec::new();
    for file in &opts.env_file {
        let content = read_file(file).map_err(|e| OptError::Plain(open_error(file, &e)))?;
        env.extend(parse_kv_file(&content, Some(lookup_env)).map_err(OptError::Plain)?);
    }
    for e in &opts.env {
        if let Some(v) = validate_env(e, lookup_env).map_err(flag_err("-e, --env", e))? {
            env.push(v);
        }
    }

    // Labels: label files first, then -l.
    let mut label_list = Vec::new();
    for file in &opts.label_file {
        let content = read_file(file).map_err(|e| OptError::Plain(open_error(file, &e)))?;
        label_list.extend(parse_kv_file(&content, None).map_err(OptError::Plain)?);
    }
    for l in &opts.label {
        label_list.push(validate_label(l).map_err(flag_err("-l, --label", l))?);
    }
    let labels = kv_map(&label_list);

    // -v: a spec with a source is a bind (relative `./` sources made absolute),
    // one without is an anonymous volume in Config.Volumes.
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for spec in &opts.volume {
        if spec.is_empty() {
            return Err(flag_err("-v, --volume", spec)(
                "bad format for path: ".into(),
            ));
        }
        match spec.split_once(':') {
            Some((source, target)) if !source.is_empty() => {
                let source = if source.starts_with('.') {
                    std::path::absolute(source)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| source.to_string())
                } else {
                    source.to_string()
                };
                binds.push(format!("{source}:{target}"));
            }
            _ => {
                volumes.insert(spec.clone(), json!({}));
            }
        }
    }

    let mut mounts = Vec::new();
    for m in &opts.mount {
        mounts.push(parse_mount(m).map_err(flag_err("--mount", m))?);
    }

    let mut tmpfs = Map::new();
    for t in &opts.tmpfs {
        let (path, options) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_string(), Value::String(options.to_string()));
    }

    let (restart_name, restart_count) =
        parse_restart(opts.restart.as_deref().unwrap_or("no")).map_err(OptError::Plain)?;
    if opts.rm && !(restart_name.is_empty() || restart_name == "no") {
        return Err(OptError::Plain(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }

    let log_driver = opts.log_driver.clone().unwrap_or_default();
    let log_opts = kv_map(&opts.log_opt);
    if log_driver == "none" && !opts.log_opt.is_empty() {
        return Err(OptError::Plain(format!(
            "invalid logging opts for driver {log_driver}"
        )));
    }

    let security_opts = parse_security_opts(&opts.security_opt, read_file)?;

    let mut devices = Vec::new();
    for d in &opts.device {
        devices.push(parse_device(d).map_err(flag_err("--device", d))?);
    }

    let mut sysctls = Map::new();
    for s in &opts.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| flag_err("--sysctl", s)(format!("sysctl '{s}' is not allowed")))?;
        sysctls.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut storage_opts = Map::new();
    for s in &opts.storage_opt {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| OptError::Plain(format!("invalid storage option {s}")))?;
        storage_opts.insert(k.to_string(), Value::String(v.to_string()));
    }

    let healthcheck = parse_health(opts)?;

    let pull = match opts.pull.as_str() {
        "missing" => PullPolicy::Missing,
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        other => {
            return Err(OptError::Plain(format!(
            "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
        )))
        }
    };

    // `--entrypoint ""` clears the image's entrypoint: docker sends `[""]`.
    let entrypoint = match &opts.entrypoint {
        Some(e) => json!([e]),
        None => Value::Null,
    };
    let cmd = if command.is_empty() {
        Value::Null
    } else {
        json!(command)
    };

    let network = opts.network.clone().unwrap_or_else(|| "default".into());
    let mut endpoints = Map::new();
    if let Some(net) = &opts.network {
        let mut endpoint = Map::new();
        if !opts.network_alias.is_empty() {
            endpoint.insert("Aliases".into(), json!(opts.network_alias));
        }
        endpoints.insert(net.clone(), Value::Object(endpoint));
    }

    let mut config = Map::new();
    config.insert(
        "Hostname".into(),
        json!(opts.hostname.clone().unwrap_or_default()),
    );
    config.insert(
        "Domainname".into(),
        json!(opts.domainname.clone().unwrap_or_default()),
    );
    config.insert("User".into(), json!(opts.user.clone().unwrap_or_default()));
    config.insert("AttachStdin".into(), json!(attach_stdin));
    config.insert("AttachStdout".into(), json!(attach_stdout));
    config.insert("AttachStderr".into(), json!(attach_stderr));
    if !exposed.is_empty() {
        config.insert("ExposedPorts".into(), Value::Object(exposed));
    }
    config.insert("Tty".into(), json!(opts.tty));
    config.insert("OpenStdin".into(), json!(opts.interactive));
    // When stdin is attached, it closes with the client's (docker's "StdinOnce").
    config.insert("StdinOnce".into(), json!(opts.interactive && attach_stdin));
    config.insert("Env".into(), json!(env));
    config.insert("Cmd".into(), cmd);
    if let Some(h) = healthcheck {
        config.insert("Healthcheck".into(), h);
    }
    config.insert("Image".into(), json!(image));
    config.insert(
        "Volumes".into(),
        if volumes.is_empty() {
            Value::Null
        } else {
            Value::Object(volumes)
        },
    );
    config.insert(
        "WorkingDir".into(),
        json!(opts.workdir.clone().unwrap_or_default()),
    );
    config.insert("Entrypoint".into(), entrypoint);
    config.insert("OnBuild".into(), Value::Null);
    config.insert("Labels".into(), Value::Object(labels));
    if let Some(signal) = opts.stop_signal.as_ref().filter(|s| !s.is_empty()) {
        config.insert("StopSignal".into(), json!(signal));
    }
    if let Some(timeout) = stop_timeout {
        config.insert("StopTimeout".into(), json!(timeout));
    }

    let null_if_empty = |list: &[String]| {
        if list.is_empty() {
            Value::Null
        } else {
            json!(list)
        }
    };
    let mut host = Map::new();
    host.insert("Binds".into(), null_if_empty(&binds));
    host.insert(
        "ContainerIDFile".into(),
        json!(opts.cidfile.clone().unwrap_or_default()),
    );
    host.insert(
        "LogConfig".into(),
        json!({"Type": log_driver, "Config": log_opts}),
    );
    host.insert("NetworkMode".into(), json!(network));
    host.insert("PortBindings".into(), Value::Object(port_bindings));
    host.insert(
        "RestartPolicy".into(),
        json!({"Name": restart_name, "MaximumRetryCount": restart_count}),
    );
    host.insert("AutoRemove".into(), json!(opts.rm));
    host.insert(
        "VolumeDriver".into(),
        json!(opts.volume_driver.clone().unwrap_or_default()),
    );
    host.insert("VolumesFrom".into(), null_if_empty(&opts.volumes_from));
    host.insert("ConsoleSize".into(), json!(console_size));
    host.insert("CapAdd".into(), null_if_empty(&opts.cap_add));
    host.insert("CapDrop".into(), null_if_empty(&opts.cap_drop));
    host.insert(
        "CgroupnsMode".into(),
        json!(opts.cgroupns.clone().unwrap_or_default()),
    );
    host.insert("Dns".into(), json!(opts.dns));
    host.insert("DnsOptions".into(), json!(opts.dns_option));
    host.insert("DnsSearch".into(), json!(opts.dns_search));
    host.insert("ExtraHosts".into(), null_if_empty(&opts.add_host));
    host.insert("GroupAdd".into(), null_if_empty(&opts.group_add));
    host.insert(
        "IpcMode".into(),
        json!(opts.ipc.clone().unwrap_or_default()),
    );
    host.insert("Cgroup".into(), json!(""));
    host.insert("Links".into(), null_if_empty(&opts.link));
    host.insert("OomScoreAdj".into(), json!(oom_score_adj));
    host.insert(
        "PidMode".into(),
        json!(opts.pid.clone().unwrap_or_default()),
    );
    host.insert("Privileged".into(), json!(opts.privileged));
    host.insert("PublishAllPorts".into(), json!(opts.publish_all));
    host.insert("ReadonlyRootfs".into(), json!(opts.read_only));
    host.insert("SecurityOpt".into(), null_if_empty(&security_opts));
    if !storage_opts.is_empty() {
        host.insert("StorageOpt".into(), Value::Object(storage_opts));
    }
    if !tmpfs.is_empty() {
        host.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    host.insert(
        "UTSMode".into(),
        json!(opts.uts.clone().unwrap_or_default()),
    );
    host.insert(
        "UsernsMode".into(),
        json!(opts.userns.clone().unwrap_or_default()),
    );
    host.insert("ShmSize".into(), json!(shm_size));
    if !sysctls.is_empty() {
        host.insert("Sysctls".into(), Value::Object(sysctls));
    }
    if let Some(runtime) = opts.runtime.as_ref().filter(|r| !r.is_empty()) {
        host.insert("Runtime".into(), json!(runtime));
    }
    host.insert("CpuShares".into(), json!(cpu_shares));
    host.insert("Memory".into(), json!(memory));
    host.insert("NanoCpus".into(), json!(nano_cpus));
    host.insert(
        "CgroupParent".into(),
        json!(opts.cgroup_parent.clone().unwrap_or_default()),
    );
    host.insert("CpuPeriod".into(), json!(cpu_period));
    host.insert("CpuQuota".into(), json!(cpu_quota));
    host.insert(
        "CpusetCpus".into(),
        json!(opts.cpuset_cpus.clone().unwrap_or_default()),
    );
    host.insert(
        "CpusetMems".into(),
        json!(opts.cpuset_mems.clone().unwrap_or_default()),
    );
    host.insert("Devices".into(), json!(devices));
    host.insert("MemoryReservation".into(), json!(memory_reservation));
    host.insert("MemorySwap".into(), json!(memory_swap));
    host.insert(
        "MemorySwappiness".into(),
        if swappiness == -1 {
            Value::Null
        } else {
            json!(swappiness)
        },
    );
    host.insert("OomKillDisable".into(), json!(opts.oom_kill_disable));
    host.insert(
        "PidsLimit".into(),
        pids_limit.map_or(Value::Null, |p| json!(p)),
    );
    host.insert("Ulimits".into(), json!(ulimits));
    if !mounts.is_empty() {
        host.insert("Mounts".into(), Value::Array(mounts));
    }
    if opts.init {
        host.insert("Init".into(), json!(true));
    }

    config.insert("HostConfig".into(), Value::Object(host));
    config.insert(
        "NetworkingConfig".into(),
        json!({ "EndpointsConfig": endpoints }),
    );

    Ok(CreateRequest {
        name: opts.name.clone().filter(|n| !n.is_empty()),
        // berthd runs images of its own platform only: `--platform` is accepted
        // for docker compatibility and not sent.
        platform: None,
        image,
        cidfile: opts.cidfile.clone().filter(|c| !c.is_empty()),
        pull,
        quiet: opts.quiet,
        body: Value::Object(config),
    })
}

pub(super) fn opt_bytes(value: &Option<String>, flag: &'static str) -> Result<i64, OptError> {
    match value {
        Some(v) => ram_in_bytes(v).map_err(flag_err(flag, v)),
        None => Ok(0),
    }
}

pub(super) fn opt_int(value: &Option<String>, flag: &'static str) -> Result<Option<i64>, OptError> {
    match value {
        Some(v) => go_parse_int(v).map(Some).map_err(flag_err(flag, v)),
        None => Ok(None),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with its error wording.
pub fn go_parse_int(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing \"{s}\": {why}")
    })
}

/// The message Go's `os.Open` gives for a missing or unreadable file.
pub fn open_error(path: &str, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {path}: {why}")
}

/// docker's `RAMInBytes`: a decimal number with an optional `b`, `k`, `m`, `g`, `t`
/// or `p` suffix (any case, optionally followed by `i` and/or `b`), in binary units.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(digits_end);
    // One optional decimal point, with digits on both sides.
    let valid_number = match number.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => !number.is_empty(),
    };
    if !valid_number {
        return Err(invalid());
    }
    let size: f64 = number.parse().map_err(|_| invalid())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut chars = rest.chars().peekable();
    let multiplier: f64 = match chars.peek() {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if multiplier != 1.0 {
        chars.next();
    }
    let tail: String = chars.collect();
    // After the unit prefix: nothing, "b", "i" or "ib"; a bare "b" needs no prefix.
    let tail_ok = match tail.as_str() {
        "" | "b" => true,
        "i" | "ib" => multiplier != 1.0,
        _ => false,
    };
    if !tail_ok {
        return Err(invalid());
    }
    Ok((size * multiplier) as i64)
}

/// docker's `--cpus`: a decimal number of CPUs, as nano-CPUs; more than nine
/// decimals cannot be represented.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let invalid = || format!("failed to parse {s} as a rational number");
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let frac_trimmed = frac_part.trim_end_matches('0');
    if frac_trimmed.len() > 9 {
        return Err("value is too precise".into());
    }
    let whole: i64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| invalid())?
    };
    let frac: i64 = format!("{frac_trimmed:0<9}")
        .parse()
        .map_err(|_| invalid())?;
    let nanos = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(invalid)?;
    Ok(if negative { -nanos } else { nanos })
}

/// docker's `ParseRestartPolicy`: `NAME[:COUNT]` split, the count an integer; the
/// name is not checked (`update` leaves that to the daemon).
pub fn split_restart(policy: &str) -> Result<(String, Option<i64>), String> {
    if policy.is_empty() {
        return Ok((String::new(), None));
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if name.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let count = match count {
        "" => None,
        count => Some(count.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?),
    };
    Ok((name.to_string(), count))
}

/// `--restart no|always|unless-stopped|on-failure[:N]`, validated as the daemon
/// (and recent docker clients) do, with their wording.
pub fn parse_restart(policy: &str) -> Result<(String, i64), String> {
    let (name, count) = split_restart(policy)?;
    if name.is_empty() {
        return Ok((name, 0));
    }
    match name.as_str() {
        "no" | "always" | "unless-stopped" => {
            if count.is_some_and(|c| c != 0) {
                return Err(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                        .into(),
                );
            }
        }
        "on-failure" => {
            if count.is_some_and(|c| c < 0) {
                return Err("invalid restart policy: maximum retry count cannot be negative".into());
            }
        }
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ))
        }
    }
    Ok((name, count.unwrap_or(0)))
}

/// Resource names `--ulimit` accepts (go-units' `ulimitNameMapping`).
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]` into `{"Name","Soft","Hard"}` (hard defaults to soft).
pub fn parse_ulimit(value: &str) -> Result<Value, String> {
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {value}"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = go_parse_int(soft)?;
            (soft, soft)
        }
        [soft, hard] => {
            let hard = go_parse_int(hard)?;
            (go_parse_int(soft)?, hard)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

/// go-connections' `SplitProtoPort`: `80/udp` -> ("udp", "80"), `80` -> ("tcp", "80").
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 || parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

/// go-connections' `ParsePortRange`: `80` or `8000-8010`, 16-bit.
fn parse_port_range(ports: &str) -> Result<(u16, u16), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("strconv.ParseUint: parsing \"{p}\": invalid syntax"))
    };
    match ports.split_once('-') {
        None => {
            let p = parse(ports)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (start, end) = (parse(a)?, parse(b)?);
            if end < start {
                return Err(format!("invalid range specified for port: {ports}"));
            }
            Ok((start, end))
        }
    }
}

/// docker's `convertToStandardNotation`: `-p target=80,published=8080[,protocol=udp]`
/// becomes `8080:80/udp`.
fn convert_publish_notation(specs: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in specs {
        if !spec.contains('=') {
            out.push(spec.clone());
            continue;
        }
        let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
        for param in spec.split(',') {
            match param.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    params.insert(k, v);
                }
                _ => {
                    return Err(format!(
                        "invalid publish opts format (should be name=value but got '{param}')"
                    ))
                }
            }
        }
        let Some(target) = params.get("target") else {
            return Err(format!(
                "invalid publish opts format (should be name=value but got '{spec}')"
            ));
        };
        out.push(format!(
            "{}:{}/{}",
            params.get("published").copied().unwrap_or(""),
            target,
            params["protocol"]
        ));
    }
    Ok(out)
}

/// go-connections' `ParsePortSpecs`: `[ip:][hostPort:]containerPort[/proto]`, with
/// ranges, into `ExposedPorts` and `PortBindings`.
pub fn parse_port_specs(specs: &[String]) -> Result<PortMaps, String> {
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for raw in specs {
        let parts: Vec<&str> = raw.split(':').collect();
        let n = parts.len();
        let (ip, host_port, container_port) = match n {
            1 => (String::new(), "", parts[0]),
            2 => (String::new(), parts[0], parts[1]),
            3 => (parts[0].to_string(), parts[1], parts[2]),
            _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
        };
        let (proto, container_port) = split_proto_port(container_port);
        let mut ip = ip;
        if let Some(inner) = ip.strip_prefix('[') {
            ip = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("invalid IP address {ip}: missing ']' in address"))?
                .to_string();
        }
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address: {ip}"));
        }
        if container_port.is_empty() {
            return Err(format!("no port specified: {raw}<empty>"));
        }
        let (start, end) = parse_port_range(&container_port)
            .map_err(|_| format!("invalid containerPort: {container_port}"))?;
        let (host_start, host_end) = if host_port.is_empty() {
            (0, 0)
        } else {
            parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
        };
        if !host_port.is_empty() && (end - start) != (host_end - host_start) && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            ));
        }
        let proto = proto.to_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        for i in 0..=(end - start) {
            let port = format!("{}/{proto}", start + i);
            let mut host = String::new();
            if !host_port.is_empty() {
                host = (host_start + i).to_string();
            }
            // A single container port with a host range: the daemon picks one in it.
            if start == end && host_start != host_end {
                host = format!("{host}-{host_end}");
            }
            exposed.entry(port.clone()).or_insert_with(|| json!({}));
            bindings
                .entry(port)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("bindings hold arrays")
                .push(json!({"HostIp": ip, "HostPort": host}));
        }
    }
    Ok((exposed, bindings))
}

/// docker's `ValidateEnv`: `KEY=VAL` as is; a bare `KEY` takes the CLI's value, and
/// is left out when the CLI has none.
fn validate_env(
    value: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let (key, has_value) = match value.split_once('=') {
        Some((k, _)) => (k, true),
        None => (value, false),
    };
    if key.is_empty() {
        return Err(format!("invalid environment variable: {value}"));
    }
    if has_value {
        return Ok(Some(value.to_string()));
    }
    Ok(lookup_env(key).map(|v| format!("{key}={v}")))
}

/// docker's `ValidateLabel`: a non-empty name, the value optional.
fn validate_label(value: &str) -> Result<String, String> {
    let (key, val) = match value.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v)),
        None => (value.trim(), None),
    };
    if key.is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    Ok(match val {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    })
}

/// docker's `parseKeyValueFile` (for `--env-file` and `--label-file`): one `KEY=VAL`
/// per line, `#` comments and blank lines skipped, leading whitespace ignored. With
/// `lookup`, a bare `KEY` takes the CLI's value (and is dropped when unset);
/// without, it stays a bare `KEY`.
pub fn parse_kv_file(content: &str, lookup: Option<EnvLookup>) -> Result<Vec<String>, String> {
    const WHITESPACE: &[char] = &[' ', '\t'];
    let mut out = Vec::new();
    for (n, raw) in content.lines().enumerate() {
        let raw = if n == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        let line = raw.trim_start_matches(WHITESPACE);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (variable, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let variable = variable.trim_start_matches(WHITESPACE);
        if variable.contains(WHITESPACE) {
            return Err(format!("variable '{variable}' contains whitespaces"));
        }
        if variable.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        match (value, lookup) {
            (Some(v), _) => out.push(format!("{variable}={v}")),
            (None, Some(lookup)) => {
                if let Some(v) = lookup(variable.trim()) {
                    out.push(format!("{}={v}", variable.trim()));
                }
            }
            (None, None) => out.push(variable.to_string()),
        }
    }
    Ok(out)
}

/// `KEY=VAL` strings into a JSON object (a bare `KEY` maps to "").
fn kv_map(list: &[String]) -> Map<String, Value> {
    let mut map = Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        map.insert(k.to_string(), Value::String(v.to_string()));
    }
    map
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// docker's `--mount` (`MountOpt.Set`): comma-separated `key=value` fields into a
/// `Mount` object of the API.
pub fn parse_mount(value: &str) -> Result<Value, String> {
    let mut mount = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut volume = Map::new();
    let mut tmpfs = Map::new();
    let mut volume_labels = Map::new();
    let mut driver_opts = Map::new();
    let mut driver_name: Option<String> = None;
    for field in value.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        // A few boolean fields may stand alone, meaning true.
        let flag = |v: Option<&str>| -> Result<bool, String> {
            match v {
                None => Ok(true),
                Some(v) => go_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}")),
            }
        };
        match key.as_str() {
            "readonly" | "ro" => {
                mount.insert("ReadOnly".into(), json!(flag(val)?));
                continue;
            }
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(flag(val)?));
                continue;
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(flag(val)?));
                continue;
            }
            _ => {}
        }
        let Some(val) = val else {
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        };
        match key.as_str() {
            "type" => kind = val.to_string(),
            "source" | "src" => {
                mount.insert("Source".into(), json!(val));
            }
            "target" | "dst" | "destination" => {
                mount.insert("Target".into(), json!(val));
            }
            "consistency" => {
                mount.insert("Consistency".into(), json!(val));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val.to_lowercase()));
            }
            "bind-recursive" => {
                bind.insert("ReadOnlyNonRecursive".into(), json!(val == "readonly"));
            }
            "volume-driver" => driver_name = Some(val.to_string()),
            "volume-subpath" => {
                volume.insert("Subpath".into(), json!(val));
            }
            "volume-label" => {
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                volume_labels.insert(k.to_string(), json!(v));
            }
            "volume-opt" => {
                let (k, v) = val.split_once('=').unwrap_or((val, ""));
                driver_opts.insert(k.to_string(), json!(v));
            }
            "tmpfs-size" => {
                let size =
                    ram_in_bytes(val).map_err(|_| format!("invalid value for {key}: {val}"))?;
                tmpfs.insert("SizeBytes".into(), json!(size));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(val, 8)
                    .map_err(|_| format!("invalid value for {key}: {val}"))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !volume_labels.is_empty() {
        volume.insert("Labels".into(), Value::Object(volume_labels));
    }
    if driver_name.is_some() || !driver_opts.is_empty() {
        let mut driver = Map::new();
        driver.insert("Name".into(), json!(driver_name.unwrap_or_default()));
        if !driver_opts.is_empty() {
            driver.insert("Options".into(), Value::Object(driver_opts));
        }
        volume.insert("DriverConfig".into(), Value::Object(driver));
    }
    if !mount.contains_key("Target") {
        return Err("target is required".into());
    }
    if !volume.is_empty() && kind != "volume" {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{kind}'"
        ));
    }
    if !bind.is_empty() && kind != "bind" {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{kind}'"
        ));
    }
    if !tmpfs.is_empty() && kind != "tmpfs" {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{kind}'"
        ));
    }
    let mut out = Map::new();
    out.insert("Type".into(), json!(kind));
    for key in ["Source", "Target", "ReadOnly", "Consistency"] {
        if let Some(v) = mount.remove(key) {
            out.insert(key.into(), v);
        }
    }
    if !bind.is_empty() {
        out.insert("BindOptions".into(), Value::Object(bind));
    }
    if !volume.is_empty() {
        out.insert("VolumeOptions".into(), Value::Object(volume));
    }
    if !tmpfs.is_empty() {
        out.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(out))
}

/// docker's `parseDevice`: `host[:container][:permissions]`.
fn parse_device(value: &str) -> Result<Value, String> {
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let parts: Vec<&str> = value.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, p] if is_perms(p) => (*src, *src, *p),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, p] if is_perms(p) => (*src, *dst, *p),
        [_, _, p] => return Err(format!("bad mode specified: {p}")),
        _ => return Err(format!("invalid device specification: {value}")),
    };
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

/// docker's `parseSecurityOpts`: `key=value` (or the old `key:value`), with a
/// seccomp profile file replaced by its compacted JSON.
fn parse_security_opts(
    opts: &[String],
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<Vec<String>, OptError> {
    let mut out = Vec::new();
    for opt in opts {
        let mut split = opt.split_once('=');
        if split.is_none() && opt != "no-new-privileges" {
            split = opt.split_once(':');
        }
        let (key, value) = split.unwrap_or((opt.as_str(), ""));
        if value.is_empty() && key != "no-new-privileges" {
            return Err(OptError::Plain(format!("Invalid --security-opt: {opt:?}")));
        }
        if key == "seccomp" && value != "builtin" && value != "unconfined" {
            let content = read_file(value).map_err(|e| {
                OptError::Plain(format!("opening seccomp profile ({value}) failed: {e}"))
            })?;
            let profile: Value = serde_json::from_str(&content).map_err(|e| {
                OptError::Plain(format!(
                    "compacting json for seccomp profile ({value}) failed: {e}"
                ))
            })?;
            out.push(format!("seccomp={profile}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok(out)
}

/// The `--health-*` options into `Config.Healthcheck` (durations in nanoseconds).
fn parse_health(opts: &ContainerOpts) -> Result<Option<Value>, OptError> {
    let duration = |v: &Option<String>, flag: &'static str| -> Result<i64, OptError> {
        match v {
            Some(v) => parse_go_duration(v).map_err(flag_err(flag, v)),
            None => Ok(0),
        }
    };
    let interval = duration(&opts.health_interval, "--health-interval")?;
    let timeout = duration(&opts.health_timeout, "--health-timeout")?;
    let start_period = duration(&opts.health_start_period, "--health-start-period")?;
    let start_interval = duration(&opts.health_start_interval, "--health-start-interval")?;
    let retries = opt_int(&opts.health_retries, "--health-retries")?.unwrap_or(0);
    let cmd = opts.health_cmd.clone().unwrap_or_default();
    let have_settings = !cmd.is_empty()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if opts.no_healthcheck {
        if have_settings {
            return Err(OptError::Plain(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !have_settings {
        return Ok(None);
    }
    for (value, name) in [
        (interval, "--health-interval"),
        (timeout, "--health-timeout"),
        (retries, "--health-retries"),
        (start_period, "--health-start-period"),
        (start_interval, "--health-start-interval"),
    ] {
        if value < 0 {
            return Err(OptError::Plain(format!("{name} cannot be negative")));
        }
    }
    let test = if cmd.is_empty() {
        Value::Null
    } else {
        json!(["CMD-SHELL", cmd])
    };
    Ok(Some(json!({
        "Test": test,
        "Interval": interval,
        "Timeout": timeout,
        "StartPeriod": start_period,
        "StartInterval": start_interval,
        "Retries": retries,
    })))
}

/// Go's `time.ParseDuration`, in nanoseconds: `300ms`, `1.5h`, `2h45m`, `0`.
pub fn parse_go_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{s}\"");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            "ns" => 1f64,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(format!(
                    "time: unknown unit \"{other}\" in duration \"{s}\""
                ))
            }
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(if negative {
        -(total as i64)
    } else {
        total as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> ContainerOpts {
        ContainerOpts {
            args: args.iter().map(|s| s.to_string()).collect(),
            pull: "missing".into(),
            ..Default::default()
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn no_file(path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            path.to_string(),
        ))
    }

    fn build(o: &ContainerOpts) -> Result<CreateRequest, OptError> {
        parse(o, &no_env, &no_file, [0, 0])
    }

    #[test]
    fn memory_sizes_like_rams_in_bytes() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("32kb"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("32KiB"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("100b"), Ok(100));
        assert_eq!(ram_in_bytes("4 m"), Ok(4 << 20));
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".into()));
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes("1x").is_err());
        assert!(ram_in_bytes("1.").is_err());
        assert!(ram_in_bytes("-1").is_err());
        assert!(ram_in_bytes("1mm").is_err());
    }

    #[test]
    fn cpus_to_nano_cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.25"), Ok(250_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".5"), Ok(500_000_000));
        assert_eq!(parse_cpus("0.0000000010"), Ok(1));
        assert_eq!(
            parse_cpus("0.0000000001"),
            Err("value is too precise".into())
        );
        assert_eq!(
            parse_cpus("abc"),
            Err("failed to parse abc as a rational number".into())
        );
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no"), Ok(("no".into(), 0)));
        assert_eq!(parse_restart("always"), Ok(("always".into(), 0)));
        assert_eq!(parse_restart("on-failure:3"), Ok(("on-failure".into(), 3)));
        assert_eq!(
            parse_restart("unless-stopped"),
            Ok(("unless-stopped".into(), 0))
        );
        assert!(parse_restart("sometimes")
            .unwrap_err()
            .contains("unknown policy 'sometimes'"));
        assert!(parse_restart("on-failure:x")
            .unwrap_err()
            .contains("must be an integer"));
        assert!(parse_restart("always:2")
            .unwrap_err()
            .contains("only be used with"));
        assert!(parse_restart(":2").is_err());
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048"),
            Ok(json!({"Name": "nofile", "Soft": 1024, "Hard": 2048}))
        );
        assert_eq!(
            parse_ulimit("nproc=10"),
            Ok(json!({"Name": "nproc", "Soft": 10, "Hard": 10}))
        );
        assert_eq!(
            parse_ulimit("bogus=1"),
            Err("invalid ulimit type: bogus".into())
        );
        assert_eq!(
            parse_ulimit("nofile"),
            Err("invalid ulimit argument: nofile".into())
        );
        assert!(parse_ulimit("nofile=x")
            .unwrap_err()
            .contains("invalid syntax"));
        assert!(parse_ulimit("nofile=10:5").unwrap_err().contains("10 > 5"));
        assert!(parse_ulimit("nofile=1:2:3").is_err());
    }

    #[test]
    fn publish_specs_like_go_connections() {
        let specs =
            |s: &[&str]| parse_port_specs(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let (exposed, bindings) = specs(&["8080:80", "127.0.0.1:53:53/udp", "9000"]).unwrap();
        assert_eq!(
            Value::Object(exposed),
            json!({"80/tcp": {}, "53/udp": {}, "9000/tcp": {}})
        );
        assert_eq!(
            Value::Object(bindings),
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
                "9000/tcp": [{"HostIp": "", "HostPort": ""}],
            })
        );
        let (_, bindings) =
            specs(&["8000-8001:80-81", "[::1]:5000:5000", "3000-3005:3000"]).unwrap();
        assert_eq!(
            bindings["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8000"}])
        );
        assert_eq!(
            bindings["81/tcp"],
            json!([{"HostIp": "", "HostPort": "8001"}])
        );
        assert_eq!(
            bindings["5000/tcp"],
            json!([{"HostIp": "::1", "HostPort": "5000"}])
        );
        assert_eq!(
            bindings["3000/tcp"],
            json!([{"HostIp": "", "HostPort": "3000-3005"}])
        );
        assert_eq!(specs(&["abc"]).unwrap_err(), "invalid containerPort: abc");
        assert_eq!(specs(&["x:80"]).unwrap_err(), "invalid hostPort: x");
        assert_eq!(specs(&["80/foo"]).unwrap_err(), "invalid proto: foo");
        assert_eq!(
            specs(&["1.2.3:80:80"]).unwrap_err(),
            "invalid IP address: 1.2.3"
        );
        assert_eq!(
            specs(&["8080:"]).unwrap_err(),
            "no port specified: 8080:<empty>"
        );
        assert!(specs(&["1-2:3-5"]).unwrap_err().contains("invalid ranges"));
        assert_eq!(
            convert_publish_notation(&["target=80,published=8080,protocol=udp".into()]),
            Ok(vec!["8080:80/udp".to_string()])
        );
    }

    #[test]
    fn env_files() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let content = "\u{feff}# comment\n\n  A=1\nB = spaced \nHOME\nUNSET\nC=\n";
        assert_eq!(
            parse_kv_file(content, Some(&lookup)),
            Err("variable 'B ' contains whitespaces".into())
        );
        let content = "\u{feff}# comment\n\n  A=1\nHOME\nUNSET\nC=\nD=x=y \n";
        assert_eq!(
            parse_kv_file(content, Some(&lookup)).unwrap(),
            ["A=1", "HOME=/root", "C=", "D=x=y "]
        );
        assert_eq!(parse_kv_file("L\nM=2\n", None).unwrap(), ["L", "M=2"]);
        assert_eq!(
            parse_kv_file("=x\n", None),
            Err("no variable name on line '=x'".into())
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("-2s"), Ok(-2_000_000_000));
        assert!(parse_go_duration("10")
            .unwrap_err()
            .contains("missing unit"));
        assert!(parse_go_duration("1d")
            .unwrap_err()
            .contains("unknown unit \"d\""));
        assert!(parse_go_duration("x")
            .unwrap_err()
            .contains("invalid duration"));
    }

    #[test]
    fn mounts() {
        assert_eq!(
            parse_mount("type=bind,source=/a,target=/b,readonly,bind-propagation=rshared"),
            Ok(
                json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true,
                      "BindOptions": {"Propagation": "rshared"}})
            )
        );
        assert_eq!(
            parse_mount("src=data,dst=/data,volume-opt=o=1,volume-nocopy"),
            Ok(
                json!({"Type": "volume", "Source": "data", "Target": "/data",
                      "VolumeOptions": {"NoCopy": true,
                                        "DriverConfig": {"Name": "", "Options": {"o": "1"}}}})
            )
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777"),
            Ok(json!({"Type": "tmpfs", "Target": "/t",
                      "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}}))
        );
        assert_eq!(
            parse_mount("type=bind,src=/a"),
            Err("target is required".into())
        );
        assert!(parse_mount("dst=/a,bogus=1")
            .unwrap_err()
            .contains("unexpected key"));
        assert!(parse_mount("type=bind,dst=/a,volume-nocopy").is_err());
    }

    #[test]
    fn create_body_like_docker() {
        let mut o = opts(&["busybox", "sh", "-c", "echo hi"]);
        o.interactive = true;
        o.tty = true;
        o.name = Some("web".into());
        o.env = vec!["A=1".into(), "UNSET".into()];
        o.memory = Some("512m".into());
        o.cpus = Some("1.5".into());
        o.restart = Some("on-failure:2".into());
        o.publish = vec!["8080:80".into()];
        o.volume = vec!["/host:/ctr:ro".into(), "/anon".into()];
        o.tmpfs = vec!["/run:size=1m".into(), "/tmp".into()];
        o.entrypoint = Some(String::new());
        o.stop_timeout = Some("5".into());
        o.label = vec!["a=b".into(), "c".into()];
        o.ulimit = vec!["nofile=10:20".into()];
        o.pids_limit = Some("100".into());
        o.init = true;
        let req = build(&o).unwrap();
        let b = &req.body;
        assert_eq!(req.name.as_deref(), Some("web"));
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(b["Entrypoint"], json!([""]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["AttachStdout"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["StdinOnce"], true);
        assert_eq!(b["Tty"], true);
        assert_eq!(b["StopTimeout"], 5);
        assert_eq!(b["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        let h = &b["HostConfig"];
        assert_eq!(h["Memory"], 536_870_912);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 2})
        );
        assert_eq!(
            h["PortBindings"],
            json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
        );
        assert_eq!(h["Binds"], json!(["/host:/ctr:ro"]));
        assert_eq!(h["Tmpfs"], json!({"/run": "size=1m", "/tmp": ""}));
        assert_eq!(
            h["Ulimits"],
            json!([{"Name": "nofile", "Soft": 10, "Hard": 20}])
        );
        assert_eq!(h["PidsLimit"], 100);
        assert_eq!(h["Init"], true);
        assert_eq!(h["NetworkMode"], "default");
        assert_eq!(h["AutoRemove"], false);
    }

    #[test]
    fn create_defaults_and_errors() {
        let req = build(&opts(&["img"])).unwrap();
        assert_eq!(req.body["Cmd"], Value::Null);
        assert_eq!(req.body["Entrypoint"], Value::Null);
        assert_eq!(req.body["AttachStdin"], false);
        assert_eq!(req.body["AttachStdout"], true);
        assert_eq!(req.body["StdinOnce"], false);
        assert_eq!(
            req.body["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert!(req.body.get("StopTimeout").is_none());

        let mut o = opts(&["img"]);
        o.memory = Some("abc".into());
        assert_eq!(
            build(&o).unwrap_err().to_string(),
            "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'"
        );
        let mut o = opts(&["img"]);
        o.rm = true;
        o.restart = Some("always".into());
        assert!(build(&o)
            .unwrap_err()
            .to_string()
            .contains("--restart and --rm"));
        let mut o = opts(&["img"]);
        o.attach = vec!["stdin".into(), "STDERR".into()];
        let req = build(&o).unwrap();
        assert_eq!(
            (
                req.body["AttachStdin"].clone(),
                req.body["AttachStdout"].clone(),
                req.body["AttachStderr"].clone()
            ),
            (json!(true), json!(false), json!(true))
        );
        o.attach = vec!["bogus".into()];
        assert!(build(&o)
            .unwrap_err()
            .to_string()
            .contains("valid streams are STDIN"));
        let mut o = opts(&["img"]);
        o.env_file = vec!["/nope".into()];
        assert_eq!(
            build(&o).unwrap_err().to_string(),
            "open /nope: no such file or directory"
        );
        let mut o = opts(&["img"]);
        o.env = vec!["HOME".into()];
        let home = |k: &str| (k == "HOME").then(|| "/h".to_string());
        let req = parse(&o, &home, &no_file, [0, 0]).unwrap();
        assert_eq!(req.body["Env"], json!(["HOME=/h"]));
    }
}
