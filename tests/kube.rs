//! End to end on a real Kubernetes cluster: `gohot apply --dev` of the hello
//! example, rollout wait, the way-in helper's `version` run in the pod over
//! the exec API, `gohot delete`.
//!
//! Opt-in: it runs only when KUBECONFIG names a reachable cluster (no cluster
//! can run on gohot's CI machine; the kube code is tested there against
//! kube-rs's mock service instead, see src/cluster/). Without one it prints
//! why it skipped and passes. Images go where KO_DOCKER_REPO says; on a
//! `kind-*` context without it, into the KinD nodes (kind.local).

use gohot::cluster::pods::{AppImage, PodSelector, Workload};
use gohot::cluster::{self, KubeOptions};
use gohot::platform::Platform;
use gohot::target::kube::KubeTarget;
use gohot::target::Target;

use crate::util::{run, Sandbox};

fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED kube::{test}: {reason}");
}

/// The cluster KUBECONFIG names, connected and answering, with a runtime to
/// drive it; None (after printing why) when there is none.
fn reachable_cluster(test: &str) -> Option<(tokio::runtime::Runtime, cluster::Cluster)> {
    let Some(kubeconfig) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) else {
        skip(test, "KUBECONFIG is not set; point it at a cluster (e.g. `kind create cluster`) to run this test");
        return None;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let connected = rt.block_on(async {
        let c = cluster::connect(&KubeOptions::default()).await?;
        c.ping().await?;
        Ok::<_, cluster::KubeError>(c)
    });
    match connected {
        Ok(c) => Some((rt, c)),
        Err(e) => {
            skip(
                test,
                &format!("KUBECONFIG={} names no reachable, allowed cluster: {e}", kubeconfig.to_string_lossy()),
            );
            None
        }
    }
}

#[test]
fn apply_exec_delete_on_a_real_cluster() {
    let Some((rt, cluster)) = reachable_cluster("apply_exec_delete_on_a_real_cluster") else { return };
    let ns = format!("gohot-e2e-{}", std::process::id());
    let sandbox = Sandbox::new();
    let app = sandbox.copy_example("hello", "hello");
    let manifests = app.join("manifests");
    let namespace_doc = cluster::apply::Doc {
        origin: "test namespace".into(),
        value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    };
    rt.block_on(cluster::apply::apply(&cluster, std::slice::from_ref(&namespace_doc))).expect("create namespace");
    let cleanup = |sandbox: &Sandbox| {
        let mut del = sandbox.gohot(&app);
        del.args(["delete", "-n", &ns, "-f"]).arg(&manifests);
        let out = run(&mut del);
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        let _ = rt.block_on(cluster::apply::delete(&cluster, std::slice::from_ref(&namespace_doc)));
        out
    };

    let mut apply = sandbox.gohot(&app);
    if let Some(repo) = std::env::var_os("KO_DOCKER_REPO") {
        apply.env("KO_DOCKER_REPO", repo);
    }
    apply.args(["apply", "--dev", "--timeout", "4m", "-n", &ns, "-f"]).arg(&manifests);
    let out = run(&mut apply);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        cleanup(&sandbox);
        panic!("gohot apply failed:\n{stderr}");
    }
    assert!(stderr.contains(&format!("applied Deployment {ns}/hello")), "{stderr}");

    // The pods of the Deployment, whatever digest the image got: find it from the live pod.
    let result = rt.block_on(async {
        let workload = Workload {
            kind: "Deployment".into(),
            namespace: ns.clone(),
            name: "hello".into(),
            selector: PodSelector::Labels("app=hello".into()),
        };
        let pods = cluster::pods::list_pods(&cluster, std::slice::from_ref(&workload)).await?;
        let image =
            pods.iter().find_map(|p| p.spec.as_ref()?.containers.first()?.image.clone()).expect("a pod with an image");
        let nodes = cluster::nodes::list(&cluster).await?;
        let platforms: Vec<Platform> = nodes.iter().map(|n| n.platform.clone()).collect();
        let target = KubeTarget::new(
            cluster.clone(),
            vec![workload],
            AppImage::new(&image),
            platforms,
            Box::new(|w| eprintln!("warning: {w}")),
        );
        let replicas = target.replicas().await.map_err(|e| e.to_string())?;
        assert!(!replicas.is_empty(), "no live replica of {image}");
        let argv = gohot::sync::wayin::version_argv();
        let out = target.exec(&replicas[0], &argv, bytes::Bytes::new()).await.map_err(|e| e.to_string())?;
        Ok::<_, Box<dyn std::error::Error>>(out)
    });
    let del = cleanup(&sandbox);
    let out = result.expect("exec the helper in the pod");
    assert_eq!(out.exit_code, 0, "helper version: {}", String::from_utf8_lossy(&out.stderr));
    let version = gohot::sync::wayin::parse_version(&out.stdout).expect("helper version output");
    eprintln!("helper in the pod: {version:?}");
    assert!(del.status.success(), "gohot delete failed");
}

