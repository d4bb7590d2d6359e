//! Fuzz harnesses for the pure parts of `sync`, one function per target.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` (which need a nightly
//! compiler) call these functions, and so does `tests/fuzz_seeds.rs`, which
//! replays every file of `fuzz/seeds/<target>/` on stable Rust in the normal
//! test suite. Each function splits the fuzzer's bytes into the inputs of
//! the code under test, runs it, and panics (through `assert!`) when an
//! answer breaks an invariant; an `Err` from the code under test is fine.
//! Not part of gohot's API.

use std::collections::BTreeMap;

use super::dockerfile::{sync_map, DockerIgnore};
use super::rules::{classify_change, CompiledRules, InferPatterns, ManualRule};

/// Context files used when the input names none.
const DEFAULT_FILES: &str = "static/page1.html\nstatic/assets/style.css\nindex.html\nnginx.conf\na/b/c.tar.gz\n.dot";

/// Fuzzes the Dockerfile parser, the `.dockerignore` matcher and sync-map
/// inference: they must never panic, and every answer must be well formed.
///
/// Input: `DOCKERFILE \0 CONTEXT FILES (one a line) \0 DOCKERIGNORE`.
pub fn dockerfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let dockerfile = parts.next().unwrap_or("");
    let files: Vec<String> = parts.next().unwrap_or(DEFAULT_FILES).lines().map(str::to_owned).collect();
    let ignore = parts.next();
    let mut args = BTreeMap::new();
    args.insert("A".to_owned(), "static".to_owned());
    args.insert("B".to_owned(), "/${A}/".to_owned());

    if let Ok(map) = sync_map(dockerfile, &args, &files, ignore) {
        for (src, dests) in &map {
            assert!(!src.starts_with('/') && !src.split('/').any(|c| c == ".."));
            assert!(files.iter().any(|f| normalize(f) == *src), "{src}");
            assert!(!dests.is_empty());
            for d in dests {
                assert!(d.starts_with('/'), "{d}");
                assert!(!d.split('/').any(|c| c == ".." || c == "."), "{d}");
            }
            assert!(dests.windows(2).all(|w| w[0] < w[1]), "{dests:?}");
        }
    }
    if let Some(ignore) = ignore {
        if let Ok(ig) = DockerIgnore::parse(ignore) {
            for f in &files {
                let _ = ig.is_excluded(f);
            }
        }
    }
}

/// Drops `.` and empty components, as the library does for context files.
fn normalize(path: &str) -> String {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/")
}

/// Fuzzes manual-rule validation and glob matching: they must never panic,
/// and every destination must be a clean absolute path.
///
/// Input: `RULES (src \t dest [\t strip], one a line) \0 PATHS (one a line) \0 WORKDIR`.
pub fn glob_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let rules: Vec<ManualRule> = parts
        .next()
        .unwrap_or("")
        .lines()
        .map(|line| {
            let mut fields = line.split('\t');
            ManualRule {
                src: fields.next().unwrap_or("").to_owned(),
                dest: fields.next().unwrap_or("").to_owned(),
                strip: fields.next().map(str::to_owned),
                apps: Vec::new(),
            }
        })
        .collect();
    let paths: Vec<String> =
        parts.next().unwrap_or("static/a/b.html\nindex.html\n../x\n/abs").lines().map(str::to_owned).collect();
    let workdir = parts.next().unwrap_or("/app");

    let patterns: Vec<String> = rules.iter().map(|r| r.src.clone()).collect();
    if let Ok(infer) = InferPatterns::new(patterns) {
        for p in &paths {
            let _ = infer.matches(p);
        }
    }
    if let Ok(compiled) = CompiledRules::new(rules) {
        for p in &paths {
            if let Ok(dests) = compiled.destinations(p, workdir) {
                for d in dests {
                    assert!(d.starts_with('/'), "{d}");
                    assert!(!d.contains("//"), "{d}");
                    assert!(!d.split('/').any(|c| c == ".." || c == "."), "{d}");
                }
            }
        }
        let _ = classify_change(&compiled, &paths, &paths, workdir);
    }
}
