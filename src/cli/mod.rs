//! The `rdbkit` command line, one module per group of commands; `main.rs` holds the argument definitions and
//! dispatch. Everything here parses, opens and prints: the work is the library's.

pub mod common;
pub mod diff;
pub mod dump;
pub mod info;
pub mod jobs;
pub mod report;
