//! Fuzzes the Dockerfile parser, the `.dockerignore` matcher and sync-map
//! inference: they must never panic, and every answer must be well formed.
//!
//! Input: `DOCKERFILE \0 CONTEXT FILES (one a line) \0 DOCKERIGNORE`.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use gohot::sync::dockerfile::{sync_map, DockerIgnore};

const DEFAULT_FILES: &str =
    "static/page1.html\nstatic/assets/style.css\nindex.html\nnginx.conf\na/b/c.tar.gz\n.dot";

/// Drops `.` and empty components, as the library does for context files.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let dockerfile = parts.next().unwrap_or("");
    let files: Vec<String> = parts
        .next()
        .unwrap_or(DEFAULT_FILES)
        .lines()
        .map(str::to_owned)
        .collect();
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
});
