//! Health checks: the probe a container's config (or its image's HEALTHCHECK) names,
//! run as an exec on its timer, and the verdict Docker shows as `State.Health`.
//!
//! The verdict lives in the container's state file, so it survives a daemon restart and
//! the monitor simply resumes its timer from there.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Docker's defaults for fields a healthcheck leaves at zero.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps the last five probes, each with at most 4 KiB of output.
pub const LOG_ENTRIES: usize = 5;
pub const OUTPUT_LIMIT: usize = 4096;

/// What a probe runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `CMD`: argv as given.
    Exec(Vec<String>),
    /// `CMD-SHELL`: one string for `/bin/sh -c`.
    Shell(String),
}

impl Probe {
    pub fn argv(&self) -> Vec<String> {
        match self {
            Probe::Exec(argv) => argv.clone(),
            Probe::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
        }
    }
}

/// A container's effective healthcheck, with Docker's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn duration_field(v: &Value, key: &str, default: Duration) -> Duration {
    match v[key].as_i64() {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

impl HealthConfig {
    /// Reads `Config.Healthcheck`. `None` when there is no check or it is `NONE`.
    pub fn from_config(healthcheck: &Value) -> Option<HealthConfig> {
        let test: Vec<String> = healthcheck["Test"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let probe = match test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Probe::Exec(rest.to_vec()),
            Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
                Probe::Shell(rest.join(" "))
            }
            _ => return None, // empty, NONE, or a form Docker does not run either
        };
        Some(HealthConfig {
            probe,
            interval: duration_field(healthcheck, "Interval", DEFAULT_INTERVAL),
            timeout: duration_field(healthcheck, "Timeout", DEFAULT_TIMEOUT),
            start_period: duration_field(healthcheck, "StartPeriod", Duration::ZERO),
            start_interval: duration_field(healthcheck, "StartInterval", DEFAULT_START_INTERVAL),
            retries: match healthcheck["Retries"].as_i64() {
                Some(n) if n > 0 => n as u32,
                _ => DEFAULT_RETRIES,
            },
        })
    }
}

/// Docker's checks on a healthcheck given at create.
pub fn validate(healthcheck: &Value) -> Result<(), String> {
    if !healthcheck.is_object() {
        return Ok(());
    }
    for key in ["Interval", "Timeout", "StartPeriod", "StartInterval"] {
        let n = healthcheck[key].as_i64().unwrap_or(0);
        if n != 0 && n < 1_000_000 {
            return Err(format!("{key} in Healthcheck cannot be less than 1ms"));
        }
    }
    if healthcheck["Retries"].as_i64().unwrap_or(0) < 0 {
        return Err("Retries in Healthcheck cannot be negative".into());
    }
    Ok(())
}

/// Merges the container's healthcheck with the image's as Docker does: no check of its
/// own takes the image's; an empty `Test` takes the image's test, and zero durations
/// and retries are filled from the image.
pub fn merge_with_image(own: &mut Value, image: Option<&Value>) {
    let Some(image) = image.filter(|i| i.is_object()) else {
        return;
    };
    if own.is_null() {
        *own = image.clone();
        return;
    }
    if !own.is_object() {
        return;
    }
    let own_test_empty = own["Test"].as_array().is_none_or(|t| t.is_empty());
    if own_test_empty {
        own["Test"] = image["Test"].clone();
    }
    for key in [
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        if own[key].as_i64().unwrap_or(0) == 0 && image[key].as_i64().unwrap_or(0) != 0 {
            own[key] = image[key].clone();
        }
    }
}

/// Docker's health states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's outcome, in `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    /// 0 healthy, 1 unhealthy; -1 when the probe could not run or timed out.
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "Output")]
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    #[serde(rename = "Status")]
    pub status: HealthStatus,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    #[serde(rename = "Log")]
    pub log: Vec<ProbeResult>,
}

