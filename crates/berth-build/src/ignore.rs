//! `.dockerignore`: which files of a build context are left out.
//!
//! The rules are Docker's (moby/patternmatcher and its `ignorefile` reader):
//!
//! - one pattern a line; a line that starts with `#` is a comment (only at the very
//!   start: `  #x` is a pattern), surrounding whitespace is ignored;
//! - each pattern is cleaned like Go's `filepath.Clean` (`./a//b/` is `a/b`, `..` is
//!   resolved) and a leading `/` removed: paths are relative to the context root;
//! - `*` matches any run of characters but `/`, `?` one character but `/`, `[...]`
//!   a class (`[^...]` negated, `a-z` ranges), `\` escapes the next character, and
//!   `**` any number of directories, including none (`**/*.go`, `a/**/b`, `dir/**`);
//! - a pattern that matches a directory excludes everything under it;
//! - `!pattern` is an exception that puts matching paths back; the last pattern that
//!   matches a path decides.

/// A `.dockerignore` that could not be compiled, with Docker's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is just `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A pattern Go's `filepath.Match` rejects, e.g. `[a` or a trailing `\`.
    #[error("syntax error in pattern")]
    BadPattern {
        /// The pattern, cleaned, without its `!`.
        pattern: String,
    },
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Cleaned, without the `!`.
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

/// How a pattern matches, as patternmatcher decides when it compiles one: plain
/// patterns compare strings, the rest become (the equivalent of) a regexp.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// No wildcards: the path must equal the pattern.
    Exact,
    /// `dir/**` and the like: the path must start with this.
    Prefix(String),
    /// `**/name`: the path must end with this (or be it, without the leading `/`).
    Suffix(String),
    /// Anything else, anchored at both ends.
    Tokens(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: `[^/]*`.
    Star,
    /// `?`: `[^/]`.
    One,
    /// `**` (and `**/`) not at the end: `(.*/)?`.
    Dirs,
    /// A trailing `**`: `.*`.
    Rest,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Ignore {
    /// Reads a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let mut line = line.strip_suffix('\r').unwrap_or(line);
            if number == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            // Comments are recognised before trimming, as Docker does.
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if invert {
                cleaned.insert(0, '!');
            }
            patterns.push(cleaned);
        }
        Ignore::from_patterns(patterns)
    }

    /// Compiles patterns given one by one (a leading `!` is an exception), e.g. the
    /// list a client sends or [`Ignore::patterns`] of another `Ignore`.
    pub fn from_patterns<I, S>(patterns: I) -> Result<Ignore, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim();
            if pattern.is_empty() {
                continue;
            }
            let mut text = clean(pattern);
            let exclusion = text.starts_with('!');
            if exclusion {
                if text.len() == 1 {
                    return Err(IgnoreError::IllegalExclusion);
                }
                text.remove(0);
            }
            if !valid_match_syntax(&text) {
                return Err(IgnoreError::BadPattern { pattern: text });
            }
            let matcher = compile(&text);
            out.push(Pattern {
                text,
                exclusion,
                matcher,
            });
        }
        Ok(Ignore { patterns: out })
    }

    /// The patterns in order, exceptions with their `!`.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left out of the
    /// context: the last pattern that matches it or one of its parent directories
    /// decides. The context root itself is never excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let cleaned = clean(path);
        let file = cleaned.trim_start_matches('/');
        if file.is_empty() || file == "." {
            return false;
        }
        let parent = match file.rfind('/') {
            Some(at) => clean(&file[..at]),
            None => ".".to_string(),
        };
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // An exclusion can only change an excluded path, and an ordinary pattern
            // only a path that is not excluded yet.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(file);
            if !hit && parent != "." {
                hit = (1..=parent_dirs.len()).any(|n| pattern.matches(&parent_dirs[..n].join("/")));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// For an excluded directory: whether it must still be walked because an
    /// exception (`!dir/keep.txt`) may put back something under it. This is Docker's
    /// own shortcut when it tars a context: it only looks for exceptions that start
    /// with the directory's path, so `!**/keep.txt` does not reach into an excluded
    /// directory.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let cleaned = clean(dir);
        let dir_slash = format!("{}/", cleaned.trim_start_matches('/'));
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Tokens(tokens) => matches_tokens(tokens, path),
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths: no repeated `/`, no `.`, `..`
/// resolved where it can be, no trailing `/`; the empty path is `.`.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// One character of a `[...]` class as Go's `getEsc` reads it: not `-` or `]`
/// unescaped, and not the last character of the pattern.
fn class_char(chars: &[char], at: usize) -> Option<(char, usize)> {
    let mut at = at;
    match chars.get(at) {
        None | Some('-' | ']') => return None,
        Some('\\') => at += 1,
        Some(_) => {}
    }
    let ch = *chars.get(at)?;
    at += 1;
    if at >= chars.len() {
        return None;
    }
    Some((ch, at))
}

/// Parses a class after its `[`; returns the token and the index after the `]`.
fn parse_class(chars: &[char], at: usize) -> Option<(Token, usize)> {
    let mut at = at;
    let negated = chars.get(at) == Some(&'^');
    if negated {
        at += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(at) == Some(&']') && !ranges.is_empty() {
            return Some((Token::Class { negated, ranges }, at + 1));
        }
        let (lo, next) = class_char(chars, at)?;
        at = next;
        let mut hi = lo;
        if chars.get(at) == Some(&'-') {
            let (end, next) = class_char(chars, at + 1)?;
            hi = end;
            at = next;
        }
        ranges.push((lo, hi));
    }
}

/// Whether Go's `filepath.Match` accepts the pattern (Docker checks every pattern
/// with it): classes must be well formed and an escape must escape something.
fn valid_match_syntax(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '\\' => {
                if at + 1 >= chars.len() {
                    return false;
                }
                at += 2;
            }
            '[' => match parse_class(&chars, at + 1) {
                Some((_, next)) => at = next,
                None => return false,
            },
            _ => at += 1,
        }
    }
    true
}

