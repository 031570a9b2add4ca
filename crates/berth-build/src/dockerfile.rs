//! The Dockerfile parser: text in, typed stages and instructions out.
//!
//! [`parse`] works in two passes, as moby/buildkit's parser does (the classic builder
//! in `dockerd` vendors the same code, so this is also what `docker build` does
//! without BuildKit):
//!
//! 1. Lines: parser directives at the top (`# syntax=`, `# escape=`, `# check=`),
//!    comments, line continuations with the escape character (comment lines and
//!    blank lines inside a continuation are skipped) and heredoc bodies after `RUN`,
//!    `COPY` and `ADD` (also under `ONBUILD`).
//! 2. Instructions: each logical line becomes an [`Instruction`], grouped into
//!    [`Stage`]s by `FROM`; `ARG`s before the first `FROM` are meta args.
//!
//! # What is kept raw
//!
//! The parser does not expand variables: their values depend on the `ARG` and `ENV`
//! in effect at each step, which only the builder knows. Words are stored as they
//! were written, quotes and escape characters included, and the builder runs them
//! through [`crate::expand`](mod@crate::expand) (which is also what removes the quotes, as in Docker):
//!
//! - [`expand`](crate::expand::expand) each word of `FROM` (base and `--platform`, with
//!   the meta args), `ENV`, `LABEL` and `ARG` (keys and values), `COPY`/`ADD`
//!   (sources, destination and the `--from`/`--chown`/`--chmod` values), `VOLUME`,
//!   `WORKDIR`, `USER` and `STOPSIGNAL`;
//! - [`expand_words`](crate::expand::expand_words) each word of `EXPOSE` (one word
//!   may become several ports);
//! - [`expand_heredoc`](crate::expand::expand_heredoc) the body of a `COPY`/`ADD`
//!   heredoc whose [`Heredoc::expand`] is true;
//! - nothing in `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `MAINTAINER` or `HEALTHCHECK`:
//!   the shell in the container does its own expansion.
//!
//! # Where we follow today's Docker rather than the reference's text
//!
//! - An escaped escape character at the end of a line (`COPY a c:\\`) is a literal
//!   and not a line continuation (moby/buildkit#1559). The reference's Windows
//!   example still shows the older behaviour, where the next line was joined.
//! - `unknown instruction: FOO` gets Docker's suggestion when one is close:
//!   `unknown instruction: FOO (did you mean FROM?)`.
//! - Parse errors all read `dockerfile parse error on line N: ...`, except
//!   `no build stage in current context` and `file with no instructions`, which
//!   Docker prints bare.
//!
//! Where we are stricter than Docker: an `ONBUILD` trigger is parsed (Docker stores
//! its text unchecked and only fails in the downstream build), and flags Docker
//! accepts but berth does not implement (`COPY --parents`, `--exclude`,
//! `ADD --keep-git-dir`, `--unpack`) are refused as unknown flags rather than
//! silently ignored.

use crate::expand::Lexer;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape character: `\`, or `` ` `` after `# escape=``. Pass it to
    /// [`crate::expand()`] with the words of this file.
    pub escape: char,
    /// The `ARG` instructions before the first `FROM` (always [`Kind::Arg`]). Only
    /// `FROM` lines can use them, and a stage must redeclare one (`ARG NAME`) to see
    /// its value.
    pub meta_args: Vec<Instruction>,
    /// The build stages in order; there is at least one.
    pub stages: Vec<Stage>,
}

/// A build stage: a `FROM` line and the instructions after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The `AS` name, lower-cased as Docker does (`FROM x AS Build` is `build`), and
    /// checked to be `[a-z][a-z0-9-_.]*`. Never expanded.
    pub name: Option<String>,
    /// The image (or earlier stage) as written: expand it with the meta args.
    pub base: String,
    /// The `--platform` value as written: expand it with the meta args.
    pub platform: Option<String>,
    /// The line of the `FROM`, counting from 1.
    pub line: usize,
    /// The `FROM` line as written (continuations joined), e.g. `FROM golang AS build`.
    pub original: String,
    /// The instructions of the stage, in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction other than `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// The line the instruction starts on, counting from 1.
    pub line: usize,
    /// The instruction as written, continuations joined with no escape characters,
    /// e.g. `RUN echo hi && ls`; Docker prints it in `Step N/M : ...`. Heredoc bodies
    /// are not part of it (see [`Instruction::text_with_heredocs`]).
    pub original: String,
    /// What the instruction is, with its arguments.
    pub kind: Kind,
}

/// The command of `RUN`, `CMD`, `ENTRYPOINT` and `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The exec form `["executable", "arg"]`: run as is, without a shell.
    Exec(Vec<String>),
    /// The shell form: run by the stage's shell (`SHELL`, `/bin/sh -c` by default).
    /// An instruction with no arguments at all (`CMD` alone) is `Shell("")`.
    Shell(String),
}

/// A here-document attached to `RUN`, `COPY` or `ADD` (`<<EOF`, `<<-EOF`, `<<"EOF"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter with any quotes removed (`EOF` for `<<"EOF"`). For `COPY` and
    /// `ADD` it is also the name of the file created in the destination.
    pub name: String,
    /// The lines between the instruction and the delimiter, each with its line
    /// ending, exactly as written: tabs are not stripped here (see [`Heredoc::data`]).
    pub content: String,
    /// False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): then
    /// the builder must not expand variables in the body.
    pub expand: bool,
    /// `<<-EOF`: leading tabs are stripped from each line of the body, and the
    /// delimiter line may itself be indented with tabs.
    pub strip_tabs: bool,
}

/// Every instruction but `FROM` (which starts a [`Stage`]). See the module docs for
/// which words the builder must expand.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `RUN`. Its flags (`--mount`, `--network`, `--security`, `--device`) are accepted
    /// and ignored. `heredocs` are the bodies of the `<<EOF` words in a shell-form
    /// command, in order; the command text still contains the `<<EOF` words.
    Run {
        /// The command, not expanded.
        command: Command,
        /// The heredocs of a shell-form command.
        heredocs: Vec<Heredoc>,
    },
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`; `ENTRYPOINT []` is `Exec(vec![])`.
    Entrypoint(Command),
    /// `SHELL`, which must be in JSON form and not empty.
    Shell(Vec<String>),
    /// `LABEL k=v ...`: raw keys and values, quotes included (`"ACME Inc"`).
    Label(Vec<(String, String)>),
    /// `MAINTAINER`: the rest of the line.
    Maintainer(String),
    /// `EXPOSE`: raw words; expand each with `expand_words`.
    Expose(Vec<String>),
    /// `ENV k=v ...` or `ENV k v`: raw keys and values. In the `ENV k v` form the
    /// value is the whole rest of the line (`ENV ONE TWO= THREE=world` sets `ONE`).
    Env(Vec<(String, String)>),
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`.
    Add(CopySpec),
    /// `VOLUME`: JSON form or words, raw.
    Volume(Vec<String>),
    /// `USER`: the rest of the line, raw.
    User(String),
    /// `WORKDIR`: the rest of the line, raw.
    Workdir(String),
    /// `ARG name` or `ARG name=default`, several per line: raw names and defaults.
    Arg(Vec<(String, Option<String>)>),
    /// `ONBUILD`: the trigger, parsed. Its [`Instruction::original`] has `ONBUILD`
    /// removed; [`Instruction::text_with_heredocs`] gives what the image records.
    Onbuild(Box<Instruction>),
    /// `STOPSIGNAL`: the rest of the line, raw.
    Stopsignal(String),
    /// `HEALTHCHECK`; `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Healthcheck>),
}

/// The arguments of `COPY` and `ADD`, raw (expand each word; see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// The sources, without the heredoc words (those are in `heredocs`).
    pub sources: Vec<String>,
    /// The destination.
    pub dest: String,
    /// `COPY --from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link` (`--link=false` is false).
    pub link: bool,
    /// `ADD --checksum=`.
    pub checksum: Option<String>,
    /// Inline files: one per `<<EOF` source, named after its delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK [OPTIONS] CMD ...`. The durations are Go durations (`30s`, `1m30s`),
/// already checked; [`go_duration_nanos`] turns one into nanoseconds for the image
/// config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The command: exec form is Docker's `["CMD", ...]`, shell form `["CMD-SHELL", s]`.
    pub test: Command,
    /// `--interval=`.
    pub interval: Option<String>,
    /// `--timeout=`.
    pub timeout: Option<String>,
    /// `--start-period=`.
    pub start_period: Option<String>,
    /// `--start-interval=`.
    pub start_interval: Option<String>,
    /// `--retries=`, at least 1.
    pub retries: Option<u32>,
}

/// Why a Dockerfile could not be parsed, worded as Docker words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A malformed instruction or directive, e.g. `dockerfile parse error on line 3:
    /// unknown instruction: FOO`.
    #[error("dockerfile parse error on line {line}: {message}")]
    Syntax {
        /// The line the instruction starts on.
        line: usize,
        /// Docker's message, e.g. `ENV names can not be blank`.
        message: String,
    },
    /// Nothing but comments and blank lines.
    #[error("file with no instructions")]
    Empty,
    /// An instruction other than `ARG` before the first `FROM` (`line` is its line),
    /// or no `FROM` at all (`line` is `None`).
    #[error("no build stage in current context")]
    NoBuildStage {
        /// The line of the offending instruction, if there is one.
        line: Option<usize>,
    },
}

