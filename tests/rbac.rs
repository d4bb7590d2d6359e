//! Least privilege on a shared cluster, on a real Kubernetes cluster: a
//! ServiceAccount whose only rights are the rules of
//! `manifests/gohot-developer.yaml` runs `gohot dev -f` (a reload after an
//! edit, the recovery of a deleted pod, a port-forward answering), `gohot
//! syncback` and `gohot delete`; and with one rule taken away, the step that
//! needs it fails with a message naming the missing permission (verb and
//! resource, as the API server checked them) and the Role that has it — not
//! a raw 403.
//!
//! Nodes are cluster-scoped, so the Role cannot grant reading them: the
//! sessions pass `--platform` (the nodes' platform, read with the test's own
//! rights), as a developer on a shared cluster does.
//!
//! `#[ignore]`d like every cluster test (tests/kube.rs says how they run);
//! each test works in namespaces `rbac-…` of its own, deleted when it ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::kube::{dev_command, edit_and_check, forwarded, hello_app, KubeDev, KubeEnv};
use crate::util::{run, wait_for, Sandbox};

/// The Role's rules as `manifests/gohot-developer.yaml` has them, less those
/// for which `drop` holds.
fn developer_rules(drop: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/gohot-developer.yaml");
    let text = std::fs::read_to_string(&path).expect("manifests/gohot-developer.yaml");
    let role: serde_json::Value = serde_yaml_ng::from_str(&text).expect("the Role is YAML");
    assert_eq!(role["kind"], "Role", "{}", path.display());
    assert_eq!(role["metadata"]["name"], "gohot-developer");
    let rules: Vec<serde_json::Value> =
        role["rules"].as_array().expect("rules").iter().filter(|r| !drop(r)).cloned().collect();
    serde_json::Value::Array(rules)
}

/// Whether `rule` grants `verb` on `resource`.
fn grants(rule: &serde_json::Value, resource: &str, verb: &str) -> bool {
    let has = |key: &str, want: &str| rule[key].as_array().is_some_and(|v| v.iter().any(|x| x == want));
    has("resources", resource) && has("verbs", verb)
}

/// The platform of the cluster's nodes (read with the test's own rights).
fn node_platform(env: &KubeEnv) -> String {
    let nodes = env.rt.block_on(gohot::cluster::nodes::list(&env.cluster)).expect("list nodes");
    let platforms = gohot::cluster::nodes::build_platforms(&nodes, &Default::default());
    assert_eq!(platforms.len(), 1, "one platform among the nodes: {platforms:?}");
    platforms[0].to_string()
}

/// `gohot dev` on the hello app as the ServiceAccount of `kubeconfig`.
fn dev_as(env: &KubeEnv, sb: &Sandbox, app: &Path, forward: u16, kubeconfig: &Path, platform: &str) -> Command {
    let mut cmd = dev_command(env, sb, app, forward);
    cmd.env("KUBECONFIG", kubeconfig).args(["--platform", platform]);
    cmd
}

/// The text of an event for people: its message (or log line), its errors, else the whole event.
fn text(e: &serde_json::Value) -> String {
    if let Some(m) = e["message"].as_str().or(e["line"].as_str()) {
        return m.to_string();
    }
    match e["errors"].as_array() {
        Some(errors) => errors.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n"),
        None => e.to_string(),
    }
}

/// A refusal as gohot words it: the verb and resource (any of `verbs`: the
/// exec and port-forward WebSockets are a `get` before Kubernetes 1.31, a
/// `create` after), the namespace, the user, and the Role as the fix.
fn assert_names_permission(message: &str, verbs: &[&str], resource: &str, env: &KubeEnv, account: &str) {
    // As the API server names it, else (a refusal without a reason) as the kubeconfig does.
    let users = [format!("system:serviceaccount:{}:{account}", env.ns), format!("the kubeconfig's user {account:?}")];
    let named = verbs.iter().any(|v| {
        users
            .iter()
            .any(|u| message.contains(&format!("the cluster refused {v} {resource} in namespace {} for {u}:", env.ns)))
    });
    assert!(named, "names {verbs:?} {resource}, the namespace and the user: {message}");
    assert!(message.contains("add it to your Role (manifests/gohot-developer.yaml"), "names the fix: {message}");
    // (The namespace and user are named after the test's pid, which may hold "403".)
    let words = message.replace(&env.ns, "");
    assert!(!words.contains("403") && !words.contains("Forbidden"), "not a raw 403: {message}");
    eprintln!("refused as it should be: {message}");
}