impl Health {
    pub fn starting() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Records a probe and returns the new status if it changed. Failures inside the
    /// start period do not count while the container has not yet been healthy.
    pub fn record(
        &mut self,
        result: ProbeResult,
        retries: u32,
        in_start_period: bool,
    ) -> Option<HealthStatus> {
        let before = self.status;
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(in_start_period && self.status == HealthStatus::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(result);
        if self.log.len() > LOG_ENTRIES {
            let extra = self.log.len() - LOG_ENTRIES;
            self.log.drain(..extra);
        }
        (self.status != before).then_some(self.status)
    }
}

/// Docker's rendering of a probe timeout, e.g. "Health check exceeded timeout (2s)".
pub fn timeout_message(timeout: Duration) -> String {
    let secs = timeout.as_secs_f64();
    let shown = if secs.fract() == 0.0 {
        format!("{}s", secs as u64)
    } else if timeout < Duration::from_secs(1) {
        format!("{}ms", timeout.as_millis())
    } else {
        format!("{secs}s")
    };
    format!("Health check exceeded timeout ({shown})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(code: i32) -> ProbeResult {
        ProbeResult {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn config_forms() {
        let shell = HealthConfig::from_config(&json!({"Test": ["CMD-SHELL", "curl -f x"]}))
            .expect("shell form");
        assert_eq!(shell.probe.argv(), ["/bin/sh", "-c", "curl -f x"]);
        assert_eq!(shell.interval, Duration::from_secs(30));
        assert_eq!(shell.retries, 3);
        let exec = HealthConfig::from_config(
            &json!({"Test": ["CMD", "true"], "Interval": 1_000_000_000i64, "Retries": 5}),
        )
        .expect("exec form");
        assert_eq!(exec.probe, Probe::Exec(vec!["true".into()]));
        assert_eq!(exec.interval, Duration::from_secs(1));
        assert_eq!(exec.retries, 5);
        assert!(HealthConfig::from_config(&json!({"Test": ["NONE"]})).is_none());
        assert!(HealthConfig::from_config(&json!(null)).is_none());
        assert!(HealthConfig::from_config(&json!({"Test": []})).is_none());
    }

    #[test]
    fn validation() {
        assert!(validate(&json!({"Interval": 1_000_000})).is_ok());
        assert_eq!(
            validate(&json!({"Interval": 10})).unwrap_err(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        assert!(validate(&json!({"Retries": -1})).is_err());
    }

    #[test]
    fn merge_fills_from_image() {
        let image = json!({"Test": ["CMD", "true"], "Interval": 5, "Retries": 2});
        let mut own = Value::Null;
        merge_with_image(&mut own, Some(&image));
        assert_eq!(own, image);
        let mut own = json!({"Test": [], "Interval": 9});
        merge_with_image(&mut own, Some(&image));
        assert_eq!(own["Test"], json!(["CMD", "true"]));
        assert_eq!(own["Interval"], 9);
        assert_eq!(own["Retries"], 2);
        let mut none = json!({"Test": ["NONE"]});
        merge_with_image(&mut none, Some(&image));
        assert_eq!(none["Test"], json!(["NONE"]));
    }

    #[test]
    fn streak_and_start_period() {
        let mut h = Health::starting();
        assert_eq!(h.record(result(1), 2, true), None, "start period forgives");
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(1), 2, false), None);
        assert_eq!(h.record(result(1), 2, false), Some(HealthStatus::Unhealthy));
        assert_eq!(h.record(result(0), 2, false), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        for _ in 0..10 {
            h.record(result(0), 2, false);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        // Once healthy, a failure in the start period counts.
        let mut h = Health::starting();
        h.record(result(0), 1, true);
        assert_eq!(h.record(result(1), 1, true), Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn timeout_text() {
        assert_eq!(
            timeout_message(Duration::from_secs(2)),
            "Health check exceeded timeout (2s)"
        );
        assert_eq!(
            timeout_message(Duration::from_millis(500)),
            "Health check exceeded timeout (500ms)"
        );
    }
}
