//! What the resource command groups (`volume`, `network`) share: docker's parsing of
//! `--label`, `-o` and `--filter` values, its natural sort order, and the way its
//! `inspect` commands print what they found.

use std::cmp::Ordering;
use std::fmt::Display;

use anyhow::Result;
use serde_json::{Map, Value};

use crate::output::pretty_json;
use crate::template::Template;
use crate::ExitStatus;

/// Prints `message` to stderr as it stands and ends with `status`.
pub fn fail(status: u8, message: impl Display) -> anyhow::Error {
    eprintln!("{message}");
    ExitStatus(status).into()
}

/// A malformed flag value: which flag, what was typed, and why it is refused.
#[derive(Debug, PartialEq, Eq)]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub message: String,
}

/// A flag value refused before any request, worded as pflag does (exit status 125).
/// `command` is the command's path below `berth`, as in `volume create`.
pub fn flag_error(command: &str, error: &FlagError) -> anyhow::Error {
    fail(
        125,
        format!(
            "invalid argument \"{}\" for \"{}\" flag: {}\nSee 'berth {command} --help'.",
            error.value, error.flag, error.message
        ),
    )
}

/// `--label k=v` / `--label k` into a `Labels` map: docker's `ValidateLabel` (a
/// non-empty name, the value optional) then `ConvertKVStringsToMap`.
pub fn parse_labels(values: &[String]) -> std::result::Result<Map<String, Value>, FlagError> {
    let mut map = Map::new();
    for value in values {
        let (key, val) = value.split_once('=').unwrap_or((value.as_str(), ""));
        let key = key.trim();
        if key.is_empty() {
            return Err(FlagError {
                flag: "--label",
                value: value.clone(),
                message: format!("invalid label '{value}': empty name"),
            });
        }
        map.insert(key.to_string(), Value::String(val.to_string()));
    }
    Ok(map)
}

/// `-o k=v` into an options map: docker's `MapOpts` (split at the first `=`, a bare
/// key gets an empty value, later values win).
pub fn parse_opts(values: &[String]) -> Map<String, Value> {
    let mut map = Map::new();
    for value in values {
        let (key, val) = value.split_once('=').unwrap_or((value.as_str(), ""));
        map.insert(key.to_string(), Value::String(val.to_string()));
    }
    map
}

/// docker's `FilterOpt`: `key=value` with the key trimmed and lower-cased and the
/// value trimmed; empty values are ignored.
pub fn parse_filters(
    values: &[String],
    flag: &'static str,
) -> std::result::Result<Vec<String>, FlagError> {
    let mut out = Vec::new();
    for value in values.iter().filter(|v| !v.is_empty()) {
        let Some((key, val)) = value.split_once('=') else {
            return Err(FlagError {
                flag,
                value: value.clone(),
                message: "bad format of filter (expected name=value)".into(),
            });
        };
        out.push(format!("{}={}", key.trim().to_lowercase(), val.trim()));
    }
    Ok(out)
}

/// `sortorder.NaturalLess`, which docker sorts names and port lines with: digit runs
/// compare by value (then by fewer leading zeros), and digits sort before other bytes.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        match (x.is_ascii_digit(), y.is_ascii_digit()) {
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {
                if x != y {
                    return x.cmp(&y);
                }
                i += 1;
                j += 1;
            }
            (true, true) => {
                while i < a.len() && a[i] == b'0' {
                    i += 1;
                }
                while j < b.len() && b[j] == b'0' {
                    j += 1;
                }
                let (start_a, start_b) = (i, j);
                while i < a.len() && a[i].is_ascii_digit() {
                    i += 1;
                }
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let (na, nb) = (&a[start_a..i], &b[start_b..j]);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                if start_a != start_b {
                    return start_a.cmp(&start_b);
                }
            }
        }
    }
    // Identical so far: the one that ends first sorts first.
    a.len().cmp(&b.len())
}

