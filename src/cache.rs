//! Where gohot keeps things between runs.
//!
//! Binaries go where ko puts them (`$KOCACHE/bin/<import path>/<os>/<arch>/out`)
//! so the two tools can share a cache; base-image blobs go to a
//! content-addressed store so a rebuild never pulls the base again.

use std::path::{Path, PathBuf};

use crate::platform::Platform;

/// The root of gohot's cache: `$KOCACHE` if set, else `<user cache dir>/gohot`.
pub fn root() -> PathBuf {
    if let Some(k) = std::env::var_os("KOCACHE").filter(|k| !k.is_empty()) {
        return PathBuf::from(k);
    }
    dirs::cache_dir().unwrap_or_else(|| std::env::temp_dir().join(format!("gohot-{}", whoami_uid()))).join("gohot")
}

fn whoami_uid() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".into())
}

/// ko-compatible location of a built binary.
pub fn binary_path(root: &Path, import_path: &str, platform: &Platform) -> PathBuf {
    let mut p = root.join("bin");
    for part in import_path.split('/') {
        p.push(part);
    }
    for part in platform.cache_path().split('/') {
        p.push(part);
    }
    p.join("out")
}

/// Directory of the content-addressed base-image store.
pub fn base_dir(root: &Path) -> PathBuf {
    root.join("base")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_path_is_ko_compatible() {
        let p = binary_path(Path::new("/c"), "example.com/hello/cmd/app", &Platform::linux("arm64"));
        assert_eq!(p, Path::new("/c/bin/example.com/hello/cmd/app/linux/arm64/out"));
    }
}
