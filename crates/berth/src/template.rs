//! Evaluator for the subset of Go's `text/template` language that docker's `--format`
//! flag uses, run over `serde_json::Value` data and printing values as Go's fmt would.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::Value;

/// Nesting limit for blocks and parentheses, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 100;
/// Largest printf width/precision or `pad` count honoured: bounds memory use, and Rust's
/// formatter panics on widths above `u16::MAX`.
const MAX_WIDTH: usize = u16::MAX as usize;
/// Functions known to the parser; like Go, unknown names are rejected at parse time.
const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "json", "join", "split", "upper", "lower", "title", "trim", "truncate", "pad",
];
const BLOCKS: [&str; 3] = ["if", "with", "range"];

/// Errors from parsing or executing a template, worded like Go's (and docker's) messages.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The format string is not a valid template.
    #[error("template parsing error: template: :{line}: {msg}")]
    Parse { line: usize, msg: String },
    /// The template is valid but could not be executed on the given data.
    #[error("template: :{line}: executing \"\": {msg}")]
    Exec { line: usize, msg: String },
}

/// A parsed template, ready to be rendered against any number of values.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`, reporting syntax errors and unknown functions up front as Go does.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let items = scan(src)?.into_iter();
        let mut parser = Parser {
            items,
            line: 1,
            depth: 0,
        };
        match parser.list()? {
            (nodes, Stop::Eof) => Ok(Template { nodes }),
            (_, Stop::End) => Err(perr(parser.line, "unexpected {{end}}")),
            (_, Stop::Else(_)) => Err(perr(parser.line, "unexpected {{else}}")),
        }
    }

    /// Executes the template with `data` as both `.` and `$`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_with_methods(data, &Value::Null)
    }

    /// Executes the template with `data` as `.` and `$`, and `methods` answering
    /// docker's one-argument methods: `{{.Label "k"}}` looks `k` up in
    /// `methods["Label"]` (an object), giving "" when absent. This keeps such a
    /// method apart from the field of a similar name (`.Labels` stays docker's
    /// `k=v,...` string) and out of `{{json .}}`.
    pub fn render_with_methods(
        &self,
        data: &Value,
        methods: &Value,
    ) -> Result<String, TemplateError> {
        let vars = vec![("$".to_string(), Some(data.clone()))];
        let mut exec = Exec {
            vars,
            methods: methods.as_object(),
            out: String::new(),
        };
        exec.walk(&self.nodes, data)?;
        Ok(exec.out)
    }
}

/// docker's `table` prefix: returns whether the format is a table format and the
/// remaining template, with literal `\t` / `\n` turned into tab / newline.
pub fn split_table(format: &str) -> (bool, String) {
    let (table, rest) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    // docker trims only spaces, then expands the escapes that shells leave literal.
    let rest = rest.trim_matches(' ');
    (table, rest.replace("\\t", "\t").replace("\\n", "\n"))
}

/// Header row for a table format: each action becomes the upper-cased, space-split
/// name of the last field it mentions (`{{.CreatedSince}}` -> `CREATED SINCE`), unless
/// `names` gives the command's own header for it (docker's image list calls `.ID`
/// "IMAGE ID" and `ps` calls it "CONTAINER ID").
pub fn header_with_names(format: &str, names: &[(&str, &str)]) -> String {
    let Ok(items) = scan(format) else {
        return format.to_string();
    };
    let mut out = String::new();
    for item in items {
        match item {
            Item::Text(text) => out.push_str(&text),
            Item::Action(toks, _) => {
                let field = toks.iter().rev().find_map(|t| match t {
                    Tok::Field(name) | Tok::Chain(name) => Some(name),
                    _ => None,
                });
                if let Some((_, header)) = field.and_then(|f| names.iter().find(|(n, _)| n == f)) {
                    out.push_str(header);
                    continue;
                }
                let chars: Vec<char> = field.map(|f| f.chars().collect()).unwrap_or_default();
                for (i, &c) in chars.iter().enumerate() {
                    let prev = if i > 0 { chars[i - 1] } else { ' ' };
                    let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                    // Split "CreatedSince" and "HTTPProxy", but keep acronyms like "ID" whole.
                    if c.is_uppercase()
                        && (prev.is_lowercase()
                            || prev.is_ascii_digit()
                            || (prev.is_uppercase() && next_lower))
                    {
                        out.push(' ');
                    }
                    out.extend(c.to_uppercase());
                }
            }
        }
    }
    out
}

fn perr(line: usize, msg: impl Into<String>) -> TemplateError {
    let msg = msg.into();
    TemplateError::Parse { line, msg }
}

// ---------------------------------------------------------------------------
// Lexing: split the source into text and actions, then tokenize each action.

