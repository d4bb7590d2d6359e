//! The one pod rule: which containers of the applied workloads get the new
//! binary (every running container that runs the app's image), and which
//! pod a `pod/NAME` or `deploy/NAME` names for syncback.
//!
//! # Theory of operation
//!
//! Pods are found through each workload's own label selector (the selector
//! is what the workload controller itself uses; following ownerReferences
//! Deployment → ReplicaSet → Pod would need a ReplicaSet lookup per pod for
//! the same answer). [`select`] then decides, purely, per pod:
//!
//! * terminating (`deletionTimestamp` set) or not `Running`: not live, left
//!   out (it is going away or not started; discovery runs again before every
//!   sync and on every health check, so it is picked up once it runs);
//! * a container whose image is the app's — the resolved reference itself, or
//!   a reported `imageID` containing one of the build's digests — is a target,
//!   provided it is running. Readiness is recorded but does not matter: a
//!   new pod gets the current binary as soon as its container runs, before
//!   its readiness probe lets traffic in, so it never serves a stale build;
//! * a pod with no such container runs an image gohot did not build (a
//!   rollout still replacing old pods, or someone else's image under the same
//!   labels): it is left alone and reported in [`Discovery::foreign`] so the
//!   caller can warn.
//!
//! Each target container is identified by pod UID, container name and
//! restart count ([`AppContainer::instance`]): a replaced pod has a new UID
//! and a restarted container a new count, and either means the synced binary
//! is gone and must be sent again.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use crate::cluster::workload::{list_pods, AppImage, Workload};
use crate::cluster::{Cluster, KubeError};
use crate::hosting::Replica;

/// One container running the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppContainer {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Pod UID.
    pub uid: String,
    /// Container name.
    pub container: String,
    /// `status.containerStatuses[].restartCount`.
    pub restart_count: i32,
    /// The node it runs on.
    pub node: String,
    /// The container and its pod are ready (receive traffic).
    pub ready: bool,
    /// The TCP ports it declares (`ports[].containerPort`), in order.
    pub ports: Vec<u16>,
}

impl AppContainer {
    /// Changes when the pod is replaced or the container restarts.
    pub fn instance(&self) -> String {
        format!("{}/{}/{}", self.uid, self.container, self.restart_count)
    }

    /// `namespace/pod/container`: how [`crate::hosting::kube::KubeTarget`] reaches it.
    pub fn handle(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }

    /// As a dev-loop replica.
    pub fn replica(&self) -> Replica {
        Replica { name: format!("{}/{}", self.pod, self.container), instance: self.instance(), handle: self.handle() }
    }
}

/// Splits a handle back into namespace, pod, container.
pub fn parse_handle(handle: &str) -> Option<(&str, &str, &str)> {
    let mut it = handle.splitn(3, '/');
    Some((it.next()?, it.next()?, it.next()?)).filter(|(a, b, c)| !a.is_empty() && !b.is_empty() && !c.is_empty())
}

/// A pod left alone because it runs none of the app's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignPod {
    /// `namespace/pod`.
    pub pod: String,
    /// The images its containers run.
    pub images: Vec<String>,
}

/// What discovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Containers to sync into, in pod then container order.
    pub containers: Vec<AppContainer>,
    /// Pods running an image gohot did not build (warn about these).
    pub foreign: Vec<ForeignPod>,
    /// Pods not live yet or any more (`namespace/pod: why`), for messages.
    pub not_live: Vec<String>,
}

impl std::fmt::Display for ForeignPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {} runs {}, not the image gohot built; leaving it alone", self.pod, self.images.join(", "))
    }
}

