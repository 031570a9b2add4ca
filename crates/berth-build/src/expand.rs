//! Docker's word processing for Dockerfile arguments ("Environment replacement" in the
//! reference): `$name` and `${name}` with the `:-`, `-`, `:+`, `+`, `:?`, `?`, `#`,
//! `##`, `%`, `%%`, `/` and `//` modifiers, single quotes (taken literally), double
//! quotes (variables still expand) and the escape character (`\` or the one set by
//! `# escape=`).
//!
//! This follows moby/buildkit's shell lexer (`frontend/dockerfile/shell/lex.go`), which
//! both BuildKit and the classic builder use, so a word expands in berth exactly as it
//! does in `docker build`. It is not a shell: there is no command substitution, no
//! globbing and no field splitting beyond [`expand_words`]'s split on unquoted
//! whitespace.
//!
//! A variable that `lookup` does not know is unset and expands to the empty string;
//! `Some("")` is set but empty, which is what tells `${a-x}` from `${a:-x}`.

/// A word that could not be processed, worded as Docker words it:
/// `failed to process "${a": syntax error: missing '}'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct ExpandError {
    /// The word as it was given.
    pub word: String,
    /// What went wrong, e.g. `syntax error: bad substitution`.
    pub message: String,
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, ExpandError>;

/// Expands one word: variables are replaced, quotes removed and escapes applied, and
/// whitespace is kept as it is. This is what Docker does to the value of `ENV`,
/// `LABEL` and `ARG`, and to the arguments of `WORKDIR`, `USER`, `COPY`, `ADD`,
/// `VOLUME`, `EXPOSE`, `STOPSIGNAL` and `FROM`.
///
/// `escape` is [`crate::Dockerfile::escape`].
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<String> {
    Lexer::new(escape, lookup)
        .process(word)
        .map(|(word, _)| word)
}

/// Expands `text` like [`expand`] and then splits it into words on whitespace that
/// was neither quoted nor escaped. Whitespace that comes from a variable's value
/// splits too (`EXPOSE $PORTS` with `PORTS="80 443"` is two ports), and an empty
/// quoted word (`""`) disappears, both as in Docker.
pub fn expand_words(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>> {
    Lexer::new(escape, lookup)
        .process(text)
        .map(|(_, words)| words)
}

/// Expands the body of a heredoc whose delimiter was not quoted (see
/// [`crate::Heredoc::expand`]). Quotes are ordinary characters here, so
/// `echo "hello ${FOO}"` keeps its quotes; the escape character is always `\`,
/// whatever `# escape=` says, because that is what BuildKit does for heredocs.
pub fn expand_heredoc(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut lexer = Lexer::new('\\', lookup);
    lexer.skip_quotes = true;
    lexer.process(text).map(|(word, _)| word)
}

/// The lexer and its knobs, as in buildkit's `shell.Lex`. Only the parser's heredoc
/// detection needs the raw modes; the public functions above use the defaults.
pub(crate) struct Lexer<'a> {
    escape: char,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Keep quote characters in the output (the parser uses this to tell `<<"EOF"`
    /// from `<<EOF`).
    pub(crate) raw_quotes: bool,
    /// Keep escape characters in the output.
    pub(crate) raw_escapes: bool,
    /// Leave references to unset variables as they were written instead of
    /// expanding them to "".
    pub(crate) skip_unset: bool,
    /// Treat quotes as ordinary characters.
    pub(crate) skip_quotes: bool,
}

/// A character cursor over the word being processed.
struct Scanner {
    chars: Vec<char>,
    pos: usize,
}

impl Scanner {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }
}