enum Item {
    Text(String),
    Action(Vec<Tok>, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    /// `.Name` starting a term.
    Field(String),
    /// `.Name` written directly after a term (`.A.B`, `$x.B`, `(pipe).B`): chains onto it.
    Chain(String),
    Var(String),
    Ident(String),
    Lit(Value),
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn scan(src: &str) -> Result<Vec<Item>, TemplateError> {
    let (mut items, mut rest, mut line, mut trim) = (Vec::new(), src, 1, false);
    loop {
        let open = rest.find("{{");
        let mut text = &rest[..open.unwrap_or(rest.len())];
        if trim {
            text = text.trim_start_matches(is_space);
        }
        let mut body = open.map_or("", |o| &rest[o + 2..]);
        // A trim marker is "-" plus a space, so that `{{-3}}` still lexes as a number.
        if body.starts_with('-') && body[1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            body = &body[1..];
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let Some(open) = open else {
            return Ok(items);
        };
        line += rest[..open].matches('\n').count();
        let end = action_end(body).ok_or_else(|| perr(line, "unclosed action"))?;
        let mut inner = &body[..end];
        rest = &body[end + 2..];
        trim = false;
        if let Some(t) = inner.strip_suffix('-').filter(|t| t.ends_with(is_space)) {
            (inner, trim) = (t, true);
        }
        if let Some(comment) = inner.trim_start_matches(is_space).strip_prefix("/*") {
            if !comment.trim_end_matches(is_space).ends_with("*/") {
                return Err(perr(line, "comment ends before closing delimiter"));
            }
        } else {
            items.push(Item::Action(lex(inner, line)?, line));
        }
        line += inner.matches('\n').count();
    }
}

/// Byte offset of the `}}` closing the action `body`, skipping quoted strings and comments.
fn action_end(body: &str) -> Option<usize> {
    let mut i = match body.trim_start_matches(is_space).strip_prefix("/*") {
        Some(c) => body.len() - c.len() + c.find("*/")? + 2,
        None => 0,
    };
    // The delimiters and quotes are ASCII, so UTF-8 continuation bytes never match them.
    let (bytes, mut quote) = (body.as_bytes(), None);
    while let Some(&b) = bytes.get(i) {
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if b == b'}' && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn lex(src: &str, line: usize) -> Result<Vec<Tok>, TemplateError> {
    let cs: Vec<char> = src.chars().collect();
    let word = |c: &char| c.is_alphanumeric() || *c == '_';
    let word_end = |from: usize| from + cs[from..].iter().take_while(|c| word(c)).count();
    let text = |from: usize, to: usize| cs[from..to].iter().collect::<String>();
    let (mut toks, mut i, mut adjacent) = (Vec::new(), 0, false);
    while let Some(&c) = cs.get(i) {
        if c.is_whitespace() {
            (i, adjacent) = (i + 1, false);
            continue;
        }
        let next = cs.get(i + 1).copied().unwrap_or(' ');
        let field_next = next.is_alphabetic() || next == '_';
        let prev = if adjacent { toks.last() } else { None };
        let chain = matches!(
            prev,
            Some(Tok::RParen | Tok::Field(_) | Tok::Chain(_) | Tok::Var(_))
        );
        let after_term = chain || matches!(prev, Some(Tok::Lit(_) | Tok::Ident(_) | Tok::Dot));
        if c == '.' && after_term && !(chain && field_next) {
            return Err(perr(line, "unexpected . after term"));
        }
        let (tok, end) = match c {
            '|' => (Tok::Pipe, i + 1),
            '(' => (Tok::LParen, i + 1),
            ')' => (Tok::RParen, i + 1),
            ',' => (Tok::Comma, i + 1),
            '=' => (Tok::Assign, i + 1),
            ':' if next == '=' => (Tok::Declare, i + 2),
            '"' => {
                let (s, end) = unquote(&cs, i + 1).map_err(|m| perr(line, m))?;
                (Tok::Lit(s.into()), end)
            }
            '`' => {
                let len = cs[i + 1..].iter().position(|&c| c == '`');
                let len = len.ok_or_else(|| perr(line, "unterminated raw quoted string"))?;
                (Tok::Lit(text(i + 1, i + 1 + len).into()), i + len + 2)
            }
            '$' => (Tok::Var(text(i, word_end(i + 1))), word_end(i + 1)),
            '.' if field_next && chain => {
                (Tok::Chain(text(i + 1, word_end(i + 1))), word_end(i + 1))
            }
            '.' if field_next => (Tok::Field(text(i + 1, word_end(i + 1))), word_end(i + 1)),
            '.' if !next.is_ascii_digit() => (Tok::Dot, i + 1),
            c if c.is_alphabetic() || c == '_' => (Tok::Ident(text(i, word_end(i))), word_end(i)),
            c if c.is_ascii_digit()
                || c == '.'
                || (matches!(c, '-' | '+') && next.is_ascii_digit()) =>
            {
                let mut end = i + 1;
                while cs.get(end).is_some_and(|d| {
                    word(d)
                        || *d == '.'
                        || (matches!(d, '+' | '-') && matches!(cs[end - 1], 'e' | 'E'))
                }) {
                    end += 1;
                }
                let s = text(i, end);
                let n =
                    number(&s).ok_or_else(|| perr(line, format!("bad number syntax: {s:?}")))?;
                (Tok::Lit(n), end)
            }
            c => return Err(perr(line, format!("unexpected {c:?} in command"))),
        };
        toks.push(tok);
        (i, adjacent) = (end, true);
    }
    Ok(toks)
}

/// Decodes a Go interpreted string starting at `cs[i]` (after the opening quote);
/// returns the string and the index just past the closing quote.
fn unquote(cs: &[char], mut i: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    loop {
        let c = cs.get(i).copied().unwrap_or('\n');
        if c == '\n' {
            return Err("unterminated quoted string".into());
        }
        i += 1;
        if c == '"' {
            return Ok((s, i));
        } else if c != '\\' {
            s.push(c);
            continue;
        }
        let e = cs.get(i).copied().unwrap_or(' ');
        i += 1;
        s.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' | '"' | '\'' => e,
            'x' | 'u' => {
                let len = if e == 'x' { 2 } else { 4 };
                let hex: String = cs.get(i..i + len).unwrap_or_default().iter().collect();
                i += len;
                let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                ch.ok_or_else(|| format!("invalid escape sequence \\{e}{hex}"))?
            }
            _ => return Err(format!("invalid escape sequence \\{e}")),
        });
    }
}

fn number(s: &str) -> Option<Value> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n.into());
    }
    // Rust also parses "inf"/"nan", but the lexer only gets here on digit-led text.
    serde_json::Number::from_f64(s.parse().ok()?).map(Value::Number)
}

