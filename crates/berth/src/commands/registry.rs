//! `login` and `logout`, as docker 28 has them, and the credential prompts that
//! `pull` and `push` fall back to when a registry refuses them.
//!
//! Credentials are checked by the daemon (`POST /auth`) and kept by the CLI in
//! docker's `config.json` (see [`crate::credentials`]), so that berth and docker
//! share one login.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use anyhow::Result;
use serde_json::Value;

use super::common::fail;
use crate::cli::{LoginArgs, LogoutArgs};
use crate::client::{Client, ClientError};
use crate::credentials::{self, AuthConfig, ConfigFile, INDEX_SERVER};
use crate::output::info_note;
use crate::ExitStatus;

const REGISTER_SUGGEST: &str = "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.";
const PAT_SUGGEST: &str = "You can log in with your password or a Personal Access Token (PAT). Using a limited-scope PAT grants better security and is required for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/";

/// docker's warning once a password lands in the file in clear.
fn unencrypted_warning(path: &std::path::Path) -> String {
    format!(
        "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
         Configure a credential helper to remove this warning. See\n\
         https://docs.docker.com/go/credential-store/\n",
        path.display()
    )
}

/// The options of `login` once docker's checks have passed.
struct LoginOptions {
    server: Option<String>,
    user: String,
    password: String,
}

/// docker's `verifyLoginFlags` then `verifyLoginOptions`: refuses contradictory
/// flags, warns about `-p`, and reads the password from stdin when asked.
fn login_options(args: LoginArgs, stdin: &mut dyn Read) -> Result<LoginOptions, String> {
    let mut from_stdin = args.password_stdin;
    let mut password = args.password;
    if from_stdin && password.is_some() {
        return Err(
            "conflicting options: cannot specify both --password and --password-stdin".into(),
        );
    }
    if password.as_deref() == Some("-") {
        from_stdin = true;
        password = None;
    }
    if from_stdin && args.username.is_none() {
        return Err("the --password-stdin option requires --username to be set".into());
    }
    if args.username.as_deref() == Some("") {
        return Err("username is empty".into());
    }
    if password.as_deref() == Some("") {
        return Err("password is empty".into());
    }
    let mut password = password.unwrap_or_default();
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if from_stdin {
        let mut contents = Vec::new();
        stdin
            .read_to_end(&mut contents)
            .map_err(|e| format!("read stdin: {e}"))?;
        let contents = String::from_utf8_lossy(&contents).into_owned();
        let contents = contents.strip_suffix('\n').unwrap_or(&contents);
        password = contents.strip_suffix('\r').unwrap_or(contents).to_string();
    }
    Ok(LoginOptions {
        server: args.server,
        user: args.username.unwrap_or_default(),
        password,
    })
}

