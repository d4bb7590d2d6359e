//! gohot embeds the way-in helper's Go sources one by one
//! (`HELPER_GO_FILES`): every non-test `.go` file of the helper's directory
//! must be embedded, with its current text, and no `_test.go` file.

use std::path::{Path, PathBuf};

/// The helper's directory: the one under `src/` whose `go.mod` declares
/// `module gohothelper` (found, not hard-coded, so that moving it is safe).
fn helper_dir() -> PathBuf {
    fn find(dir: &Path) -> Option<PathBuf> {
        let go_mod = dir.join("go.mod");
        if std::fs::read_to_string(&go_mod).is_ok_and(|t| t.starts_with("module gohothelper\n")) {
            return Some(dir.to_path_buf());
        }
        let mut subdirs: Vec<PathBuf> =
            std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        subdirs.sort();
        subdirs.iter().find_map(|d| find(d))
    }
    find(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).expect("a go.mod with `module gohothelper` under src/")
}

#[test]
fn every_helper_source_file_is_embedded_and_no_test_file() {
    let dir = helper_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("helper dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8 name"))
        .filter(|n| n.ends_with(".go") && !n.ends_with("_test.go"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> =
        gohot::devimage::helper::HELPER_GO_FILES.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(embedded, on_disk, "HELPER_GO_FILES must list exactly the helper's non-test .go files");
    for (name, text) in gohot::devimage::helper::HELPER_GO_FILES {
        assert_eq!(std::fs::read_to_string(dir.join(name)).expect("read").as_str(), *text, "{name}");
    }
    let go_mod = std::fs::read_to_string(dir.join("go.mod")).expect("go.mod");
    assert_eq!(go_mod, gohot::devimage::helper::HELPER_GO_MOD);
}
