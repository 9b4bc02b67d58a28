//! Subcommands of the `reprise` binary that live outside `main.rs`.

pub mod music;
pub mod speech;
