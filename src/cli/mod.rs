//! Subcommands of the `reprise` binary that live outside `main.rs`.

pub mod jam;
pub mod music;
pub mod serve;
pub mod speech;
