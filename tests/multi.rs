//! Several services in one `gohot dev` session on the real Docker engine,
//! with the real Go toolchain and watchexec: examples/shop's api, worker
//! and gateway share `internal/price`. They reach each other by name on the
//! session's network; an edit of the shared package reloads all three and
//! ends with one `reloaded_all`; an edit of one service's own code builds
//! that one only; a compile error in one leaves it on its old process while
//! the others reload; Ctrl-C removes every container and the network. (The
//! cluster side is in tests/kube.rs.) No timing assertions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::dev::watchexec;
use crate::util::*;

const SERVICES: [(&str, u16); 3] = [("api", 8080), ("worker", 9090), ("gateway", 8081)];
const LONG: Duration = Duration::from_secs(240);

/// A `gohot dev` of the shop's three services.
struct Shop {
    _sb: Sandbox,
    dir: PathBuf,
    child: Child,
    events: EventStream,
    ports: BTreeMap<&'static str, u16>,
    prefix: String,
}

impl Shop {
    fn start() -> Shop {
        let sb = Sandbox::new();
        let dir = sb.copy_example("shop", "shop");
        let prefix = format!("gohot-test-shop-{}", std::process::id());
        let ports: BTreeMap<&str, u16> = SERVICES.iter().map(|(n, _)| (*n, free_port())).collect();
        let mut args = vec!["dev".to_string(), "./cmd/api".into(), "./cmd/worker".into(), "./cmd/gateway".into()];
        args.extend(["--json".into(), "--name".into(), prefix.clone(), "--watchexec".into()]);
        args.push(watchexec().display().to_string());
        for (name, port) in SERVICES {
            args.extend(["-p".into(), format!("{name}={}:{port}", ports[name])]);
        }
        let mut child =
            sb.gohot(&dir).args(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("gohot dev");
        let events = EventStream::read(child.stdout.take().expect("stdout"));
        let mut shop = Shop { _sb: sb, dir, child, events, ports, prefix };
        let names = SERVICES.map(|(n, _)| n);
        for (started, name) in shop.events.each("started", &names, LONG).iter().zip(names) {
            assert_eq!(started["replicas"][0], format!("{}-{name}", shop.prefix), "{started}");
        }
        shop
    }

    /// Waits until `service` answers `path` with a body containing `text`.
    fn wait_answer(&self, service: &str, path: &str, text: &str) {
        let port = self.ports[service];
        wait_for(&format!("{service} to answer {text:?} on {path}"), Duration::from_secs(90), || {
            http_get(port, path).filter(|(s, b)| *s == 200 && b.contains(text)).map(|_| ())
        });
    }

    fn answer(&self, service: &str) -> String {
        http_get(self.ports[service], "/").map(|(_, b)| b).unwrap_or_default()
    }

    fn containers(&self) -> Vec<String> {
        SERVICES.iter().map(|(n, _)| format!("{}-{n}", self.prefix)).collect()
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for c in self.containers() {
            let _ = Command::new("docker").args(["rm", "-f", &c]).output();
        }
        let _ = Command::new("docker").args(["network", "rm", &self.prefix]).output();
    }
}

/// Replaces the first `"…"` string after `var NAME = ` in `file` (atomically, as editors save).
fn set_var(dir: &Path, file: &str, var: &str, value: &str) {
    let path = dir.join(file);
    let src = std::fs::read_to_string(&path).expect("source");
    let key = format!("var {var} = \"");
    let start = src.find(&key).expect("the variable") + key.len();
    let end = start + src[start..].find('"').expect("end quote");
    let tmp = path.with_extension("go.tmp-edit");
    std::fs::write(&tmp, format!("{}{value}{}", &src[..start], &src[end..])).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

/// The apps of the `build_started` events among `events`.
fn built(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "build_started")
        .map(|e| e["app"].as_str().expect("build_started names its app").to_string())
        .collect()
}

fn outcomes(all: &serde_json::Value) -> Vec<(String, String)> {
    all["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| (s["app"].as_str().unwrap_or_default().into(), s["outcome"].as_str().unwrap_or_default().into()))
        .collect()
}

#[test]
fn three_services_share_a_network_and_reload_exactly_what_an_edit_touches() {
    let mut shop = Shop::start();
    // The api reaches the worker by its name on the session's network.
    shop.wait_answer("api", "/worker", "worker says: worker v1 (prices v1");

    // The shared package: all three build and reload, one reloaded_all.
    set_var(&shop.dir, "internal/price/price.go", "Label", "prices v2");
    let events = shop.events.until("reloaded_all", LONG, |e| e["event"] == "reloaded_all");
    let all = events.last().expect("reloaded_all");
    assert_eq!(all["files"], serde_json::json!(["internal/price/price.go"]), "{all}");
    let want: Vec<(String, String)> = SERVICES.iter().map(|(n, _)| (n.to_string(), "reloaded".to_string())).collect();
    assert_eq!(outcomes(all), want);
    let mut b = built(&events);
    b.sort();
    assert_eq!(b, ["api", "gateway", "worker"], "one build each");
    for (name, _) in SERVICES {
        shop.wait_answer(name, "/", "prices v2");
    }
    shop.wait_answer("api", "/worker", "prices v2");

    // One service's own code: that one builds, no other (the gateway's
    // edit after it closes the window in which a stray build would show).
    set_var(&shop.dir, "cmd/worker/main.go", "greeting", "worker v2");
    let mut window = shop.events.until("worker's reload", LONG, |e| e["event"] == "reloaded" && e["app"] == "worker");
    set_var(&shop.dir, "cmd/gateway/main.go", "greeting", "gateway v2");
    window.extend(shop.events.until("gateway's reload", LONG, |e| e["event"] == "reloaded" && e["app"] == "gateway"));
    assert_eq!(built(&window), ["worker", "gateway"], "0 builds of the others: {window:#?}");
    assert!(!window.iter().any(|e| e["event"] == "reloaded_all"), "one service per save: no summary");
    shop.wait_answer("worker", "/", "worker v2");
    assert!(shop.answer("api").contains("api v1"));

    // A compile error in the gateway: it keeps its process, the others reload.
    std::fs::write(shop.dir.join("cmd/gateway/broken.go"), "package main\n\nfunc broken() { undefinedThing() }\n")
        .expect("write");
    let failed = shop.events.event("build_failed", Some("gateway"), LONG);
    assert!(failed["output"].as_str().expect("output").contains("undefined: undefinedThing"), "{failed}");
    set_var(&shop.dir, "internal/price/price.go", "Label", "prices v3");
    let events = shop.events.until("reloaded_all", LONG, |e| e["event"] == "reloaded_all");
    let got = outcomes(events.last().expect("reloaded_all"));
    let want = [("api", "reloaded"), ("worker", "reloaded"), ("gateway", "failed")];
    assert_eq!(got, want.map(|(a, o)| (a.to_string(), o.to_string())));
    shop.wait_answer("api", "/", "prices v3");
    shop.wait_answer("worker", "/", "prices v3");
    assert!(shop.answer("gateway").contains("gateway v2 (prices v2)"), "the gateway serves its old code");
    std::fs::remove_file(shop.dir.join("cmd/gateway/broken.go")).expect("rm");
    shop.wait_answer("gateway", "/", "gateway v2 (prices v3)");

    // Ctrl-C: every container and the network go, exit 130.
    let _ = Command::new("kill").args(["-INT", &shop.child.id().to_string()]).status();
    let status = wait_for("gohot dev to exit", Duration::from_secs(60), || shop.child.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(130));
    for c in shop.containers() {
        let gone = !Command::new("docker").args(["inspect", &c]).output().expect("docker").status.success();
        assert!(gone, "container {c} left behind");
    }
    let net = Command::new("docker").args(["network", "inspect", &shop.prefix]).output().expect("docker");
    assert!(!net.status.success(), "network {} left behind", shop.prefix);
}

/// The same three services on the real cluster, two replicas each (CI runs
/// realkube: no cluster DNS there, so each replica is checked through a
/// port-forward of the test's own): `gohot dev -f manifests` with no package
/// develops every `ko://` image; a shared edit reaches every replica of all
/// three; a pod of the api replaced meanwhile is brought current while the
/// worker keeps reloading; `gohot dev ./cmd/worker -f` develops the worker
/// only and deploys the others as built.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn three_services_on_a_real_cluster() {
    let env = crate::kube::KubeEnv::new("three_services_on_a_real_cluster");
    let sb = Sandbox::new();
    let dir = sb.copy_example("shop", "shop");
    for (name, _) in SERVICES {
        let path = dir.join(format!("manifests/{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("manifest").replace("  replicas: 1\n", "  replicas: 2\n");
        std::fs::write(&path, text).expect("write manifest");
    }
    let serve_all = |name: &str, port: u16, text: &str| -> Vec<String> {
        wait_for(&format!("both pods of {name} serving {text:?}"), Duration::from_secs(180), || {
            let pods: Vec<String> = env.running_pods(name).iter().filter_map(|p| p.metadata.name.clone()).collect();
            let answers = |p: &String| {
                env.rt.block_on(gohot::hosting::kube::logs::get_from_pod(&env.cluster, &env.ns, p, port, "/"))
            };
            (pods.len() == 2 && pods.iter().all(|p| answers(p).is_some_and(|a| a.contains(text)))).then_some(pods)
        })
    };
    let forward = free_port();
    let mut cmd = env.gohot(&sb, &dir);
    cmd.args(["dev", "--json", "-n", &env.ns, "-f", "manifests", "--port-forward", &format!("api={forward}:8080")])
        .arg("--watchexec")
        .arg(watchexec())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("gohot dev");
    let mut events = EventStream::read(child.stdout.take().expect("stdout"));
    let _kill = KillOnDrop(child);
    for started in events.each("started", &SERVICES.map(|(n, _)| n), Duration::from_secs(420)) {
        assert_eq!(started["replicas"].as_array().map(Vec::len), Some(2), "{started}");
    }
    for (name, port) in SERVICES {
        serve_all(name, port, "prices v1");
    }

    set_var(&dir, "internal/price/price.go", "Label", "prices v2");
    let batch = events.until("reloaded_all", LONG, |e| e["event"] == "reloaded_all");
    // Without packages the session's order is the manifests' references' (sorted).
    let want = [("api", "reloaded"), ("gateway", "reloaded"), ("worker", "reloaded")];
    assert_eq!(outcomes(batch.last().expect("reloaded_all")), want.map(|(a, o)| (a.to_string(), o.to_string())));
    for e in batch.iter().filter(|e| e["event"] == "reloaded") {
        assert_eq!((e["replicas"].as_u64(), e["replicas_total"].as_u64()), (Some(2), Some(2)), "{e}");
    }
    let mut api_pods = Vec::new();
    for (name, port) in SERVICES {
        let pods = serve_all(name, port, "prices v2");
        if name == "api" {
            api_pods = pods;
        }
    }
    let forwarded = http_get(forward, "/").map(|(_, b)| b).unwrap_or_default();
    assert!(forwarded.contains("api v1 (prices v2)"), "the api's port-forward: {forwarded}");

    // An api pod replaced by its ReplicaSet (from the image: old code) while
    // the worker is edited: the worker reloads, the api's new pod is made current.
    env.delete_pod(&api_pods[0]);
    set_var(&dir, "cmd/worker/main.go", "greeting", "worker v2");
    let batch = events.until("the api's recovery", LONG, |e| e["event"] == "recovered" && e["app"] == "api");
    assert!(!built(&batch).iter().any(|a| a != "worker"), "only the worker builds: {batch:#?}");
    serve_all("worker", 9090, "worker v2");
    let pods = serve_all("api", 8080, "prices v2");
    assert!(!pods.contains(&api_pods[0]), "a new api pod serves the current code: {pods:?}");
    drop(_kill);

    // Only the worker developed: the others are deployed as built (their
    // containers run the image's entrypoint, not watchexec).
    let mut cmd = env.gohot(&sb, &dir);
    cmd.args(["dev", "./cmd/worker", "--json", "-n", &env.ns, "-f", "manifests"])
        .arg("--watchexec")
        .arg(watchexec())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("gohot dev ./cmd/worker");
    let mut events = EventStream::read(child.stdout.take().expect("stdout"));
    let _kill = KillOnDrop(child);
    let started = events.event("started", Some("worker"), Duration::from_secs(420));
    assert!(!events.seen.iter().any(|e| e["event"] == "started" && e["app"] != "worker"), "{started}");
    let command_of = |name: &str| {
        let pods = env.running_pods(name);
        let c = &pods[0].spec.as_ref().expect("spec").containers[0];
        c.command.clone().unwrap_or_default().join(" ")
    };
    wait_for("the api rolled out as built", Duration::from_secs(180), || {
        (env.running_pods("api").len() == 2 && !command_of("api").contains("watchexec")).then_some(())
    });
    assert!(command_of("worker").contains("watchexec"), "{}", command_of("worker"));
    set_var(&dir, "cmd/worker/main.go", "greeting", "worker v3");
    events.event("reloaded", Some("worker"), LONG);
    serve_all("worker", 9090, "worker v3");
}

/// Prints a log file when the test fails (the sandbox holding it is deleted).
struct PrintOnPanic(PathBuf);

impl Drop for PrintOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- {} ---\n{text}--- end ---", self.0.display());
        }
    }
}