impl ParseError {
    /// The line the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Syntax { line, .. } => Some(*line),
            ParseError::Empty => None,
            ParseError::NoBuildStage { line } => *line,
        }
    }
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, ParseError>;

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let (escape, logical) = scan_lines(text)?;
    if logical.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in &logical {
        match parse_logical(line, escape)? {
            Parsed::From(stage) => stages.push(stage),
            Parsed::Instruction(instruction) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(instruction),
                None if matches!(instruction.kind, Kind::Arg(_)) => meta_args.push(instruction),
                None => {
                    return Err(ParseError::NoBuildStage {
                        line: Some(instruction.line),
                    })
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(ParseError::NoBuildStage { line: None });
    }
    Ok(Dockerfile {
        escape,
        meta_args,
        stages,
    })
}

/// Parses instructions that are not a whole Dockerfile: the `ONBUILD` triggers of a
/// base image, one per line as the image config lists them (Docker joins them with
/// newlines and parses them with the default escape character). `FROM` is refused.
pub fn parse_instructions(text: &str) -> Result<Vec<Instruction>> {
    let (escape, logical) = scan_lines(text)?;
    let mut out = Vec::new();
    for line in &logical {
        match parse_logical(line, escape)? {
            Parsed::Instruction(instruction) => out.push(instruction),
            Parsed::From(stage) => {
                return Err(syntax(
                    stage.line,
                    "FROM isn't allowed as an ONBUILD trigger".to_string(),
                ))
            }
        }
    }
    Ok(out)
}

impl Instruction {
    /// The instruction as written with its heredoc bodies after it, which is how
    /// Docker records an `ONBUILD` trigger in the image (`Config.OnBuild`): use it on
    /// the inner instruction of [`Kind::Onbuild`].
    pub fn text_with_heredocs(&self) -> String {
        let mut text = self.original.clone();
        let heredocs = match &self.kind {
            Kind::Run { heredocs, .. } => heredocs.as_slice(),
            Kind::Copy(spec) | Kind::Add(spec) => spec.heredocs.as_slice(),
            _ => &[],
        };
        for heredoc in heredocs {
            text.push('\n');
            text.push_str(&heredoc.content);
            text.push_str(&heredoc.name);
        }
        text
    }
}

impl Kind {
    /// The instruction's name in capitals, e.g. `RUN`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Run { .. } => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell(_) => "SHELL",
            Kind::Label(_) => "LABEL",
            Kind::Maintainer(_) => "MAINTAINER",
            Kind::Expose(_) => "EXPOSE",
            Kind::Env(_) => "ENV",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Volume(_) => "VOLUME",
            Kind::User(_) => "USER",
            Kind::Workdir(_) => "WORKDIR",
            Kind::Arg(_) => "ARG",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Stopsignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

impl Heredoc {
    /// The body as the file or script should contain it: with `<<-` the leading tabs
    /// of every line removed, otherwise [`Heredoc::content`] unchanged.
    pub fn data(&self) -> String {
        if !self.strip_tabs {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|line| line.trim_start_matches('\t'))
            .collect()
    }
}

fn syntax(line: usize, message: String) -> ParseError {
    ParseError::Syntax { line, message }
}

// ---------------------------------------------------------------------------------
// Pass 1: lines.

/// One instruction's text, continuations joined, with the heredoc bodies after it.
struct Logical {
    line: usize,
    text: String,
    heredocs: Vec<Heredoc>,
}

/// Parser directives: only at the very top, each at most once.
struct Directives {
    escape: char,
    /// Set by the first line that is not a directive; after that, `# escape=` is a
    /// comment like any other.
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    fn check(&mut self, line: &str, number: usize) -> Result<()> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(syntax(
                number,
                format!("only one {key} parser directive can be used"),
            ));
        }
        if key == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(syntax(
                        number,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ))
                }
            };
        }
        self.seen.push(key);
        Ok(())
    }
}

/// Go's `\s` in the directive regexp: ASCII whitespace only.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{c}' | '\r')
}

/// Matches `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, Docker's directive syntax.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_re_space);
    let key_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let tail = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = tail.trim_matches(is_re_space);
    if !value.is_empty() {
        return Some((key.to_string(), value.to_string()));
    }
    // `.+?` needs a character: with only whitespace after `=`, the regexp gives it
    // the last one.
    let last = tail.chars().last()?;
    Some((key.to_string(), last.to_string()))
}

/// Removes the line ending (`\n`, `\r\n`) as Go's `bytes.TrimRight(s, "\r\n")` does.
fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Is this a comment line? Leading whitespace before `#` is allowed.
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a line continuation: the escape character as the last character but
/// spaces and tabs. Returns the line and whether the instruction ends here. An
/// escaped escape character (`c:\\`) is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let stripped = line.trim_end_matches([' ', '\t']);
    if let Some(before) = stripped.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

fn scan_lines(text: &str) -> Result<(char, Vec<Logical>)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut directives = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let mut out = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let number = next + 1;
        let mut raw = trim_newline(lines[next]);
        if next == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        next += 1;

        // Leading whitespace before an instruction or a comment is ignored.
        let token = raw.trim_start();
        directives.check(token, number)?;
        let token = if token.starts_with('#') { "" } else { token };
        let (mut line, mut end) = trim_continuation(token, directives.escape);
        if end && line.is_empty() {
            continue;
        }
        let start = number;
        while !end && next < lines.len() {
            let raw = trim_newline(lines[next]);
            next += 1;
            // Comment lines and blank lines do not end a continuation; Docker only
            // warns about the blank ones. Whitespace at the start of a continued
            // line is kept.
            if is_comment(raw) || raw.trim_start().is_empty() {
                continue;
            }
            let (continued, last) = trim_continuation(raw, directives.escape);
            line.push_str(&continued);
            end = last;
        }

        let mut heredocs = Vec::new();
        for mut heredoc in heredoc_headers(&line).map_err(|message| syntax(start, message))? {
            let mut terminated = false;
            while next < lines.len() {
                let raw = lines[next];
                next += 1;
                let mut candidate = trim_newline(raw);
                if heredoc.strip_tabs {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == heredoc.name {
                    terminated = true;
                    break;
                }
                heredoc.content.push_str(raw);
            }
            if !terminated {
                return Err(syntax(start, "unterminated heredoc".to_string()));
            }
            heredocs.push(heredoc);
        }
        out.push(Logical {
            line: start,
            text: line,
            heredocs,
        });
    }
    Ok((directives.escape, out))
}

/// Whether a line takes heredocs: shell-form `RUN`, `COPY` and `ADD`, also as an
/// `ONBUILD` trigger.
fn can_contain_heredoc(line: &str) -> bool {
    let (command, _, rest) = split_command(line);
    let (command, rest) = if command.eq_ignore_ascii_case("onbuild") {
        if rest.is_empty() {
            return false;
        }
        let (inner, _, inner_rest) = split_command(&rest);
        (inner, inner_rest)
    } else {
        (command, rest)
    };
    matches!(command.to_lowercase().as_str(), "run" | "copy" | "add")
        && !matches!(parse_json(&rest), Ok(Some(_)))
}

/// The heredocs a line opens, in order, with empty bodies. Like buildkit, the whole
/// line is split into shell words with quotes and escapes kept, and each word that
/// looks like `<<EOF`, `<<-EOF` or `2<<EOF` opens one.
fn heredoc_headers(line: &str) -> std::result::Result<Vec<Heredoc>, String> {
    if !can_contain_heredoc(line) {
        return Ok(Vec::new());
    }
    let lookup = |_: &str| None;
    let mut lexer = Lexer::new('\\', &lookup);
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    lexer.skip_unset = true;
    // A line the lexer cannot split (an unmatched quote) has no heredocs.
    let words = lexer
        .process(line)
        .map(|(_, words)| words)
        .unwrap_or_default();
    let mut out = Vec::new();
    for word in words {
        if let Some(heredoc) = parse_heredoc(&word)? {
            out.push(heredoc);
        }
    }
    Ok(out)
}

/// Parses one word as a heredoc opener (`^(\d*)<<(-?)\s*([^<]*)$`).
fn parse_heredoc(word: &str) -> std::result::Result<Option<Heredoc>, String> {
    let Some(rest) = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")
    else {
        return Ok(None);
    };
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lookup = |_: &str| None;
    let mut lexer = Lexer::new('\\', &lookup);
    lexer.skip_unset = true;
    let (_, words) = lexer.process(rest).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    // The delimiter is "quoted" (no expansion) when processing it with and without
    // keeping quotes gives a different number of quote characters.
    lexer.raw_quotes = true;
    let (_, raw_words) = lexer.process(rest).map_err(|e| e.to_string())?;
    if raw_words.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let name = words.into_iter().next().unwrap_or_default();
    let expand = quotes(&name) == quotes(&raw_words[0]);
    Ok(Some(Heredoc {
        name,
        content: String::new(),
        expand,
        strip_tabs,
    }))
}

// ---------------------------------------------------------------------------------
// Pass 2: instructions.

enum Parsed {
    From(Stage),
    Instruction(Instruction),
}

/// The separators of buildkit's `[\t\v\f\r ]+`.
fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits a line into the instruction name as written, its `--flags` and the rest.
fn split_command(line: &str) -> (String, Vec<String>, String) {
    let trimmed = line.trim();
    match trimmed.find(is_token_space) {
        None => (trimmed.to_string(), Vec::new(), String::new()),
        Some(at) => {
            let (command, after) = trimmed.split_at(at);
            let (rest, flags) = extract_flags(after.trim_start_matches(is_token_space));
            (command.to_string(), flags, rest.trim().to_string())
        }
    }
}

/// Takes the leading `--flag[=value]` words off `line` (quotes and `\` processed in
/// them); a bare `--` ends the flags and is dropped. Returns the rest and the flags.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let rest_from = |p: usize| line[chars[p].0..].to_string();
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut p = 0;
    loop {
        let at_end = p == n;
        let mut ch = if at_end { '\0' } else { chars[p].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                p += 1;
                continue;
            }
            // Flags stop at the first word that does not start with `--`.
            if ch != '-' || p + 1 == n || chars[p + 1].1 != '-' {
                return (rest_from(p), flags);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                flags.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(p), flags);
                }
                if blank_ok || !word.is_empty() {
                    flags.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                p += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                p += 1;
                continue;
            }
            if ch == '\\' {
                if p + 1 == n {
                    p += 1;
                    continue;
                }
                p += 1;
                ch = chars[p].1;
            }
            word.push(ch);
            p += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
            p += 1;
            continue;
        }
        if ch == '\\' {
            if p + 1 == n {
                phase = Phase::Word;
                p += 1;
                continue;
            }
            p += 1;
            ch = chars[p].1;
        }
        word.push(ch);
        p += 1;
    }
    (String::new(), flags)
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

