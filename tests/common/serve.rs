//! `reprise serve` as a child process, for the daemon's tests and load benchmark.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Reads the daemon's first line on stdout and returns the address it listens on. The child
/// must have been spawned with a piped stdout (which this takes).
pub fn listening_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("a piped stdout"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("reprise serve: listening on ")
        .unwrap_or_else(|| panic!("no address line: {line:?}"))
        .to_owned()
}
