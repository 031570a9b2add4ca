//! `.dockerignore` as docker's CLI reads it (`ignorefile.ReadAll`) and matches it
//! (`moby/patternmatcher`): `#` comments, `!` exceptions where the last matching
//! pattern wins, `*` and `?` within one path component, `**` across any number,
//! `[...]` classes, `\` escapes, and a pattern that matches a directory matching
//! everything below it.

/// The patterns of a `.dockerignore`, cleaned as docker's `ignorefile.ReadAll`
/// cleans them: a UTF-8 BOM dropped, `#` lines skipped, blanks trimmed, each path
/// cleaned and made relative (`/a/` is `a`), a leading `!` kept.
pub fn read_patterns(text: &[u8]) -> Vec<String> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let text = String::from_utf8_lossy(text);
    let mut patterns = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
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
        patterns.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    patterns
}

/// Go's `path.Clean`: one `/` between components, no `.`, `..` resolved where it
/// can be, no trailing `/`; `.` for nothing.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// One piece of a compiled pattern (patternmatcher turns patterns into regular
/// expressions; these are the same pieces, matched without one).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    /// `?`: one character other than `/`.
    One,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` followed by more pattern (a `/` after it is part of it): `(.*/)?`.
    AnyDirs,
    /// `**` at the end: `.*`.
    Rest,
    /// `[...]`, `[^...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exclusion: bool,
    tokens: Vec<Token>,
}

impl Pattern {
    fn compile(text: &str) -> Result<Vec<Token>, String> {
        let bad = || "syntax error in pattern".to_string();
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    tokens.push(if i == chars.len() {
                        Token::Rest
                    } else {
                        Token::AnyDirs
                    });
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '\\' => match chars.get(i) {
                    Some(&next) => {
                        i += 1;
                        tokens.push(Token::Literal(next));
                    }
                    // filepath.Match refuses a trailing backslash.
                    None => return Err(bad()),
                },
                '[' => {
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        let mut lo = *chars.get(i).ok_or_else(bad)?;
                        i += 1;
                        if lo == ']' && !ranges.is_empty() {
                            break;
                        }
                        if lo == ']' {
                            // `[]` and `[^]` are malformed for filepath.Match.
                            return Err(bad());
                        }
                        if lo == '\\' {
                            lo = *chars.get(i).ok_or_else(bad)?;
                            i += 1;
                        }
                        let mut hi = lo;
                        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']')
                        {
                            hi = chars[i + 1];
                            i += 2;
                            if hi == '\\' {
                                hi = *chars.get(i).ok_or_else(bad)?;
                                i += 1;
                            }
                            if hi < lo {
                                return Err(bad());
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        Ok(tokens)
    }

    /// Whether the whole of `path` matches (the regular expression is anchored at
    /// both ends). A set-of-states walk, so no pattern backtracks badly.
    fn matches(&self, path: &str) -> bool {
        let n = self.tokens.len();
        // State 2k: before token k; 2k+1: inside the `(.*/)?` of token k.
        let mut states = vec![false; 2 * n + 2];
        let close = |states: &mut Vec<bool>| {
            for k in 0..n {
                if !states[2 * k] {
                    continue;
                }
                match self.tokens[k] {
                    Token::Star | Token::Rest => states[2 * (k + 1)] = true,
                    Token::AnyDirs => {
                        states[2 * (k + 1)] = true;
                        states[2 * k + 1] = true;
                    }
                    _ => {}
                }
            }
        };
        states[0] = true;
        close(&mut states);
        for c in path.chars() {
            let mut next = vec![false; 2 * n + 2];
            for k in 0..n {
                if states[2 * k + 1] {
                    next[2 * k + 1] = true;
                    if c == '/' {
                        next[2 * (k + 1)] = true;
                    }
                }
                if !states[2 * k] {
                    continue;
                }
                match &self.tokens[k] {
                    Token::Literal(l) if *l == c => next[2 * (k + 1)] = true,
                    Token::One if c != '/' => next[2 * (k + 1)] = true,
                    Token::Star if c != '/' => next[2 * k] = true,
                    Token::Rest => next[2 * k] = true,
                    Token::Class { negated, ranges } => {
                        let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next[2 * (k + 1)] = true;
                        }
                    }
                    _ => {}
                }
            }
            close(&mut next);
            if !next.iter().any(|&s| s) {
                return false;
            }
            states = next;
        }
        states[2 * n]
    }

    /// The pattern matches `path` or one of the directories above it.
    fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        path.match_indices('/')
            .any(|(i, _)| self.matches(&path[..i]))
    }
}

