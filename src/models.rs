//! Where the bundled models are found.

use std::path::PathBuf;

/// The folder of the bundled model `name` (e.g. `music-default`): `$REPRISE_MODELS/name` if
/// that variable is set, else `models/name` in the current directory if it exists, else
/// `models/name` beside the executable or in one of its parent folders (a cargo build sits in
/// `target/<profile>/`), else the source tree's `models/name`.
pub fn bundled(name: &str) -> PathBuf {
    if let Some(root) = std::env::var_os("REPRISE_MODELS") {
        return PathBuf::from(root).join(name);
    }
    let local = PathBuf::from("models").join(name);
    if local.join("config.json").exists() {
        return local;
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            let candidate = dir.join("models").join(name);
            if candidate.join("config.json").exists() {
                return candidate;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}
