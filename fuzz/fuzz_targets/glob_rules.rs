//! Fuzzes manual-rule validation and glob matching: they must never panic,
//! and every destination must be a clean absolute path.
//!
//! Input: `RULES (src \t dest [\t strip], one a line) \0 PATHS (one a line) \0 WORKDIR`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use gohot::sync::rules::{classify_change, CompiledRules, InferPatterns, ManualRule};

fuzz_target!(|data: &[u8]| {
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
            }
        })
        .collect();
    let paths: Vec<String> = parts
        .next()
        .unwrap_or("static/a/b.html\nindex.html\n../x\n/abs")
        .lines()
        .map(str::to_owned)
        .collect();
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
});