/// The patterns of one `.dockerignore` (docker's `PatternMatcher`).
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// `patternmatcher.New`: blank patterns are skipped; a lone `!` and malformed
    /// patterns are refused with docker's messages.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher, String> {
        let mut compiled = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref().trim();
            if pattern.is_empty() {
                continue;
            }
            let pattern = clean(pattern);
            let (exclusion, text) = match pattern.strip_prefix('!') {
                Some("") => return Err("illegal exclusion pattern: \"!\"".into()),
                Some(rest) => (true, rest.to_string()),
                None => (false, pattern),
            };
            let tokens = Pattern::compile(&text)?;
            compiled.push(Pattern {
                text,
                exclusion,
                tokens,
            });
        }
        Ok(Matcher { patterns: compiled })
    }

    /// Whether any pattern is an exception (`!...`).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// `MatchesOrParentMatches`: whether `path` (relative, `/`-separated) is
    /// excluded: the last pattern matching it or a directory above it decides.
    pub fn matches(&self, path: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change a match, nor an exception a non-match.
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches_or_parent(path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// `MatchesUsingParentResults`, as docker's archiver walks a tree: `parent` is
    /// what this returned for the directory holding `path` (`None` at the top).
    /// Returns whether `path` is excluded and what its own children need.
    pub fn matches_in(&self, path: &str, parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[i]);
            if !hit {
                if pattern.exclusion != matched {
                    continue;
                }
                hit = match parent {
                    Some(_) => pattern.matches(path),
                    None => pattern.matches_or_parent(path),
                };
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether an exception names something below the excluded directory `dir`, so
    /// that the archiver must still look inside it.
    pub fn has_exception_under(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], path: &str) -> bool {
        Matcher::new(patterns).unwrap().matches(path)
    }

    #[test]
    fn reads_like_ignorefile() {
        let text = b"\xEF\xBB\xBF# comment\n */temp*\r\n\n*/*/temp*\ntemp?\n/abs/\n! keep/./me/ \n!\n  # not a comment\n./\n";
        assert_eq!(
            read_patterns(text),
            [
                "*/temp*",
                "*/*/temp*",
                "temp?",
                "abs",
                "!keep/me",
                "!",
                "# not a comment",
                "."
            ]
        );
        assert!(Matcher::new(&read_patterns(b"!\n")).is_err());
    }

    #[test]
    fn go_clean() {
        for (path, cleaned) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a//b/./c", "a/b/c"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("a/b/../../../c", "../c"),
        ] {
            assert_eq!(clean(path), cleaned, "{path}");
        }
    }

    /// The examples of docker's `.dockerignore` documentation.
    #[test]
    fn documented_examples() {
        // `*/temp*`: one level below the root.
        assert!(excluded(&["*/temp*"], "somedir/temporary.txt"));
        assert!(excluded(&["*/temp*"], "somedir/temp"));
        assert!(!excluded(&["*/temp*"], "temp.txt"));
        assert!(!excluded(&["*/temp*"], "a/b/temp.txt"));
        // `*/*/temp*`: two levels below.
        assert!(excluded(&["*/*/temp*"], "somedir/subdir/temporary.txt"));
        assert!(!excluded(&["*/*/temp*"], "somedir/temporary.txt"));
        // `temp?`: one character.
        assert!(excluded(&["temp?"], "tempa"));
        assert!(excluded(&["temp?"], "tempb"));
        assert!(!excluded(&["temp?"], "temp"));
        assert!(!excluded(&["temp?"], "tempab"));
        assert!(!excluded(&["temp?"], "temp/"));
        // `**/*.go`: at any depth, the root included.
        assert!(excluded(&["**/*.go"], "main.go"));
        assert!(excluded(&["**/*.go"], "a/b/c/main.go"));
        assert!(!excluded(&["**/*.go"], "main.golang"));
        // Exceptions: the last match wins.
        let readme = ["*.md", "!README.md"];
        assert!(excluded(&readme, "CHANGES.md"));
        assert!(!excluded(&readme, "README.md"));
        let secret = ["*.md", "!README*.md", "README-secret.md"];
        assert!(excluded(&secret, "README-secret.md"));
        assert!(!excluded(&secret, "README-public.md"));
        assert!(excluded(&secret, "other.md"));
        let reversed = ["*.md", "README-secret.md", "!README*.md"];
        assert!(!excluded(&reversed, "README-secret.md"));
        // Excluding everything but a few.
        let only = ["*", "!src", "!Dockerfile"];
        assert!(excluded(&only, "target"));
        assert!(!excluded(&only, "src/main.rs"));
        assert!(!excluded(&only, "Dockerfile"));
    }

    #[test]
    fn directories_and_their_contents() {
        assert!(excluded(&["node_modules"], "node_modules"));
        assert!(excluded(&["node_modules"], "node_modules/a/b.js"));
        assert!(!excluded(&["node_modules"], "web/node_modules/a.js"));
        assert!(excluded(&["**/node_modules"], "web/node_modules/a.js"));
        assert!(excluded(&["a/**"], "a/b"));
        assert!(!excluded(&["a/**"], "a"));
        assert!(excluded(&["a/**/z"], "a/z"));
        assert!(excluded(&["a/**/z"], "a/b/c/z"));
        assert!(!excluded(&["a/**/z"], "a/bz"));
        assert!(excluded(&["build/"], "build/out.o"));
        // An exception inside an excluded directory.
        let keep = ["docs", "!docs/keep.md"];
        assert!(excluded(&keep, "docs/other.md"));
        assert!(!excluded(&keep, "docs/keep.md"));
        assert!(Matcher::new(&keep).unwrap().has_exception_under("docs"));
        assert!(!Matcher::new(&keep).unwrap().has_exception_under("doc"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(excluded(&["file[0-9].txt"], "file7.txt"));
        assert!(!excluded(&["file[0-9].txt"], "filex.txt"));
        assert!(excluded(&["file[^0-9].txt"], "filex.txt"));
        assert!(excluded(&["\\*.txt"], "*.txt"));
        assert!(!excluded(&["\\*.txt"], "a.txt"));
        assert!(excluded(&["a.b"], "a.b"));
        assert!(!excluded(&["a.b"], "axb"));
        assert_eq!(
            Matcher::new(&["a[b"]).unwrap_err(),
            "syntax error in pattern"
        );
        assert!(Matcher::new(&["a\\"]).is_err());
    }

    #[test]
    fn walking_with_parent_results() {
        let m = Matcher::new(&["a/b", "!a"]).unwrap();
        // docker's archiver carries each pattern's result from the directory
        // above: `!a` was never tried on `a` (nothing was excluded yet), so it does
        // not re-include `a/b`.
        let (a, info) = m.matches_in("a", None);
        assert!(!a);
        let (ab, info) = m.matches_in("a/b", Some(&info));
        assert!(ab);
        let (abc, _) = m.matches_in("a/b/c", Some(&info));
        assert!(abc);
        let m = Matcher::new(&["*", "!keep"]).unwrap();
        let (keep, info) = m.matches_in("keep", None);
        assert!(!keep);
        assert!(!m.matches_in("keep/x", Some(&info)).0);
        assert!(m.matches_in("other", None).0);
    }
}