/// Word splitting as buildkit's `wordsStruct` does it: characters that came from
/// quotes or escapes are "raw" and never split a word.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() && self.in_word {
            if !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else if !ch.is_whitespace() {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

/// What a `${...}` modifier failed with, before [`Lexer::process`] names the word.
type Inner<T> = std::result::Result<T, String>;

const MISSING_BRACE: &str = "syntax error: missing '}'";

impl<'a> Lexer<'a> {
    pub(crate) fn new(escape: char, lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Lexer {
            escape,
            lookup,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Processes `word`, returning it as one string and as split words.
    pub(crate) fn process(&self, word: &str) -> Result<(String, Vec<String>)> {
        let mut scan = Scanner {
            chars: word.chars().collect(),
            pos: 0,
        };
        self.process_stop_on(&mut scan, None, self.raw_escapes)
            .map_err(|message| ExpandError {
                word: word.to_string(),
                message,
            })
    }

    /// Processes until `stop` (consumed) or the end of the input.
    fn process_stop_on(
        &self,
        scan: &mut Scanner,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Inner<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = scan.peek() {
            if Some(ch) == stop {
                scan.next();
                return Ok((result, words.finish()));
            }
            if ch == '$' {
                let value = self.process_dollar(scan)?;
                result.push_str(&value);
                // A variable's value is split like unquoted text.
                words.add_string(&value);
            } else if ch == '<' {
                let value = process_possible_heredoc(scan);
                result.push_str(&value);
                words.add_raw_string(&value);
            } else if ch == '\'' && !self.skip_quotes {
                let value = self.process_single_quote(scan)?;
                result.push_str(&value);
                words.add_raw_string(&value);
            } else if ch == '"' && !self.skip_quotes {
                let value = self.process_double_quote(scan, raw_escapes)?;
                result.push_str(&value);
                words.add_raw_string(&value);
            } else {
                scan.next();
                let mut ch = ch;
                if ch == self.escape {
                    if raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape character escapes the next one; at the very end it
                    // is dropped.
                    match scan.next() {
                        Some(next) => ch = next,
                        None => break,
                    }
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    /// Everything up to the next `'` is literal; nothing can be escaped in there.
    fn process_single_quote(&self, scan: &mut Scanner) -> Inner<String> {
        let mut result = String::new();
        let open = scan.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match scan.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    )
                }
                Some('\'') => {
                    if self.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// Inside `"`, variables expand and the escape character only escapes `"`, `$`
    /// and itself; before any other character it stays, as in sh.
    fn process_double_quote(&self, scan: &mut Scanner, raw_escapes: bool) -> Inner<String> {
        let mut result = String::new();
        let open = scan.next();
        if self.raw_quotes {
            result.extend(open);
        }
        loop {
            match scan.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    )
                }
                Some('"') => {
                    scan.next();
                    if self.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.process_dollar(scan)?),
                Some(_) => {
                    let Some(mut ch) = scan.next() else { continue };
                    if ch == self.escape {
                        if raw_escapes {
                            result.push(ch);
                        }
                        match scan.peek() {
                            // An escape at the very end of the word is dropped.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                scan.next();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// `$name`, `${name}` and `${name<modifier>word}`; the scanner is on the `$`.
    fn process_dollar(&self, scan: &mut Scanner) -> Inner<String> {
        scan.next();
        if scan.peek() != Some('{') {
            let name = process_name(scan);
            if name.is_empty() {
                // A lone `$` (or `$` before a character that cannot start a name).
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        scan.next();
        match scan.peek() {
            None => return Err(MISSING_BRACE.to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = process_name(scan);
        let Some(ch) = scan.next() else {
            return Err(MISSING_BRACE.to_string());
        };
        match ch {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                // `${a:-x}` and friends treat an empty value like an unset one.
                let modifier = scan.next();
                let mut chs = String::from(':');
                chs.extend(modifier);
                self.process_modifier(scan, &name, modifier, &chs, true)
            }
            '+' | '-' | '?' | '#' | '%' => {
                self.process_modifier(scan, &name, Some(ch), &ch.to_string(), false)
            }
            '/' => self.process_replace(scan, &name),
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    fn process_modifier(
        &self,
        scan: &mut Scanner,
        name: &str,
        modifier: Option<char>,
        chs: &str,
        null_is_unset: bool,
    ) -> Inner<String> {
        // The patterns of `#` and `%` keep their escapes for the glob matcher.
        let pattern = matches!(modifier, Some('#' | '%'));
        if null_is_unset && pattern {
            return Err(format!("unsupported modifier ({chs}) in substitution"));
        }
        let (word, _) = match self.process_stop_on(scan, Some('}'), pattern) {
            Ok(done) => done,
            Err(_) if scan.peek().is_none() => return Err(MISSING_BRACE.to_string()),
            Err(err) => return Err(err),
        };
        let value = self.lookup(name);
        if self.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match modifier {
            Some('-') => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            Some('+') => Ok(if unset { String::new() } else { word }),
            Some('?') => match value {
                None => Err(format!(
                    "{name}: {}",
                    or(word, "is not allowed to be unset")
                )),
                Some(v) if null_is_unset && v.is_empty() => Err(format!(
                    "{name}: {}",
                    or(word, "is not allowed to be empty")
                )),
                Some(v) => Ok(v),
            },
            Some(m @ ('#' | '%')) => {
                // `##`/`%%` remove the longest match, `#`/`%` the shortest.
                let (greedy, pattern) = match word.strip_prefix(m) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let glob = Glob::compile(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if m == '#' {
                    glob.trim_prefix(&value, greedy)
                } else {
                    glob.trim_suffix(&value, greedy)
                })
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replace(&self, scan: &mut Scanner, name: &str) -> Inner<String> {
        let all = scan.peek() == Some('/');
        if all {
            scan.next();
        }
        let (pattern, _) = match self.process_stop_on(scan, Some('/'), true) {
            Ok(done) => done,
            Err(_) if scan.peek().is_none() => {
                return Err("syntax error: missing '/' in ${}".to_string())
            }
            Err(err) => return Err(err),
        };
        let (replacement, _) = match self.process_stop_on(scan, Some('}'), true) {
            Ok(done) => done,
            Err(_) if scan.peek().is_none() => return Err(MISSING_BRACE.to_string()),
            Err(err) => return Err(err),
        };
        let Some(value) = self.lookup(name) else {
            if self.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let glob = Glob::compile(&pattern)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        let value: Vec<char> = value.chars().collect();
        Ok(glob.replace(&value, &replacement, all))
    }
}

/// `<<` keeps the blanks after it in its word, as buildkit's lexer does, so that
/// `RUN <<  EOF` is one heredoc word; the text itself is unchanged.
fn process_possible_heredoc(scan: &mut Scanner) -> String {
    scan.next();
    if scan.peek() != Some('<') {
        return "<".to_string();
    }
    scan.next();
    let mut out = String::from("<<");
    while let Some(blank) = scan
        .peek()
        .filter(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
    {
        scan.next();
        out.push(blank);
    }
    out
}

fn or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

/// Reads a variable name: letters, digits and `_`; or a run of digits (`$1`); or one
/// of sh's special parameters (`$@`, `$?`, ...).
fn process_name(scan: &mut Scanner) -> String {
    let mut name = String::new();
    while let Some(ch) = scan.peek() {
        if name.is_empty() && ch.is_ascii_digit() {
            while let Some(digit) = scan.peek().filter(char::is_ascii_digit) {
                scan.next();
                name.push(digit);
            }
            return name;
        }
        if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
            scan.next();
            return ch.to_string();
        }
        if !(ch.is_alphanumeric() || ch == '_') {
            break;
        }
        scan.next();
        name.push(ch);
    }
    name
}

/// The patterns of `#`, `%` and `/`: `*` is any run of characters, `?` any one, and
/// `\*`, `\?`, `\\` are literal; there are no bracket expressions. Like the regular
/// expressions buildkit turns them into, `*` and `?` do not match a newline.
struct Glob(Vec<GlobToken>);

#[derive(Clone, Copy)]
enum GlobToken {
    Literal(char),
    Any,
    Star,
}

impl Glob {
    fn compile(pattern: &str) -> Inner<Glob> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => tokens.push(GlobToken::Star),
                '?' => tokens.push(GlobToken::Any),
                '\\' => match chars.peek().copied() {
                    // `}` and `/` are escaped only to get them past `${...}`.
                    Some('}' | '/') => {}
                    Some(next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        tokens.push(GlobToken::Literal(next));
                    }
                    Some(next) => return Err(format!("invalid escape '\\{next}'")),
                    None => return Err("invalid escape '\\'".to_string()),
                },
                other => tokens.push(GlobToken::Literal(other)),
            }
        }
        Ok(Glob(tokens))
    }

    /// Whether the whole of `text` matches.
    fn matches(&self, text: &[char]) -> bool {
        // positions[i]: the pattern prefix matched so far can end at text[..i].
        let mut positions = vec![false; text.len() + 1];
        positions[0] = true;
        for token in &self.0 {
            let mut next = vec![false; text.len() + 1];
            for i in 0..=text.len() {
                if !positions[i] {
                    continue;
                }
                match token {
                    GlobToken::Literal(c) => {
                        if text.get(i) == Some(c) {
                            next[i + 1] = true;
                        }
                    }
                    GlobToken::Any => {
                        if text.get(i).is_some_and(|&c| c != '\n') {
                            next[i + 1] = true;
                        }
                    }
                    GlobToken::Star => {
                        next[i] = true;
                        let mut j = i;
                        while j < text.len() && text[j] != '\n' {
                            j += 1;
                            next[j] = true;
                        }
                    }
                }
            }
            positions = next;
        }
        positions[text.len()]
    }

    fn trim_prefix(&self, value: &[char], longest: bool) -> String {
        let mut lengths: Vec<usize> = (0..=value.len()).collect();
        if longest {
            lengths.reverse();
        }
        match lengths.into_iter().find(|&n| self.matches(&value[..n])) {
            Some(n) => value[n..].iter().collect(),
            None => value.iter().collect(),
        }
    }

    fn trim_suffix(&self, value: &[char], longest: bool) -> String {
        let len = value.len();
        let mut lengths: Vec<usize> = (0..=len).collect();
        if longest {
            lengths.reverse();
        }
        match lengths
            .into_iter()
            .find(|&n| self.matches(&value[len - n..]))
        {
            Some(n) => value[..len - n].iter().collect(),
            None => value.iter().collect(),
        }
    }

    /// The longest match that starts at `start`, as a greedy leftmost regexp finds it.
    fn longest_at(&self, value: &[char], start: usize) -> Option<usize> {
        (start..=value.len())
            .rev()
            .find(|&end| self.matches(&value[start..end]))
    }

    /// Replaces the leftmost match, or every non-overlapping match with `all` (an
    /// empty match right after a previous match does not count, as in Go).
    fn replace(&self, value: &[char], replacement: &str, all: bool) -> String {
        let mut out = String::new();
        let mut copied = 0;
        let mut search = 0;
        let mut previous_end = None;
        while search <= value.len() {
            let found = (search..=value.len())
                .find_map(|start| self.longest_at(value, start).map(|end| (start, end)));
            let Some((start, end)) = found else { break };
            if start == end && previous_end == Some(start) {
                search = start + 1;
                continue;
            }
            out.extend(&value[copied..start]);
            out.push_str(replacement);
            copied = end;
            previous_end = Some(end);
            search = if end > start { end } else { end + 1 };
            if !all {
                break;
            }
        }
        out.extend(&value[copied.min(value.len())..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ex(word: &str, vars: &HashMap<String, String>) -> String {
        expand(word, &|name| vars.get(name).cloned(), '\\').expect(word)
    }

    fn ex_err(word: &str, vars: &HashMap<String, String>) -> String {
        expand(word, &|name| vars.get(name).cloned(), '\\')
            .expect_err(word)
            .to_string()
    }

    fn words(text: &str, vars: &HashMap<String, String>) -> Vec<String> {
        expand_words(text, &|name| vars.get(name).cloned(), '\\').expect(text)
    }

    #[test]
    fn reference_environment_replacement_example() {
        // ENV FOO=/bar; WORKDIR ${FOO}; ADD . $FOO; COPY \$FOO /quux
        let vars = env(&[("FOO", "/bar")]);
        assert_eq!(ex("${FOO}", &vars), "/bar");
        assert_eq!(ex("$FOO", &vars), "/bar");
        assert_eq!(ex("\\$FOO", &vars), "$FOO");
        assert_eq!(ex("\\${foo}", &vars), "${foo}");
        assert_eq!(ex("${FOO}_bar", &vars), "/bar_bar");
    }

    #[test]
    fn reference_modifiers() {
        let vars = env(&[("set", "value"), ("empty", "")]);
        // ${variable:-word}: the value if set and non-empty, else word.
        assert_eq!(ex("${set:-word}", &vars), "value");
        assert_eq!(ex("${empty:-word}", &vars), "word");
        assert_eq!(ex("${unset:-word}", &vars), "word");
        // ${variable-word}: the value if set, even empty, else word.
        assert_eq!(ex("${set-word}", &vars), "value");
        assert_eq!(ex("${empty-word}", &vars), "");
        assert_eq!(ex("${unset-word}", &vars), "word");
        // ${variable:+word}: word if set and non-empty, else "".
        assert_eq!(ex("${set:+word}", &vars), "word");
        assert_eq!(ex("${empty:+word}", &vars), "");
        assert_eq!(ex("${unset:+word}", &vars), "");
        // ${variable+word}: word if set, even empty, else "".
        assert_eq!(ex("${set+word}", &vars), "word");
        assert_eq!(ex("${empty+word}", &vars), "word");
        assert_eq!(ex("${unset+word}", &vars), "");
        // "word can be any string, including additional environment variables".
        assert_eq!(ex("${unset:-$set/x}", &vars), "value/x");
        assert_eq!(ex("${unset:-${set:+nested}}", &vars), "nested");
    }

    #[test]
    fn reference_pattern_modifiers() {
        let vars = env(&[("str", "foobarbaz"), ("string", "foobarbaz")]);
        assert_eq!(ex("${str#f*b}", &vars), "arbaz");
        assert_eq!(ex("${str##f*b}", &vars), "az");
        assert_eq!(ex("${string%b*}", &vars), "foobar");
        assert_eq!(ex("${string%%b*}", &vars), "foo");
        assert_eq!(ex("${string/ba/fo}", &vars), "fooforbaz");
        assert_eq!(ex("${string//ba/fo}", &vars), "fooforfoz");
        assert_eq!(ex("${str#x}", &vars), "foobarbaz");
        assert_eq!(ex("${str#\\*}", &env(&[("str", "*a")])), "a");
        assert_eq!(ex("${unset#x}", &vars), "");
    }

    #[test]
    fn reference_scope_examples() {
        // USER ${username:-some_user} before the ARG is declared.
        assert_eq!(ex("${username:-some_user}", &env(&[])), "some_user");
        let vars = env(&[("username", "what_user")]);
        assert_eq!(ex("$username", &vars), "what_user");
        // ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}
        assert_eq!(ex("${CONT_IMG_VER:-v1.0.0}", &env(&[])), "v1.0.0");
        let vars = env(&[("CONT_IMG_VER", "v2.0.1")]);
        assert_eq!(ex("${CONT_IMG_VER:-v1.0.0}", &vars), "v2.0.1");
    }

    #[test]
    fn one_instruction_sees_the_environment_before_it() {
        // ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc: the builder expands
        // every value of an instruction against the environment before it.
        let before = env(&[("abc", "hello")]);
        assert_eq!(ex("bye", &before), "bye");
        assert_eq!(ex("$abc", &before), "hello");
        let after = env(&[("abc", "bye"), ("def", "hello")]);
        assert_eq!(ex("$abc", &after), "bye");
    }

    #[test]
    fn quotes_and_escapes() {
        let vars = env(&[("NAME", "Doe")]);
        // ENV MY_NAME="John Doe", ENV MY_DOG=Rex\ The\ Dog
        assert_eq!(ex("\"John Doe\"", &vars), "John Doe");
        assert_eq!(ex("Rex\\ The\\ Dog", &vars), "Rex The Dog");
        // Single quotes take the string as is; double quotes still expand.
        assert_eq!(ex("'foo-$NAME'", &vars), "foo-$NAME");
        assert_eq!(ex("\"foo-$NAME\"", &vars), "foo-Doe");
        // Inside double quotes the escape only escapes " $ and itself.
        assert_eq!(ex("\"a\\\"b\\$c\\\\d\\e\"", &vars), "a\"b$c\\d\\e");
        // Outside quotes the escape escapes anything and is dropped at the end.
        assert_eq!(ex("a\\b\\", &vars), "ab");
        assert_eq!(ex("'a'\"b\"c \"\" '\"x\"'", &vars), "abc  \"x\"");
        // A lone $ stays.
        assert_eq!(ex("cost: $ 5 $", &vars), "cost: $ 5 $");
        assert_eq!(ex("$1 $@", &vars), " ");
    }

    #[test]
    fn backtick_escape() {
        let vars = env(&[("FOO", "x")]);
        let e = |w: &str| expand(w, &|n| vars.get(n).cloned(), '`').unwrap();
        assert_eq!(e("c:\\path\\"), "c:\\path\\");
        assert_eq!(e("`$FOO $FOO"), "$FOO x");
        assert_eq!(e("\"a`\"b\""), "a\"b");
    }

    #[test]
    fn words_split_on_unquoted_whitespace() {
        let vars = env(&[("PORTS", "80/tcp 443"), ("EMPTY", "")]);
        assert_eq!(words("$PORTS 8080", &vars), ["80/tcp", "443", "8080"]);
        assert_eq!(words("\"$PORTS\" 8080", &vars), ["80/tcp 443", "8080"]);
        assert_eq!(words("a\\ b  'c d'", &vars), ["a b", "c d"]);
        assert_eq!(
            words("  /var/log   /var/db ", &vars),
            ["/var/log", "/var/db"]
        );
        assert_eq!(words("\"\" $EMPTY x", &vars), ["x"]);
        assert_eq!(words("x${EMPTY:-y}z", &vars), ["xyz"]);
        // `<<` keeps the blanks after it (heredoc openers), as in buildkit.
        assert_eq!(
            words("cat <<  EOF > f", &vars),
            ["cat", "<<  EOF", ">", "f"]
        );
        assert_eq!(ex("a <<  b < c", &vars), "a <<  b < c");
    }

    #[test]
    fn errors_read_like_dockers() {
        let vars = env(&[]);
        assert_eq!(
            ex_err("${a", &vars),
            "failed to process \"${a\": syntax error: missing '}'"
        );
        assert_eq!(
            ex_err("${}", &vars),
            "failed to process \"${}\": syntax error: bad substitution"
        );
        assert_eq!(
            ex_err("${:a}", &vars),
            "failed to process \"${:a}\": syntax error: bad substitution"
        );
        assert_eq!(
            ex_err("'abc", &vars),
            "failed to process \"'abc\": unexpected end of statement while looking for matching single-quote"
        );
        assert_eq!(
            ex_err("\"abc", &vars),
            "failed to process \"\\\"abc\": unexpected end of statement while looking for matching double-quote"
        );
        assert_eq!(
            ex_err("${a:x}", &vars),
            "failed to process \"${a:x}\": unsupported modifier (:x) in substitution"
        );
        assert_eq!(
            ex_err("${a:-x", &vars),
            "failed to process \"${a:-x\": syntax error: missing '}'"
        );
        assert_eq!(
            ex_err("${a?}", &vars),
            "failed to process \"${a?}\": a: is not allowed to be unset"
        );
        assert_eq!(
            ex_err("${a:?custom}", &env(&[("a", "")])),
            "failed to process \"${a:?custom}\": a: custom"
        );
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let vars = env(&[("FOO", "bar")]);
        let out = expand_heredoc("  echo \"hello ${FOO}\" 'x' \\$FOO\n", &|n| {
            vars.get(n).cloned()
        })
        .unwrap();
        assert_eq!(out, "  echo \"hello bar\" 'x' $FOO\n");
    }

    #[test]
    fn raw_modes_for_heredoc_detection() {
        let lookup = |_: &str| None;
        let mut lexer = Lexer::new('\\', &lookup);
        lexer.raw_quotes = true;
        lexer.raw_escapes = true;
        lexer.skip_unset = true;
        let (_, words) = lexer
            .process("RUN <<\"EOF\" cat $X ${Y:-z} \\n 'a b'")
            .unwrap();
        assert_eq!(
            words,
            ["RUN", "<<\"EOF\"", "cat", "$X", "${Y:-z}", "\\n", "'a b'"]
        );
    }
}
