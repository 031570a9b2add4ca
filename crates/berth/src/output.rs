//! Output the way the docker CLI prints it: tab-aligned tables, human sizes and ages,
//! `--format` templates and indented JSON.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::template::{header_with_names, split_table, Template};

/// Go's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`, which docker uses for tables:
/// every cell but the last of a row is padded to its column's width plus 3, at least 10.
pub fn tabulate(rows: &[String]) -> String {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let columns = split.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in &split {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max((cell.chars().count() + 3).max(10));
            }
        }
    }
    let mut out = String::new();
    for row in &split {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// `units.HumanSizeWithPrecision(size, 3)`: decimal units, three significant digits,
/// as docker's tables show sizes.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 3)
}

/// go-units' `HumanSize`: decimal units, four significant digits, as docker prints
/// reclaimed space and the `system df` summary.
pub fn human_size4(size: f64) -> String {
    human_size_precision(size, 4)
}

/// `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits
/// (docker's progress bars use `units.HumanSize`, which is 4).
pub fn human_size_precision(size: f64, precision: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision), UNITS[unit])
}

/// Go's `%.{precision}g` for values below 1000.
fn go_g(value: f64, precision: i32) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let digits_before = if value >= 1.0 {
        (value.log10().floor() as i32) + 1
    } else {
        1
    };
    let decimals = (precision - digits_before).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `units.HumanDuration`, as in "2 weeks" of "2 weeks ago".
