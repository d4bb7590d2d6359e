//! `gohot.yaml` through the real commands: one schema for every key gohot
//! reads from it. `sync.manual`, `sync.infer`, `sync.dockerfile` and
//! `sync.buildArgs` are exercised on a real container in `dev.rs`; this file
//! covers `allowContexts` and the errors.

use crate::util::*;

/// A kubeconfig whose current context is a remote cluster (not local, so it
/// must be allowed by name); its server name cannot resolve.
fn remote_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: staging-eu\nclusters:\n- name: staging\n  cluster: {server: \"https://staging.invalid:6443\"}\ncontexts:\n- name: staging-eu\n  context: {cluster: staging, user: dev}\nusers:\n- name: dev\n  user: {token: abc}\n",
    )
    .expect("kubeconfig");
    path
}

fn delete_with(sb: &Sandbox, dir: &std::path::Path) -> (Option<i32>, String) {
    std::fs::write(dir.join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").expect("manifest");
    let out = run(sb.gohot(dir).args(["delete", "-f", "cm.yaml"]).env("KUBECONFIG", remote_kubeconfig(sb.path())));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `allowContexts` in gohot.yaml (next to `sync`) lets a command use a
/// non-local context; without it the command refuses, naming the key.
#[test]
fn allow_contexts_is_read_with_the_sync_rules() {
    let sb = Sandbox::new();
    let dir = sb.path().join("project");
    std::fs::create_dir_all(&dir).expect("mkdir");

    let (code, stderr) = delete_with(&sb, &dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("refusing to hot-patch context \"staging-eu\""), "{stderr}");
    assert!(stderr.contains("allowContexts: [staging-eu]"), "the refusal says where to allow it:\n{stderr}");

    std::fs::write(
        dir.join("gohot.yaml"),
        "allowContexts: [staging-eu]\nsync:\n  manual:\n  - src: 'static/**'\n    dest: /srv/www\n",
    )
    .expect("gohot.yaml");
    let (code, stderr) = delete_with(&sb, &dir);
    // Allowed: gohot goes on to contact the API server (which does not exist).
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("refusing"), "allowContexts was not honoured:\n{stderr}");
    assert!(stderr.contains("staging-eu") && stderr.contains("staging.invalid"), "{stderr}");
}

/// An unknown key is an error that names it and lists the valid ones, for
/// every command that reads the file (gohot dev, and the cluster commands).
#[test]
fn unknown_keys_are_named_with_the_valid_ones() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::write(app.join("gohot.yaml"), "allowContexts: [x]\nsycn:\n  manual: []\n").expect("gohot.yaml");
    let out = run(sb.gohot(&app).args(["dev", ".", "--watchexec", "/nonexistent"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gohot.yaml:2:"), "{stderr}");
    assert!(stderr.contains("`sycn`") && stderr.contains("`sync`") && stderr.contains("`allowContexts`"), "{stderr}");

    let (code, stderr) = delete_with(&sb, &app);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("`sycn`") && stderr.contains("`allowContexts`"), "{stderr}");

    std::fs::write(app.join("gohot.yaml"), "sync:\n  infer: ['*.css']\n  dockerFile: D\n").expect("gohot.yaml");
    let out = run(sb.gohot(&app).args(["dev", ".", "--watchexec", "/nonexistent"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`dockerFile`") && stderr.contains("`dockerfile`") && stderr.contains("`buildArgs`"),
        "{stderr}"
    );
}

/// `sync.infer` with a Dockerfile that is not there fails at start, naming it.
#[test]
fn infer_without_its_dockerfile_fails_at_start() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    std::fs::write(app.join("gohot.yaml"), "sync:\n  infer: ['static/**']\n  dockerfile: dev.Dockerfile\n")
        .expect("gohot.yaml");
    let out = run(sb.gohot(&app).args(["dev", ".", "--watchexec", "/nonexistent"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sync.infer") && stderr.contains("dev.Dockerfile"), "{stderr}");
}