/// `gohot dev -f`, `gohot syncback` and `gohot delete` with only the
/// gohot-developer Role: the edit is served by the pod and through the
/// port-forward, a deleted pod's replacement is brought up to date, kodata
/// comes back from the pod, and nothing is refused.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn gohot_developer_role_is_enough_on_a_real_cluster() {
    let env = KubeEnv::with_prefix("rbac", "role_is_enough");
    let sb = Sandbox::new();
    let app = hello_app(&sb, 1, "", "");
    let kubeconfig = env.service_account_kubeconfig(sb.path(), "dev", developer_rules(|_| false));
    let platform = node_platform(&env);
    let forward = crate::util::free_port();
    let mut dev = KubeDev::start(dev_as(&env, &sb, &app, forward, &kubeconfig, &platform));
    dev.wait_event("started", Duration::from_secs(300));
    env.wait_all_serve("hello", 1, "Hello from gohot!");

    // A reload, checked in the pod and through the port-forward.
    edit_and_check(&mut dev, &env, &app, forward, "under the Role", 1);

    // A deleted pod: its replacement is found (the pod watch), brought up to
    // date (exec) and reached by the port-forward.
    let old = env.running_pods("hello")[0].metadata.name.clone().expect("pod name");
    env.delete_pod(&old);
    let recovered = dev.wait("the replacement's recovery", Duration::from_secs(120), |e| {
        e["event"] == "recovered" && !e["replica"].as_str().unwrap_or("").starts_with(&old)
    });
    env.wait_all_serve("hello", 1, "under the Role");
    wait_for("the port-forward to reach the new pod", Duration::from_secs(60), || {
        (forwarded(forward).as_deref() == Some("under the Role")).then_some(())
    });
    edit_and_check(&mut dev, &env, &app, forward, "after the recovery", 1);
    let refused: Vec<&serde_json::Value> = dev.seen().iter().filter(|e| text(e).contains("refused")).collect();
    assert!(refused.is_empty(), "nothing refused: {refused:#?}");
    assert_eq!(dev.count("sync_failed"), 0, "{recovered}\n{:#?}", dev.seen());
    assert_eq!(dev.interrupt().code(), Some(130));

    // gohot syncback: the pod's kodata back home.
    let local = sb.path().join("kodata-back");
    let mut syncback = env.gohot(&sb, &app);
    syncback.env("KUBECONFIG", &kubeconfig).args(["syncback", "deploy/hello:/var/run/ko", "-n", &env.ns]).arg(&local);
    // A reload restarts the app: its pod may be unready until the kubelet's next probe.
    let out = wait_for("syncback to find a ready pod", Duration::from_secs(120), || {
        let out = run(&mut syncback);
        let unready = String::from_utf8_lossy(&out.stderr).contains("no running, ready pod");
        (out.status.success() || !unready).then_some(out)
    });
    assert!(out.status.success(), "gohot syncback: {}", String::from_utf8_lossy(&out.stderr));
    let want = std::fs::read_to_string(app.join("kodata/message.txt")).expect("kodata");
    assert_eq!(std::fs::read_to_string(local.join("message.txt")).ok(), Some(want));

    // gohot delete.
    let mut delete = env.gohot(&sb, &app);
    delete.env("KUBECONFIG", &kubeconfig).args(["delete", "-n", &env.ns, "-f", "manifests"]);
    let out = run(&mut delete);
    assert!(out.status.success(), "gohot delete: {}", String::from_utf8_lossy(&out.stderr));
    wait_for("the pods to go away", Duration::from_secs(120), || env.running_pods("hello").is_empty().then_some(()));
}

/// The last event of a `gohot dev` that ended by itself (a fatal error).
fn fatal_error(cmd: &mut Command) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "gohot dev fails: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let last = stdout.lines().last().unwrap_or_default();
    let event: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert_eq!(event["event"], "error", "{stdout}");
    text(&event)
}

/// A kubeconfig of a new ServiceAccount `account` with the Role less the
/// rules `drop` matches.
fn without(env: &KubeEnv, dir: &Path, account: &str, drop: impl Fn(&serde_json::Value) -> bool) -> PathBuf {
    env.service_account_kubeconfig(dir, account, developer_rules(drop))
}