/// The Skaffold binary the Skaffold test runs: GOHOT_TEST_SKAFFOLD, else
/// where `.ci/run` builds it from Skaffold 2.24's source.
fn skaffold() -> PathBuf {
    let p = std::env::var_os("GOHOT_TEST_SKAFFOLD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/skaffold/bin/skaffold"));
    assert!(
        p.is_file(),
        "{} missing: build Skaffold 2.24 offline (scripts/skaffold, as .ci/run does), or set GOHOT_TEST_SKAFFOLD",
        p.display()
    );
    p
}

/// `skaffold dev` itself (Skaffold 2.24, built from its source) with
/// examples/shop/skaffold.yaml on the real cluster: three custom artifacts
/// built by gohot, each hot-reloaded by its own `gohot skaffold sync` hook —
/// a shared edit reaches all three pods with no rebuild (the same pods
/// serve the new code), an edit of the worker's own code reaches the worker.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn shop_under_a_real_skaffold_dev() {
    let env = crate::kube::KubeEnv::new("shop_under_a_real_skaffold_dev");
    let skaffold = skaffold();
    let sb = Sandbox::new();
    let dir = sb.copy_example("shop", "shop");
    // The Deployments run exactly the command gohot's dev rewrite writes.
    let k8s = std::fs::read_to_string(dir.join("skaffold/k8s.yaml")).expect("skaffold/k8s.yaml");
    let commands: BTreeMap<String, Vec<String>> = k8s
        .split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<k8s_openapi::api::apps::v1::Deployment>(doc).ok())
        .filter_map(|d| {
            let c = d.spec.template.spec?.containers.into_iter().next()?;
            Some((c.name, c.command.unwrap_or_default()))
        })
        .collect();
    for (name, _) in SERVICES {
        let command = gohot::resolve::devrewrite::dev_command(name, &[format!("/ko-app/{name}")]);
        assert_eq!(commands.get(name), Some(&command), "skaffold/k8s.yaml's {name} command");
    }
    // realkube's context is kind-realkube: without push, Skaffold would load into KinD nodes.
    let config = dir.join("skaffold.yaml");
    let text = std::fs::read_to_string(&config)
        .expect("skaffold.yaml")
        .replace("build:\n  artifacts:\n", "build:\n  local: {push: true}\n  artifacts:\n");
    std::fs::write(&config, text).expect("write skaffold.yaml");
    let repo = std::env::var("KO_DOCKER_REPO").unwrap_or_else(|_| "127.0.0.1:5000/gohot-test".into());
    let registry = repo.split('/').next().expect("a registry").to_string();
    // Skaffold runs gohot (builds, deps, hooks) with this environment.
    let template = sb.gohot(&dir);
    let mut cmd = Command::new(&skaffold);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let gohot_dir = Path::new(env!("CARGO_BIN_EXE_gohot")).parent().expect("gohot's directory").to_path_buf();
    let path = format!("{}:{}", gohot_dir.display(), std::env::var("PATH").unwrap_or_default());
    let log = sb.path().join("skaffold.log");
    let out = std::fs::File::create(&log).expect("log");
    cmd.current_dir(&dir)
        .env("PATH", path)
        .env("GOHOT_WATCHEXEC", watchexec())
        .env("SKAFFOLD_UPDATE_CHECK", "false")
        .args(["dev", "--default-repo", &repo, "--insecure-registry", &registry, "-n", &env.ns])
        .args(["--port-forward=off", "--tail=false", "--cleanup=true", "--status-check=true"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out);
    let child = cmd.spawn().expect("skaffold dev");
    let _kill = KillOnDrop(child);
    let _log = PrintOnPanic(log.clone());
    let answer = |pod: &str, port: u16| {
        env.rt.block_on(gohot::hosting::kube::logs::get_from_pod(&env.cluster, &env.ns, pod, port, "/"))
    };
    let serving = |name: &str, port: u16, text: &str| -> String {
        let what = format!("{name}'s pod serving {text:?} (skaffold's log: {})", log.display());
        wait_for(&what, Duration::from_secs(420), || {
            let pods: Vec<String> = env.running_pods(name).iter().filter_map(|p| p.metadata.name.clone()).collect();
            match pods.as_slice() {
                [pod] if answer(pod, port).is_some_and(|a| a.contains(text)) => Some(pod.clone()),
                _ => None,
            }
        })
    };
    // Skaffold takes its first snapshot of the files after the deploy: an
    // edit before "Watching for changes" would be its baseline, not a change.
    let watching = |times: usize| {
        wait_for("skaffold watching for changes", Duration::from_secs(300), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.matches("Watching for changes").count() >= times).then_some(())
        })
    };
    let first: Vec<String> = SERVICES.iter().map(|(n, p)| serving(n, *p, "prices v1")).collect();

    watching(1);
    set_var(&dir, "internal/price/price.go", "Label", "prices v2");
    let after: Vec<String> = SERVICES.iter().map(|(n, p)| serving(n, *p, "prices v2")).collect();
    assert_eq!(after, first, "synced into the same pods, not rebuilt and redeployed");

    watching(2);
    watching(2);
    set_var(&dir, "cmd/worker/main.go", "greeting", "worker v2");
    assert_eq!(serving("worker", 9090, "worker v2 (prices v2"), first[1]);
    assert!(answer(&first[0], 8080).is_some_and(|a| a.contains("api v1 (prices v2)")));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let (_, after_deploy) = text.split_once("Watching for changes").expect("watching");
    assert!(!after_deploy.contains("Building ["), "an edit rebuilt an image instead of syncing: {after_deploy}");
    assert_eq!(
        after_deploy.matches("Starting pre-sync hooks").count(),
        4,
        "three hooks for the shared edit, one for the worker's"
    );
}
