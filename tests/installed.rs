//! An installed `reprise`: a copy of the binary outside the source tree finds the bundled
//! models beside it, in the data folders or through REPRISE_MODELS, and says where it looked
//! when none is there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `reprise continue` from the copy, in an empty folder, with only `env` for the lookup.
fn continue_from(bin: &Path, dir: &Path, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(bin);
    command
        .args(["continue", "-o", "out.mid", "--bars", "1"])
        .current_dir(dir)
        .env_remove("REPRISE_MODELS")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", dir.join("home"))
        .env("XDG_DATA_DIRS", dir.join("no-data-dirs"));
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn an_installed_binary_finds_its_models_or_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bin = root.join("prefix/bin/reprise");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_reprise"), &bin).unwrap();
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/music-default");

    // Nowhere: an error that names the places tried, and nothing baked in from the build.
    let out = continue_from(&bin, &work, &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for place in [
        root.join("prefix/bin/../share/reprise/models/music-default"),
        root.join("prefix/bin/models/music-default"),
        work.join("home/.local/share/reprise/models/music-default"),
        work.join("no-data-dirs/reprise/models/music-default"),
    ] {
        assert!(
            text.contains(&place.display().to_string()),
            "{place:?}: {text}"
        );
    }
    assert!(text.contains("REPRISE_MODELS"), "{text}");
    assert!(!text.contains(env!("CARGO_MANIFEST_DIR")), "{text}");

    // Installed beside the binary, as a package lays it out (bin/ and share/reprise/models/).
    let share: PathBuf = root.join("prefix/share/reprise/models/music-default");
    copy_dir(&bundled, &share);
    let out = continue_from(&bin, &work, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&share).unwrap();

    // In the user's data folder, and through REPRISE_MODELS.
    let data = root.join("data");
    copy_dir(&bundled, &data.join("reprise/models/music-default"));
    let out = continue_from(&bin, &work, &[("XDG_DATA_HOME", &data)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models = data.join("reprise/models");
    let out = continue_from(&bin, &work, &[("REPRISE_MODELS", &models)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
