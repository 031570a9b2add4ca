//! `update`: new resource limits and restart policy for existing containers, as
//! docker's `container update` sends them (`POST /containers/{id}/update`).

use anyhow::Result;
use serde_json::{json, Value};

use super::opts::{
    flag_err, opt_bytes, opt_int, parse_cpus, ram_in_bytes, split_restart, OptError,
};
use crate::cli::UpdateArgs;
use crate::client::{path_segment, Client, ClientError};
use crate::commands::common::fail;
use crate::ExitStatus;

/// Why `update` sends nothing.
#[derive(Debug, PartialEq, Eq)]
enum UpdateError {
    /// A value its flag's parser refuses (exit status 125, pflag's wording).
    Flag(OptError),
    /// Options that parse but cannot be sent (exit status 1, as docker's RunE errors).
    Plain(String),
}

/// Go's `strconv.ParseUint(s, 10, 16)`, with its error wording, for `--blkio-weight`.
fn parse_uint16(s: &str) -> Result<u16, String> {
    let why = if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else {
        match s.parse::<u16>() {
            Ok(v) => return Ok(v),
            Err(_) => "value out of range",
        }
    };
    Err(format!("strconv.ParseUint: parsing \"{s}\": {why}"))
}

/// The body of `POST /containers/{id}/update`, as docker's CLI builds it: every
/// resource it knows, zero where no flag was given (the daemon leaves those as they
/// are), `PidsLimit` only when non-zero, and an empty restart policy unless
/// `--restart` names one.
fn update_body(args: &UpdateArgs) -> Result<Value, UpdateError> {
    let given = [
        &args.blkio_weight,
        &args.cpu_period,
        &args.cpu_quota,
        &args.cpu_rt_period,
        &args.cpu_rt_runtime,
        &args.cpu_shares,
        &args.cpus,
        &args.cpuset_cpus,
        &args.cpuset_mems,
        &args.memory,
        &args.memory_reservation,
        &args.memory_swap,
        &args.pids_limit,
        &args.restart,
    ];
    if given.iter().all(|value| value.is_none()) {
        return Err(UpdateError::Plain(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let blkio_weight = match &args.blkio_weight {
        Some(v) => {
            parse_uint16(v).map_err(|e| UpdateError::Flag(flag_err("--blkio-weight", v)(e)))?
        }
        None => 0,
    };
    let int = |value: &Option<String>, flag| {
        opt_int(value, flag)
            .map(Option::unwrap_or_default)
            .map_err(UpdateError::Flag)
    };
    let cpu_period = int(&args.cpu_period, "--cpu-period")?;
    let cpu_quota = int(&args.cpu_quota, "--cpu-quota")?;
    let cpu_rt_period = int(&args.cpu_rt_period, "--cpu-rt-period")?;
    let cpu_rt_runtime = int(&args.cpu_rt_runtime, "--cpu-rt-runtime")?;
    let cpu_shares = int(&args.cpu_shares, "-c, --cpu-shares")?;
    let pids_limit = int(&args.pids_limit, "--pids-limit")?;
    let nano_cpus = match &args.cpus {
        Some(v) => parse_cpus(v).map_err(|e| UpdateError::Flag(flag_err("--cpus", v)(e)))?,
        None => 0,
    };
    let memory = opt_bytes(&args.memory, "-m, --memory").map_err(UpdateError::Flag)?;
    let memory_reservation =
        opt_bytes(&args.memory_reservation, "--memory-reservation").map_err(UpdateError::Flag)?;
    let memory_swap = match &args.memory_swap {
        Some(v) if v == "-1" => -1,
        Some(v) => {
            ram_in_bytes(v).map_err(|e| UpdateError::Flag(flag_err("--memory-swap", v)(e)))?
        }
        None => 0,
    };
    let (restart_name, restart_count) =
        split_restart(args.restart.as_deref().unwrap_or("")).map_err(UpdateError::Plain)?;
    Ok(json!({
        "CpuShares": cpu_shares,
        "Memory": memory,
        "NanoCpus": nano_cpus,
        "BlkioWeight": blkio_weight,
        "CpuPeriod": cpu_period,
        "CpuQuota": cpu_quota,
        "CpuRealtimePeriod": cpu_rt_period,
        "CpuRealtimeRuntime": cpu_rt_runtime,
        "CpusetCpus": args.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": args.cpuset_mems.clone().unwrap_or_default(),
        "MemoryReservation": memory_reservation,
        "MemorySwap": memory_swap,
        "PidsLimit": if pids_limit != 0 { json!(pids_limit) } else { Value::Null },
        "RestartPolicy": {
            "Name": restart_name,
            "MaximumRetryCount": restart_count.unwrap_or(0),
        },
    }))
}

/// `update`: each container updated is named on stdout, then the daemon's warnings;
/// every failure is printed at the end (status 1), after all were tried.
pub async fn update(client: &Client, args: UpdateArgs, command: &str) -> Result<()> {
    let body = match update_body(&args) {
        Ok(body) => body,
        Err(UpdateError::Flag(e)) => {
            eprintln!("{e}\nSee 'berth {command} --help'.");
            return Err(ExitStatus(125).into());
        }
        Err(UpdateError::Plain(message)) => return Err(fail(1, message)),
    };
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in &args.containers {
        let path = format!("/containers/{}/update", path_segment(name));
        match client.post_json(&path, Some(&body)).await {
            Ok(response) => {
                println!("{name}");
                warnings.extend(
                    response["Warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|w| w.as_str().map(str::to_string)),
                );
            }
            Err(e @ ClientError::Daemon { .. }) => errors.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    if !warnings.is_empty() {
        println!("{}", warnings.join("\n"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(1, errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, ContainerCommand};

    fn update_args(args: &[&str]) -> UpdateArgs {
        let argv = ["berth", "update"].iter().chain(args);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Some(Command::Update(update))) => update,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn flags_become_dockers_body() {
        let body = update_body(&update_args(&[
            "-m",
            "512m",
            "--memory-swap",
            "1g",
            "--memory-reservation=256m",
            "--cpus",
            "1.5",
            "-c",
            "512",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems",
            "0",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:3",
            "--blkio-weight",
            "300",
            "web",
            "db",
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!({
                "CpuShares": 512, "Memory": 512 << 20, "NanoCpus": 1_500_000_000i64,
                "BlkioWeight": 300, "CpuPeriod": 100000, "CpuQuota": -1,
                "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
                "CpusetCpus": "0-1", "CpusetMems": "0",
                "MemoryReservation": 256 << 20, "MemorySwap": 1i64 << 30, "PidsLimit": -1,
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            })
        );
    }

    #[test]
    fn unset_flags_send_zero_values() {
        let body = update_body(&update_args(&["--memory-swap", "-1", "c1"])).unwrap();
        assert_eq!(body["MemorySwap"], -1);
        assert_eq!(body["Memory"], 0);
        assert_eq!(body["PidsLimit"], Value::Null);
        assert_eq!(
            body["RestartPolicy"],
            json!({"Name": "", "MaximumRetryCount": 0})
        );
        let body = update_body(&update_args(&["--restart", "always", "c1"])).unwrap();
        assert_eq!(
            body["RestartPolicy"],
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
        // `--pids-limit 0` means "unchanged", as docker sends it.
        let body = update_body(&update_args(&["--pids-limit", "0", "c1"])).unwrap();
        assert_eq!(body["PidsLimit"], Value::Null);
    }

    #[test]
    fn errors_like_docker() {
        assert_eq!(
            update_body(&update_args(&["c1"])).unwrap_err(),
            UpdateError::Plain("you must provide one or more flags when using this command".into())
        );
        let flag = |args: &[&str]| match update_body(&update_args(args)).unwrap_err() {
            UpdateError::Flag(e) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            flag(&["-m", "lots", "c1"]),
            "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
        );
        assert_eq!(
            flag(&["--blkio-weight", "70000", "c1"]),
            "invalid argument \"70000\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"70000\": value out of range"
        );
        assert_eq!(
            flag(&["--cpus", "one", "c1"]),
            "invalid argument \"one\" for \"--cpus\" flag: failed to parse one as a rational number"
        );
        assert_eq!(
            flag(&["-c", "x", "c1"]),
            "invalid argument \"x\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            update_body(&update_args(&["--restart", "on-failure:x", "c1"])).unwrap_err(),
            UpdateError::Plain(
                "invalid restart policy format: maximum retry count must be an integer".into()
            )
        );
        // The policy's name is the daemon's to judge, as with docker's client.
        assert!(update_body(&update_args(&["--restart", "sometimes", "c1"])).is_ok());
        assert!(Cli::try_parse_from(["berth", "update", "-m", "1g"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["berth", "container", "update", "-m", "1g", "a", "b"])
                .map(|cli| cli.command),
            Ok(Some(Command::Container(ContainerCommand::Update(UpdateArgs { containers, .. }))))
                if containers == ["a", "b"]
        ));
    }
}