/// Compiles a checked pattern the way patternmatcher's `compile` does.
fn compile(pattern: &str) -> Matcher {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = Kind::Exact;
    let mut tokens = Vec::new();
    let mut at = 0;
    let mut first = true;
    while at < chars.len() {
        let ch = chars[at];
        at += 1;
        match ch {
            '*' if chars.get(at) == Some(&'*') => {
                at += 1;
                // `**/` is the same as `**`.
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                if at == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::Rest);
                        kind = Kind::Regexp;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    kind = Kind::Regexp;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                kind = Kind::Regexp;
            }
            '?' => {
                tokens.push(Token::One);
                kind = Kind::Regexp;
            }
            '\\' => match chars.get(at) {
                Some(&next) => {
                    tokens.push(Token::Literal(next));
                    at += 1;
                    kind = Kind::Regexp;
                }
                None => tokens.push(Token::Literal('\\')),
            },
            '[' => {
                // The pattern was checked, so the class parses; the fallback keeps
                // this total anyway.
                match parse_class(&chars, at) {
                    Some((class, next)) => {
                        tokens.push(class);
                        at = next;
                    }
                    None => tokens.push(Token::Literal('[')),
                }
                kind = Kind::Regexp;
            }
            ']' => {
                tokens.push(Token::Literal(']'));
                kind = Kind::Regexp;
            }
            other => tokens.push(Token::Literal(other)),
        }
        first = false;
    }
    match kind {
        Kind::Exact => Matcher::Exact,
        // Strip the trailing `**`.
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        // Strip the leading `**`.
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regexp => Matcher::Tokens(tokens),
    }
}