/// Bad input for `gohot apply` / `gohot delete`, before any build: each
/// message names what to fix. Real processes, no cluster: the API server is
/// a loopback port nobody listens on.
#[test]
fn apply_and_delete_explain_bad_cluster_settings() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let manifests = app.join("manifests");
    let fails = |args: &[&str], kubeconfig: &std::path::Path| {
        let mut cmd = sb.gohot(&app);
        cmd.args(args).arg("--kubeconfig").arg(kubeconfig).arg("-f").arg(&manifests);
        let out = run(&mut cmd);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };

    let missing = sb.path().join("no-such-kubeconfig");
    let e = fails(&["apply"], &missing);
    assert!(e.contains("no kubeconfig found") && e.contains("no-such-kubeconfig"), "{e}");

    let write = |name: &str, context: &str, server: &str| {
        let p = sb.path().join(name);
        std::fs::write(
            &p,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\ncontexts:\n- name: {context}\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: t}}\n"
            ),
        )
        .expect("write kubeconfig");
        p
    };
    let remote = write("remote", "prod-eu", "https://k8s.example.com:6443");
    let e = fails(&["delete"], &remote);
    assert!(e.contains("refusing to hot-patch context \"prod-eu\"") && e.contains("--allow-context prod-eu"), "{e}");

    let port = crate::util::free_port();
    let down = write("down", "kind-down", &format!("http://127.0.0.1:{port}"));
    let e = fails(&["apply"], &down);
    assert!(e.contains(&format!("cannot reach the API server http://127.0.0.1:{port}")), "{e}");
    assert!(e.contains("kind get clusters"), "{e}");
}

/// The dev loop itself on a real cluster (opt-in like the test above): deploy
/// with `gohot dev -f`, edit the source, and wait until every pod reports the
/// reload — the binary really went through the exec API into the pod.
#[test]
fn dev_loop_on_a_real_cluster() {
    use std::io::BufRead;
    let Some((rt, cluster)) = reachable_cluster("dev_loop_on_a_real_cluster") else { return };
    let ns = format!("gohot-dev-e2e-{}", std::process::id());
    let namespace_doc = cluster::apply::Doc {
        origin: "test namespace".into(),
        value: serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    };
    rt.block_on(cluster::apply::apply(&cluster, std::slice::from_ref(&namespace_doc))).expect("create namespace");
    let sandbox = Sandbox::new();
    let app = sandbox.copy_example("hello", "hello");
    let mut cmd = sandbox.gohot(&app);
    cmd.args(["dev", ".", "--json", "-n", &ns, "-f", "manifests", "--watchexec"]).arg(crate::dev::watchexec());
    if let Some(repo) = std::env::var_os("KO_DOCKER_REPO") {
        cmd.env("KO_DOCKER_REPO", repo);
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("gohot dev");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, events) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("json event"));
        }
    });
    let wait = |kind: &str| loop {
        let e = events.recv_timeout(std::time::Duration::from_secs(300)).unwrap_or_else(|_| panic!("no {kind} event"));
        if e["event"] == kind {
            return e;
        }
    };
    wait("started");
    crate::dev::set_greeting(&app, "reloaded on the cluster");
    let reloaded = wait("reloaded");
    assert!(reloaded["replicas"].as_u64().unwrap_or(0) >= 1, "{reloaded}");
    assert_eq!(reloaded["replicas"], reloaded["replicas_total"], "every pod got the new binary: {reloaded}");
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
    let out = run(sandbox.gohot(&app).args(["delete", "-n", &ns, "-f", "manifests"]));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let _ = rt.block_on(cluster::apply::delete(&cluster, std::slice::from_ref(&namespace_doc)));
}