// ---------------------------------------------------------------------------
// Parsing: items into a tree of nodes, action tokens into pipelines.

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    /// `if`, `with` or `range` with its body and else branch; `{{else if}}` nests a block.
    Block(&'static str, Pipe, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
struct Pipe {
    line: usize,
    /// Variables declared (`:=`) or, when `assign`, assigned (`=`) by this pipeline.
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

/// An operand; the `Vec<String>` is a trailing field chain (`.A.B`, `$x.A`, `(pipe).A`).
#[derive(Debug, Clone)]
enum Arg {
    /// Fields of dot; an empty chain is `.` itself.
    Field(Vec<String>),
    Var(String, Vec<String>),
    Pipe(Box<Pipe>, Vec<String>),
    Func(String),
    Lit(Value),
}

/// Why a list of nodes ended.
enum Stop {
    Eof,
    End,
    Else(Vec<Tok>),
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    line: usize,
    depth: usize,
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let toks = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action(toks, line) => {
                    self.line = line;
                    toks
                }
            };
            let kw = match toks.first() {
                Some(Tok::Ident(k)) => k.as_str(),
                _ => "",
            };
            match kw {
                "end" if toks.len() == 1 => return Ok((nodes, Stop::End)),
                "end" => return Err(perr(self.line, "unexpected tokens in {{end}}")),
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec()))),
                "define" | "template" | "block" | "break" | "continue" => {
                    return Err(perr(self.line, format!("{{{{{kw}}}}} is not supported")));
                }
                _ => match BLOCKS.iter().find(|k| **k == kw) {
                    Some(kind) => nodes.push(self.block(kind, &toks[1..])?),
                    None => nodes.push(Node::Action(pipeline(&toks, self.line, 1, "command")?)),
                },
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn block(&mut self, kind: &'static str, toks: &[Tok]) -> Result<Node, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(perr(self.line, "template nested too deeply"));
        }
        let pipe = pipeline(toks, self.line, if kind == "range" { 2 } else { 1 }, kind)?;
        let (body, stop) = self.list()?;
        let els = match stop {
            Stop::End => Vec::new(),
            Stop::Eof => return Err(perr(self.line, "unexpected EOF")),
            Stop::Else(rest) if rest.is_empty() => match self.list()? {
                (els, Stop::End) => els,
                (_, Stop::Eof) => return Err(perr(self.line, "unexpected EOF")),
                (_, Stop::Else(_)) => return Err(perr(self.line, "expected end; found {{else}}")),
            },
            // `{{else if x}}` is shorthand for `{{else}}{{if x}}...{{end}}`, sharing one end.
            Stop::Else(rest) if kind != "range" && rest[0] == Tok::Ident(kind.into()) => {
                vec![self.block(kind, &rest[1..])?]
            }
            Stop::Else(_) => return Err(perr(self.line, "unexpected tokens in {{else}}")),
        };
        self.depth -= 1;
        Ok(Node::Block(kind, pipe, body, els))
    }
}

/// Parses a whole action as one pipeline declaring at most `max_vars` variables.
fn pipeline(toks: &[Tok], line: usize, max_vars: usize, ctx: &str) -> Result<Pipe, TemplateError> {
    let mut cur = Cursor {
        toks,
        pos: 0,
        line,
        depth: 0,
    };
    let pipe = cur.pipeline(ctx, max_vars)?;
    match cur.at(0) {
        None => Ok(pipe),
        Some(t) => Err(perr(line, format!("unexpected {t:?} in {ctx}"))),
    }
}

struct Cursor<'a> {
    toks: &'a [Tok],
    pos: usize,
    line: usize,
    depth: usize,
}

impl<'a> Cursor<'a> {
    fn at(&self, k: usize) -> Option<&'a Tok> {
        self.toks.get(self.pos + k)
    }

    fn pipeline(&mut self, ctx: &str, max_vars: usize) -> Result<Pipe, TemplateError> {
        let (mut decl, mut assign) = (Vec::new(), false);
        match (self.at(0), self.at(1), self.at(2), self.at(3)) {
            (Some(Tok::Var(a)), Some(op @ (Tok::Declare | Tok::Assign)), _, _) if max_vars > 0 => {
                (decl, assign) = (vec![a.clone()], *op == Tok::Assign);
                self.pos += 2;
            }
            (Some(Tok::Var(a)), Some(Tok::Comma), Some(Tok::Var(b)), Some(Tok::Declare))
                if max_vars > 1 =>
            {
                decl = vec![a.clone(), b.clone()];
                self.pos += 4;
            }
            _ => {}
        }
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            while let Some(t) = self.at(0).filter(|t| !matches!(t, Tok::Pipe | Tok::RParen)) {
                if args.is_empty() && *t == Tok::Ident("nil".into()) {
                    return Err(perr(self.line, "nil is not a command"));
                }
                args.push(self.operand()?);
            }
            if args.is_empty() {
                return Err(perr(self.line, format!("missing value for {ctx}")));
            }
            cmds.push(args);
            if self.at(0) != Some(&Tok::Pipe) {
                let line = self.line;
                return Ok(Pipe {
                    line,
                    decl,
                    assign,
                    cmds,
                });
            }
            self.pos += 1;
        }
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let tok = self
            .at(0)
            .ok_or_else(|| perr(self.line, "missing operand"))?;
        self.pos += 1;
        let mut arg = match tok {
            Tok::Dot => Arg::Field(Vec::new()),
            Tok::Field(name) => Arg::Field(vec![name.clone()]),
            Tok::Var(name) => Arg::Var(name.clone(), Vec::new()),
            Tok::Lit(v) => Arg::Lit(v.clone()),
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(perr(self.line, "pipeline nested too deeply"));
                }
                let pipe = self.pipeline("parenthesized pipeline", 0)?;
                if self.at(0) != Some(&Tok::RParen) {
                    return Err(perr(self.line, "unclosed left paren"));
                }
                (self.pos, self.depth) = (self.pos + 1, self.depth - 1);
                Arg::Pipe(Box::new(pipe), Vec::new())
            }
            Tok::Ident(name) => match name.as_str() {
                "true" | "false" => Arg::Lit(Value::Bool(name == "true")),
                "nil" => Arg::Lit(Value::Null),
                f if FUNCS.contains(&f) => Arg::Func(name.clone()),
                _ if BLOCKS.contains(&name.as_str()) || name == "else" || name == "end" => {
                    return Err(perr(self.line, format!("unexpected <{name}> in operand")));
                }
                _ => return Err(perr(self.line, format!("function {name:?} not defined"))),
            },
            other => return Err(perr(self.line, format!("unexpected {other:?} in operand"))),
        };
        while let Some(Tok::Chain(name)) = self.at(0) {
            if let Arg::Field(path) | Arg::Var(_, path) | Arg::Pipe(_, path) = &mut arg {
                path.push(name.clone());
            }
            self.pos += 1;
        }
        Ok(arg)
    }
}

// ---------------------------------------------------------------------------
// Execution.

