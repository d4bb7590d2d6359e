//! Which containers get the new binary: every live pod of the applied
//! workloads, and in each the containers that run the app's image.
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

use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::Pod;
use serde_yaml_ng::Value;

use super::{Cluster, KubeError};
use crate::target::Replica;

/// The image gohot built for the app: the reference in the manifests, and
/// the digests a container runtime may report for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppImage {
    /// The resolved reference (`repo@sha256:…`, or a `kind.local` tag).
    pub reference: String,
    /// `sha256:…` digests: the manifest (or index) digest and, where known,
    /// the image config digest (what `imageID` shows for loaded images).
    pub digests: Vec<String>,
}

impl AppImage {
    /// From a resolved reference; its `@sha256:` digest, if any, is kept.
    pub fn new(reference: &str) -> Self {
        let digests = reference.split_once('@').map(|(_, d)| vec![d.to_string()]).unwrap_or_default();
        AppImage { reference: reference.to_string(), digests }
    }

    /// Adds a digest that also identifies the image (config digest, a
    /// per-platform manifest digest under an index).
    pub fn with_digest(mut self, digest: impl Into<String>) -> Self {
        let d = digest.into();
        if !self.digests.contains(&d) {
            self.digests.push(d);
        }
        self
    }

    /// Whether a container with this spec image and reported `imageID` runs it.
    pub fn matches(&self, spec_image: &str, image_id: &str) -> bool {
        spec_image == self.reference
            || self.digests.iter().any(|d| {
                !d.is_empty()
                    && (spec_image.ends_with(&format!("@{d}"))
                        || (!image_id.is_empty() && image_id.contains(d.as_str())))
            })
    }
}

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
}

impl AppContainer {
    /// Changes when the pod is replaced or the container restarts.
    pub fn instance(&self) -> String {
        format!("{}/{}/{}", self.uid, self.container, self.restart_count)
    }

    /// `namespace/pod/container`: how [`crate::target::kube::KubeTarget`] reaches it.
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

/// How to find a workload's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodSelector {
    /// A label selector (`app=hello,tier in (web)`).
    Labels(String),
    /// A bare Pod, by name.
    Name(String),
}

/// An applied object that owns pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`, `Pod`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its pods.
    pub selector: PodSelector,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// The workload a manifest document describes, if it owns pods. Namespace:
/// the document's, else `default_ns`.
pub fn workload_of(doc: &Value, default_ns: &str) -> Option<Workload> {
    let kind = doc.get("kind")?.as_str()?.to_string();
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let meta = doc.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_string();
    let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or(default_ns).to_string();
    let selector = match (api, kind.as_str()) {
        ("v1", "Pod") => PodSelector::Name(name.clone()),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch/v1", "Job") => {
            PodSelector::Labels(label_selector(doc.get("spec")?.get("selector")?)?)
        }
        _ => return None,
    };
    Some(Workload { kind, namespace, name, selector })
}

/// A `LabelSelector` (matchLabels + matchExpressions) as a query string.
pub fn label_selector(sel: &Value) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_mapping) {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            parts.push(format!("{}={v}", k.as_str()?));
        }
    }
    for e in sel.get("matchExpressions").and_then(Value::as_sequence).into_iter().flatten() {
        let key = e.get("key")?.as_str()?;
        let values: Vec<&str> =
            e.get("values").and_then(Value::as_sequence).into_iter().flatten().filter_map(Value::as_str).collect();
        parts.push(match e.get("operator")?.as_str()? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Lists the pods of `workloads`.
pub async fn list_pods(cluster: &Cluster, workloads: &[Workload]) -> Result<Vec<Pod>, KubeError> {
    let mut pods = Vec::new();
    for w in workloads {
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &w.namespace);
        let lp = match &w.selector {
            PodSelector::Labels(l) => ListParams::default().labels(l),
            PodSelector::Name(n) => ListParams::default().fields(&format!("metadata.name={n}")),
        };
        let list = api.list(&lp).await.map_err(|e| cluster.error(e, "list", "pods", &w.namespace))?;
        pods.extend(list.items);
    }
    Ok(pods)
}

/// Lists the pods of `workloads` and selects the app's live containers.
pub async fn discover(cluster: &Cluster, workloads: &[Workload], image: &AppImage) -> Result<Discovery, KubeError> {
    Ok(select(&list_pods(cluster, workloads).await?, image))
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Pod JSON as the API server returns it.
    use serde_json::{json, Value};

    pub const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The hello Deployment, selected by `app=hello`.
    pub fn workload() -> super::Workload {
        super::Workload {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "hello".into(),
            selector: super::PodSelector::Labels("app=hello".into()),
        }
    }
    pub fn app_ref() -> String {
        format!("127.0.0.1:5000/hello@{DIGEST}")
    }

    /// A running, ready pod of the app with one container `app`.
    pub fn pod(name: &str, uid: &str, restarts: i32) -> Value {
        pod_with(name, uid, &app_ref(), &format!("127.0.0.1:5000/hello@{DIGEST}"), restarts)
    }

    pub fn pod_with(name: &str, uid: &str, image: &str, image_id: &str, restarts: i32) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": {"app": "hello"}},
            "spec": {"nodeName": "kind-control-plane", "containers": [
                {"name": "app", "image": image},
                {"name": "sidecar", "image": "docker.io/library/busybox:1"}
            ]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "app", "image": image, "imageID": image_id, "ready": true, "restartCount": restarts,
                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
                    {"name": "sidecar", "image": "docker.io/library/busybox:1", "imageID": "docker.io/library/busybox@sha256:2222", "ready": true, "restartCount": 0,
                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
                ]
            }
        })
    }

    pub fn list(items: Vec<Value>) -> Value {
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::cluster::mock;

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

    #[test]
    fn workloads_and_selectors() {
        let doc: Value = serde_yaml_ng::from_str(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hello}\nspec:\n  selector:\n    matchLabels: {app: hello}\n    matchExpressions:\n    - {key: tier, operator: In, values: [web, api]}\n    - {key: canary, operator: DoesNotExist}\n",
        )
        .unwrap();
        let w = workload_of(&doc, "dev").unwrap();
        assert_eq!(w.to_string(), "Deployment dev/hello");
        assert_eq!(w.selector, PodSelector::Labels("app=hello,tier in (web,api),!canary".into()));
        let pod: Value =
            serde_yaml_ng::from_str("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n").unwrap();
        assert_eq!(workload_of(&pod, "dev").unwrap().selector, PodSelector::Name("p".into()));
        let svc: Value = serde_yaml_ng::from_str("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n").unwrap();
        assert_eq!(workload_of(&svc, "dev"), None);
        assert_eq!(parse_handle("ns/pod/c"), Some(("ns", "pod", "c")));
        assert_eq!(parse_handle("ns/pod"), None);
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
}
