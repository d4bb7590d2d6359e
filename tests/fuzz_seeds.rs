//! The cargo-fuzz targets' seeds, replayed on stable Rust: every file of
//! `fuzz/seeds/<target>/` goes through the same function the target calls
//! (`gohot::{sync,oci,wayin,syncback}::fuzz::<target>`), which must not panic.

use std::path::{Path, PathBuf};

/// The harness of each fuzz target, by target name.
fn harness(target: &str) -> fn(&[u8]) {
    match target {
        "dockerfile" => gohot::sync::fuzz::dockerfile,
        "glob_rules" => gohot::sync::fuzz::glob_rules,
        "registry_auth" => gohot::oci::fuzz::registry_auth,
        "syncback_listing" => gohot::wayin::fuzz::syncback_listing,
        "get_stream" => gohot::wayin::fuzz::get_stream,
        "syncback_plan" => gohot::syncback::fuzz::syncback_plan,
        other => panic!("fuzz/fuzz_targets/{other}.rs has no harness here: add it to tests/fuzz_seeds.rs"),
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    v.sort();
    v
}

/// Replays the seeds of `target`; returns how many there were.
fn replay(target: &str) -> usize {
    let run = harness(target);
    let seeds = sorted_entries(&fuzz_dir().join("seeds").join(target));
    let mut failed = Vec::new();
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(seed.display().to_string());
        }
    }
    assert!(failed.is_empty(), "fuzz target {target} panicked on seeds (message above): {failed:#?}");
    seeds.len()
}

#[test]
fn dockerfile_seeds() {
    assert!(replay("dockerfile") > 0, "fuzz/seeds/dockerfile is empty");
}

#[test]
fn glob_rules_seeds() {
    assert!(replay("glob_rules") > 0, "fuzz/seeds/glob_rules is empty");
}

#[test]
fn registry_auth_seeds() {
    assert!(replay("registry_auth") > 0, "fuzz/seeds/registry_auth is empty");
}

/// Every fuzz target has seeds and a harness here, so none is left unreplayed.
#[test]
fn every_fuzz_target_is_replayed() {
    for target in sorted_entries(&fuzz_dir().join("fuzz_targets")) {
        let name = target.file_stem().and_then(|s| s.to_str()).expect("target name");
        let _ = harness(name);
        assert!(fuzz_dir().join("seeds").join(name).is_dir(), "fuzz/seeds/{name} is missing");
    }
}

#[test]
fn syncback_listing_seeds() {
    assert!(replay("syncback_listing") > 0, "fuzz/seeds/syncback_listing is empty");
}

#[test]
fn get_stream_seeds() {
    assert!(replay("get_stream") > 0, "fuzz/seeds/get_stream is empty");
}

#[test]
fn syncback_plan_seeds() {
    assert!(replay("syncback_plan") > 0, "fuzz/seeds/syncback_plan is empty");
}
