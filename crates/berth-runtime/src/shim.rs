//! berthd's side of the shim protocol: spawning a shim and talking to its socket.

use std::path::{Path, PathBuf};

use berth_shim_proto::{CreateReport, ExitStatus, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// Finds `berth-shim`: `$BERTH_SHIM`, else beside the running daemon, else on `PATH`.
pub fn shim_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTH_SHIM") {
        return PathBuf::from(path);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let beside = dir.join("berth-shim");
        if beside.exists() {
            return beside;
        }
    }
    PathBuf::from("berth-shim")
}

/// Runs `berth-shim MODE CONFIG` and returns its report. The shim detaches itself; the
/// process we spawn exits as soon as it has reported.
pub async fn spawn(mode: &str, config: &Path) -> Result<CreateReport> {
    let output = tokio::process::Command::new(shim_binary())
        .arg(mode)
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| Error::io(format!("running {}", shim_binary().display()), e))?;
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .map_err(|_| Error::Start(format!("the shim did not report: {}", text.trim())))
}

/// A connection factory for one shim's socket.
#[derive(Debug, Clone)]
pub struct ShimClient {
    socket: PathBuf,
}

impl ShimClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        ShimClient {
            socket: socket.into(),
        }
    }

    async fn open(&self, request: &Request) -> Result<BufReader<UnixStream>> {
        let mut stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            Error::io(
                format!("connecting to the shim at {}", self.socket.display()),
                e,
            )
        })?;
        let mut line = serde_json::to_vec(request).map_err(|e| Error::Internal(e.to_string()))?;
        line.push(b'\n');
        stream
            .write_all(&line)
            .await
            .map_err(|e| Error::io("talking to the shim", e))?;
        Ok(BufReader::new(stream))
    }

    async fn read_response(reader: &mut BufReader<UnixStream>) -> Result<Response> {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| Error::io("reading from the shim", e))?;
        if n == 0 {
            return Err(Error::Internal("the shim closed the connection".into()));
        }
        serde_json::from_str(line.trim())
            .map_err(|e| Error::Internal(format!("bad answer from the shim: {e}")))
    }

    /// Sends one request and returns the answer, turning `Error` answers into errors.
    pub async fn call(&self, request: Request) -> Result<Response> {
        let mut reader = self.open(&request).await?;
        match Self::read_response(&mut reader).await? {
            Response::Error { message } => Err(Error::Start(message)),
            other => Ok(other),
        }
    }

    /// Attaches to the process's stdio; the stream carries raw bytes from here on.
    pub async fn attach(
        &self,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<BufReader<UnixStream>> {
        let mut reader = self
            .open(&Request::Attach {
                stdin,
                stdout,
                stderr,
            })
            .await?;
        match Self::read_response(&mut reader).await? {
            Response::Ok => Ok(reader),
            Response::Error { message } => Err(Error::Internal(message)),
            other => Err(Error::Internal(format!(
                "unexpected answer to attach: {other:?}"
            ))),
        }
    }

    /// Waits for the process to exit.
    pub async fn wait(&self) -> Result<ExitStatus> {
        self.register_wait().await?.exited().await
    }

    /// Registers a wait now, to be collected later: a wait registered before `Start`
    /// is answered the moment the process ends, even one that ends at once.
    pub async fn register_wait(&self) -> Result<RegisteredWait> {
        Ok(RegisteredWait(self.open(&Request::Wait).await?))
    }
}

/// A `Wait` the shim has been sent; see [`ShimClient::register_wait`].
#[derive(Debug)]
pub struct RegisteredWait(BufReader<UnixStream>);

impl RegisteredWait {
    pub async fn exited(mut self) -> Result<ExitStatus> {
        match ShimClient::read_response(&mut self.0).await? {
            Response::Exited(status) => Ok(status),
            Response::Error { message } => Err(Error::Internal(message)),
            other => Err(Error::Internal(format!(
                "unexpected answer to wait: {other:?}"
            ))),
        }
    }
}