/// Parsed `--flags`: booleans are stored as `"true"`/`"false"`.
struct Flags(Vec<(&'static str, Vec<String>)>);

impl Flags {
    /// Checks `args` against the flags an instruction takes, as buildkit's `BFlags`.
    fn parse(
        args: &[String],
        known: &[(&'static str, FlagType)],
    ) -> std::result::Result<Flags, String> {
        let mut values: Vec<(&'static str, Vec<String>)> = Vec::new();
        for arg in args {
            let Some(arg) = arg.strip_prefix("--") else {
                return Err(format!("Arg should start with -- : {arg}"));
            };
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (arg, None),
            };
            let Some(&(name, kind)) = known.iter().find(|(known, _)| *known == name) else {
                return Err(format!("Unknown flag: {name}"));
            };
            let seen = values.iter().position(|(n, _)| *n == name);
            if seen.is_some() && kind != FlagType::Strings {
                return Err(format!("Duplicate flag specified: {name}"));
            }
            let value = match (kind, value) {
                (FlagType::Bool, None) => "true".to_string(),
                (FlagType::Bool, Some("")) => {
                    return Err(format!("Missing a value on flag: {name}"))
                }
                (FlagType::Bool, Some(v)) => match v.to_lowercase().as_str() {
                    "true" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => return Err(format!("Expecting boolean value for flag {name}, not: {v}")),
                },
                (_, None) => return Err(format!("Missing a value on flag: {name}")),
                (_, Some(v)) => v.to_string(),
            };
            match seen {
                Some(i) => values[i].1.push(value),
                None => values.push((name, vec![value])),
            }
        }
        Ok(Flags(values))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.last().cloned())
    }

    fn is_true(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// The exec form: the rest of the line starts with a JSON array of strings. Like Go's
/// `json.Decoder`, only the first JSON value is read and anything after it ignored.
/// `Ok(None)` means "not JSON", which makes it the shell form; an array holding
/// anything but strings is an error.
fn parse_json(rest: &str) -> std::result::Result<Option<Vec<String>>, ()> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = values.next() else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}

/// `RUN`, `CMD`, `ENTRYPOINT`: exec form if the rest is a JSON array of strings.
fn maybe_json(rest: &str) -> std::result::Result<Command, String> {
    if rest.is_empty() {
        return Ok(Command::Shell(String::new()));
    }
    match parse_json(rest) {
        Ok(Some(args)) => Ok(Command::Exec(args)),
        Ok(None) => Ok(Command::Shell(rest.to_string())),
        Err(()) => Err(NOT_STRING_ARRAY.to_string()),
    }
}

/// Splits on runs of `[\t\v\f\r ]`, as buildkit does for `FROM`, `EXPOSE` and the
/// word form of `COPY`, `ADD` and `VOLUME`. No quote processing: that is for the
/// builder's expansion.
fn split_words(rest: &str) -> Vec<String> {
    rest.split(is_token_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `COPY`, `ADD`, `VOLUME`: a JSON array of strings or whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> std::result::Result<Vec<String>, String> {
    match parse_json(rest) {
        Ok(Some(args)) => Ok(args),
        Ok(None) => Ok(split_words(rest)),
        Err(()) => Err(NOT_STRING_ARRAY.to_string()),
    }
}

/// Splits `ENV`/`LABEL`/`ARG` arguments into words on unquoted whitespace, keeping
/// the quotes and escapes in the words (buildkit's `parseWords`).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut p = 0;
    loop {
        let at_end = p == n;
        let mut ch = if at_end { '\0' } else { chars[p] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                p += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                p += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if p + 1 == n {
                    // An escape at the very end is dropped.
                    p += 1;
                    continue;
                }
                // Outside quotes an escape and its character are both kept, even
                // when the character is a quote.
                word.push(ch);
                p += 1;
                ch = chars[p];
            }
            word.push(ch);
            p += 1;
            continue;
        }
        // In quotes: the escape escapes nothing inside single quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if p + 1 == n {
                phase = Phase::Word;
                p += 1;
                continue;
            }
            word.push(ch);
            p += 1;
            ch = chars[p];
        }
        word.push(ch);
        p += 1;
    }
    words
}

/// `ENV` and `LABEL`: `k=v ...`, or the old `k v` where the value is the rest of the
/// line (chosen by whether the first word has a `=`).
fn parse_name_values(
    rest: &str,
    command: &str,
    escape: char,
) -> std::result::Result<Vec<(String, String)>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{command} requires at least one argument"));
    };
    let pairs = if !first.contains('=') {
        match rest.find(is_token_space) {
            None => return Err(format!("{command} must have two arguments")),
            Some(at) => {
                let (key, value) = rest.split_at(at);
                vec![(
                    key.to_string(),
                    value.trim_start_matches(is_token_space).to_string(),
                )]
            }
        }
    } else {
        let mut pairs = Vec::new();
        for word in &words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!(
                    "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                ));
            };
            pairs.push((key.to_string(), value.to_string()));
        }
        pairs
    };
    if pairs.iter().any(|(key, _)| key.is_empty()) {
        return Err(format!("{command} names can not be blank"));
    }
    Ok(pairs)
}