pub fn human_duration(seconds: i64) -> String {
    let hours_rounded = (seconds as f64 / 3600.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if seconds / 60 == 1 {
        "About a minute".into()
    } else if seconds / 60 < 60 {
        format!("{} minutes", seconds / 60)
    } else if hours_rounded == 1 {
        "About an hour".into()
    } else if hours_rounded < 48 {
        format!("{hours_rounded} hours")
    } else if hours_rounded < 24 * 7 * 2 {
        format!("{} days", hours_rounded / 24)
    } else if hours_rounded < 24 * 30 * 2 {
        format!("{} weeks", hours_rounded / 24 / 7)
    } else if hours_rounded < 24 * 365 * 2 {
        format!("{} months", hours_rounded / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// "N units ago" from a unix time.
pub fn ago(unix: i64) -> String {
    format!("{} ago", human_duration(Utc::now().timestamp() - unix))
}

/// Go's `time.Time.String()` form docker shows for CreatedAt.
pub fn go_time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// Go's `time.Time.String()` of a parsed RFC 3339 time: nanoseconds without
/// trailing zeros, then the offset and the zone's name (`UTC`, or the offset again
/// for a zone Go knows only by its offset).
pub fn go_time_string(t: DateTime<chrono::FixedOffset>) -> String {
    let nanos = t.timestamp_subsec_nanos();
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let offset = t.format("%z").to_string();
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!(
        "{}{fraction} {offset} {zone}",
        t.format("%Y-%m-%d %H:%M:%S")
    )
}

/// The 12-character id docker shows, without the algorithm.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// JSON indented with 4 spaces, as `docker inspect` prints.
pub fn pretty_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Prints rows either as the default table, or through a `--format` template
/// (`table ...` adds a header row, `json` prints each row as JSON).
pub fn print_rows(
    format: Option<&str>,
    default_table: &str,
    headers: &[(&str, &str)],
    rows: &[Value],
) -> anyhow::Result<()> {
    print!(
        "{}",
        render_rows(format, default_table, headers, rows, &[])?
    );
    Ok(())
}

/// The text `print_rows` prints, so that a caller can write it in one go (`stats`
/// redraws a whole screen at once). `methods` is empty, or holds for each row the
/// one-argument methods its template may call (see `Template::render_with_methods`).
pub fn render_rows(
    format: Option<&str>,
    default_table: &str,
    headers: &[(&str, &str)],
    rows: &[Value],
    methods: &[Value],
) -> anyhow::Result<String> {
    let format = format.filter(|f| !f.is_empty()).unwrap_or(default_table);
    let mut out = String::new();
    if format == "json" {
        for row in rows {
            out.push_str(&row.to_string());
            out.push('\n');
        }
        return Ok(out);
    }
    let (table, body) = split_table(format);
    let template = Template::parse(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut lines = Vec::new();
    if table {
        lines.push(header_with_names(&body, headers));
    }
    for (i, row) in rows.iter().enumerate() {
        let row_methods = methods.get(i).unwrap_or(&Value::Null);
        lines.push(
            template
                .render_with_methods(row, row_methods)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    if table {
        out.push_str(&tabulate(&lines));
    } else {
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// docker's `tui.Output.PrintNote`: a blank line, an "Info" header, then the message
/// with its lines aligned under the first. On a terminal the header is coloured,
/// the text italic and `--platform` bold.
pub fn info_note(message: &str, terminal: bool) -> String {
    const WIDTH: usize = 9; // " Info -> " and "i Info → " alike.
    let header = if terminal {
        "\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo → \x1b[0m\x1b[0m"
    } else {
        " Info -> "
    };
    let message = if terminal {
        message.replace("--platform", "\x1b[1m--platform\x1b[0m")
    } else {
        message.to_string()
    };
    let mut out = format!("\n{header}");
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(WIDTH));
        }
        if terminal {
            out.push_str(&format!("\x1b[3m{line}\x1b[0m"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Streams a response body to a file (written beside it, then renamed, so an
/// interrupted copy leaves nothing half-written under the name) or to stdout.
pub async fn write_body(
    response: hyper::Response<hyper::body::Incoming>,
    output: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let (mut sink, temp): (
        Box<dyn tokio::io::AsyncWrite + Unpin>,
        Option<(String, String)>,
    ) = match output {
        Some(path) => {
            let temp = format!("{path}.berth-partial");
            let file = tokio::fs::File::create(&temp)
                .await
                .map_err(|e| anyhow::anyhow!("failed to {what}: unable to create {path}: {e}"))?;
            (Box::new(file), Some((temp, path.to_string())))
        }
        None => (Box::new(tokio::io::stdout()), None),
    };
    let mut body = response.into_body();
    let result: anyhow::Result<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| anyhow::anyhow!("failed to {what}: {e}"))?;
            if let Some(data) = frame.data_ref() {
                sink.write_all(data).await?;
            }
        }
        sink.flush().await?;
        Ok(())
    }
    .await;
    match (result, temp) {
        (Ok(()), Some((temp, path))) => {
            tokio::fs::rename(&temp, &path).await?;
            Ok(())
        }
        (Err(e), Some((temp, _))) => {
            let _ = tokio::fs::remove_file(&temp).await;
            Err(e)
        }
        (result, None) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(123.0), "123B");
        assert_eq!(human_size(1234.0), "1.23kB");
        assert_eq!(human_size(4_261_296.0), "4.26MB");
        assert_eq!(human_size(10_000_000.0), "10MB");
        assert_eq!(human_size(215_400_000.0), "215MB");
        assert_eq!(human_size_precision(1_049_000.0, 4), "1.049MB");
        assert_eq!(human_size_precision(2_219_000.0, 4), "2.219MB");
        assert_eq!(human_size_precision(32_768.0, 4), "32.77kB");
    }

    #[test]
    fn go_time_strings() {
        let t = |s: &str| go_time_string(DateTime::parse_from_rfc3339(s).unwrap());
        assert_eq!(
            t("2024-01-02T03:04:05.120Z"),
            "2024-01-02 03:04:05.12 +0000 UTC"
        );
        assert_eq!(t("2024-01-02T03:04:05Z"), "2024-01-02 03:04:05 +0000 UTC");
        assert_eq!(
            t("2024-01-02T03:04:05+01:00"),
            "2024-01-02 03:04:05 +0100 +0100"
        );
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
    }

    #[test]
    fn notes_like_docker() {
        assert_eq!(
            info_note("first\nsecond", false),
            "\n Info -> first\n         second\n"
        );
        assert!(info_note("use --platform", true).contains("\x1b[1m--platform\x1b[0m"));
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let out = tabulate(&["A\tBB".into(), "CCCCCCCCCCCC\tD".into()]);
        assert_eq!(out, format!("A{}BB\nCCCCCCCCCCCC   D\n", " ".repeat(14)));
    }
}