/// Whether `path` matches all of `tokens`. `reachable[i]` says the tokens so far can
/// end at `path[..i]`; each token moves that set forward.
fn matches_tokens(tokens: &[Token], path: &str) -> bool {
    let text: Vec<char> = path.chars().collect();
    let n = text.len();
    let mut reachable = vec![false; n + 1];
    reachable[0] = true;
    for token in tokens {
        let mut next = vec![false; n + 1];
        for start in 0..=n {
            if !reachable[start] {
                continue;
            }
            match token {
                Token::Literal(c) => {
                    if text.get(start) == Some(c) {
                        next[start + 1] = true;
                    }
                }
                Token::One => {
                    if text.get(start).is_some_and(|&c| c != '/') {
                        next[start + 1] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    if let Some(&c) = text.get(start) {
                        let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next[start + 1] = true;
                        }
                    }
                }
                Token::Star => {
                    next[start] = true;
                    for end in start..n {
                        if text[end] == '/' {
                            break;
                        }
                        next[end + 1] = true;
                    }
                }
                Token::Dirs => {
                    // Nothing, or anything (but a newline, like a regexp's `.`) up to
                    // and including a `/`.
                    next[start] = true;
                    for end in start..n {
                        if text[end] == '\n' {
                            break;
                        }
                        if text[end] == '/' {
                            next[end + 1] = true;
                        }
                    }
                }
                Token::Rest => {
                    next[start] = true;
                    for end in start..n {
                        if text[end] == '\n' {
                            break;
                        }
                        next[end + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Ignore {
        Ignore::parse(text).expect(text)
    }

    fn check(ignore: &Ignore, excluded: &[&str], kept: &[&str]) {
        for path in excluded {
            assert!(ignore.is_excluded(path), "{path} should be excluded");
        }
        for path in kept {
            assert!(!ignore.is_excluded(path), "{path} should be kept");
        }
    }

    #[test]
    fn docs_example_temp_patterns() {
        let ig = ignore("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        check(
            &ig,
            &[
                // */temp*: names starting with temp in an immediate subdirectory.
                "somedir/temporary.txt",
                "somedir/temp",
                // and, being a directory, everything under it.
                "somedir/temp/deeper/file",
                // */*/temp*: two levels below the root.
                "somedir/subdir/temporary.txt",
                // temp?: one character after temp, in the root.
                "tempa",
                "tempb",
            ],
            &[
                "temporary.txt",
                "temp",
                "tempab",
                "a/b/c/temporary.txt",
                "somedir/other.txt",
                "comment",
            ],
        );
    }

    #[test]
    fn docs_example_double_star() {
        let ig = ignore("**/*.go\n");
        check(
            &ig,
            &["main.go", "a/b/c.go", "vendor/x/y/z.go"],
            &["a/b/c.gox", "go", "a.go.txt"],
        );
        let ig = ignore("a/**/b\n");
        check(
            &ig,
            &["a/b", "a/x/b", "a/x/y/b", "a/x/b/c"],
            &["b", "x/a/b", "a/bb"],
        );
        let ig = ignore("**/temp\n");
        check(
            &ig,
            &["temp", "a/temp", "a/b/temp", "a/temp/file"],
            &["atemp", "temp2"],
        );
        let ig = ignore("dir/**\n");
        check(&ig, &["dir/a", "dir/a/b"], &["dir", "dir2/a"]);
        let ig = ignore("**\n");
        check(&ig, &["anything", "a/b/c"], &[]);
    }

    #[test]
    fn docs_example_exceptions() {
        let ig = ignore("*.md\n!README.md\n");
        check(
            &ig,
            &["CHANGES.md", "notes.md"],
            &["README.md", "docs/guide.md", "main.go"],
        );

        // No markdown files except README files other than README-secret.md.
        let ig = ignore("*.md\n!README*.md\nREADME-secret.md\n");
        check(
            &ig,
            &["CHANGES.md", "README-secret.md"],
            &["README.md", "README-2.md"],
        );

        // All README files are included: the middle line has no effect, because
        // !README*.md matches README-secret.md and comes last.
        let ig = ignore("*.md\nREADME-secret.md\n!README*.md\n");
        check(&ig, &["CHANGES.md"], &["README.md", "README-secret.md"]);
    }

    #[test]
    fn exception_under_an_excluded_directory() {
        let ig = ignore("docs\n!docs/README.md\n");
        check(
            &ig,
            &["docs", "docs/guide.md", "docs/a/b"],
            &["docs/README.md"],
        );
        assert!(ig.may_reinclude_under("docs"));
        assert!(!ig.may_reinclude_under("other"));
        assert!(!ignore("docs\n").may_reinclude_under("docs"));
        // Docker's shortcut only sees exceptions spelled under the directory.
        assert!(!ignore("docs\n!**/README.md\n").may_reinclude_under("docs"));
    }

    #[test]
    fn directories_exclude_their_contents() {
        let ig = ignore("node_modules\n.git\nbuild/\n");
        check(
            &ig,
            &[
                "node_modules",
                "node_modules/a/b.js",
                ".git/HEAD",
                "build/out/x",
            ],
            &["src/node_modules2", "node_modules.txt", "a/build/x"],
        );
    }

    #[test]
    fn patterns_are_cleaned() {
        // /foo/bar and foo/bar both exclude bar in the foo directory.
        for text in [
            "/foo/bar",
            "foo/bar",
            "./foo//bar/",
            "foo/baz/../bar",
            "  foo/bar  ",
        ] {
            let ig = ignore(text);
            assert_eq!(ig.patterns(), ["foo/bar"], "{text:?}");
            check(
                &ig,
                &["foo/bar", "foo/bar/baz"],
                &["foo", "foo/barx", "bar"],
            );
        }
        assert_eq!(ignore("! /a/./b").patterns(), ["!a/b"]);
        // Paths are cleaned too.
        check(
            &ignore("foo/bar"),
            &["./foo/bar", "/foo/bar", "foo//bar/"],
            &[],
        );
        // The root is never excluded.
        check(&ignore("*\n"), &["a", "b/c"], &[".", "", "/"]);
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let ig = ignore("\u{feff}# comment\r\n\r\n   \r\n*.tmp\r\n #x\r\n");
        assert_eq!(ig.patterns(), ["*.tmp", "#x"]);
        check(&ig, &["a.tmp", "#x"], &["# comment", "a.tmpl"]);
        assert!(ignore("# only\n\n").is_empty());
    }

    #[test]
    fn wildcards_classes_and_escapes() {
        let ig = ignore("[a-c].txt\n");
        check(&ig, &["a.txt", "c.txt"], &["d.txt", "ab.txt"]);
        let ig = ignore("[^a-c].txt\n");
        check(&ig, &["d.txt"], &["a.txt"]);
        let ig = ignore("arr[[]0].txt\n");
        check(&ig, &["arr[0].txt"], &["arr0.txt"]);
        let ig = ignore("\\*.txt\n");
        check(&ig, &["*.txt"], &["a.txt"]);
        let ig = ignore("index.?s\n");
        check(
            &ig,
            &["index.js", "index.ts"],
            &["index.s", "index.jsx", "indexajs"],
        );
        let ig = ignore("a*b\n");
        check(&ig, &["ab", "axxb", "ab/c"], &["a/b", "a/xb", "ba"]);
        // Regexp characters mean nothing special.
        let ig = ignore("a.(b)+{c}|$\n");
        check(&ig, &["a.(b)+{c}|$"], &["aa(b)+{c}|$"]);
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(Ignore::parse("!\n"), Err(IgnoreError::IllegalExclusion));
        assert_eq!(Ignore::parse("  !  \n"), Err(IgnoreError::IllegalExclusion));
        for bad in ["[a", "a\\", "[]a]", "[a-]", "[z-"] {
            let err = Ignore::parse(bad).expect_err(bad);
            assert!(matches!(err, IgnoreError::BadPattern { .. }), "{bad}");
            assert_eq!(err.to_string(), "syntax error in pattern");
        }
    }

    #[test]
    fn from_patterns_takes_docker_style_lists() {
        let ig = Ignore::from_patterns(["*.log", "!keep.log"]).unwrap();
        check(&ig, &["a.log"], &["keep.log"]);
        assert_eq!(ig.patterns(), ["*.log", "!keep.log"]);
    }

    #[test]
    fn clean_matches_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("//a//b//", "/a/b"),
            ("a/./b/.", "a/b"),
            ("/", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), expected, "{input:?}");
        }
    }
}