pub async fn login(client: &Client, args: LoginArgs) -> Result<()> {
    let opts = login_options(args, &mut std::io::stdin().lock()).map_err(|e| fail(1, e))?;
    if std::env::var("DOCKER_AUTH_CONFIG").is_ok_and(|v| !v.is_empty()) {
        eprintln!(
            "WARNING: DOCKER_AUTH_CONFIG is set and takes precedence.\n\
             Unset DOCKER_AUTH_CONFIG to restore the CLI auth behaviour.\n"
        );
    }
    let key = credentials::server_key(opts.server.as_deref());
    let mut config = ConfigFile::load_default();

    // Stored credentials are tried first when none were given.
    let stored = if opts.user.is_empty() && opts.password.is_empty() {
        config.get(&key).ok().flatten()
    } else {
        None
    };
    let default_user = stored
        .as_ref()
        .map(|s| s.username.clone())
        .unwrap_or_default();
    if let Some(stored) = stored.filter(|s| !s.username.is_empty() && !s.password.is_empty()) {
        if let Some(status) = login_with_stored(client, &mut config, stored).await? {
            println!("{status}");
            return Ok(());
        }
    }

    if (opts.user.is_empty() || opts.password.is_empty()) && !std::io::stdin().is_terminal() {
        return Err(fail(
            1,
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    let auth = prompt_credentials(&opts.user, &opts.password, &default_user, &key).await?;
    let response = client.post_json("/auth", Some(&auth_body(&auth))).await?;
    let status = finish_login(&mut config, auth, &response)?;
    if !status.is_empty() {
        println!("{status}");
    }
    Ok(())
}

/// The `POST /auth` body: the credentials as docker's `AuthConfig` JSON.
fn auth_body(auth: &AuthConfig) -> Value {
    serde_json::to_value(auth).expect("an AuthConfig serializes")
}

/// docker's `loginWithStoredCredentials`: the login status when the stored
/// credentials still work, `None` when they must be asked for again.
async fn login_with_stored(
    client: &Client,
    config: &mut ConfigFile,
    stored: AuthConfig,
) -> Result<Option<String>> {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "Authenticating with existing credentials...");
    if !stored.username.is_empty() {
        let _ = write!(err, " [Username: {}]", stored.username);
    }
    let _ = write!(
        err,
        "\n{}\n\n",
        info_note(
            "To login with a different account, run 'berth logout' followed by 'berth login'",
            std::io::stderr().is_terminal()
        )
    );
    drop(err);
    match client.post_json("/auth", Some(&auth_body(&stored))).await {
        Ok(response) => Ok(Some(finish_login(config, stored, &response)?)),
        Err(e) => {
            if e.is_unauthorized() {
                eprintln!("Stored credentials invalid or expired");
            } else {
                eprintln!("Login did not succeed, error: {e}");
            }
            if let ClientError::Connect { .. } = e {
                return Err(e.into());
            }
            Ok(None)
        }
    }
}

/// Keeps what the daemon accepted: its identity token in place of the password
/// when it gave one (docker's behaviour). Returns the status to print.
fn finish_login(config: &mut ConfigFile, mut auth: AuthConfig, response: &Value) -> Result<String> {
    if let Some(token) = response["IdentityToken"].as_str().filter(|t| !t.is_empty()) {
        auth.password.clear();
        auth.identity_token = token.to_string();
    }
    match config.store(&auth) {
        Ok(true) => eprintln!("{}", unencrypted_warning(config.path())),
        Ok(false) => {}
        Err(e) => return Err(fail(1, format!("Error saving credentials: {e}"))),
    }
    Ok(response["Status"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("Login Succeeded")
        .to_string())
}

pub async fn logout(args: LogoutArgs) -> Result<()> {
    let server = args.server.filter(|s| !s.is_empty());
    let (hostname, mut keys) = match &server {
        None => (INDEX_SERVER.to_string(), vec![INDEX_SERVER.to_string()]),
        Some(server) => {
            let hostname = credentials::convert_to_hostname(server);
            // Kept for files where old clients saved the address in these forms.
            let keys = vec![
                server.clone(),
                hostname.clone(),
                format!("http://{hostname}"),
                format!("https://{hostname}"),
            ];
            (hostname, keys)
        }
    };
    // `login docker.io` stores under Docker Hub's key; find it there too.
    let key = credentials::server_key(server.as_deref());
    if !keys.contains(&key) {
        keys.push(key);
    }
    keys.dedup();
    println!("Removing login credentials for {hostname}");
    let mut config = ConfigFile::load_default();
    let mut errors = Vec::new();
    for key in &keys {
        if let Err(e) = config.erase(key) {
            errors.push(format!("{key}: {e}"));
        }
    }
    if errors.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for error in errors {
            eprintln!("{error}");
        }
    }
    Ok(())
}

/// docker's `RegistryAuthenticationPrivilegedFunc`: after a registry refused the
/// stored credentials, asks for others on the terminal and returns them as an
/// `X-Registry-Auth` value. `None` when there is no terminal to ask on.
pub async fn ask_for_credentials(key: &str, command: &str) -> Result<Option<String>> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    println!("\nLogin prior to {command}:");
    let config = ConfigFile::load(&credentials::config_dir().join("config.json"));
    let stored = match config.get(key) {
        Ok(stored) => stored.unwrap_or_default(),
        Err(e) => {
            eprintln!("Unable to retrieve stored credentials for {key}, error: {e}.");
            AuthConfig::default()
        }
    };
    let auth = prompt_credentials("", "", &stored.username, key).await?;
    Ok(Some(auth.encode()))
}

/// docker's `PromptUserForCredentials`: asks for what was not given, the password
/// without echo.
async fn prompt_credentials(
    user: &str,
    password: &str,
    default_user: &str,
    key: &str,
) -> Result<AuthConfig> {
    let mut user = user.trim().to_string();
    if user.is_empty() {
        if key == INDEX_SERVER {
            println!("{REGISTER_SUGGEST}");
            if hints_enabled() {
                println!("{PAT_SUGGEST}");
                println!();
            }
        }
        let default_user = default_user.trim();
        let prompt = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = read_input(&prompt).await?;
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(fail(1, "error: username is required"));
        }
    }
    let mut password = password.to_string();
    if password.trim().is_empty() {
        let _echo_off = EchoOff::new(std::io::stdin().as_raw_fd());
        if key == INDEX_SERVER {
            let terminal = std::io::stderr().is_terminal();
            let link = if terminal {
                "\x1b[4mhttps://app.docker.com/settings\x1b[0m"
            } else {
                "https://app.docker.com/settings"
            };
            eprint!(
                "{}",
                info_note(
                    &format!(
                        "A Personal Access Token (PAT) can be used instead.\n\
                         To create a PAT, visit {link}\n\n"
                    ),
                    terminal
                )
            );
        }
        password = read_input("Password: ").await?;
        println!();
        if password.is_empty() {
            return Err(fail(1, "error: password is required"));
        }
    }
    Ok(AuthConfig {
        username: user,
        password,
        server_address: key.to_string(),
        ..AuthConfig::default()
    })
}

