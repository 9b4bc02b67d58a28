//! Where the bundled models are found.
//!
//! Nothing of the build is baked into the binary: an installed `reprise` looks for
//! `models/<name>` (a folder with a `config.json`) in these places, in order:
//!
//! 1. `$REPRISE_MODELS/<name>`, when the variable is set;
//! 2. `models/<name>` in the current directory;
//! 3. beside the executable: `<bin>/models/<name>`, `<bin>/../share/reprise/models/<name>`
//!    (e.g. `/usr/bin/reprise` → `/usr/share/reprise/models`), and `models/<name>` in the
//!    folders above it (a cargo build sits in `target/<profile>/` of the source tree);
//! 4. the data folders: `$XDG_DATA_HOME/reprise/models/<name>` (default
//!    `~/.local/share/reprise/models`), then each of `$XDG_DATA_DIRS` (default
//!    `/usr/local/share:/usr/share`) with `reprise/models/<name>`.

use std::path::{Path, PathBuf};

/// No folder of the search path holds the model; says where Reprise looked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no `{name}` model found; looked in {}; set REPRISE_MODELS to the folder holding `{name}/`, \
     or pass --model DIR",
    list(searched)
)]
pub struct ModelNotFound {
    /// The model's folder name.
    pub name: String,
    /// Every folder tried, in order.
    pub searched: Vec<PathBuf>,
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folders where the model `name` may be, in the order they are tried.
pub fn search_path(name: &str) -> Vec<PathBuf> {
    let env = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(root) = env("REPRISE_MODELS") {
        roots.push(PathBuf::from(root));
    }
    roots.push(PathBuf::from("models"));
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        roots.push(bin.join("models"));
        roots.push(bin.join("../share/reprise/models"));
        roots.extend(
            bin.ancestors()
                .skip(1)
                .take(5)
                .map(|dir| dir.join("models")),
        );
    }
    match env("XDG_DATA_HOME") {
        Some(data) => roots.push(PathBuf::from(data).join("reprise/models")),
        None => {
            if let Some(home) = env("HOME") {
                roots.push(PathBuf::from(home).join(".local/share/reprise/models"));
            }
        }
    }
    let dirs = env("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into());
    roots.extend(
        std::env::split_paths(&dirs)
            .filter(|d| d.is_absolute())
            .map(|d| d.join("reprise/models")),
    );
    let mut path: Vec<PathBuf> = Vec::new();
    for root in roots {
        let candidate = root.join(name);
        if !path.contains(&candidate) {
            path.push(candidate);
        }
    }
    path
}

/// The first folder of [`search_path`] holding the model `name` (its `config.json`).
pub fn find(name: &str) -> Result<PathBuf, ModelNotFound> {
    let searched = search_path(name);
    match searched
        .iter()
        .find(|dir| dir.join("config.json").is_file())
    {
        Some(dir) => Ok(dir.clone()),
        None => Err(ModelNotFound {
            name: name.to_owned(),
            searched,
        }),
    }
}

/// The folder of the bundled model `name` (e.g. `music-default`): [`find`]'s answer, or where
/// none is found, `models/<name>` (loading it then fails with the file it misses). Prefer
/// [`find`], whose error says where Reprise looked.
pub fn bundled(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|_| PathBuf::from("models").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_holds_no_build_folder_and_ends_in_the_data_folders() {
        let path = search_path("music-default");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/music-default");
        let exe = std::env::current_exe().unwrap();
        // The source tree is only found through the current directory or the executable's
        // folders (a test binary lives inside it), never as a path of its own.
        assert!(
            path.iter()
                .filter(|p| p.is_absolute())
                .filter(|p| p.canonicalize().ok() == source.canonicalize().ok())
                .all(|p| exe.ancestors().any(|a| p.starts_with(a)))
        );
        assert!(path.iter().all(|p| p.ends_with("music-default")));
        if std::env::var_os("XDG_DATA_DIRS").is_none() {
            assert!(path.contains(&PathBuf::from("/usr/share/reprise/models/music-default")));
        }
        let e = ModelNotFound {
            name: "x".into(),
            searched: vec!["/a/x".into(), "/b/x".into()],
        };
        assert!(e.to_string().contains("/a/x, /b/x"), "{e}");
    }
}
