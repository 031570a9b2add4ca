//! `berth-shim`: the parent of one container process (or one exec'd process).
//!
//! berthd execs `berth-shim create|exec CONFIG`. The shim forks; the child detaches
//! (setsid), becomes a subreaper, creates the process through youki's libcontainer and
//! reports the result through a pipe to the first process, which prints it and exits. The
//! child then serves its socket (see `berth-shim-proto`), copies output to the json-file
//! log and to attached clients, reaps the process, records its exit, and leaves once the
//! process is gone and its output drained. It is single-threaded and has no async runtime:
//! libcontainer clones, and cloning from a threaded process is not safe.

mod cgroups;
mod confine;
mod external;
mod log;
mod probe;
mod serve;
mod spawn;
mod sys;

use std::io::{BufRead, Write};
use std::os::fd::OwnedFd;
use std::process::ExitCode;

use berth_shim_proto::{CreateReport, ShimConfig};

/// Which kind of process this shim runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The container's init process (created now, started on `Start`).
    Init,
    /// A process joining a running container (`docker exec`), started on `Start`.
    Exec,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (mode, config_path) = match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("create"), Some(path)) => (Mode::Init, path),
        (Some("exec"), Some(path)) => (Mode::Exec, path),
        _ => {
            eprintln!("usage: berth-shim create|exec CONFIG.json");
            return ExitCode::from(2);
        }
    };
    let config: ShimConfig = match std::fs::read(config_path)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            report_to_stdout(&CreateReport::Failed {
                message: format!("reading shim config {config_path}: {e}"),
            });
            return ExitCode::from(1);
        }
    };
    let (report_read, report_write) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            report_to_stdout(&CreateReport::Failed {
                message: format!("creating report pipe: {e}"),
            });
            return ExitCode::from(1);
        }
    };
    match sys::fork() {
        Err(e) => {
            report_to_stdout(&CreateReport::Failed {
                message: format!("fork: {e}"),
            });
            ExitCode::from(1)
        }
        Ok(sys::Fork::Parent) => {
            drop(report_write);
            relay_report(report_read)
        }
        Ok(sys::Fork::Child) => {
            drop(report_read);
            std::process::exit(run_detached(mode, config, report_write))
        }
    }
}

/// The first process: waits for the detached shim's report and hands it to berthd.
fn relay_report(pipe: OwnedFd) -> ExitCode {
    // One line, not EOF: the container's process inherits the pipe until it execs.
    let mut text = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(pipe)).read_line(&mut text);
    let report = serde_json::from_str::<CreateReport>(text.trim()).unwrap_or_else(|_| {
        CreateReport::Failed {
            message: format!("shim exited before reporting: {}", text.trim()),
        }
    });
    report_to_stdout(&report);
    match report {
        CreateReport::Created { .. } => ExitCode::SUCCESS,
        CreateReport::Failed { .. } => ExitCode::from(1),
    }
}

fn report_to_stdout(report: &CreateReport) {
    let mut out = std::io::stdout();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The detached shim. Returns its exit code.
fn run_detached(mode: Mode, config: ShimConfig, report: OwnedFd) -> i32 {
    let _ = sys::setsid();
    let log_path = config
        .socket
        .parent()
        .map(|d| d.join("shim.log"))
        .unwrap_or_else(|| "/dev/null".into());
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
    {
        let _ = sys::redirect_stdio(&file);
    }
    if let Ok(null) = sys::dev_null() {
        let _ = sys::dup_onto(&null, 0);
    }
    let _ = sys::set_child_subreaper();
    let mut report = std::fs::File::from(report);
    // Listen before reporting: berthd connects as soon as it reads the report.
    let _ = std::fs::remove_file(&config.socket);
    let listener = match std::os::unix::net::UnixListener::bind(&config.socket) {
        Ok(l) => l,
        Err(e) => {
            let message = format!("listening on {}: {e}", config.socket.display());
            let _ = serde_json::to_writer(&mut report, &CreateReport::Failed { message });
            let _ = report.write_all(b"\n");
            return 1;
        }
    };
    match spawn::Process::create(mode, &config) {
        Ok(process) => {
            let created = CreateReport::Created {
                pid: process.pid(),
                shim_pid: std::process::id() as i32,
            };
            let _ = serde_json::to_writer(&mut report, &created);
            let _ = report.write_all(b"\n");
            drop(report);
            serve::Shim::new(mode, config, process, listener).run();
            0
        }
        Err(message) => {
            let _ = std::fs::remove_file(&config.socket);
            eprintln!("berth-shim: {message}");
            let _ = serde_json::to_writer(&mut report, &CreateReport::Failed { message });
            let _ = report.write_all(b"\n");
            1
        }
    }
}