/// Whether a format calls `.Label` with an argument (`{{.Label "k"}}`), which the
/// template engine answers from the `Labels` map rather than docker's string.
pub fn uses_label_method(format: &str) -> bool {
    format.match_indices(".Label").any(|(i, m)| {
        format[i + m.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// A JSON string's text, or nothing for any other value.
pub fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The `--format` of an `inspect` command, as docker's `inspect.Inspect` reads it.
pub enum InspectFormat {
    /// No format: one JSON array indented by four spaces.
    Indented,
    /// `json`: the same array on one line.
    Json,
    /// A Go template, run once per object.
    Template(Template),
}

impl InspectFormat {
    /// Reads the flag before any request is made: a template that does not parse ends
    /// the command with docker's status 64.
    pub fn parse(format: Option<&str>) -> Result<Self> {
        Ok(match format.filter(|f| !f.is_empty()) {
            None => InspectFormat::Indented,
            Some("json") => InspectFormat::Json,
            Some(f) => InspectFormat::Template(Template::parse(f).map_err(|e| fail(64, e))?),
        })
    }

    /// The text printed for the objects `found`; a template that fails on an object
    /// adds to `errors`, as docker reports it.
    pub fn render(&self, found: Vec<Value>, errors: &mut Vec<String>) -> String {
        let mut out = String::new();
        match self {
            InspectFormat::Template(template) => {
                for doc in &found {
                    match template.render(doc) {
                        Ok(text) => {
                            out.push_str(&text);
                            out.push('\n');
                        }
                        Err(e) => errors.push(format!("template parsing error: {e}")),
                    }
                }
                if out.is_empty() {
                    out.push('\n');
                }
            }
            InspectFormat::Json => {
                out.push_str(&Value::Array(found).to_string());
                out.push('\n');
            }
            InspectFormat::Indented => {
                out.push_str(&pretty_json(&Value::Array(found)));
                out.push('\n');
            }
        }
        out
    }

    /// Prints the objects found, then the errors met on the way (names not found,
    /// templates that failed), which end the command with status 1.
    pub fn finish(&self, found: Vec<Value>, mut errors: Vec<String>) -> Result<()> {
        let out = self.render(found, &mut errors);
        print!("{out}");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(fail(1, errors.join("\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labels_like_docker() {
        let map = parse_labels(&strings(&["a=b", "c", "d=e=f", " g =h", "a=z"])).unwrap();
        assert_eq!(
            Value::Object(map),
            json!({"a": "z", "c": "", "d": "e=f", "g": "h"})
        );
        assert_eq!(
            parse_labels(&strings(&["=x"])).unwrap_err(),
            FlagError {
                flag: "--label",
                value: "=x".into(),
                message: "invalid label '=x': empty name".into(),
            }
        );
        assert!(parse_labels(&[]).unwrap().is_empty());
    }

    #[test]
    fn driver_opts_like_docker() {
        let map = parse_opts(&strings(&["type=tmpfs", "o=size=100m,uid=1000", "flag"]));
        assert_eq!(
            Value::Object(map),
            json!({"type": "tmpfs", "o": "size=100m,uid=1000", "flag": ""})
        );
    }

    #[test]
    fn filters_like_docker() {
        assert_eq!(
            parse_filters(&strings(&["Dangling = true", "", "label!=a=b"]), "--filter").unwrap(),
            ["dangling=true", "label!=a=b"]
        );
        let err = parse_filters(&strings(&["nope"]), "-f, --filter").unwrap_err();
        assert_eq!(err.message, "bad format of filter (expected name=value)");
        assert_eq!(err.flag, "-f, --filter");
    }

    #[test]
    fn natural_order_like_sortorder() {
        let mut v = vec![
            "vol10", "vol2", "b", "Vol", "vol02", "a1", "a", "1x", "vol1",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["1x", "Vol", "a", "a1", "b", "vol1", "vol2", "vol02", "vol10"]
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        let mut ports = vec!["443/tcp", "80/tcp", "8080/tcp", "9/udp"];
        ports.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(ports, ["9/udp", "80/tcp", "443/tcp", "8080/tcp"]);
        // Digits before any other byte, even those below '0' in ASCII.
        assert_eq!(natural_cmp("a1", "a/"), Ordering::Less);
    }

    #[test]
    fn label_method_is_told_from_labels() {
        assert!(uses_label_method("{{.Label \"x\"}}"));
        assert!(!uses_label_method("{{.Labels}}"));
    }

    #[test]
    fn inspect_output_like_docker() {
        let docs = || vec![json!({"Name": "a"}), json!({"Name": "b"})];
        let mut errors = Vec::new();
        let indented = InspectFormat::parse(None).unwrap();
        assert_eq!(
            indented.render(docs(), &mut errors),
            "[\n    {\n        \"Name\": \"a\"\n    },\n    {\n        \"Name\": \"b\"\n    }\n]\n"
        );
        assert_eq!(indented.render(Vec::new(), &mut errors), "[]\n");
        let json = InspectFormat::parse(Some("json")).unwrap();
        assert_eq!(
            json.render(docs(), &mut errors),
            "[{\"Name\":\"a\"},{\"Name\":\"b\"}]\n"
        );
        let template = InspectFormat::parse(Some("{{.Name}}")).unwrap();
        assert_eq!(template.render(docs(), &mut errors), "a\nb\n");
        assert_eq!(template.render(Vec::new(), &mut errors), "\n");
        assert!(errors.is_empty());
    }
}