/// The pure decision: which containers of `pods` run `image` and are live.
pub fn select(pods: &[Pod], image: &AppImage) -> Discovery {
    let mut out = Discovery::default();
    let mut seen = BTreeSet::new();
    for pod in pods {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if !seen.insert(uid.clone()) {
            continue; // selected by two workloads
        }
        let id = format!("{ns}/{name}");
        if pod.metadata.deletion_timestamp.is_some() {
            out.not_live.push(format!("{id}: terminating"));
            continue;
        }
        let status = pod.status.clone().unwrap_or_default();
        let phase = status.phase.clone().unwrap_or_default();
        if phase != "Running" {
            out.not_live.push(format!("{id}: {}", if phase.is_empty() { "no phase yet" } else { &phase }));
            continue;
        }
        let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        let spec_containers = pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
        let spec_image = |c: &str| spec_containers.iter().find(|s| s.name == c).and_then(|s| s.image.clone());
        let spec_ports = |c: &str| -> Vec<u16> {
            let spec = spec_containers.iter().find(|s| s.name == c);
            let ports = spec.and_then(|s| s.ports.as_ref()).into_iter().flatten();
            ports
                .filter(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .collect()
        };
        let statuses = status.container_statuses.clone().unwrap_or_default();
        let mut runs_app = false;
        let mut images = Vec::new();
        for cs in &statuses {
            let spec = spec_image(&cs.name).unwrap_or_else(|| cs.image.clone());
            if !image.matches(&spec, &cs.image_id) {
                images.push(spec);
                continue;
            }
            runs_app = true;
            let running = cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some();
            if !running {
                out.not_live.push(format!("{id}/{}: not running", cs.name));
                continue;
            }
            out.containers.push(AppContainer {
                namespace: ns.clone(),
                pod: name.clone(),
                uid: uid.clone(),
                container: cs.name.clone(),
                restart_count: cs.restart_count,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
                ready: cs.ready && ready,
                ports: spec_ports(&cs.name),
            });
        }
        if !runs_app {
            if statuses.is_empty() {
                images = spec_containers.iter().filter_map(|c| c.image.clone()).collect();
            }
            out.foreign.push(ForeignPod { pod: id, images });
        }
    }
    out
}

/// Lists the pods of `workloads` and selects the app's live containers.
pub async fn discover(cluster: &Cluster, workloads: &[Workload], image: &AppImage) -> Result<Discovery, KubeError> {
    Ok(select(&list_pods(cluster, workloads).await?, image))
}

// ------------------------------------------------- one named pod (syncback)

// A deployment mid-rollout has old pods still shutting down next to new
// ones; reading from an old one would bring back stale files and could
// fail half-way when it goes. The choice is therefore a pure function over
// a small summary of each pod (what the Kubernetes target can fill in from
// the API), tested on its own: only running, ready pods that are not being
// deleted qualify, and among several the newest wins (the one a rollout
// keeps), ties broken by fewer restarts, then by name, so the same cluster
// state always gives the same pick. The answer carries the reason, which
// the CLI prints: `picked web-7d9f-x2: newest of 3 ready pods`.

/// What the choice needs to know about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    /// Pod name.
    pub name: String,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
    /// The `Ready` condition is true.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set: the pod is shutting down.
    pub terminating: bool,
    /// `metadata.creationTimestamp`, unix seconds.
    pub created_unix: i64,
    /// Sum of the containers' restart counts.
    pub restarts: u32,
}

/// The chosen pod and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodChoice {
    /// Its name.
    pub name: String,
    /// For people: `picked NAME: newest of 3 ready pods`.
    pub reason: String,
}

fn unusable(p: &PodSummary) -> Option<String> {
    if p.terminating {
        Some(format!("{} is terminating", p.name))
    } else if p.phase != "Running" {
        Some(format!("{} is {}", p.name, if p.phase.is_empty() { "in no phase" } else { &p.phase }))
    } else if !p.ready {
        Some(format!("{} is not ready", p.name))
    } else {
        None
    }
}