/// `DOCKER_CLI_HINTS` (on unless set to false).
fn hints_enabled() -> bool {
    !matches!(
        std::env::var("DOCKER_CLI_HINTS").ok().as_deref(),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False")
    )
}

/// Prints a prompt on stdout and reads one line from stdin, trimmed. ^C ends the
/// command (with the terminal's echo restored by the callers' guards).
async fn read_input(prompt: &str) -> Result<String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    tokio::select! {
        line = read => {
            let line = line
                .map_err(|e| anyhow::anyhow!("read stdin: {e}"))?
                .map_err(|e| anyhow::anyhow!("read stdin: {e}"))?;
            Ok(line.trim().to_string())
        }
        _ = tokio::signal::ctrl_c() => {
            println!();
            Err(ExitStatus(130).into())
        }
    }
}

/// Turns the terminal's echo off for as long as it lives (docker's
/// `DisableInputEcho`).
struct EchoOff {
    fd: RawFd,
    original: Option<libc::termios>,
}

impl EchoOff {
    fn new(fd: RawFd) -> EchoOff {
        // SAFETY: termios is a plain C struct for which all-zero bytes are valid.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is stdin, open for the life of the process; `original` is a
        // valid, writable termios.
        if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
            return EchoOff { fd, original: None };
        }
        let mut quiet = original;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: `fd` is open and `quiet` a valid termios from tcgetattr.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
            return EchoOff { fd, original: None };
        }
        EchoOff {
            fd,
            original: Some(original),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(original) = &self.original {
            // SAFETY: `fd` is still open and `original` the state tcgetattr gave.
            if unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, original) } != 0 {
                eprintln!(
                    "Error: failed to restore terminal state to echo input: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(user: Option<&str>, password: Option<&str>, stdin: bool) -> LoginArgs {
        LoginArgs {
            password: password.map(str::to_string),
            password_stdin: stdin,
            username: user.map(str::to_string),
            server: None,
        }
    }

    fn options(args: LoginArgs, input: &str) -> Result<(String, String), String> {
        login_options(args, &mut input.as_bytes()).map(|o| (o.user, o.password))
    }

    #[test]
    fn login_flags_like_docker() {
        assert_eq!(
            options(args(Some("me"), None, true), "s3cret\r\n"),
            Ok(("me".into(), "s3cret".into()))
        );
        // Only one line ending goes; other whitespace is part of the password.
        assert_eq!(
            options(args(Some("me"), None, true), " pw \n\n"),
            Ok(("me".into(), " pw \n".into()))
        );
        assert_eq!(
            options(args(Some("me"), Some("-"), false), "tok\n"),
            Ok(("me".into(), "tok".into()))
        );
        assert_eq!(
            options(args(Some("me"), Some("pw"), false), ""),
            Ok(("me".into(), "pw".into()))
        );
        assert_eq!(
            options(args(Some("me"), Some("pw"), true), "").unwrap_err(),
            "conflicting options: cannot specify both --password and --password-stdin"
        );
        assert_eq!(
            options(args(None, None, true), "").unwrap_err(),
            "the --password-stdin option requires --username to be set"
        );
        assert_eq!(
            options(args(Some(""), None, false), "").unwrap_err(),
            "username is empty"
        );
        assert_eq!(
            options(args(Some("me"), Some(""), false), "").unwrap_err(),
            "password is empty"
        );
    }

    #[test]
    fn stored_login_keeps_identity_token() {
        let dir = std::env::temp_dir().join(format!(
            "berth-login-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let path = dir.join("config.json");
        let mut config = ConfigFile::load(&path);
        let auth = AuthConfig {
            username: "me".into(),
            password: "pw".into(),
            server_address: "r.io".into(),
            ..AuthConfig::default()
        };
        let status = finish_login(
            &mut config,
            auth,
            &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": "tok"}),
        )
        .unwrap();
        assert_eq!(status, "Login Succeeded");
        let stored = ConfigFile::load(&path).get("r.io").unwrap().unwrap();
        assert_eq!(
            (stored.password.as_str(), stored.identity_token.as_str()),
            ("", "tok")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
