//! What an applied object owns: the workloads (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job, Pod) found in the manifests, how to find
//! their pods (the workload's own label selector, which is what its
//! controller uses), and the image gohot built for the app. Shared by
//! deploy (what was applied, waiting for it) and the Kubernetes target (the
//! pods to reload).

use ::kube::api::{Api, ListParams};
use k8s_openapi::api::core::v1::Pod;
use serde_yaml_ng::Value;

use super::{Cluster, KubeError};

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

/// How to find a workload's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodSelector {
    /// A label selector (`app=hello,tier in (web)`).
    Labels(String),
    /// A bare Pod, by name.
    Name(String),
    /// Every pod of the namespace (Skaffold's rule for syncs: any running
    /// pod there whose container runs the image).
    All,
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

/// The images a workload document's pods run (containers and init
/// containers of its pod template, or of the Pod itself).
pub fn pod_images(doc: &Value) -> Vec<String> {
    let spec = doc.get("spec");
    let pod_spec = match doc.get("kind").and_then(Value::as_str) {
        Some("Pod") => spec,
        _ => spec.and_then(|s| s.get("template")).and_then(|t| t.get("spec")),
    };
    let Some(pod_spec) = pod_spec else { return Vec::new() };
    ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod_spec.get(*k).and_then(Value::as_sequence))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(String::from))
        .collect()
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
            PodSelector::All => ListParams::default(),
        };
        let list = api.list(&lp).await.map_err(|e| cluster.error(e, "list", "pods", &w.namespace))?;
        pods.extend(list.items);
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