/// A value during execution; `None` is Go's "no value" (a missing map key).
type Val = Option<Value>;
type R<T> = Result<T, String>;

struct Exec<'m> {
    /// Variables in scope, innermost last; `$` is always first.
    vars: Vec<(String, Val)>,
    /// One-argument methods of dot, by name: each a table from argument to result.
    methods: Option<&'m serde_json::Map<String, Value>>,
    out: String,
}

fn exec_err(line: usize) -> impl Fn(String) -> TemplateError {
    move |msg| TemplateError::Exec { line, msg }
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for node in nodes {
            // Variables declared inside a control structure go out of scope at its end.
            let mark = self.vars.len();
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Action(pipe) => match self.pipe(pipe, dot)? {
                    _ if !pipe.decl.is_empty() => {}
                    Some(v) => write_v(&v, &mut self.out),
                    None => self.out.push_str("<no value>"),
                },
                Node::Block("range", pipe, body, els) => {
                    let v = self.cmds(&pipe.cmds, dot).map_err(exec_err(pipe.line))?;
                    let entries: Vec<(Value, Value)> = match v {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(a)) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, x)| (i.into(), x))
                            .collect(),
                        Some(Value::Object(map)) => {
                            // Go visits map keys in sorted order.
                            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
                            entries.sort_by(|a, b| a.0.cmp(&b.0));
                            entries.into_iter().map(|(k, x)| (k.into(), x)).collect()
                        }
                        Some(v) => {
                            let msg = format!("range can't iterate over {}", fmt_v(&v));
                            return Err(exec_err(pipe.line)(msg));
                        }
                    };
                    if entries.is_empty() {
                        self.walk(els, dot)?;
                    }
                    for (key, elem) in entries {
                        self.vars.truncate(mark);
                        // With one variable it gets the element; with two, the key and element.
                        if let [k, _] = pipe.decl.as_slice() {
                            self.vars.push((k.clone(), Some(key)));
                        }
                        if let Some(v) = pipe.decl.last() {
                            self.vars.push((v.clone(), Some(elem.clone())));
                        }
                        self.walk(body, &elem)?;
                    }
                }
                Node::Block(kind, pipe, body, els) => match self.pipe(pipe, dot)?.filter(truthy) {
                    Some(v) if *kind == "with" => self.walk(body, &v)?,
                    Some(_) => self.walk(body, dot)?,
                    None => self.walk(els, dot)?,
                },
            }
            if matches!(node, Node::Block(..)) {
                self.vars.truncate(mark);
            }
        }
        Ok(())
    }

    /// Evaluates a pipeline and performs its variable declaration or assignment.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Val, TemplateError> {
        let v = self.cmds(&pipe.cmds, dot).map_err(exec_err(pipe.line))?;
        if let Some(name) = pipe.decl.first() {
            if !pipe.assign {
                self.vars.push((name.clone(), v.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v.clone();
            } else {
                return Err(exec_err(pipe.line)(format!("undefined variable: {name}")));
            }
        }
        Ok(v)
    }

    fn cmds(&mut self, cmds: &[Vec<Arg>], dot: &Value) -> R<Val> {
        let mut piped = None;
        for cmd in cmds {
            piped = Some(self.cmd(cmd, dot, piped)?);
        }
        Ok(piped.flatten())
    }

    /// Runs one command; `piped` is the previous command's result, passed as the last argument.
    fn cmd(&mut self, cmd: &[Arg], dot: &Value, piped: Option<Val>) -> R<Val> {
        let (first, rest) = cmd.split_first().ok_or("empty command")?;
        let has_args = !rest.is_empty() || piped.is_some();
        match first {
            Arg::Func(name) => self.call(name, rest, dot, piped),
            Arg::Field(path) | Arg::Var(_, path) | Arg::Pipe(_, path) if has_args => {
                let (last, init) = path
                    .split_last()
                    .ok_or("can't give argument to non-function")?;
                let recv = self.arg_at(first, init, dot)?;
                let mut args = Vec::new();
                for a in rest {
                    args.push(self.arg(a, dot)?.unwrap_or(Value::Null));
                }
                args.extend(piped.map(|v| v.unwrap_or(Value::Null)));
                let on_dot = matches!(first, Arg::Field(_)) && init.is_empty();
                match self.methods.and_then(|m| m.get(last)) {
                    Some(table) if on_dot => Ok(Some(method_table(table, &args))),
                    _ => method(recv, last, &args),
                }
            }
            _ if has_args => Err(format!("can't give argument to non-function {first:?}")),
            _ => self.arg(first, dot),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> R<Val> {
        match a {
            Arg::Field(path) | Arg::Var(_, path) | Arg::Pipe(_, path) => self.arg_at(a, path, dot),
            Arg::Func(name) => self.call(name, &[], dot, None),
            Arg::Lit(v) => Ok(Some(v.clone())),
        }
    }

    /// Evaluates the base of `a` and follows `path` (all or a prefix of `a`'s chain) from it.
    fn arg_at(&mut self, a: &Arg, path: &[String], dot: &Value) -> R<Val> {
        let owned;
        let base = match a {
            Arg::Var(name, _) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.as_ref(),
                None => return Err(format!("undefined variable: {name}")),
            },
            Arg::Pipe(pipe, _) => {
                owned = self.cmds(&pipe.cmds, dot)?;
                owned.as_ref()
            }
            _ => Some(dot),
        };
        let mut cur = base;
        for name in path {
            cur = match cur {
                None => None,
                Some(Value::Object(map)) => map.get(name),
                Some(Value::Null) => {
                    return Err(format!("nil pointer evaluating interface {{}}.{name}"))
                }
                Some(v) => return Err(no_field(name, v)),
            };
        }
        Ok(cur.cloned())
    }

    fn call(&mut self, name: &str, args: &[Arg], dot: &Value, piped: Option<Val>) -> R<Val> {
        if name == "and" || name == "or" {
            // Short-circuit like Go: the first falsy (and) / truthy (or) argument, else the last.
            let mut last = None;
            for a in args {
                let v = self.arg(a, dot)?;
                if v.as_ref().is_some_and(truthy) == (name == "or") {
                    return Ok(v);
                }
                last = Some(v);
            }
            return piped
                .or(last)
                .ok_or_else(|| format!("wrong number of args for {name}: want at least 1 got 0"));
        }
        let mut vals = Vec::new();
        for a in args {
            vals.push(self.arg(a, dot)?.unwrap_or(Value::Null));
        }
        vals.extend(piped.map(|v| v.unwrap_or(Value::Null)));
        builtin(name, &vals).map_err(|e| format!("error calling {name}: {e}"))
    }
}

/// A method answered from its table (see `Template::render_with_methods`).
fn method_table(table: &Value, args: &[Value]) -> Value {
    let key = args
        .first()
        .map(|k| k.as_str().map_or_else(|| fmt_v(k), str::to_string));
    key.and_then(|k| table.get(&k).cloned())
        .unwrap_or_else(|| "".into())
}

/// docker's method-style lookups such as `{{.Label "com.example"}}`: a missing field
/// called with an argument indexes the object's `<Field>s` map, yielding "" when absent.
fn method(recv: Val, name: &str, args: &[Value]) -> R<Val> {
    let map = match recv {
        None => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(v) => return Err(no_field(name, &v)),
    };
    if map.contains_key(name) {
        return Err(format!("{name} is not a method but has arguments"));
    }
    let key = args
        .first()
        .map(|k| k.as_str().map_or_else(|| fmt_v(k), str::to_string));
    match map.get(&format!("{name}s")) {
        Some(Value::Object(sub)) => Ok(Some(
            key.and_then(|k| sub.get(&k).cloned())
                .unwrap_or_else(|| "".into()),
        )),
        Some(Value::Null) => Ok(Some("".into())),
        _ => Err(no_field(name, &Value::Object(map))),
    }
}

fn builtin(name: &str, v: &[Value]) -> R<Val> {
    let (min, max) = match name {
        "not" | "len" | "json" | "upper" | "lower" | "title" | "trim" => (1, 1),
        "ne" | "lt" | "le" | "gt" | "ge" | "join" | "split" | "truncate" => (2, 2),
        "pad" => (3, 3),
        "index" | "printf" => (1, usize::MAX),
        "eq" => (2, usize::MAX),
        _ => (0, usize::MAX),
    };
    if v.len() < min || v.len() > max {
        return Err(format!("wrong number of args: want {min} got {}", v.len()));
    }
    let null = &Value::Null;
    let (first, last) = (v.first().unwrap_or(null), v.last().unwrap_or(null));
    let string = || as_str(first);
    let out: Value = match name {
        "not" => (!truthy(first)).into(),
        "len" => match first {
            Value::String(s) => s.len().into(),
            Value::Array(a) => a.len().into(),
            Value::Object(m) => m.len().into(),
            other => return Err(format!("len of type {}", type_name(other))),
        },
        "index" => return index(first, &v[1..]),
        "print" => sprint(v).into(),
        "println" => (v.iter().map(fmt_v).collect::<Vec<_>>().join(" ") + "\n").into(),
        "printf" => sprintf(string()?, &v[1..]).into(),
        "eq" => {
            let mut any = false;
            for b in &v[1..] {
                any = any || equal(first, b)?;
            }
            any.into()
        }
        "ne" => (!equal(first, last)?).into(),
        "lt" => compare(first, last)?.is_lt().into(),
        "le" => compare(first, last)?.is_le().into(),
        "gt" => compare(first, last)?.is_gt().into(),
        "ge" => compare(first, last)?.is_ge().into(),
        "json" => serde_json::to_string(first)
            .map_err(|e| e.to_string())?
            .into(),
        "join" => match first {
            Value::Array(items) => items
                .iter()
                .map(fmt_v)
                .collect::<Vec<_>>()
                .join(as_str(last)?)
                .into(),
            _ => return Err(type_err("[]string", first)),
        },
        // Go splits into single characters when the separator is empty.
        "split" if as_str(last)?.is_empty() => string()?.chars().map(|c| c.to_string()).collect(),
        "split" => string()?.split(as_str(last)?).collect(),
        "upper" => string()?.to_uppercase().into(),
        "lower" => string()?.to_lowercase().into(),
        "title" => title(string()?).into(),
        "trim" => string()?.trim().into(),
        "truncate" => string()?
            .chars()
            .take(as_count(last, usize::MAX)?)
            .collect::<String>()
            .into(),
        "pad" if string()?.is_empty() => "".into(),
        "pad" => {
            let (left, right) = (as_count(&v[1], MAX_WIDTH)?, as_count(last, MAX_WIDTH)?);
            format!("{}{}{}", " ".repeat(left), string()?, " ".repeat(right)).into()
        }
        _ => return Err(format!("function {name:?} not defined")),
    };
    Ok(Some(out))
}

fn index(base: &Value, keys: &[Value]) -> R<Val> {
    let mut cur = Some(base);
    for key in keys {
        let i = as_int(key).ok().and_then(|i| usize::try_from(i).ok());
        cur = match (cur, key) {
            (Some(Value::Object(map)), Value::String(k)) => map.get(k),
            (Some(Value::Array(items)), _) => Some(
                i.and_then(|i| items.get(i))
                    .ok_or_else(|| format!("index out of range: {}", fmt_v(key)))?,
            ),
            (None | Some(Value::Null), _) => return Err("index of untyped nil".into()),
            (Some(v), _) => return Err(format!("can't index item of type {}", type_name(v))),
        };
    }
    Ok(cur.cloned())
}

fn as_str(v: &Value) -> R<&str> {
    v.as_str().ok_or_else(|| type_err("string", v))
}

/// An integer argument; integral floats are accepted since JSON does not distinguish them.
fn as_int(v: &Value) -> R<i64> {
    let int = v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9e18)
            .map(|f| f as i64)
    });
    int.ok_or_else(|| type_err("int", v))
}

