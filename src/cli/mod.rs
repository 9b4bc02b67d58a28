//! Subcommands of the `reprise` binary that live outside `main.rs`.

pub mod audio;
pub mod jam;
pub mod music;
pub mod render;
pub mod serve;
pub mod speech;
