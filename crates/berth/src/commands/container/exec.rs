//! `exec`: runs a command in a running container, attached through a hijacked
//! `POST /exec/ID/start`, and exits with the command's exit code.

use std::io::IsTerminal;

use anyhow::Result;
use serde_json::{json, Value};

use super::opts::{open_error, parse_kv_file};
use super::stream::{self, StreamEnd, StreamOptions};
use super::{exit_status, fail, inspect_container};
use crate::cli::ExecArgs;
use crate::client::{path_segment, Client, ClientError};

/// The body of `POST /containers/ID/exec`, as docker's `parseExec` builds it.
fn exec_config(
    args: &ExecArgs,
    command: &[String],
    env: Vec<String>,
    console_size: Option<[u16; 2]>,
) -> Value {
    let attach = !args.detach;
    let mut config = json!({
        "User": args.user.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "Tty": args.tty,
        "AttachStdin": attach && args.interactive,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "DetachKeys": args.detach_keys.clone().unwrap_or_default(),
        "Env": env,
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Cmd": command,
    });
    if let Some(size) = console_size {
        config["ConsoleSize"] = json!(size);
    }
    config
}

/// `--env-file` then `-e`, as for `run` (a bare `KEY` takes the CLI's value).
fn exec_env(args: &ExecArgs) -> Result<Vec<String>, String> {
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &args.env_file {
        let content = std::fs::read_to_string(file).map_err(|e| open_error(file, &e))?;
        env.extend(parse_kv_file(&content, Some(&lookup))?);
    }
    for e in &args.env {
        match e.split_once('=') {
            Some(("", _)) => return Err(format!("invalid environment variable: {e}")),
            Some(_) => env.push(e.clone()),
            None if e.is_empty() => return Err(format!("invalid environment variable: {e}")),
            None => {
                if let Ok(v) = std::env::var(e) {
                    env.push(format!("{e}={v}"));
                }
            }
        }
    }
    Ok(env)
}

pub async fn exec(client: &Client, args: ExecArgs) -> Result<()> {
    let (container, command) = args
        .args
        .split_first()
        .map(|(c, rest)| (c.clone(), rest.to_vec()))
        .ok_or_else(|| fail("\"exec\" requires at least 2 arguments."))?;
    let env = exec_env(&args).map_err(fail)?;
    // Inspect first so that "no such container" wins over any other complaint, and
    // check the TTY before creating an exec the daemon would keep around.
    inspect_container(client, &container, false).await?;
    let attach_stdin = !args.detach && args.interactive;
    if !args.detach && attach_stdin && args.tty && !std::io::stdin().is_terminal() {
        return Err(fail("the input device is not a TTY"));
    }
    let console = (args.tty && std::io::stdout().is_terminal())
        .then(stream::console_size)
        .filter(|s| *s != [0, 0]);
    let config = exec_config(&args, &command, env, console);
    let created = client
        .post_json(
            &format!("/containers/{}/exec", path_segment(&container)),
            Some(&config),
        )
        .await?;
    let exec_id = created["Id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| fail("exec ID empty"))?
        .to_string();
    let mut start = json!({"Detach": args.detach, "Tty": args.tty});
    if let Some(size) = console {
        start["ConsoleSize"] = json!(size);
    }
    let start_path = format!("/exec/{exec_id}/start");
    if args.detach {
        client.post_json(&start_path, Some(&start)).await?;
        return Ok(());
    }
    let hijacked = client.hijack(&start_path, Some(&start)).await?;
    let resize = (args.tty && std::io::stdin().is_terminal())
        .then(|| stream::monitor_tty_size(client.clone(), exec_id.clone(), true));
    let options = StreamOptions {
        tty: args.tty,
        stdin: attach_stdin,
        detach_keys: stream::detach_keys(args.detach_keys.as_deref()),
    };
    let ended = stream::stream(hijacked, options).await;
    if let Some(task) = resize {
        task.abort();
    }
    if ended? == StreamEnd::Detached {
        return Ok(());
    }
    match client.get_json(&format!("/exec/{exec_id}/json")).await {
        Ok(info) => match info["ExitCode"].as_i64().unwrap_or(0) {
            0 => Ok(()),
            code => Err(exit_status(code)),
        },
        // The daemon went away: docker reports -1 (255).
        Err(ClientError::Connect { .. }) => Err(exit_status(-1)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(detach: bool, interactive: bool, tty: bool) -> ExecArgs {
        ExecArgs {
            detach,
            detach_keys: None,
            env: vec![],
            env_file: vec![],
            interactive,
            privileged: false,
            tty,
            user: Some("1000".into()),
            workdir: None,
            args: vec!["c".into(), "sh".into()],
        }
    }

    #[test]
    fn exec_body_like_docker() {
        let body = exec_config(
            &args(false, true, true),
            &["sh".into()],
            vec!["A=1".into()],
            Some([24, 80]),
        );
        assert_eq!(
            body,
            json!({
                "User": "1000", "Privileged": false, "Tty": true,
                "AttachStdin": true, "AttachStdout": true, "AttachStderr": true,
                "DetachKeys": "", "Env": ["A=1"], "WorkingDir": "", "Cmd": ["sh"],
                "ConsoleSize": [24, 80],
            })
        );
        let body = exec_config(&args(true, true, false), &["sh".into()], vec![], None);
        assert_eq!(body["AttachStdin"], false);
        assert_eq!(body["AttachStdout"], false);
        assert!(body.get("ConsoleSize").is_none());
    }

    #[test]
    fn exec_env_rejects_empty_names() {
        let mut a = args(false, false, false);
        a.env = vec!["=x".into()];
        assert_eq!(
            exec_env(&a).unwrap_err(),
            "invalid environment variable: =x"
        );
        a.env = vec!["K=v".into(), "BERTH_SURELY_UNSET_VAR".into()];
        assert_eq!(exec_env(&a).unwrap(), ["K=v"]);
    }
}