/// Picks the pod of `owner` (`pod/x`, `deploy/y`, for messages) to read from.
pub fn pick_pod(owner: &str, pods: &[PodSummary]) -> Result<PodChoice, NoPod> {
    let mut ready: Vec<&PodSummary> = pods.iter().filter(|p| unusable(p).is_none()).collect();
    if ready.is_empty() {
        let why = if pods.is_empty() {
            "it has no pods".to_string()
        } else {
            pods.iter().filter_map(unusable).collect::<Vec<_>>().join(", ")
        };
        return Err(NoPod { owner: owner.to_string(), why });
    }
    ready.sort_by(|a, b| {
        b.created_unix.cmp(&a.created_unix).then(a.restarts.cmp(&b.restarts)).then(a.name.cmp(&b.name))
    });
    let pick = ready[0];
    let skipped = pods.len() - ready.len();
    let mut reason = match ready.len() {
        1 => format!("picked {}: the only ready pod", pick.name),
        n => format!("picked {}: newest of {n} ready pods", pick.name),
    };
    if skipped > 0 {
        reason.push_str(&format!(
            " ({skipped} skipped: {})",
            pods.iter().filter_map(unusable).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(PodChoice { name: pick.name.clone(), reason })
}

/// No pod qualifies.
#[derive(Debug, thiserror::Error)]
#[error("{owner} has no running, ready pod to read from: {why}")]
pub struct NoPod {
    /// `pod/x`, `deploy/y`.
    pub owner: String,
    /// What each pod is doing.
    pub why: String,
}

/// The summary of a Pod object the choice works on.
pub fn summarize(pod: &Pod) -> PodSummary {
    let status = pod.status.clone().unwrap_or_default();
    PodSummary {
        name: pod.metadata.name.clone().unwrap_or_default(),
        phase: status.phase.clone().unwrap_or_default(),
        ready: status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True"),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        created_unix: pod.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or_default(),
        restarts: status.container_statuses.iter().flatten().map(|c| c.restart_count.max(0) as u32).sum(),
    }
}

/// The replica for a chosen pod's `container` (handle `namespace/pod/container`).
pub fn replica_of(choice: &PodChoice, namespace: &str, container: &str, pods: &[PodSummary]) -> Replica {
    let created = pods.iter().find(|p| p.name == choice.name).map(|p| p.created_unix).unwrap_or_default();
    Replica {
        name: format!("{}/{container}", choice.name),
        instance: format!("{namespace}/{}@{created}", choice.name),
        handle: format!("{namespace}/{}/{container}", choice.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock;
    use crate::cluster::mock::fixtures::*;
    use crate::cluster::workload::PodSelector;

    fn pods(values: Vec<serde_json::Value>) -> Vec<Pod> {
        values.into_iter().map(|v| serde_json::from_value(v).unwrap()).collect()
    }

    #[test]
    fn multiple_replicas_sidecars_left_out() {
        let d = select(&pods(vec![pod("hello-a", "uid-a", 0), pod("hello-b", "uid-b", 2)]), &AppImage::new(&app_ref()));
        let handles: Vec<String> = d.containers.iter().map(AppContainer::handle).collect();
        assert_eq!(handles, ["default/hello-a/app", "default/hello-b/app"]);
        assert_eq!(d.containers[1].instance(), "uid-b/app/2");
        assert_eq!(d.containers[0].node, "kind-control-plane");
        assert!(d.foreign.is_empty() && d.not_live.is_empty(), "{d:?}");
    }

    #[test]
    fn terminating_pending_and_waiting_pods_are_not_live() {
        let mut terminating = pod("hello-old", "uid-old", 0);
        terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        let mut pending = pod("hello-new", "uid-new", 0);
        pending["status"]["phase"] = "Pending".into();
        let mut waiting = pod("hello-crash", "uid-crash", 3);
        waiting["status"]["containerStatuses"][0]["state"] =
            serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}});
        let mut unready = pod("hello-slow", "uid-slow", 0);
        unready["status"]["conditions"][0]["status"] = "False".into();
        let d = select(
            &pods(vec![terminating, pending, waiting, unready, pod("hello-a", "uid-a", 0)]),
            &AppImage::new(&app_ref()),
        );
        // A running container that is not ready yet gets the binary too, so
        // that it is current before its readiness probe lets traffic in.
        let live: Vec<(&str, bool)> = d.containers.iter().map(|c| (c.pod.as_str(), c.ready)).collect();
        assert_eq!(live, [("hello-slow", false), ("hello-a", true)]);
        assert_eq!(
            d.not_live,
            ["default/hello-old: terminating", "default/hello-new: Pending", "default/hello-crash/app: not running"]
        );
    }

    #[test]
    fn handles() {
        assert_eq!(parse_handle("ns/pod/c"), Some(("ns", "pod", "c")));
        assert_eq!(parse_handle("ns/pod"), None);
    }

    #[test]
    fn restarted_container_changes_instance() {
        let image = AppImage::new(&app_ref());
        let before = select(&pods(vec![pod("hello-a", "uid-a", 0)]), &image).containers[0].instance();
        let after = select(&pods(vec![pod("hello-a", "uid-a", 1)]), &image).containers[0].instance();
        assert_ne!(before, after);
        let replaced = select(&pods(vec![pod("hello-b", "uid-b", 0)]), &image).containers[0].instance();
        assert_ne!(before, replaced);
    }

    #[test]
    fn foreign_image_skipped_with_a_reason() {
        let other = "127.0.0.1:5000/hello@sha256:9999999999999999999999999999999999999999999999999999999999999999";
        let d = select(
            &pods(vec![pod_with("hello-old", "uid-o", other, other, 0), pod("hello-a", "uid-a", 0)]),
            &AppImage::new(&app_ref()),
        );
        assert_eq!(d.containers.len(), 1);
        assert_eq!(d.foreign.len(), 1);
        let w = d.foreign[0].to_string();
        assert!(w.contains("default/hello-old") && w.contains(other) && w.contains("not the image gohot built"), "{w}");
    }

    #[test]
    fn image_matched_by_digest_in_image_id() {
        // kind.local: the spec names a tag; containerd reports the config digest.
        let config = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
        let image = AppImage::new("kind.local/hello:3333").with_digest(config);
        let d = select(&pods(vec![pod_with("p", "u", "kind.local/hello:3333", config, 0)]), &image);
        assert_eq!(d.containers.len(), 1);
        // A tag reference resolved by the node to our digest.
        let image = AppImage::new(&app_ref());
        let id = format!("127.0.0.1:5000/hello@{DIGEST}");
        let d = select(&pods(vec![pod_with("p", "u", "127.0.0.1:5000/hello:latest", &id, 0)]), &image);
        assert_eq!(d.containers.len(), 1);
        assert!(!image.matches("127.0.0.1:5000/hello:latest", ""));
    }

    /// Mock API server (no cluster here): the pod list request carries the
    /// workload's label selector, and a pod replaced between two discoveries
    /// shows up as a new instance.
    #[tokio::test]
    async fn discovery_against_mock_api_and_pod_replaced_mid_sync() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = calls.clone();
        let (cluster, log) = mock::cluster(move |_| {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let items = if n == 0 {
                vec![pod("hello-a", "uid-a", 0), pod("hello-b", "uid-b", 0)]
            } else {
                // hello-a was deleted and replaced by hello-c mid-sync.
                let mut old = pod("hello-a", "uid-a", 0);
                old["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
                vec![old, pod("hello-b", "uid-b", 0), pod("hello-c", "uid-c", 0)]
            };
            (200, list(items))
        });
        let w = Workload {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "hello".into(),
            selector: PodSelector::Labels("app=hello".into()),
        };
        let image = AppImage::new(&app_ref());
        let before = discover(&cluster, std::slice::from_ref(&w), &image).await.unwrap();
        let after = discover(&cluster, std::slice::from_ref(&w), &image).await.unwrap();
        let uids = |d: &Discovery| d.containers.iter().map(|c| c.uid.clone()).collect::<Vec<_>>();
        assert_eq!(uids(&before), ["uid-a", "uid-b"]);
        assert_eq!(uids(&after), ["uid-b", "uid-c"]);
        let seen = log.lock().unwrap();
        assert_eq!(seen[0].method, "GET");
        assert!(seen[0].uri.starts_with("/api/v1/namespaces/default/pods?"), "{}", seen[0].uri);
        assert!(seen[0].uri.contains("labelSelector=app%3Dhello"), "{}", seen[0].uri);
    }

    // ---- the named-pod choice

    fn summary(name: &str, phase: &str, ready: bool, terminating: bool, created: i64, restarts: u32) -> PodSummary {
        PodSummary { name: name.into(), phase: phase.into(), ready, terminating, created_unix: created, restarts }
    }

    #[test]
    fn newest_ready_pod_wins_and_says_why() {
        let pods = [
            summary("web-old", "Running", true, false, 100, 0),
            summary("web-new", "Running", true, false, 300, 0),
            summary("web-mid", "Running", true, false, 200, 5),
        ];
        let c = pick_pod("deploy/web", &pods).expect("pick");
        assert_eq!(c.name, "web-new");
        assert_eq!(c.reason, "picked web-new: newest of 3 ready pods");
    }

    #[test]
    fn never_a_terminating_pod_even_if_newest_or_only_ready() {
        // Rollout: the old pod is being deleted but still reports Running and ready.
        let pods = [
            summary("web-old", "Running", true, true, 500, 0),
            summary("web-new", "Running", true, false, 400, 0),
            summary("web-starting", "Running", false, false, 600, 0),
            summary("web-pending", "Pending", false, false, 700, 0),
        ];
        let c = pick_pod("deploy/web", &pods).expect("pick");
        assert_eq!(c.name, "web-new");
        assert!(c.reason.starts_with("picked web-new: the only ready pod (3 skipped:"), "{}", c.reason);
        assert!(c.reason.contains("web-old is terminating"));
        let none = pick_pod("deploy/web", &pods[..1]).expect_err("only a terminating pod");
        assert!(none.to_string().contains("web-old is terminating"), "{none}");
        assert!(pick_pod("deploy/web", &[]).expect_err("none").to_string().contains("has no pods"));
        let failed = [summary("job", "Failed", false, false, 1, 0)];
        assert!(pick_pod("pod/job", &failed).expect_err("failed").to_string().contains("job is Failed"));
    }

    #[test]
    fn ties_are_deterministic() {
        let a = summary("b-pod", "Running", true, false, 100, 2);
        let b = summary("a-pod", "Running", true, false, 100, 2);
        let c = summary("c-pod", "Running", true, false, 100, 0);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]] {
            let pods: Vec<PodSummary> = order.iter().map(|p| (*p).clone()).collect();
            assert_eq!(pick_pod("deploy/x", &pods).expect("pick").name, "c-pod");
        }
        assert_eq!(pick_pod("deploy/x", &[a.clone(), b.clone()]).expect("pick").name, "a-pod");
    }

    #[test]
    fn picked_replica_handle() {
        let pods = [summary("web-1", "Running", true, false, 10, 0)];
        let choice = pick_pod("deploy/web", &pods).expect("pick");
        let r = replica_of(&choice, "dev", "app", &pods);
        assert_eq!(r.handle, "dev/web-1/app");
        assert_eq!(r.name, "web-1/app");
        assert_eq!(choice.reason, "picked web-1: the only ready pod");
    }

    #[test]
    fn summarizes_pods() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-01-01T00:00:10Z", "deletionTimestamp": "2026-01-01T00:01:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "a", "restartCount": 2, "ready": true, "image": "x", "imageID": "y"}]}
        }))
        .unwrap();
        let s = summarize(&pod);
        assert_eq!(
            (s.name.as_str(), s.phase.as_str(), s.ready, s.terminating, s.restarts),
            ("web-1", "Running", true, true, 2)
        );
        assert_eq!(s.created_unix, 1_767_225_610);
    }
}