/// The Role less the rule the step needs, one at a time: the workload's
/// apply (all of it: `patch` refused; `create` alone: refused when the
/// Deployment does not exist yet), the exec API (the reload) and the
/// port-forward. Each failure names the permission, the user and the Role.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn each_missing_rule_is_named_on_a_real_cluster() {
    let env = KubeEnv::with_prefix("rbac", "missing_rule");
    let sb = Sandbox::new();
    let app = hello_app(&sb, 1, "", "");
    let platform = node_platform(&env);
    let dir = sb.path().to_path_buf();
    let forward = crate::util::free_port();

    // No rule to apply Deployments: the server's RBAC filter refuses `patch`.
    let k = without(&env, &dir, "noapply", |r| grants(r, "deployments", "patch"));
    let e = fatal_error(&mut dev_as(&env, &sb, &app, forward, &k, &platform));
    assert_names_permission(&e, &["patch"], "deployments.apps", &env, "noapply");

    // `patch` but no `create`: the Deployment does not exist yet, and the
    // apply is refused its creation (the API server gives no reason). The
    // rule is taken out and given back with `patch` alone.
    let mut rules = developer_rules(|r| grants(r, "deployments", "create"));
    rules.as_array_mut().expect("rules").push(serde_json::json!(
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}
    ));
    let k = env.service_account_kubeconfig(&dir, "nocreate", rules);
    let e = fatal_error(&mut dev_as(&env, &sb, &app, forward, &k, &platform));
    assert_names_permission(&e, &["create"], "deployments.apps", &env, "nocreate");

    // No exec: the session deploys, then an edit's reload cannot reach the helper.
    let k = without(&env, &dir, "noexec", |r| grants(r, "pods/exec", "get"));
    let mut dev = KubeDev::start(dev_as(&env, &sb, &app, forward, &k, &platform));
    dev.wait_event("started", Duration::from_secs(300));
    crate::dev::set_greeting(&app, "never served");
    let refused = dev.wait("a refusal naming pods/exec", Duration::from_secs(120), |e| text(e).contains("pods/exec"));
    assert_names_permission(&text(&refused), &["get", "create"], "pods/exec", &env, "noexec");
    drop(dev);

    // No port-forward: the session runs; a connection to the forward is
    // refused by the cluster, and the warning says which permission.
    let k = without(&env, &dir, "noforward", |r| grants(r, "pods/portforward", "get"));
    let mut dev = KubeDev::start(dev_as(&env, &sb, &app, forward, &k, &platform));
    dev.wait_event("started", Duration::from_secs(300));
    assert_eq!(forwarded(forward), None, "nothing answers through a refused port-forward");
    let warning = dev.wait("a warning naming pods/portforward", Duration::from_secs(60), |e| {
        e["event"] == "warning" && text(e).contains("pods/portforward")
    });
    assert_names_permission(&text(&warning), &["get", "create"], "pods/portforward", &env, "noforward");
}

/// The Role's other rules, one at a time: without `--platform` the nodes
/// (which no Role grants), the rollout wait (`get` on Deployments), the pod
/// watch, the app's logs and `gohot delete`. Each failure names the
/// permission, the user and the fix.
#[test]
#[ignore = "needs a Kubernetes cluster: scripts/test runs it when KUBECONFIG names one"]
fn the_other_missing_rules_are_named_on_a_real_cluster() {
    let env = KubeEnv::with_prefix("rbac", "other_rules");
    let sb = Sandbox::new();
    let app = hello_app(&sb, 1, "", "");
    let platform = node_platform(&env);
    let dir = sb.path().to_path_buf();
    let forward = crate::util::free_port();
    let k = without(&env, &dir, "full", |_| false);

    // The whole Role, no --platform: gohot would read the nodes' platform.
    let mut cmd = dev_command(&env, &sb, &app, forward);
    cmd.env("KUBECONFIG", &k);
    let e = fatal_error(&mut cmd);
    let user = format!("system:serviceaccount:{}:full", env.ns);
    assert!(
        e.contains(&format!(
            "the cluster refused list nodes cluster-wide for {user}: a namespaced Role cannot grant it"
        )),
        "{e}"
    );
    assert!(e.contains("gohot-node-reader.yaml") && e.contains("pass --platform"), "names both fixes: {e}");

    // No `get` on Deployments: the apply goes through, the rollout wait cannot.
    let k = without(&env, &dir, "noget", |r| grants(r, "deployments", "get"));
    let e = fatal_error(&mut dev_as(&env, &sb, &app, forward, &k, &platform));
    assert_names_permission(&e, &["get"], "deployments.apps", &env, "noget");

    // No pod watch: the session starts (it lists), and an edit's reload
    // cannot know the pods.
    let k = without(&env, &dir, "nowatch", |r| grants(r, "pods", "watch"));
    let mut dev = KubeDev::start(dev_as(&env, &sb, &app, forward, &k, &platform));
    dev.wait_event("started", Duration::from_secs(300));
    crate::dev::set_greeting(&app, "not without a watch");
    let refused = dev.wait("a refusal naming watch pods", Duration::from_secs(120), |e| text(e).contains("watch pods"));
    let refused = text(&refused);
    assert_names_permission(&refused, &["watch"], "pods", &env, "nowatch");
    let named = format!("cluster {}-nowatch:", env.cluster.context.name);
    assert_eq!(refused.matches(&named).count(), 1, "the cluster is named once: {refused}");
    drop(dev);

    // No logs: the session runs; the app's log stream says why it is empty.
    let k = without(&env, &dir, "nolog", |r| grants(r, "pods/log", "get"));
    let mut dev = KubeDev::start(dev_as(&env, &sb, &app, forward, &k, &platform));
    let line = dev.wait("a log line naming pods/log", Duration::from_secs(300), |e| {
        e["event"] == "log" && text(e).contains("pods/log")
    });
    assert_names_permission(&text(&line), &["get"], "pods/log", &env, "nolog");
    drop(dev);

    // No `delete`: gohot delete (the Service goes first) is refused.
    let k = without(&env, &dir, "nodelete", |r| grants(r, "services", "delete"));
    let mut delete = env.gohot(&sb, &app);
    delete.env("KUBECONFIG", &k).args(["delete", "-n", &env.ns, "-f", "manifests"]);
    let out = run(&mut delete);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_names_permission(&stderr, &["delete"], "services", &env, "nodelete");
}
