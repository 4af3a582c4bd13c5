//! Directories of the workspace that tests use.

use std::path::{Path, PathBuf};

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support lives in tests/support of the workspace")
        .to_path_buf()
}

/// Where tests leave files for people to look at:
/// `$CARGO_TARGET_DIR/e2e-artifacts` (default `target/e2e-artifacts` in the
/// workspace), created if missing.
///
/// # Panics
///
/// If it cannot be created.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    let dir = target.join("e2e-artifacts");
    std::fs::create_dir_all(&dir).expect("create the e2e artifacts directory");
    dir
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_workspace_holds_the_services_script() {
        assert!(super::workspace_dir().join("scripts/services.sh").is_file());
    }
}
