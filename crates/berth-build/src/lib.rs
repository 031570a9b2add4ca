//! berth's build front end: everything the classic builder needs to know about a
//! Dockerfile and a build context before it runs a single step.
//!
//! # Layout
//!
//! - [`dockerfile`]: [`parse`] turns Dockerfile text into typed stages and
//!   instructions, with parser directives, line continuations, heredocs and Docker's
//!   error messages. Words are kept as written: the builder expands them, because
//!   their values depend on the `ARG`/`ENV` in effect at each step.
//! - [`expand`](mod@expand): Docker's shell-like word processing (`$var`, `${var:-default}`,
//!   quotes, the escape character), used by the builder on the words the parser kept.
//! - [`ignore`]: `.dockerignore` matching with Docker's rules.
//! - [`builder`]: the classic builder; [`cache`]: its step cache, whose records
//!   `system df` and `builder prune` report.
//!
//! The contract is the Dockerfile reference (`shared/reference/dockerfile-reference.md`);
//! where it and today's Docker differ, the module docs say which one we follow.

pub mod builder;
pub mod cache;
pub mod dockerfile;
pub mod expand;
pub mod ignore;

pub use dockerfile::{
    parse, parse_instructions, Command, CopySpec, Dockerfile, Healthcheck, Heredoc, Instruction,
    Kind, ParseError, Stage,
};
pub use expand::{expand, expand_heredoc, expand_words, ExpandError};
pub use ignore::{Ignore, IgnoreError};
