//! Claims in the docs that the code can check: what the docs say gohot
//! needs or does, read against the source.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every source file under `dir`, concatenated.
fn sources(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            all += &sources(&p);
        } else if p.extension().is_some_and(|e| e == "rs") {
            all += &std::fs::read_to_string(&p).expect("read");
        }
    }
    all
}

/// docs/kubernetes.md's permission list names every pod subresource the
/// Kubernetes code calls.
#[test]
fn kubernetes_permissions_cover_the_subresources_gohot_uses() {
    let code = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let doc = read("docs/kubernetes.md");
    let section = doc.split("## Permissions").nth(1).expect("a Permissions section");
    let section = section.split("\n## ").next().unwrap_or(section).replace('\n', " ");
    for (call, subresource) in
        [(".exec(pod", "pods/exec"), (".log_stream(", "pods/log"), (".portforward(", "pods/portforward")]
    {
        assert!(code.contains(call), "the code no longer calls {call}: update this test and the doc");
        assert!(section.contains(subresource), "docs/kubernetes.md's Permissions omit {subresource}");
    }
}

/// The README documents every setting that chooses the Docker engine.
#[test]
fn docker_engine_settings_are_documented() {
    let readme = read("README.md");
    for var in
        ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "currentContext", "--docker-host"]
    {
        assert!(readme.contains(var), "README does not mention {var}");
    }
}
