//! Parsing the Dockerfile-style `--change` lines that `import` and `commit` accept.

use crate::error::{Error, Result};
use crate::image::ConfigChange;

/// Parses one change such as `ENV A=1`, `CMD ["sh"]` or `EXPOSE 80/tcp`.
pub fn parse_change(line: &str) -> Result<ConfigChange> {
    let line = line.trim();
    let (instruction, rest) = match line.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (line, ""),
    };
    let upper = instruction.to_ascii_uppercase();
    let need_args = |what: &str| -> Result<()> {
        if rest.is_empty() {
            Err(Error::invalid(format!(
                "{what} requires at least one argument"
            )))
        } else {
            Ok(())
        }
    };
    Ok(match upper.as_str() {
        "ENV" => {
            need_args("ENV")?;
            ConfigChange::Env(key_values(rest, "ENV")?)
        }
        "LABEL" => {
            need_args("LABEL")?;
            ConfigChange::Label(key_values(rest, "LABEL")?)
        }
        "CMD" => ConfigChange::Cmd(command(rest)?),
        "ENTRYPOINT" => ConfigChange::Entrypoint(command(rest)?),
        "WORKDIR" => {
            need_args("WORKDIR")?;
            ConfigChange::WorkingDir(rest.to_string())
        }
        "USER" => {
            need_args("USER")?;
            ConfigChange::User(rest.to_string())
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            ConfigChange::Expose(words(rest)?)
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            let paths = if rest.starts_with('[') {
                json_array(rest)?
            } else {
                words(rest)?
            };
            ConfigChange::Volume(paths)
        }
        "STOPSIGNAL" => {
            need_args("STOPSIGNAL")?;
            ConfigChange::StopSignal(rest.to_string())
        }
        "ONBUILD" => {
            need_args("ONBUILD")?;
            ConfigChange::OnBuild(rest.to_string())
        }
        _ => {
            return Err(Error::invalid(format!(
                "{instruction} is not a valid change command"
            )))
        }
    })
}

/// Exec form (`["a","b"]`) as is; shell form wrapped in `/bin/sh -c`.
fn command(rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        if let Ok(v) = json_array(rest) {
            return Ok(v);
        }
    }
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn json_array(rest: &str) -> Result<Vec<String>> {
    serde_json::from_str(rest)
        .map_err(|e| Error::invalid(format!("malformed JSON array {rest:?}: {e}")))
}

/// `K=V K2="v 2"` pairs, or the legacy `K V...` form with a single pair.
fn key_values(rest: &str, what: &str) -> Result<Vec<(String, String)>> {
    let tokens = words(rest)?;
    if !tokens.iter().any(|t| t.contains('=')) || !tokens[0].contains('=') {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::invalid(format!("{what} must have two arguments")))?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    tokens
        .into_iter()
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::invalid(format!("{what} names can not be blank: {t:?}")))
        })
        .collect()
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
pub fn words(input: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = input.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => current.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                in_word = true;
            }
            (_, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::invalid(format!("unmatched quote in {input:?}")));
    }
    if in_word {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            parse_change(r#"ENV A=1 B="two words""#).unwrap(),
            ConfigChange::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into())
            ])
        );
        assert_eq!(
            parse_change("ENV PATH /usr/bin:/bin").unwrap(),
            ConfigChange::Env(vec![("PATH".into(), "/usr/bin:/bin".into())])
        );
        assert_eq!(
            parse_change(r#"CMD ["sh", "-c", "echo hi"]"#).unwrap(),
            ConfigChange::Cmd(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            parse_change("cmd echo hi").unwrap(),
            ConfigChange::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            parse_change("EXPOSE 80 53/udp").unwrap(),
            ConfigChange::Expose(vec!["80".into(), "53/udp".into()])
        );
        assert_eq!(
            parse_change(r#"VOLUME ["/data"]"#).unwrap(),
            ConfigChange::Volume(vec!["/data".into()])
        );
        assert_eq!(
            parse_change(r#"LABEL a=b "c d"=e"#).unwrap(),
            ConfigChange::Label(vec![("a".into(), "b".into()), ("c d".into(), "e".into())])
        );
    }

    #[test]
    fn refuses_unknown_and_empty() {
        assert!(parse_change("FROM busybox")
            .unwrap_err()
            .to_string()
            .contains("not a valid change command"));
        assert!(parse_change("ENV").is_err());
        assert!(parse_change("ENV A=\"x").is_err());
    }
}
