//! A remote cluster: the real one, reached over a slow link (`link.rs`, a
//! relay in front of its API server that adds the round-trip time), as a
//! shared or cloud cluster is reached over the internet. What a reload
//! costs there is counted, not timed (the benchmark times it: `bench/reload
//! --kube --link`): with the delay injected, everything gohot sends at once
//! reaches the relay long before any answer can, so each time gohot speaks
//! again after the server has is one round trip it waited for.

use std::path::PathBuf;
use std::time::Duration;

use crate::kube::{KubeDev, KubeEnv};
use crate::link::{api_server_link, LinkSpec};
use crate::util::Sandbox;

/// Two replicas, reloaded over a link with 100 ms of round trip: one
/// request and one reply per replica over the sessions already open, in
/// parallel — one round trip in all, no connection opened (no exec set up,
/// no port-forward for the probe, no list of the pods), and the payloads are
/// what went up.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn a_reload_over_a_slow_link_is_one_round_trip() {
    let env = KubeEnv::new("a_reload_over_a_slow_link_is_one_round_trip");
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let manifest = app.join("manifests/deployment.yaml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("  replicas: 1\n", "  replicas: 2\n")).expect("manifest");
    let original = PathBuf::from(std::env::var_os("KUBECONFIG").expect("KUBECONFIG"));
    let kubeconfig = sb.path().join("kubeconfig-link");
    let spec = LinkSpec { rtt: Duration::from_millis(100), up_bps: Some(20_000_000), down_bps: None };
    let link = api_server_link(&original, spec, &kubeconfig);

    let mut cmd = env.gohot(&sb, &app);
    cmd.env("KUBECONFIG", &kubeconfig)
        .args(["dev", ".", "--json", "-n", &env.ns, "-f", "manifests", "--watchexec"])
        .arg(crate::dev::watchexec());
    let mut dev = KubeDev::start(cmd);
    dev.wait_event("started", Duration::from_secs(300));
    env.wait_all_serve("hello", 2, "Hello from gohot!");
    let reloaded_everywhere = |e: &serde_json::Value| e["event"] == "reloaded" && e["replicas"] == 2;
    // After a first reload every replica is known and its session open.
    crate::dev::set_greeting(&app, "over the link, first");
    dev.wait("the first reload", Duration::from_secs(120), reloaded_everywhere);

    let before = link.counts();
    crate::dev::set_greeting(&app, "over the link, second");
    let reloaded = dev.wait("the second reload", Duration::from_secs(120), reloaded_everywhere);
    let used = link.counts() - before;
    assert_eq!(used.turns, 1, "round trips of one reload: {used:?}; events: {:#?}", dev.seen());
    assert_eq!(used.connections, 0, "connections opened by one reload: {used:?}");
    let sent = reloaded["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(sent > 0 && used.up >= sent, "{used:?} up for {sent} bytes of payloads");
    // Reported reloaded means served, by every pod (seen without the link).
    for pod in env.running_pods("hello") {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert_eq!(env.pod_answer(&name).as_deref(), Some("over the link, second"), "pod {name}");
    }
}