/// A non-negative count no larger than `max`.
fn as_count(v: &Value, max: usize) -> R<usize> {
    let n = usize::try_from(as_int(v)?).ok().filter(|n| *n <= max);
    n.ok_or_else(|| format!("count out of range: {}", fmt_v(v)))
}

/// Go's notion of truth: false, 0, "", nil and empty collections are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn compare(a: &Value, b: &Value) -> R<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Ok(x.cmp(&y)),
            _ => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .ok_or_else(|| "invalid number".to_string()),
        },
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn equal(a: &Value, b: &Value) -> R<bool> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        // Go 1.18+ allows comparing anything against nil.
        (Value::Null, _) | (_, Value::Null) => Ok(a == b),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Err("non-comparable type".into())
        }
        _ => Ok(compare(a, b)?.is_eq()),
    }
}

/// Go's strings.Title: upper-case each letter that follows a separator.
fn title(s: &str) -> String {
    let mut prev_sep = true;
    let mut out = String::new();
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn type_err(want: &str, v: &Value) -> String {
    format!(
        "wrong type for value; expected {want}; got {}",
        type_name(v)
    )
}

fn no_field(name: &str, v: &Value) -> String {
    format!("can't evaluate field {name} in type {}", type_name(v))
}

/// The Go type a JSON-decoded value would have, for error messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

// ---------------------------------------------------------------------------
// Go fmt emulation.

fn fmt_v(v: &Value) -> String {
    let mut out = String::new();
    write_v(v, &mut out);
    out
}

/// Writes `v` as Go's `%v` prints the equivalent Go value.
fn write_v(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_f64() => out.push_str(&fmt_float(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { " " } else { "" });
                write_v(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // fmt prints maps with sorted keys.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("map[");
            for (i, (k, item)) in entries.into_iter().enumerate() {
                out.push_str(if i > 0 { " " } else { "" });
                out.push_str(k);
                out.push(':');
                write_v(item, out);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` for float64: shortest digits, exponent form when exp < -4 || exp >= 6.
fn fmt_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    if !(-4..6).contains(&exp) {
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's fmt.Sprint: operands are separated by a space when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        write_v(a, &mut out);
    }
    out
}

/// Go's fmt.Sprintf for the verbs %v %s %d %q %t %f %%, flags `-` and `0`, width and precision.
fn sprintf(format: &str, args: &[Value]) -> String {
    let (mut out, mut used) = (String::new(), 0);
    let mut chars = format.chars().peekable();
    let num = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        let mut n: usize = 0;
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            n = (n * 10 + usize::from(d as u8 - b'0')).min(MAX_WIDTH);
        }
        n
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut zero) = (false, false);
        while let Some(f) = chars.next_if(|c| matches!(c, '-' | '+' | '0' | ' ' | '#')) {
            (minus, zero) = (minus || f == '-', zero || f == '0');
        }
        let width = num(&mut chars);
        let prec = chars.next_if_eq(&'.').map(|_| num(&mut chars));
        let (verb, arg) = match (chars.next(), args.get(used)) {
            (None, _) => {
                out.push_str("%!(NOVERB)");
                break;
            }
            (Some('%'), _) => {
                out.push('%');
                continue;
            }
            (Some(verb), None) => {
                let _ = write!(out, "%!{verb}(MISSING)");
                continue;
            }
            (Some(verb), Some(arg)) => (verb, arg),
        };
        used += 1;
        let max = prec.unwrap_or(usize::MAX);
        let text = match (verb, arg) {
            ('v' | 's', _) => fmt_v(arg).chars().take(max).collect(),
            ('d', Value::Number(_)) if as_int(arg).is_ok() => as_int(arg).unwrap_or(0).to_string(),
            ('f', Value::Number(n)) => {
                format!("{:.*}", prec.unwrap_or(6), n.as_f64().unwrap_or(0.0))
            }
            // Rust's string Debug escapes like strconv.Quote for the common characters.
            ('q', Value::String(s)) => format!("{s:?}"),
            ('t', Value::Bool(b)) => b.to_string(),
            _ => format!("%!{verb}({})", describe(arg)),
        };
        let (w, w1) = (width, width.saturating_sub(1));
        let _ = match text.strip_prefix('-').filter(|_| arg.is_number()) {
            _ if minus => write!(out, "{text:<w$}"),
            // Zeros go after the sign: %05d of -42 is -0042.
            Some(digits) if zero => write!(out, "-{digits:0>w1$}"),
            _ if zero => write!(out, "{text:0>w$}"),
            _ => write!(out, "{text:>w$}"),
        };
    }
    if used < args.len() {
        let extra: Vec<String> = args[used..].iter().map(describe).collect();
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

/// `type=value`, as Go shows arguments in printf error markers.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        _ => format!("{}={}", type_name(v), fmt_v(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
        Template::parse(src)?.render(data)
    }

    fn data() -> Value {
        json!({
            "ID": "abc", "Repository": "nginx", "Tag": "latest",
            "Config": {"Env": ["A=1", "B=2"]}, "Labels": {"z": "y", "a.b": "x"},
            "Names": ["one", "two"], "Items": [{"Name": "a"}, {"Name": "b"}],
            "N": 3, "F": 1.5, "Big": 1500000.5, "Tiny": 0.00001, "T": true, "Nil": null,
            "Empty": [], "Str": "  Hello World  "
        })
    }

    /// Golden table, one case per line: `template => expected`, rendered against `data`.
    /// A `\n` in the expected text stands for a newline.
    fn check(data: &Value, table: &str) {
        for case in table.lines().map(str::trim_start).filter(|l| !l.is_empty()) {
            let (src, want) = case.split_once(" => ").expect("case needs ` => `");
            match render(src, data) {
                Ok(got) => assert_eq!(got, want.replace("\\n", "\n"), "template {src:?}"),
                Err(e) => panic!("template {src:?} failed: {e}"),
            }
        }
    }

    #[test]
    fn fields_literals_and_printing() {
        check(
            &data(),
            r#"
            {{.Repository}}:{{.Tag}} => nginx:latest
            {{.Config.Env}} => [A=1 B=2]
            {{.Labels}} => map[a.b:x z:y]
            {{.Missing}}|{{.Missing.Deeper}} => <no value>|<no value>
            {{.N}} {{.F}} {{.Big}} {{.Tiny}} {{.T}} {{.Nil}} {{.Empty}} => 3 1.5 1.5000005e+06 1e-05 true <nil> []
            {{.Items}} => [map[Name:a] map[Name:b]]
            {{$.ID}} {{ .ID }} {{(.Config).Env}} {{(index .Items 1).Name}} => abc abc [A=1 B=2] b
            {{"q\"\u00e9\x41"}}|{{len "\t\n"}}|{{`raw`}}|{{-2}}|{{0.25}}|{{1e3}}|{{true}} => q"éA|2|raw|-2|0.25|1000|true
            {{printf "}}"}} {{"{{"}} => }} {{
            {{json .Labels}} {{json .Missing}} {{json .ID}} => {"z":"y","a.b":"x"} null "abc"
        "#,
        );
        let src = r#"{"b":1,"a":[true,null,"<&>"],"c":{"d":1.5}}"#;
        let doc: Value = serde_json::from_str(src).unwrap();
        assert_eq!(
            render("{{json .}}", &doc).unwrap(),
            src,
            "json keeps key order"
        );
    }

    #[test]
    fn control_flow() {
        check(
            &data(),
            r#"
            {{range .Items}}{{.Name}},{{end}} => a,b,
            {{range $i, $v := .Names}}{{$i}}={{$v}};{{end}} => 0=one;1=two;
            {{range $v := .Names}}{{$v}}{{end}} => onetwo
            {{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}} => a.b=x;z=y;
            {{range .Empty}}x{{else}}empty{{end}} => empty
            {{range .Missing}}x{{else}}none{{end}} => none
            {{range .Items}}{{$.ID}}{{end}} => abcabc
            {{if .T}}y{{else}}n{{end}} => y
            {{if .Empty}}y{{else if .N}}n{{.N}}{{else}}z{{end}} => n3
            {{if .Nil}}a{{else if .Missing}}b{{else}}c{{end}} => c
            {{with .Config}}{{.Env}}{{else}}none{{end}} => [A=1 B=2]
            {{with .Missing}}x{{else}}{{.ID}}{{end}} => abc
            {{with $x := .ID}}{{$x}}{{.}}{{end}} => abcabc
            {{if and .T .N}}{{or .Nil .Missing "d"}}{{end}}{{and 1 0 .Missing}} => d0
            {{if not .Empty}}e{{end}} => e
        "#,
        );
        let truth = [
            json!(0.5),
            json!("x"),
            json!([0]),
            json!({"a": 1}),
            json!(true),
        ];
        let lies = [
            json!(false),
            json!(0),
            json!(""),
            json!(null),
            json!([]),
            json!({}),
        ];
        for (x, want) in truth
            .iter()
            .map(|x| (x, "y"))
            .chain(lies.iter().map(|x| (x, "n")))
        {
            check(
                &json!({ "X": x }),
                &format!("{{{{if .X}}}}y{{{{else}}}}n{{{{end}}}} => {want}"),
            );
        }
    }

    #[test]
    fn variables() {
        check(
            &data(),
            r#"
            {{$x := .ID}}{{$x}}-{{$x | upper}} => abc-ABC
            {{$x := 1}}{{if .T}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}} => 2
            {{$c := .Config}}{{$c.Env}} {{$.Config.Env}} => [A=1 B=2] [A=1 B=2]
            {{range $i, $n := .Names}}{{$i}}{{end}}{{$i := 9}}{{$i}} => 019
        "#,
        );
        let err = render("{{if .T}}{{$y := 1}}{{end}}{{$y}}", &data()).unwrap_err();
        assert!(err.to_string().contains("undefined variable: $y"), "{err}");
    }

    #[test]
    fn functions() {
        check(
            &data(),
            r#"
            {{join .Names ","}} => one,two
            {{index .Labels "a.b"}} {{index .Names 1}} {{index . "Config" "Env" 0}} => x two A=1
            {{index .Labels "nope"}} => <no value>
            {{len .Names}} {{len .Labels}} {{len .ID}} {{.Config.Env | len}} => 2 2 3 2
            {{upper .ID}} {{lower "AB"}} {{title "hello wide-world"}} [{{trim .Str}}] => ABC ab Hello Wide-World [Hello World]
            {{split "a,b,c" ","}} {{len (split "ab" "")}} => [a b c] 2
            {{truncate .Repository 3}}|{{truncate .ID 10}}|{{pad .ID 2 1}}|{{pad "" 2 2}}| => ngi|abc|  abc ||
            {{print .ID 1 2 "x" .T}} {{println .ID .N}} => abc1 2xtrue abc 3\n
            {{eq .N 3}} {{eq .ID "x" "abc"}} {{ne .ID "abc"}} {{eq .Nil nil}} {{eq .F 1.5}} => true true false true true
            {{lt 1 2}} {{le 2 2}} {{gt 1.5 2}} {{ge "b" "a"}} {{lt -1 .F}} => true true false true true
            {{.ID | printf "%s!"}} {{"a" | printf "%s-%s" "b"}} {{.ID | upper | lower}} => abc! b-a abc
        "#,
        );
    }

    #[test]
    fn printf_verbs() {
        check(
            &data(),
            r#"
            {{printf "%-5s|" .ID}} => abc  |
            {{printf "%5s|%d|%05d|%v|%q|%t|%%|%.2f|%.1s" .ID .N -42 .Names .ID .T .F .ID}} =>   abc|3|-0042|[one two]|"abc"|true|%|1.50|a
            {{printf "%d %s" .ID}} => %!d(string=abc) %!s(MISSING)
            {{printf "%s" 1 2}} => 1%!(EXTRA int=2)
        "#,
        );
    }

    #[test]
    fn label_method_form() {
        let d = json!({"Labels": {"com.example.x": "v"}, "Mounts": null, "Name": "n"});
        check(
            &d,
            r#"
            {{.Label "com.example.x"}}|{{.Label "nope"}}|{{.Mount "m"}}| => v|||
            {{"com.example.x" | .Label}} => v
        "#,
        );
        assert!(render(r#"{{.Name "x"}}"#, &d).is_err());
        assert!(render(r#"{{.Other "x"}}"#, &d).is_err());
    }

    #[test]
    fn methods_beside_fields() {
        let row = json!({"Labels": "a=1,b=2", "Name": "n"});
        let methods = json!({"Label": {"a": "1", "com.x": "y"}});
        let t = Template::parse(
            r#"{{.Labels}}|{{.Label "a"}}|{{.Label "com.x"}}|{{.Label "nope"}}|{{"a" | .Label}}|{{json .}}"#,
        )
        .unwrap();
        assert_eq!(
            t.render_with_methods(&row, &methods).unwrap(),
            r#"a=1,b=2|1|y||1|{"Labels":"a=1,b=2","Name":"n"}"#
        );
        // Without the table, the old lookup through the `<Name>s` map applies.
        assert!(t.render(&row).is_err());
    }

    #[test]
    fn whitespace_trimming_and_comments() {
        check(
            &data(),
            r#"
            a  {{- .ID -}}  b => aabcb
            {{/* comment */}}x{{- /* trimmed */ -}}    y => xy
            {{-3}} {{- 4}} => -34
            {{range .Names}}  {{- .}}{{end}} => onetwo
        "#,
        );
        assert_eq!(
            render("a\n{{- .ID}}\n{{.ID -}}\n\tb\n", &data()).unwrap(),
            "aabc\nabcb\n"
        );
    }

    #[test]
    fn parse_errors() {
        let err = Template::parse("{{foo .}}").unwrap_err().to_string();
        assert_eq!(
            err,
            "template parsing error: template: :1: function \"foo\" not defined"
        );
        let err = Template::parse("a\nb\n{{.A}}{{end}}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "template parsing error: template: :3: unexpected {{end}}"
        );
        let bad = [
            "{{",
            "{{.ID",
            "{{end}}",
            "{{if .X}}",
            "{{else}}",
            "{{range}}",
            "{{.A.}}",
            "{{(.A}}",
            "{{.A)}}",
            "{{\"x}}",
            "{{$x :=}}",
            "{{nil}}",
            "{{if 1}}{{else}}{{else}}{{end}}",
            "{{define \"x\"}}{{end}}",
            "{{/* x }}",
            "{{ 1 + }}",
            "{{.A | }}",
            "{{1.2.3}}",
            "{{\"\\q\"}}",
            "{{range .A}}{{else if .B}}{{end}}",
            "{{.A \"x\".B}}",
        ];
        for src in bad {
            assert!(Template::parse(src).is_err(), "{src:?} should not parse");
        }
    }

    #[test]
    fn render_errors() {
        let bad = [
            "{{index .N 0}}",
            "{{index .Names 5}}",
            "{{index .Nil 0}}",
            "{{index .Labels 1}}",
            "{{len .N}}",
            "{{upper .N}}",
            r#"{{join .ID ","}}"#,
            "{{.ID.Foo}}",
            "{{.Nil.Foo}}",
            "{{lt .T .T}}",
            "{{eq .ID 1}}",
            "{{eq .Names .Names}}",
            "{{not 1 2}}",
            "{{index}}",
            "{{range .ID}}{{end}}",
            "{{$u}}",
            "{{pad .ID -1 0}}",
            r#"{{.ID "x"}}"#,
            "{{1 2}}",
            "{{truncate .ID -1}}",
            "{{.N | 1}}",
        ];
        for src in bad {
            let result = render(src, &data());
            assert!(
                matches!(result, Err(TemplateError::Exec { .. })),
                "{src:?}: {result:?}"
            );
        }
        let err = render("{{not 1 2}}", &data()).unwrap_err().to_string();
        assert!(err.contains("wrong number of args"), "{err}");
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut inputs: Vec<String> = [
            "",
            "{{",
            "}}",
            "{{}}",
            "{{end}}",
            "{{.A.}}",
            "{{range}}",
            "{{{{}}}}",
            "{{-}}",
            "{{- -}}",
            "{{/*",
            "{{\"\\",
            "{{`",
            "{{$",
            "{{.}}}",
            "{{ .A | | }}",
            "{{)}}",
            "{{1e999}}",
            "{{0x}}",
            "{{'a'}}",
            "{{printf \"%\"}}",
            "{{printf \"%-99999999999d|%.99999999f\" 1 1.5}}",
            "{{pad \"x\" 99999999999 1}}",
            "{{index . -1}}",
            "{{ .é }}",
            "{{.ID}}\u{0}{{\"\\u\"}}",
            "{{$x, $y := .}}",
            "{{range $a, $b, $c := .}}{{end}}",
            "{{else if}}",
            "{{with}}{{end}}",
            "é{{-é}}",
            "{{.Names.x}}",
            "{{\"\\xZZ\"}}",
            "{{- /* */}}",
            "{{/**/ -}}",
        ]
        .map(String::from)
        .to_vec();
        inputs.push(format!("{{{{{}1{}}}}}", "(".repeat(5000), ")".repeat(5000)));
        inputs.push(format!(
            "{}{}",
            "{{if 1}}".repeat(5000),
            "{{end}}".repeat(5000)
        ));
        inputs.push(format!(
            "{{{{if 0}}}}{}{{{{end}}}}",
            "{{else if 0}}".repeat(5000)
        ));
        for src in &inputs {
            if let Ok(t) = Template::parse(src) {
                let _ = t.render(&data());
            }
        }
        let ok_nesting = format!("{}x{}", "{{with .}}".repeat(90), "{{end}}".repeat(90));
        assert_eq!(render(&ok_nesting, &data()).unwrap(), "x");
    }

    #[test]
    fn table_helpers() {
        let got = split_table("table {{.ID}}\\t{{.Size}}");
        assert_eq!(got, (true, "{{.ID}}\t{{.Size}}".to_string()));
        assert_eq!(split_table(" {{.ID}}\\n"), (false, "{{.ID}}\n".to_string()));
        assert_eq!(split_table("table"), (true, String::new()));
        assert_eq!(
            header_with_names("{{.ID}}\t{{.CreatedSince}}", &[]),
            "ID\tCREATED SINCE"
        );
        let format = "{{.Repository}}\t{{json .Config.Env}}\t{{.IPAddress}}\t{{.Label \"x\"}}";
        assert_eq!(
            header_with_names(format, &[]),
            "REPOSITORY\tENV\tIP ADDRESS\tLABEL"
        );
    }
}
