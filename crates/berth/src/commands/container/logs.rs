//! `logs`: a container's output, raw for a TTY container and demultiplexed from
//! stdcopy frames otherwise, with docker's `--since`/`--until` time forms.

use anyhow::Result;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
use http_body_util::BodyExt;

use super::opts::parse_go_duration;
use super::stream::OutputSink;
use super::{fail, inspect_container};
use crate::cli::LogsArgs;
use crate::client::{with_query, Client};

/// docker's `GetTimestamp`: a Go duration before now (`10m`), an RFC 3339 time
/// (with or without zone, down to the hour or just a date), or a unix timestamp
/// passed through; returned as `seconds[.nanoseconds]` for the API.
pub fn get_timestamp(value: &str, now: DateTime<Local>) -> Result<String, String> {
    if value != "0" {
        if let Ok(nanos) = parse_go_duration(value) {
            let then = now - chrono::Duration::nanoseconds(nanos);
            return Ok(then.timestamp().to_string());
        }
    }
    let format = |t: DateTime<chrono::FixedOffset>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(format(t));
    }
    // Times with an offset but without seconds ("2006-01-02T15:04Z07:00").
    for layout in ["%Y-%m-%dT%H:%M%#z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(t) = DateTime::parse_from_str(&value.replace('Z', "+00:00"), layout) {
            return Ok(format(t));
        }
    }
    // Without a zone, the time is local.
    let local = |naive: NaiveDateTime| {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| format(t.fixed_offset()))
    };
    for layout in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(value, layout) {
            if let Some(t) = local(naive) {
                return Ok(t);
            }
        }
    }
    if let Some((date, hour)) = value.split_once('T') {
        if let (Ok(date), Ok(hour)) = (
            NaiveDate::parse_from_str(date, "%Y-%m-%d"),
            hour.parse::<u32>(),
        ) {
            if let Some(t) = date.and_hms_opt(hour, 0, 0).and_then(local) {
                return Ok(t);
            }
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = date.and_hms_opt(0, 0, 0).and_then(local) {
            return Ok(t);
        }
    }
    let unix = match value.split_once('.') {
        Some((s, n)) => {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
    };
    if unix && !value.contains('-') {
        return Ok(value.to_string());
    }
    Err(format!(
        "failed to parse value as time or duration: \"{value}\""
    ))
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<()> {
    let container = inspect_container(client, &args.container, false).await?;
    let id = container["Id"]
        .as_str()
        .unwrap_or(&args.container)
        .to_string();
    let tty = container["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = Local::now();
    let time = |v: &Option<String>| -> Result<String> {
        match v {
            Some(v) if !v.is_empty() => get_timestamp(v, now).map_err(fail),
            _ => Ok(String::new()),
        }
    };
    let on = |b: bool| if b { "1".to_string() } else { String::new() };
    let path = with_query(
        &format!("/containers/{id}/logs"),
        &[
            ("stdout", "1".into()),
            ("stderr", "1".into()),
            ("since", time(&args.since)?),
            ("until", time(&args.until)?),
            ("timestamps", on(args.timestamps)),
            ("follow", on(args.follow)),
            ("tail", args.tail.clone()),
            ("details", on(args.details)),
        ],
    );
    let response = client.get(&path).await?;
    let mut sink = OutputSink::new(tty);
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow::anyhow!("error reading the logs: {e}"))?;
        if let Some(data) = frame.data_ref() {
            sink.write(data)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_docker() {
        let now = Local.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(get_timestamp("10m", now).unwrap(), "1699999400");
        assert_eq!(get_timestamp("1h30m", now).unwrap(), "1699994600");
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37Z", now).unwrap(),
            "1357133017.000000000"
        );
        assert_eq!(
            get_timestamp("2013-01-02T13:23:37.5+01:00", now).unwrap(),
            "1357129417.500000000"
        );
        assert_eq!(get_timestamp("1357133017", now).unwrap(), "1357133017");
        assert_eq!(
            get_timestamp("1357133017.123", now).unwrap(),
            "1357133017.123"
        );
        assert_eq!(get_timestamp("0", now).unwrap(), "0");
        let local_date = get_timestamp("2013-01-02", now).unwrap();
        let expected = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2013, 1, 2)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            )
            .earliest()
            .unwrap()
            .timestamp();
        assert_eq!(local_date, format!("{expected}.000000000"));
        assert!(get_timestamp("2013-01-02T13", now).is_ok());
        assert_eq!(
            get_timestamp("yesterday", now).unwrap_err(),
            "failed to parse value as time or duration: \"yesterday\""
        );
    }
}
