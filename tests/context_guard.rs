//! The context guard through the real CLI, before any request: a context is
//! local only when its name is a local-cluster tool's and its API server is
//! on this machine (src/cluster/context.rs has the rule). A listener on
//! loopback stands where an API server would be, counting connections: a
//! refused context never reaches it.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::util::*;

/// Accepts connections on loopback and counts them (never answers).
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

fn kubeconfig(dir: &std::path::Path, contexts: &[(&str, String)]) -> std::path::PathBuf {
    let mut yaml = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (name, server) in contexts {
        yaml.push_str(&format!(
            "- name: {name}\n  cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}\n"
        ));
    }
    yaml.push_str("contexts:\n");
    for (name, _) in contexts {
        yaml.push_str(&format!("- name: {name}\n  context: {{cluster: {name}, user: u}}\n"));
    }
    yaml.push_str("users:\n- name: u\n  user: {token: t}\n");
    let path = dir.join("kubeconfig");
    std::fs::write(&path, yaml).expect("kubeconfig");
    path
}

/// `gohot delete --context NAME` in a project with one manifest: (exit code, stderr).
fn delete(sb: &Sandbox, config: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let dir = sb.path().join("project");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").expect("manifest");
    let out = run(sb.gohot(&dir).args(["delete", "-f", "cm.yaml"]).args(args).env("KUBECONFIG", config));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Neither a local tool's name alone (`kind-prod` on a public address) nor a
/// loopback server alone (`staging` through a tunnel on 127.0.0.1) makes a
/// context local: both are refused, saying which half of the rule failed,
/// and nothing connects; `--allow-context` lets them through, and a KinD
/// name on loopback needs nothing.
#[test]
fn a_context_is_local_only_by_name_and_server_together() {
    let sb = Sandbox::new();
    let (port, connections) = counting_listener();
    let config = kubeconfig(
        sb.path(),
        &[
            ("staging", format!("https://127.0.0.1:{port}")),
            ("kind-prod", "https://203.0.113.7:6443".into()),
            ("kind-dev", format!("https://127.0.0.1:{port}")),
        ],
    );

    let (code, err) = delete(&sb, &config, &["--context", "staging"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refusing to hot-patch context \"staging\""), "{err}");
    assert!(err.contains("its name is not one a local-cluster tool writes"), "the rule is named: {err}");
    assert!(err.contains("--allow-context staging"), "{err}");

    let (code, err) = delete(&sb, &config, &["--context", "kind-prod"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("its name says local, but its server 203.0.113.7 is not on this machine"), "{err}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a refused context was contacted");

    // Allowed by name, or local by both halves: gohot goes on to the API server.
    let (code, err) = delete(&sb, &config, &["--context", "staging", "--allow-context", "staging"]);
    assert_eq!(code, Some(1), "no API server answers: {err}");
    assert!(!err.contains("refusing"), "{err}");
    let after_allowed = connections.load(Ordering::SeqCst);
    assert!(after_allowed > 0, "the allowed context was not contacted: {err}");
    let (_, err) = delete(&sb, &config, &["--context", "kind-dev"]);
    assert!(!err.contains("refusing"), "{err}");
    assert!(connections.load(Ordering::SeqCst) > after_allowed, "kind-dev on loopback was not contacted: {err}");
}