fn parse_logical(logical: &Logical, escape: char) -> Result<Parsed> {
    let err = |message: String| syntax(logical.line, message);
    let original = logical.text.trim().to_string();
    let (command, flags, rest) = split_command(&logical.text);
    if command.eq_ignore_ascii_case("from") {
        return parse_from(logical.line, original, &flags, &rest)
            .map(Parsed::From)
            .map_err(err);
    }
    let kind = parse_kind(&command, &flags, &rest, &original, logical, escape).map_err(err)?;
    Ok(Parsed::Instruction(Instruction {
        line: logical.line,
        original,
        kind,
    }))
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` once lower-cased.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn parse_from(
    line: usize,
    original: String,
    flags: &[String],
    rest: &str,
) -> std::result::Result<Stage, String> {
    let args = split_words(rest);
    let name = match args.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err("FROM requires either one or three arguments".to_string()),
    };
    let flags = Flags::parse(flags, &[("platform", FlagType::String)])?;
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform: flags.string("platform"),
        line,
        original,
        instructions: Vec::new(),
    })
}

fn exactly_one(command: &str, rest: &str) -> std::result::Result<String, String> {
    if rest.is_empty() {
        return Err(format!("{command} requires exactly one argument"));
    }
    Ok(rest.to_string())
}

fn no_flags(flags: &[String]) -> std::result::Result<(), String> {
    Flags::parse(flags, &[]).map(|_| ())
}

fn parse_kind(
    command: &str,
    flags: &[String],
    rest: &str,
    original: &str,
    logical: &Logical,
    escape: char,
) -> std::result::Result<Kind, String> {
    let lower = command.to_lowercase();
    Ok(match lower.as_str() {
        "run" => {
            // Accepted so that BuildKit-era Dockerfiles parse; the classic builder
            // has no use for them.
            Flags::parse(
                flags,
                &[
                    ("mount", FlagType::Strings),
                    ("network", FlagType::String),
                    ("security", FlagType::String),
                    ("device", FlagType::Strings),
                ],
            )?;
            let command = maybe_json(rest)?;
            let heredocs = match command {
                Command::Exec(_) => Vec::new(),
                Command::Shell(_) => logical.heredocs.clone(),
            };
            Kind::Run { command, heredocs }
        }
        "cmd" => {
            no_flags(flags)?;
            Kind::Cmd(maybe_json(rest)?)
        }
        "entrypoint" => {
            no_flags(flags)?;
            Kind::Entrypoint(maybe_json(rest)?)
        }
        "shell" => {
            no_flags(flags)?;
            match maybe_json(rest)? {
                Command::Exec(args) if !args.is_empty() => Kind::Shell(args),
                Command::Shell(s) if !s.is_empty() => {
                    return Err("SHELL requires the arguments to be in JSON form".to_string())
                }
                _ => return Err("SHELL requires at least one argument".to_string()),
            }
        }
        "env" => {
            let pairs = parse_name_values(rest, "ENV", escape)?;
            no_flags(flags)?;
            Kind::Env(pairs)
        }
        "label" => {
            let pairs = parse_name_values(rest, "LABEL", escape)?;
            no_flags(flags)?;
            Kind::Label(pairs)
        }
        "maintainer" => {
            let value = exactly_one("MAINTAINER", rest)?;
            no_flags(flags)?;
            Kind::Maintainer(value)
        }
        "expose" => {
            let ports = split_words(rest);
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument".to_string());
            }
            no_flags(flags)?;
            Kind::Expose(ports)
        }
        "copy" | "add" => parse_copy(&lower, flags, rest, logical)?,
        "volume" => {
            let volumes = maybe_json_to_list(rest)?;
            if volumes.is_empty() {
                return Err("VOLUME requires at least one argument".to_string());
            }
            no_flags(flags)?;
            let mut out = Vec::new();
            for volume in volumes {
                let volume = volume.trim();
                if volume.is_empty() {
                    return Err("VOLUME specified can not be an empty string".to_string());
                }
                out.push(volume.to_string());
            }
            Kind::Volume(out)
        }
        "user" => {
            let value = exactly_one("USER", rest)?;
            no_flags(flags)?;
            Kind::User(value)
        }
        "workdir" => {
            let value = exactly_one("WORKDIR", rest)?;
            no_flags(flags)?;
            Kind::Workdir(value)
        }
        "stopsignal" => {
            let value = exactly_one("STOPSIGNAL", rest)?;
            no_flags(flags)?;
            Kind::Stopsignal(value)
        }
        "arg" => {
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err("ARG requires at least one argument".to_string());
            }
            no_flags(flags)?;
            let mut args = Vec::new();
            for word in words {
                match word.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".to_string()),
                    Some((name, value)) => args.push((name.to_string(), Some(value.to_string()))),
                    None => args.push((word, None)),
                }
            }
            Kind::Arg(args)
        }
        "onbuild" => parse_onbuild(flags, rest, original, logical, escape)?,
        "healthcheck" => parse_healthcheck(flags, rest)?,
        _ => return Err(unknown_instruction(command)),
    })
}

fn parse_copy(
    command: &str,
    flags: &[String],
    rest: &str,
    logical: &Logical,
) -> std::result::Result<Kind, String> {
    let upper = command.to_uppercase();
    let mut args = maybe_json_to_list(rest)?;
    if args.len() < 2 {
        return Err(format!(
            "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let known: &[(&'static str, FlagType)] = if command == "add" {
        &[
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("checksum", FlagType::String),
        ]
    } else {
        &[
            ("from", FlagType::String),
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
        ]
    };
    let flags = Flags::parse(flags, known)?;
    let dest = args.pop().unwrap_or_default();
    // Like buildkit's `MustParseHeredoc`, a word that fails to lex is just a word.
    let heredoc_word = |word: &str| parse_heredoc(word).ok().flatten();
    if heredoc_word(&dest).is_some() {
        return Err(format!("{upper} cannot accept a heredoc as a destination"));
    }
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for source in args {
        match heredoc_word(&source) {
            Some(mut heredoc) => {
                // The body was read in pass 1, under the same name.
                if let Some(read) = logical.heredocs.iter().find(|h| h.name == heredoc.name) {
                    heredoc.content = read.content.clone();
                }
                heredocs.push(heredoc);
            }
            None => sources.push(source),
        }
    }
    let spec = CopySpec {
        sources,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.is_true("link"),
        checksum: flags.string("checksum"),
        heredocs,
    };
    Ok(if command == "add" {
        Kind::Add(spec)
    } else {
        Kind::Copy(spec)
    })
}

fn parse_onbuild(
    flags: &[String],
    rest: &str,
    original: &str,
    logical: &Logical,
    escape: char,
) -> std::result::Result<Kind, String> {
    if rest.is_empty() {
        return Err("ONBUILD requires at least one argument".to_string());
    }
    no_flags(flags)?;
    let (trigger, trigger_flags, trigger_rest) = split_command(rest);
    match trigger.to_uppercase().as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()),
        name @ ("MAINTAINER" | "FROM") => {
            return Err(format!("{name} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    // What Docker records: the line with `ONBUILD` and the spaces after it removed.
    let expression = original
        .get(7..)
        .filter(|_| original[..7].eq_ignore_ascii_case("onbuild"))
        .map_or(rest, |after| after.trim_start_matches(is_re_space))
        .to_string();
    let kind = parse_kind(
        &trigger,
        &trigger_flags,
        &trigger_rest,
        &expression,
        logical,
        escape,
    )?;
    Ok(Kind::Onbuild(Box::new(Instruction {
        line: logical.line,
        original: expression,
        kind,
    })))
}

fn parse_healthcheck(flags: &[String], rest: &str) -> std::result::Result<Kind, String> {
    let Some(first) = rest
        .split(char::is_whitespace)
        .next()
        .filter(|s| !s.is_empty())
    else {
        return Err("HEALTHCHECK requires at least one argument".to_string());
    };
    let kind = first.to_uppercase();
    let test = maybe_json(rest[first.len()..].trim_start())?;
    let test_is_empty = match &test {
        Command::Exec(args) => args.is_empty(),
        Command::Shell(s) => s.is_empty(),
    };
    if kind == "NONE" {
        if !test_is_empty {
            return Err("HEALTHCHECK NONE takes no arguments".to_string());
        }
        return Ok(Kind::Healthcheck(None));
    }
    let flags = Flags::parse(
        flags,
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )?;
    if kind != "CMD" {
        return Err(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)"));
    }
    if test_is_empty {
        return Err("Missing command after HEALTHCHECK CMD".to_string());
    }
    // An empty value (`--interval=`) means the default, as in Docker.
    let duration = |name: &str| -> std::result::Result<Option<String>, String> {
        let Some(value) = flags.string(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let nanos = go_duration_nanos(&value)?;
        if nanos != 0 && nanos < 1_000_000 {
            return Err(format!("Interval {name:?} cannot be less than 1ms"));
        }
        Ok(Some(value))
    };
    let interval = duration("interval")?;
    let timeout = duration("timeout")?;
    let start_period = duration("start-period")?;
    let start_interval = duration("start-interval")?;
    let retries = match flags.string("retries").filter(|v| !v.is_empty()) {
        None => None,
        Some(value) => {
            let n = parse_go_int32(&value)?;
            if n < 1 {
                return Err(format!("--retries must be at least 1 (not {n})"));
            }
            Some(n as u32)
        }
    };
    Ok(Kind::Healthcheck(Some(Healthcheck {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })))
}

/// `strconv.ParseInt(s, 10, 32)`, with Go's messages.
fn parse_go_int32(s: &str) -> std::result::Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<i32>() {
        Ok(n) => Ok(i64::from(n)),
        Err(_) => Err(format!(
            "strconv.ParseInt: parsing {s:?}: value out of range"
        )),
    }
}

/// Parses a Go duration (`time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `-1s`) into
/// nanoseconds, with Go's error messages. `HEALTHCHECK` values are checked with it;
/// the builder uses it to fill the image config, which counts in nanoseconds.
pub fn go_duration_nanos(s: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let whole: u128 = if int_len == 0 {
            0
        } else {
            rest[..int_len].parse().map_err(|_| invalid())?
        };
        rest = &rest[int_len..];
        let (mut fraction, mut scale, mut frac_len) = (0u128, 1u128, 0);
        if let Some(after) = rest.strip_prefix('.') {
            frac_len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            // Digits past nanosecond precision cannot change the result.
            for digit in after[..frac_len].bytes().take(18) {
                fraction = fraction * 10 + u128::from(digit - b'0');
                scale *= 10;
            }
            rest = &after[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let multiplier: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total = whole
            .checked_mul(multiplier)
            .and_then(|n| n.checked_add(fraction * multiplier / scale))
            .and_then(|n| n.checked_add(total))
            .filter(|&n| n <= 1 << 63)
            .ok_or_else(invalid)?;
    }
    if negative {
        Ok(-(total as i128) as i64)
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

/// The instruction names Docker suggests from, in a fixed order.
const INSTRUCTIONS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// `unknown instruction: X`, with buildkit's "did you mean" for a name within an
/// edit distance of 2, in the case the user wrote.
fn unknown_instruction(command: &str) -> String {
    let message = format!("unknown instruction: {command}");
    let lower = command.to_lowercase();
    let mut best: Option<&str> = None;
    let mut best_distance = 3;
    for name in INSTRUCTIONS {
        let distance = levenshtein(&lower, name);
        if distance < best_distance {
            best = Some(name);
            best_distance = distance;
        }
    }
    match best {
        None => message,
        Some(name) if command == command.to_uppercase() && command != lower => {
            format!("{message} (did you mean {}?)", name.to_uppercase())
        }
        Some(name) => format!("{message} (did you mean {name}?)"),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_stage(text: &str) -> Stage {
        let mut file = parse(text).expect(text);
        assert_eq!(file.stages.len(), 1, "{text}");
        file.stages.remove(0)
    }

    /// The kinds of the instructions of a one-stage Dockerfile.
    fn kinds(text: &str) -> Vec<Kind> {
        only_stage(text)
            .instructions
            .into_iter()
            .map(|i| i.kind)
            .collect()
    }

    fn one(text: &str) -> Instruction {
        let mut stage = only_stage(&format!("FROM scratch\n{text}"));
        assert_eq!(stage.instructions.len(), 1, "{text}");
        stage.instructions.remove(0)
    }

    fn kind(text: &str) -> Kind {
        one(text).kind
    }

    fn error(text: &str) -> String {
        parse(text).expect_err(text).to_string()
    }

    fn shell(s: &str) -> Command {
        Command::Shell(s.to_string())
    }

    fn exec(args: &[&str]) -> Command {
        Command::Exec(args.iter().map(|s| s.to_string()).collect())
    }

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(s: &str) -> Kind {
        Kind::Run {
            command: shell(s),
            heredocs: vec![],
        }
    }

    fn copy_spec(sources: &[&str], dest: &str) -> CopySpec {
        CopySpec {
            sources: strings(sources),
            dest: dest.to_string(),
            from: None,
            chown: None,
            chmod: None,
            link: false,
            checksum: None,
            heredocs: vec![],
        }
    }

    fn heredoc(name: &str, content: &str, expand: bool, strip_tabs: bool) -> Heredoc {
        Heredoc {
            name: name.to_string(),
            content: content.to_string(),
            expand,
            strip_tabs,
        }
    }

    // --- Format -------------------------------------------------------------------

    #[test]
    fn format_comments_and_case() {
        let file = "# Comment\nFROM busybox\nRUN echo 'we are running some # of cool things'\nrun echo lower\n";
        let stage = only_stage(file);
        assert_eq!(stage.line, 2);
        assert_eq!(stage.base, "busybox");
        assert_eq!(
            stage.instructions[0].kind,
            run("echo 'we are running some # of cool things'")
        );
        assert_eq!(stage.instructions[0].line, 3);
        assert_eq!(stage.instructions[1].kind, run("echo lower"));
        assert_eq!(stage.instructions[1].original, "run echo lower");
    }

    #[test]
    fn format_comment_inside_continuation_is_removed() {
        let with_comment = one("RUN echo hello \\\n# comment\nworld");
        let without = one("RUN echo hello \\\nworld");
        assert_eq!(with_comment.kind, run("echo hello world"));
        assert_eq!(with_comment.original, "RUN echo hello world");
        assert_eq!(with_comment.kind, without.kind);
        // Blank lines inside a continuation are skipped too (Docker warns).
        assert_eq!(
            kind("RUN apt-get update && \\\n\n   \n    apt-get install -y x"),
            run("apt-get update &&     apt-get install -y x")
        );
        // Spaces and tabs after the escape character still continue the line.
        assert_eq!(kind("RUN a \\  \t\nb"), run("a b"));
    }

    #[test]
    fn format_leading_whitespace() {
        let a =
            parse("FROM x\n        # this is a comment-line\n    RUN echo hello\nRUN echo world\n")
                .unwrap();
        let b =
            parse("FROM x\n# this is a comment-line\nRUN echo hello\nRUN echo world\n").unwrap();
        let strip = |f: Dockerfile| -> Vec<Kind> {
            f.stages[0]
                .instructions
                .iter()
                .map(|i| i.kind.clone())
                .collect()
        };
        assert_eq!(strip(a), strip(b));
        // Whitespace in arguments is kept.
        assert_eq!(
            kind("RUN echo \"\\\n     hello\\\n     world\""),
            run("echo \"     hello     world\"")
        );
    }

    #[test]
    fn crlf_and_bom() {
        let stage = only_stage("\u{feff}FROM alpine\r\nRUN echo a \\\r\n  b\r\n");
        assert_eq!(stage.base, "alpine");
        assert_eq!(stage.instructions[0].kind, run("echo a   b"));
    }

    // --- Parser directives --------------------------------------------------------

    #[test]
    fn directives_escape() {
        let file = parse(
            "# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n",
        )
        .unwrap();
        assert_eq!(file.escape, '`');
        let kinds: Vec<Kind> = file.stages[0]
            .instructions
            .iter()
            .map(|i| i.kind.clone())
            .collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Copy(copy_spec(&["testfile.txt"], "c:\\")),
                run("dir c:\\")
            ]
        );
        // With the backtick, ` continues a line.
        let file = parse("# escape=`\nFROM x\nRUN a `\n  b\n").unwrap();
        assert_eq!(file.stages[0].instructions[0].kind, run("a   b"));
    }

    #[test]
    fn escaped_escape_at_end_of_line_is_not_a_continuation() {
        // The reference's Windows example without `# escape`: today's Docker keeps
        // `c:\\` literal (moby/buildkit#1559), so COPY and RUN stay two instructions;
        // the final `RUN dir c:\` continues into the end of the file.
        let kinds = kinds("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n");
        assert_eq!(
            kinds,
            vec![
                Kind::Copy(copy_spec(&["testfile.txt"], "c:\\\\")),
                run("dir c:")
            ]
        );
    }

    #[test]
    fn directives_whitespace_variants() {
        for line in [
            "#escape=`",
            "# escape =`",
            "#\tescape= `",
            "# escape = `",
            "#\t  eScApE=`",
            "  # escape=`  ",
        ] {
            let file = parse(&format!("{line}\nFROM x\n")).expect(line);
            assert_eq!(file.escape, '`', "{line:?}");
        }
    }

    #[test]
    fn directives_only_at_the_top() {
        // After an instruction, after a comment, after a blank line, after an unknown
        // directive: just a comment.
        for file in [
            "FROM x\n# escape=`\n",
            "# About my dockerfile\n# escape=`\nFROM x\n",
            "\n# escape=`\nFROM x\n",
            "# unknowndirective=value\n# escape=`\nFROM x\n",
        ] {
            assert_eq!(parse(file).expect(file).escape, '\\', "{file:?}");
        }
        // syntax and check are directives and may come first.
        let file = "# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM x\n";
        assert_eq!(parse(file).unwrap().escape, '`');
    }

    #[test]
    fn directives_invalid() {
        assert_eq!(
            error("# escape=`\n# escape=\\\nFROM x\n"),
            "dockerfile parse error on line 2: only one escape parser directive can be used"
        );
        assert_eq!(
            error("# escape=x\nFROM x\n"),
            "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\"
        );
        // A directive cannot continue onto the next line: `# direc \` is a comment,
        // and `tive=value` an unknown instruction.
        assert_eq!(
            error("# direc \\\ntive=value\nFROM x\n"),
            "dockerfile parse error on line 2: unknown instruction: tive=value"
        );
    }

    // --- Shell and exec form ------------------------------------------------------

    #[test]
    fn exec_and_shell_forms() {
        assert_eq!(
            kind("ENTRYPOINT [\"/bin/bash\", \"-c\", \"echo hello\"]"),
            Kind::Entrypoint(exec(&["/bin/bash", "-c", "echo hello"]))
        );
        assert_eq!(
            kind("RUN [ \"echo\", \"$HOME\" ]"),
            Kind::Run {
                command: exec(&["echo", "$HOME"]),
                heredocs: vec![]
            }
        );
        // Not valid JSON (unescaped backslashes): the shell form, as the reference
        // warns.
        assert_eq!(
            kind("RUN [\"c:\\windows\\system32\\tasklist.exe\"]"),
            run("[\"c:\\windows\\system32\\tasklist.exe\"]")
        );
        assert_eq!(
            kind("RUN [\"c:\\\\windows\\\\system32\\\\tasklist.exe\"]"),
            Kind::Run {
                command: exec(&["c:\\windows\\system32\\tasklist.exe"]),
                heredocs: vec![]
            }
        );
        // Single quotes are not JSON either.
        assert_eq!(kind("CMD ['a', 'b']"), Kind::Cmd(shell("['a', 'b']")));
        assert_eq!(kind("CMD [\"a\", "), Kind::Cmd(shell("[\"a\",")));
        // Like Go's json.Decoder, what follows the array is ignored.
        assert_eq!(kind("CMD [\"a\"] b"), Kind::Cmd(exec(&["a"])));
        assert_eq!(kind("CMD []"), Kind::Cmd(exec(&[])));
        assert_eq!(kind("ENTRYPOINT []"), Kind::Entrypoint(exec(&[])));
        assert_eq!(kind("CMD"), Kind::Cmd(shell("")));
        // A JSON array of anything but strings is an error, not the shell form.
        assert_eq!(
            error("FROM x\nCMD [\"a\", 1]\n"),
            "dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only"
        );
    }

    #[test]
    fn shell_form_continuation() {
        assert_eq!(
            kind("RUN source $HOME/.bashrc && \\\necho $HOME"),
            kind("RUN source $HOME/.bashrc && echo $HOME")
        );
    }

    #[test]
    fn shell_instruction() {
        assert_eq!(
            kind("SHELL [\"/bin/bash\", \"-c\"]"),
            Kind::Shell(strings(&["/bin/bash", "-c"]))
        );
        assert_eq!(
            error("FROM x\nSHELL /bin/bash -c\n"),
            "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
        );
        assert_eq!(
            error("FROM x\nSHELL []\n"),
            "dockerfile parse error on line 2: SHELL requires at least one argument"
        );
    }

    #[test]
    fn reference_windows_shell_example() {
        let file = "# escape=`\n\nFROM microsoft/nanoserver\nSHELL [\"powershell\",\"-command\"]\nRUN New-Item -ItemType Directory C:\\Example\nADD Execute-MyCmdlet.ps1 c:\\example\\\nRUN c:\\example\\Execute-MyCmdlet -sample 'hello world'\n";
        let parsed = parse(file).unwrap();
        let stage = &parsed.stages[0];
        assert_eq!(stage.instructions.len(), 4);
        assert_eq!(
            stage.instructions[0].kind,
            Kind::Shell(strings(&["powershell", "-command"]))
        );
        assert_eq!(
            stage.instructions[2].kind,
            Kind::Add(copy_spec(&["Execute-MyCmdlet.ps1"], "c:\\example\\"))
        );
        assert_eq!(
            stage.instructions[3].original,
            "RUN c:\\example\\Execute-MyCmdlet -sample 'hello world'"
        );
    }

    // --- FROM ---------------------------------------------------------------------

    #[test]
    fn from_stages() {
        let file = parse(
            "FROM ubuntu AS base\nRUN apt-get update && apt-get install -y shared-tooling\n\nFROM base AS dev\nRUN apt-get install -y dev-tooling\n\nFROM base AS prod\nCOPY --from=build /app /app\n",
        )
        .unwrap();
        let names: Vec<_> = file.stages.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(names, [Some("base"), Some("dev"), Some("prod")]);
        assert_eq!(file.stages[1].base, "base");
        assert_eq!(file.stages[1].line, 4);
        assert_eq!(file.stages[2].original, "FROM base AS prod");
        let mut spec = copy_spec(&["/app"], "/app");
        spec.from = Some("build".to_string());
        assert_eq!(file.stages[2].instructions[0].kind, Kind::Copy(spec));
    }

    #[test]
    fn from_platform_and_case() {
        let stage = only_stage("from --platform=$BUILDPLATFORM golang:1.22 as Build\n");
        assert_eq!(stage.platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!(stage.base, "golang:1.22");
        assert_eq!(stage.name.as_deref(), Some("build"));
        assert_eq!(only_stage("FROM busybox@sha256:abc").name, None);
    }

    #[test]
    fn from_errors() {
        assert_eq!(
            error("FROM\n"),
            "dockerfile parse error on line 1: FROM requires either one or three arguments"
        );
        assert_eq!(
            error("FROM a b\n"),
            "dockerfile parse error on line 1: FROM requires either one or three arguments"
        );
        assert_eq!(
            error("FROM a AS 1st\n"),
            "dockerfile parse error on line 1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
        );
        // The arguments are checked before the flags, so `--platform linux/amd64 a`
        // reads as two arguments.
        assert_eq!(
            error("FROM --platform linux/amd64 a\n"),
            "dockerfile parse error on line 1: FROM requires either one or three arguments"
        );
        assert_eq!(
            error("FROM --platform a\n"),
            "dockerfile parse error on line 1: Missing a value on flag: platform"
        );
        assert_eq!(
            error("FROM --pull=always a\n"),
            "dockerfile parse error on line 1: Unknown flag: pull"
        );
    }

    #[test]
    fn meta_args() {
        let file = parse(
            "ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n",
        )
        .unwrap();
        assert_eq!(file.meta_args.len(), 1);
        assert_eq!(
            file.meta_args[0].kind,
            Kind::Arg(vec![(
                "CODE_VERSION".to_string(),
                Some("latest".to_string())
            )])
        );
        assert_eq!(file.stages[0].base, "base:${CODE_VERSION}");
        assert_eq!(
            file.stages[0].instructions[0].kind,
            Kind::Cmd(shell("/code/run-app"))
        );
        assert_eq!(file.stages[1].base, "extras:${CODE_VERSION}");

        let file = parse("ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\nRUN echo $VERSION > image_version\n").unwrap();
        assert_eq!(file.meta_args.len(), 1);
        assert_eq!(
            file.stages[0].instructions[0].kind,
            Kind::Arg(vec![("VERSION".to_string(), None)])
        );
    }

    #[test]
    fn no_build_stage() {
        assert_eq!(
            error("RUN echo hi\nFROM x\n"),
            "no build stage in current context"
        );
        assert_eq!(
            parse("ARG a\nENV b=c\nFROM x").unwrap_err(),
            ParseError::NoBuildStage { line: Some(2) }
        );
        assert_eq!(
            parse("ARG a\n").unwrap_err(),
            ParseError::NoBuildStage { line: None }
        );
        assert_eq!(error(""), "file with no instructions");
        assert_eq!(
            error("# just a comment\n\n   \n"),
            "file with no instructions"
        );
    }

    // --- RUN ----------------------------------------------------------------------

    #[test]
    fn run_flags_are_accepted() {
        assert_eq!(
            kind("RUN --mount=type=bind,target=. go build -o /myapp ./cmd"),
            run("go build -o /myapp ./cmd")
        );
        assert_eq!(
            kind("RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=aws --network=none pip install x"),
            run("pip install x")
        );
        assert_eq!(
            kind("RUN --security=insecure cat /proc/self/status"),
            run("cat /proc/self/status")
        );
        assert_eq!(
            error("FROM x\nRUN --frobnicate ls\n"),
            "dockerfile parse error on line 2: Unknown flag: frobnicate"
        );
        assert_eq!(
            error("FROM x\nRUN --network=a --network=b ls\n"),
            "dockerfile parse error on line 2: Duplicate flag specified: network"
        );
    }

    // --- CMD, ENTRYPOINT ----------------------------------------------------------

    #[test]
    fn cmd_forms() {
        assert_eq!(
            kind("CMD [\"executable\",\"param1\",\"param2\"]"),
            Kind::Cmd(exec(&["executable", "param1", "param2"]))
        );
        assert_eq!(
            kind("CMD command param1 param2"),
            Kind::Cmd(shell("command param1 param2"))
        );
        // A leading `--word` would be a flag; `--` ends the flags.
        assert_eq!(
            kind("CMD -- --ignored-param1"),
            Kind::Cmd(shell("--ignored-param1"))
        );
        assert_eq!(
            error("FROM x\nCMD --help\n"),
            "dockerfile parse error on line 2: Unknown flag: help"
        );
        assert_eq!(
            kind("ENTRYPOINT exec top -b"),
            Kind::Entrypoint(shell("exec top -b"))
        );
    }

    // --- LABEL, MAINTAINER, EXPOSE, ENV -------------------------------------------

    #[test]
    fn labels_keep_raw_words_for_expansion() {
        let file = "FROM x\nLABEL \"com.example.vendor\"=\"ACME Incorporated\"\nLABEL com.example.label-with-value=\"foo\"\nLABEL version=\"1.0\"\nLABEL description=\"This text illustrates \\\nthat label-values can span multiple lines.\"\nLABEL multi.label1=\"value1\" multi.label2=\"value2\" other=\"value3\"\nLABEL multi.label1=\"value1\" \\\n      multi.label2=\"value2\" \\\n      other=\"value3\"\n";
        let kinds = kinds(file);
        assert_eq!(
            kinds[0],
            Kind::Label(pairs(&[(
                "\"com.example.vendor\"",
                "\"ACME Incorporated\""
            )]))
        );
        assert_eq!(
            kinds[3],
            Kind::Label(pairs(&[(
                "description",
                "\"This text illustrates that label-values can span multiple lines.\""
            )]))
        );
        assert_eq!(kinds[4], kinds[5]);

        // Expanding every key and value gives the labels `docker inspect` shows.
        let mut labels = Vec::new();
        for kind in kinds {
            let Kind::Label(kvs) = kind else {
                panic!("not a label")
            };
            for (k, v) in kvs {
                let k = crate::expand(&k, &|_| None, '\\').unwrap();
                let v = crate::expand(&v, &|_| None, '\\').unwrap();
                labels.push((k, v));
            }
        }
        let expected = pairs(&[
            ("com.example.vendor", "ACME Incorporated"),
            ("com.example.label-with-value", "foo"),
            ("version", "1.0"),
            (
                "description",
                "This text illustrates that label-values can span multiple lines.",
            ),
            ("multi.label1", "value1"),
            ("multi.label2", "value2"),
            ("other", "value3"),
            ("multi.label1", "value1"),
            ("multi.label2", "value2"),
            ("other", "value3"),
        ]);
        assert_eq!(labels, expected);
    }

    #[test]
    fn maintainer_and_expose() {
        assert_eq!(
            kind("MAINTAINER SvenDowideit@home.org.au"),
            Kind::Maintainer("SvenDowideit@home.org.au".to_string())
        );
        assert_eq!(kind("EXPOSE 80/udp"), Kind::Expose(strings(&["80/udp"])));
        assert_eq!(
            kind("EXPOSE 80/tcp   443 $PORT"),
            Kind::Expose(strings(&["80/tcp", "443", "$PORT"]))
        );
        assert_eq!(
            error("FROM x\nEXPOSE\n"),
            "dockerfile parse error on line 2: EXPOSE requires at least one argument"
        );
        assert_eq!(
            error("FROM x\nMAINTAINER\n"),
            "dockerfile parse error on line 2: MAINTAINER requires exactly one argument"
        );
    }

    #[test]
    fn env_forms() {
        let expanded = |kind: Kind| -> Vec<(String, String)> {
            let Kind::Env(kvs) = kind else {
                panic!("not ENV")
            };
            kvs.into_iter()
                .map(|(k, v)| {
                    (
                        crate::expand(&k, &|_| None, '\\').unwrap(),
                        crate::expand(&v, &|_| None, '\\').unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(
            kind("ENV MY_NAME=\"John Doe\""),
            Kind::Env(pairs(&[("MY_NAME", "\"John Doe\"")]))
        );
        assert_eq!(
            expanded(kind("ENV MY_DOG=Rex\\ The\\ Dog")),
            pairs(&[("MY_DOG", "Rex The Dog")])
        );
        let separate = [
            kind("ENV MY_NAME=\"John Doe\""),
            kind("ENV MY_DOG=Rex\\ The\\ Dog"),
            kind("ENV MY_CAT=fluffy"),
        ]
        .into_iter()
        .flat_map(expanded)
        .collect::<Vec<_>>();
        let together = expanded(kind(
            "ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy",
        ));
        assert_eq!(separate, together);
        assert_eq!(
            together,
            pairs(&[
                ("MY_NAME", "John Doe"),
                ("MY_DOG", "Rex The Dog"),
                ("MY_CAT", "fluffy")
            ])
        );
        // The alternative syntax: one variable, the value is the rest of the line.
        assert_eq!(
            kind("ENV MY_VAR my-value"),
            Kind::Env(pairs(&[("MY_VAR", "my-value")]))
        );
        assert_eq!(
            kind("ENV ONE TWO= THREE=world"),
            Kind::Env(pairs(&[("ONE", "TWO= THREE=world")]))
        );
        assert_eq!(
            kind("ENV abc=bye def=$abc"),
            Kind::Env(pairs(&[("abc", "bye"), ("def", "$abc")]))
        );
        assert_eq!(kind("ENV empty="), Kind::Env(pairs(&[("empty", "")])));
    }

    #[test]
    fn env_errors() {
        assert_eq!(
            error("FROM x\nENV =value\n"),
            "dockerfile parse error on line 2: ENV names can not be blank"
        );
        assert_eq!(
            error("FROM x\nENV a=b =c\n"),
            "dockerfile parse error on line 2: ENV names can not be blank"
        );
        assert_eq!(
            error("FROM x\nENV\n"),
            "dockerfile parse error on line 2: ENV requires at least one argument"
        );
        assert_eq!(
            error("FROM x\nENV foo\n"),
            "dockerfile parse error on line 2: ENV must have two arguments"
        );
        assert_eq!(
            error("FROM x\nENV a=b c\n"),
            "dockerfile parse error on line 2: Syntax error - can't find = in \"c\". Must be of the form: name=value"
        );
        assert_eq!(
            error("FROM x\nLABEL foo\n"),
            "dockerfile parse error on line 2: LABEL must have two arguments"
        );
    }

    // --- ADD, COPY ----------------------------------------------------------------

    #[test]
    fn add_and_copy() {
        assert_eq!(
            kind("ADD file1.txt file2.txt /usr/src/things/"),
            Kind::Add(copy_spec(&["file1.txt", "file2.txt"], "/usr/src/things/"))
        );
        assert_eq!(
            kind("ADD git@github.com:moby/buildkit.git#v0.14.1:docs /buildkit-docs"),
            Kind::Add(copy_spec(
                &["git@github.com:moby/buildkit.git#v0.14.1:docs"],
                "/buildkit-docs"
            ))
        );
        let Kind::Add(spec) = kind("ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /") else {
            panic!("not ADD")
        };
        assert_eq!(
            spec.checksum.as_deref(),
            Some("sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d")
        );
        assert_eq!(
            kind("COPY arr[[]0].txt /dest/"),
            Kind::Copy(copy_spec(&["arr[[]0].txt"], "/dest/"))
        );
        assert_eq!(
            kind("COPY index.?s /dest/"),
            Kind::Copy(copy_spec(&["index.?s"], "/dest/"))
        );
        // JSON form, for paths with whitespace.
        assert_eq!(
            kind("COPY [\"my file.txt\", \"other\", \"/dest dir/\"]"),
            Kind::Copy(copy_spec(&["my file.txt", "other"], "/dest dir/"))
        );
        // Sources are raw words: `$FOO` and `\$FOO` are for the builder to expand.
        assert_eq!(
            kind("COPY \\$FOO /quux"),
            Kind::Copy(copy_spec(&["\\$FOO"], "/quux"))
        );
    }

    #[test]
    fn copy_flags() {
        let Kind::Copy(spec) = kind("COPY --chown=myuser:mygroup --chmod=644 files* /somedir/")
        else {
            panic!("not COPY")
        };
        assert_eq!(spec.chown.as_deref(), Some("myuser:mygroup"));
        assert_eq!(spec.chmod.as_deref(), Some("644"));
        assert_eq!(spec.sources, ["files*"]);
        let Kind::Copy(spec) = kind("COPY --link /foo /bar") else {
            panic!("not COPY")
        };
        assert!(spec.link);
        let Kind::Copy(spec) =
            kind("COPY --link=false --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf")
        else {
            panic!("not COPY")
        };
        assert!(!spec.link);
        assert_eq!(spec.from.as_deref(), Some("nginx:latest"));
        let Kind::Add(spec) = kind("ADD --chown=10:11 --chmod=u=rwX,go=rX --link a /b") else {
            panic!("not ADD")
        };
        assert_eq!(spec.chown.as_deref(), Some("10:11"));
        assert_eq!(spec.chmod.as_deref(), Some("u=rwX,go=rX"));
        assert!(spec.link);
        assert_eq!(
            error("FROM x\nADD --from=a b c\n"),
            "dockerfile parse error on line 2: Unknown flag: from"
        );
        assert_eq!(
            error("FROM x\nCOPY --link=maybe a b\n"),
            "dockerfile parse error on line 2: Expecting boolean value for flag link, not: maybe"
        );
        assert_eq!(
            error("FROM x\nCOPY --chown a b\n"),
            "dockerfile parse error on line 2: Missing a value on flag: chown"
        );
    }

    #[test]
    fn copy_errors() {
        assert_eq!(
            error("FROM x\nCOPY onlyone\n"),
            "dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(
            error("FROM x\nADD\n"),
            "dockerfile parse error on line 2: ADD requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(
            error("FROM x\nCOPY a <<EOF\nx\nEOF\n"),
            "dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination"
        );
    }

    // --- VOLUME, USER, WORKDIR, ARG, STOPSIGNAL -----------------------------------

    #[test]
    fn volume_user_workdir_stopsignal() {
        assert_eq!(
            kind("VOLUME [\"/data\"]"),
            Kind::Volume(strings(&["/data"]))
        );
        assert_eq!(
            kind("VOLUME [\"/var/log/\"]"),
            Kind::Volume(strings(&["/var/log/"]))
        );
        assert_eq!(
            kind("VOLUME /var/log /var/db"),
            Kind::Volume(strings(&["/var/log", "/var/db"]))
        );
        assert_eq!(
            error("FROM x\nVOLUME [\"\"]\n"),
            "dockerfile parse error on line 2: VOLUME specified can not be an empty string"
        );
        assert_eq!(kind("USER patrick"), Kind::User("patrick".to_string()));
        assert_eq!(kind("USER 1000:1000"), Kind::User("1000:1000".to_string()));
        assert_eq!(
            kinds("FROM x\nWORKDIR /a\nWORKDIR b\nWORKDIR c\nRUN pwd\n"),
            vec![
                Kind::Workdir("/a".to_string()),
                Kind::Workdir("b".to_string()),
                Kind::Workdir("c".to_string()),
                run("pwd")
            ]
        );
        assert_eq!(
            kind("WORKDIR $DIRPATH/$DIRNAME"),
            Kind::Workdir("$DIRPATH/$DIRNAME".to_string())
        );
        assert_eq!(
            kind("STOPSIGNAL SIGKILL"),
            Kind::Stopsignal("SIGKILL".to_string())
        );
        assert_eq!(kind("STOPSIGNAL 9"), Kind::Stopsignal("9".to_string()));
        assert_eq!(
            error("FROM x\nWORKDIR\n"),
            "dockerfile parse error on line 2: WORKDIR requires exactly one argument"
        );
    }

    #[test]
    fn args() {
        assert_eq!(
            kinds("FROM busybox\nARG user1\nARG buildno\nARG user1=someuser\nARG buildno=1\n"),
            vec![
                Kind::Arg(vec![("user1".to_string(), None)]),
                Kind::Arg(vec![("buildno".to_string(), None)]),
                Kind::Arg(vec![("user1".to_string(), Some("someuser".to_string()))]),
                Kind::Arg(vec![("buildno".to_string(), Some("1".to_string()))]),
            ]
        );
        assert_eq!(
            kind("ARG a b=2 c= d=\"x y\""),
            Kind::Arg(vec![
                ("a".to_string(), None),
                ("b".to_string(), Some("2".to_string())),
                ("c".to_string(), Some(String::new())),
                ("d".to_string(), Some("\"x y\"".to_string())),
            ])
        );
        assert_eq!(
            error("FROM x\nARG =1\n"),
            "dockerfile parse error on line 2: ARG names can not be blank"
        );
        assert_eq!(
            error("FROM x\nARG\n"),
            "dockerfile parse error on line 2: ARG requires at least one argument"
        );
    }

    // --- ONBUILD ------------------------------------------------------------------

    #[test]
    fn onbuild() {
        let instruction = one("ONBUILD ADD . /app/src");
        let Kind::Onbuild(trigger) = instruction.kind else {
            panic!("not ONBUILD")
        };
        assert_eq!(trigger.original, "ADD . /app/src");
        assert_eq!(trigger.kind, Kind::Add(copy_spec(&["."], "/app/src")));
        assert_eq!(trigger.line, 2);

        let Kind::Onbuild(trigger) = kind("onbuild RUN /usr/local/bin/python-build --dir /app/src")
        else {
            panic!("not ONBUILD")
        };
        assert_eq!(
            trigger.kind,
            run("/usr/local/bin/python-build --dir /app/src")
        );
        assert_eq!(
            trigger.text_with_heredocs(),
            "RUN /usr/local/bin/python-build --dir /app/src"
        );

        let Kind::Onbuild(trigger) =
            kind("ONBUILD RUN --mount=from=config,target=/opt/appconfig ls")
        else {
            panic!("not ONBUILD")
        };
        assert_eq!(trigger.kind, run("ls"));

        assert_eq!(
            error("FROM x\nONBUILD ONBUILD RUN x\n"),
            "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            error("FROM x\nONBUILD FROM y\n"),
            "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            error("FROM x\nONBUILD maintainer me\n"),
            "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            error("FROM x\nONBUILD\n"),
            "dockerfile parse error on line 2: ONBUILD requires at least one argument"
        );
    }

    #[test]
    fn onbuild_heredoc() {
        let Kind::Onbuild(trigger) = kind("ONBUILD RUN <<EOF\necho hi\nEOF") else {
            panic!("not ONBUILD")
        };
        assert_eq!(
            trigger.kind,
            Kind::Run {
                command: shell("<<EOF"),
                heredocs: vec![heredoc("EOF", "echo hi\n", true, false)]
            }
        );
        assert_eq!(trigger.text_with_heredocs(), "RUN <<EOF\necho hi\nEOF");
    }

    #[test]
    fn triggers_parse_on_their_own() {
        let triggers = parse_instructions("ADD . /app/src\nRUN make").unwrap();
        assert_eq!(triggers.len(), 2);
        assert_eq!(triggers[1].kind, run("make"));
        assert!(parse_instructions("FROM x").is_err());
        assert_eq!(parse_instructions("").unwrap(), vec![]);
    }

    // --- HEALTHCHECK --------------------------------------------------------------

    #[test]
    fn healthcheck() {
        assert_eq!(
            kind("HEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1"),
            Kind::Healthcheck(Some(Healthcheck {
                test: shell("curl -f http://localhost/ || exit 1"),
                interval: Some("5m".to_string()),
                timeout: Some("3s".to_string()),
                start_period: None,
                start_interval: None,
                retries: None,
            }))
        );
        assert_eq!(kind("HEALTHCHECK NONE"), Kind::Healthcheck(None));
        assert_eq!(
            kind("healthcheck --start-period=1m30s --start-interval=5s --retries=3 cmd [\"/bin/check\", \"-q\"]"),
            Kind::Healthcheck(Some(Healthcheck {
                test: exec(&["/bin/check", "-q"]),
                interval: None,
                timeout: None,
                start_period: Some("1m30s".to_string()),
                start_interval: Some("5s".to_string()),
                retries: Some(3),
            }))
        );
    }

    #[test]
    fn healthcheck_errors() {
        let cases = [
            ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            (
                "HEALTHCHECK RUN x",
                "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
            ),
            (
                "HEALTHCHECK --retries=0 CMD x",
                "--retries must be at least 1 (not 0)",
            ),
            (
                "HEALTHCHECK --retries=x CMD x",
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                "HEALTHCHECK --interval=5 CMD x",
                "time: missing unit in duration \"5\"",
            ),
            (
                "HEALTHCHECK --interval=5y CMD x",
                "time: unknown unit \"y\" in duration \"5y\"",
            ),
            (
                "HEALTHCHECK --timeout=1us CMD x",
                "Interval \"timeout\" cannot be less than 1ms",
            ),
            ("HEALTHCHECK --foo=1 CMD x", "Unknown flag: foo"),
        ];
        for (line, message) in cases {
            assert_eq!(
                error(&format!("FROM x\n{line}\n")),
                format!("dockerfile parse error on line 2: {message}"),
                "{line}"
            );
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanos("30s"), Ok(30_000_000_000));
        assert_eq!(go_duration_nanos("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration_nanos("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(go_duration_nanos("300ms"), Ok(300_000_000));
        assert_eq!(go_duration_nanos("2us"), Ok(2_000));
        assert_eq!(go_duration_nanos("-1s"), Ok(-1_000_000_000));
        assert_eq!(go_duration_nanos("0"), Ok(0));
        assert_eq!(go_duration_nanos(".5s"), Ok(500_000_000));
        assert!(go_duration_nanos("").is_err());
        assert!(go_duration_nanos("s").is_err());
        assert!(go_duration_nanos("1.s").is_ok());
        assert!(go_duration_nanos("99999999999999999999999999999999999999h").is_err());
        assert!(go_duration_nanos("9223372036854775808ns").is_err());
        assert_eq!(go_duration_nanos("-9223372036854775808ns"), Ok(i64::MIN));
    }

    // --- Heredocs -----------------------------------------------------------------

    #[test]
    fn heredoc_run() {
        let instruction =
            one("RUN <<EOT bash\n  set -ex\n  apt-get update\n  apt-get install -y vim\nEOT");
        assert_eq!(instruction.original, "RUN <<EOT bash");
        assert_eq!(
            instruction.kind,
            Kind::Run {
                command: shell("<<EOT bash"),
                heredocs: vec![heredoc(
                    "EOT",
                    "  set -ex\n  apt-get update\n  apt-get install -y vim\n",
                    true,
                    false
                )]
            }
        );
        // The shebang example: the body is kept as is.
        let Kind::Run { heredocs, .. } =
            kind("RUN <<EOT\n#!/usr/bin/env python\nprint(\"hello world\")\nEOT")
        else {
            panic!("not RUN")
        };
        assert_eq!(
            heredocs[0].content,
            "#!/usr/bin/env python\nprint(\"hello world\")\n"
        );
    }

    #[test]
    fn heredoc_multiple_and_following_instructions() {
        let stage = only_stage(
            "FROM alpine\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\nRUN ls\n",
        );
        assert_eq!(
            stage.instructions[0].kind,
            Kind::Run {
                command: shell("<<FILE1 cat > file1 && <<FILE2 cat > file2"),
                heredocs: vec![
                    heredoc("FILE1", "I am\nfirst\n", true, false),
                    heredoc("FILE2", "I am\nsecond\n", true, false)
                ]
            }
        );
        assert_eq!(stage.instructions[1].kind, run("ls"));
        assert_eq!(stage.instructions[1].line, 9);
    }

    #[test]
    fn heredoc_copy_inline_files() {
        let Kind::Copy(spec) = kind("COPY <<EOF greeting.txt\nhello world\nEOF") else {
            panic!("not COPY")
        };
        assert!(spec.sources.is_empty());
        assert_eq!(spec.dest, "greeting.txt");
        assert_eq!(
            spec.heredocs,
            vec![heredoc("EOF", "hello world\n", true, false)]
        );

        // <<- strips leading tabs (not spaces); the reference's example uses spaces.
        let Kind::Copy(spec) = kind("COPY <<-EOT /script.sh\n  echo \"hello ${FOO}\"\nEOT") else {
            panic!("not COPY")
        };
        assert_eq!(
            spec.heredocs,
            vec![heredoc("EOT", "  echo \"hello ${FOO}\"\n", true, true)]
        );
        assert_eq!(spec.heredocs[0].data(), "  echo \"hello ${FOO}\"\n");

        // Quoting any part of the delimiter turns expansion off.
        for opener in ["<<-\"EOT\"", "<<'EOT'", "<<E\"O\"T"] {
            let end = if opener.contains('-') { "\tEOT" } else { "EOT" };
            let text = format!("COPY {opener} /script.sh\n\techo \"hello ${{FOO}}\"\n{end}");
            let Kind::Copy(spec) = kind(&text) else {
                panic!("not COPY")
            };
            let doc = &spec.heredocs[0];
            assert_eq!(doc.name, "EOT", "{opener}");
            assert!(!doc.expand, "{opener}");
            if doc.strip_tabs {
                assert_eq!(doc.data(), "echo \"hello ${FOO}\"\n");
            }
        }

        // Heredoc sources mix with ordinary ones.
        let Kind::Copy(spec) = kind("COPY --chmod=755 <<A b.txt <<B /dst/\na\nA\nb\nB") else {
            panic!("not COPY")
        };
        assert_eq!(spec.sources, ["b.txt"]);
        assert_eq!(spec.heredocs.len(), 2);
        assert_eq!(spec.heredocs[1], heredoc("B", "b\n", true, false));
    }

    #[test]
    fn heredoc_tabs_and_delimiters() {
        let Kind::Run { heredocs, .. } = kind("RUN <<-EOF\n\t\techo a\n\techo b\n\tEOF") else {
            panic!("not RUN")
        };
        assert_eq!(heredocs[0].content, "\t\techo a\n\techo b\n");
        assert_eq!(heredocs[0].data(), "echo a\necho b\n");
        // Without `-`, an indented delimiter is part of the body.
        let Kind::Run { heredocs, .. } = kind("RUN <<EOF\n\tEOF\nEOF") else {
            panic!("not RUN")
        };
        assert_eq!(heredocs[0].content, "\tEOF\n");
        // Not heredocs: in quotes, in exec form, `<<<`, and instructions without them.
        assert_eq!(kind("RUN echo \"<<EOF\""), run("echo \"<<EOF\""));
        assert_eq!(kind("RUN cat <<<word"), run("cat <<<word"));
        assert_eq!(
            kind("RUN [\"cat\", \"<<EOF\"]"),
            Kind::Run {
                command: exec(&["cat", "<<EOF"]),
                heredocs: vec![]
            }
        );
        assert_eq!(kind("ENV a=<<EOF"), Kind::Env(pairs(&[("a", "<<EOF")])));
        // Comments and continuations are not processed inside a body.
        let Kind::Run { heredocs, .. } = kind("RUN <<EOF\n# not a comment \\\nEOF") else {
            panic!("not RUN")
        };
        assert_eq!(heredocs[0].content, "# not a comment \\\n");
    }

    #[test]
    fn heredoc_delimiter_forms() {
        // (opener, name, expand): buildkit's own edge cases.
        let cases = [
            ("<<EMPTY", "EMPTY", true),
            ("3<<FD", "FD", true),
            ("<<eo'f'", "eof", false),
            ("<<eo\\'f", "eo'f", true),
            ("<<'e'o\\'f", "eo'f", false),
            ("<<'one two'", "one two", false),
            ("<<$EOF", "$EOF", true),
            ("<<  EOF", "EOF", true),
            ("<<  EOF  > foo", "EOF", true),
            ("<< -EOF", "-EOF", true),
            ("<<file.txt", "file.txt", true),
        ];
        for (opener, name, expand) in cases {
            let text = format!("RUN {opener}\nbody\n{name}");
            let Kind::Run { heredocs, .. } = kind(&text) else {
                panic!("not RUN")
            };
            assert_eq!(
                heredocs,
                vec![heredoc(name, "body\n", expand, false)],
                "{opener}"
            );
        }
        // Bodies are read in order; only the current delimiter ends one.
        let Kind::Copy(spec) = kind("COPY <<X <<Y /dest\nY\nX\nX\nY") else {
            panic!("not COPY")
        };
        assert_eq!(
            spec.heredocs,
            vec![
                heredoc("X", "Y\n", true, false),
                heredoc("Y", "X\n", true, false)
            ]
        );
        // Not openers: `<<one two` is two words; a USER line cannot take heredocs.
        assert_eq!(kind("RUN '<<EOF'"), run("'<<EOF'"));
        assert_eq!(
            kinds("FROM x\nUSER <<X\nRUN ls\n"),
            vec![Kind::User("<<X".to_string()), run("ls")]
        );
    }

    #[test]
    fn unterminated_heredoc_names_the_line() {
        assert_eq!(
            error("FROM alpine\nRUN true\nRUN <<EOF\necho hi\n"),
            "dockerfile parse error on line 3: unterminated heredoc"
        );
        assert_eq!(
            error("FROM alpine\nCOPY <<A <<B /x\na\nA\n"),
            "dockerfile parse error on line 2: unterminated heredoc"
        );
    }

    // --- Errors -------------------------------------------------------------------

    #[test]
    fn unknown_instructions() {
        assert_eq!(
            error("FROM x\nFOO bar\n"),
            "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"
        );
        assert_eq!(
            error("FROM x\nRUNN ls\n"),
            "dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)"
        );
        assert_eq!(
            error("FROM x\ncopyy a b\n"),
            "dockerfile parse error on line 2: unknown instruction: copyy (did you mean copy?)"
        );
        assert_eq!(
            error("FROM x\n\nXYZZYQ bar\n"),
            "dockerfile parse error on line 3: unknown instruction: XYZZYQ"
        );
        assert_eq!(parse("FROM x\nBOGUS 1\n").unwrap_err().line(), Some(2));
    }

    #[test]
    fn first_error_wins() {
        // A later unterminated heredoc is found in the first pass, before the
        // instructions are checked, as in Docker.
        assert_eq!(
            error("FROM x\nBOGUS\nRUN <<EOF\n"),
            "dockerfile parse error on line 3: unterminated heredoc"
        );
        assert_eq!(
            error("FROM x\nBOGUS\nENV\n"),
            "dockerfile parse error on line 2: unknown instruction: BOGUS"
        );
    }
}
