//! Deploying the resolved manifests: server-side apply of every document
//! (field manager `gohot`, `force`, as `kubectl apply --server-side
//! --force-conflicts` would), and deleting what the manifests name.
//!
//! Documents are applied through the dynamic API: each apiVersion is looked
//! up once with discovery (one request per group version), which
//! gives the resource's plural name and whether it is namespaced — so CRDs
//! and cluster-scoped objects work, and a kind the cluster does not serve is
//! reported as such. Namespaces and CustomResourceDefinitions go first (other
//! documents may live in them); deletion goes in reverse order.

use std::collections::HashMap;

use ::kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use ::kube::core::GroupVersion;
use ::kube::discovery::{self, ApiCapabilities, Scope};
use serde_json::Value;

use crate::cluster::workload::{workload_of, Workload};
use crate::cluster::{describe, Cluster, KubeError};

/// The field manager gohot applies as.
pub const FIELD_MANAGER: &str = "gohot";

/// One document to apply, with where it came from for messages.
#[derive(Clone, Debug)]
pub struct Doc {
    /// `path` or `path (document N)`.
    pub origin: String,
    /// The object.
    pub value: Value,
}

/// What was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// `Deployment default/hello`.
    pub object: String,
    /// The pods it owns, if it is a workload.
    pub workload: Option<Workload>,
    /// The images its pods run, if it is a workload.
    pub images: Vec<String>,
}

/// Turns YAML documents into apply documents: empty ones dropped, `List`
/// kinds flattened into their items.
pub fn docs_from_yaml(origin: &str, docs: &[serde_yaml_ng::Value]) -> Result<Vec<Doc>, KubeError> {
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if d.is_null() {
            continue;
        }
        let origin = if docs.len() > 1 { format!("{origin} (document {})", i + 1) } else { origin.to_string() };
        let value = serde_json::to_value(d).map_err(|e| KubeError::Manifest {
            path: origin.clone(),
            detail: format!("not a Kubernetes object: {e}"),
        })?;
        let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k == "List" || k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            for item in value["items"].as_array().into_iter().flatten() {
                out.push(Doc { origin: origin.clone(), value: item.clone() });
            }
        } else {
            out.push(Doc { origin, value });
        }
    }
    Ok(out)
}

/// apiVersion, kind and name of a document, or a message saying which is missing.
fn identity(doc: &Doc) -> Result<(GroupVersionKind, String), KubeError> {
    let field = |f: &str| doc.value.get(f).and_then(Value::as_str).filter(|s| !s.is_empty());
    let missing = |what: &str| KubeError::Manifest {
        path: doc.origin.clone(),
        detail: format!("the document has no {what}: every Kubernetes object needs apiVersion, kind and metadata.name"),
    };
    let api_version = field("apiVersion").ok_or_else(|| missing("apiVersion"))?;
    let kind = field("kind").ok_or_else(|| missing("kind"))?;
    let name = doc
        .value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("metadata.name"))?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Ok((GroupVersionKind::gvk(group, version, kind), name.to_string()))
}

fn api_version(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    }
}

/// Order: Namespaces, then CRDs, then the rest as written.
fn apply_order(docs: &[Doc]) -> Vec<&Doc> {
    let rank = |d: &Doc| match d.value.get("kind").and_then(Value::as_str) {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    };
    let mut v: Vec<&Doc> = docs.iter().collect();
    v.sort_by_key(|d| rank(d));
    v
}

/// Discovery, once per group version.
struct Kinds<'a> {
    cluster: &'a Cluster,
    groups: HashMap<String, Vec<(ApiResource, ApiCapabilities)>>,
    known: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
}

impl<'a> Kinds<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        Kinds { cluster, groups: HashMap::new(), known: HashMap::new() }
    }

    async fn api(
        &mut self,
        gvk: &GroupVersionKind,
        doc: &Doc,
    ) -> Result<(Api<DynamicObject>, String, String), KubeError> {
        let unknown = || KubeError::UnknownKind { api_version: api_version(gvk), kind: gvk.kind.clone() };
        if !self.known.contains_key(gvk) {
            let gv_key = api_version(gvk);
            if !self.groups.contains_key(&gv_key) {
                let gv = GroupVersion::gv(&gvk.group, &gvk.version);
                let resources = match discovery::pinned_group(&self.cluster.client, &gv).await {
                    Ok(group) => group.versioned_resources(&gvk.version),
                    Err(::kube::Error::Api(s)) if s.code == 404 => Vec::new(),
                    Err(::kube::Error::Discovery(_)) => Vec::new(),
                    Err(e) => return Err(self.cluster.error(e, "get", &format!("discovery for {gv_key}"), "")),
                };
                self.groups.insert(gv_key.clone(), resources);
            }
            let found = self.groups[&gv_key].iter().find(|(ar, _)| ar.kind == gvk.kind).cloned().ok_or_else(unknown)?;
            self.known.insert(gvk.clone(), found);
        }
        let (ar, caps) = &self.known[gvk];
        let resource = if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) };
        Ok(match caps.scope {
            Scope::Namespaced => {
                let ns = doc
                    .value
                    .get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&self.cluster.context.namespace)
                    .to_string();
                (Api::namespaced_with(self.cluster.client.clone(), &ns, ar), resource, ns)
            }
            Scope::Cluster => (Api::all_with(self.cluster.client.clone(), ar), resource, String::new()),
        })
    }
}

/// Fills in the defaults that list-map keys need, as the API server would
/// after decoding: `protocol: TCP` on Service ports and container ports.
///
/// Server-side apply merges those lists by key (`port`+`protocol`,
/// `containerPort`+`protocol`), and servers before 1.21 reject an applied
/// item that omits a key field even though it has a default ("associative
/// list with keys has an element that omits key field \"protocol\"",
/// kubernetes#101751). `kubectl apply` (client side) never shows this, so
/// manifests written for it omit `protocol`; filling in the server's own
/// default changes nothing on newer servers.
pub fn fill_key_defaults(value: &mut Value) {
    const POD_TEMPLATE_KINDS: &[&str] = &[
        "Pod",
        "PodTemplate",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    ];
    fn default_protocol(ports: Option<&mut Value>, key: &str) {
        for port in ports.and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(p) = port.as_object_mut() {
                if p.contains_key(key) && p.get("protocol").is_none_or(Value::is_null) {
                    p.insert("protocol".into(), Value::String("TCP".into()));
                }
            }
        }
    }
    fn pod_specs(v: &mut Value) {
        let Some(obj) = v.as_object_mut() else { return };
        for (k, child) in obj.iter_mut() {
            match k.as_str() {
                "containers" | "initContainers" | "ephemeralContainers" => {
                    for c in child.as_array_mut().into_iter().flatten() {
                        default_protocol(c.get_mut("ports"), "containerPort");
                    }
                }
                "metadata" => {}
                _ => pod_specs(child),
            }
        }
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    if kind == "Service" {
        default_protocol(value.get_mut("spec").and_then(|s| s.get_mut("ports")), "port");
    } else if POD_TEMPLATE_KINDS.contains(&kind.as_str()) {
        if let Some(spec) = value.get_mut("spec") {
            pod_specs(spec);
        }
    }
}

/// Server-side applies every document, in order, as field manager `gohot`
/// with `force`. Returns what was applied; stops at the first failure.
pub async fn apply(cluster: &Cluster, docs: &[Doc]) -> Result<Vec<Applied>, KubeError> {
    let mut kinds = Kinds::new(cluster);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut out = Vec::new();
    for doc in apply_order(docs) {
        let (gvk, name) = identity(doc)?;
        let (api, resource, ns) = kinds.api(&gvk, doc).await?;
        let mut value = doc.value.clone();
        fill_key_defaults(&mut value);
        api.patch(&name, &params, &Patch::Apply(&value)).await.map_err(|e| {
            // Applying an object that does not exist yet creates it, and the
            // API server checks `create` too: that refusal comes from the
            // patch handler, with no reason, where RBAC's filter names `patch`.
            let verb = match &e {
                ::kube::Error::Api(s) if s.code == 403 && crate::cluster::rbac_denial(&s.message).is_none() => "create",
                _ => "patch",
            };
            match cluster.error(e, verb, &resource, &ns) {
                KubeError::Api { what, detail } => KubeError::Api { what: format!("{}: {what}", doc.origin), detail },
                other => other,
            }
        })?;
        let object = describe(&gvk.kind, Some(&ns), &name);
        tracing::info!("applied {object}");
        let yaml: Option<serde_yaml_ng::Value> = serde_yaml_ng::to_value(&doc.value).ok();
        let workload = yaml.as_ref().and_then(|y| workload_of(y, &ns));
        let images = yaml.as_ref().map(crate::cluster::workload::pod_images).unwrap_or_default();
        out.push(Applied { object, workload, images });
    }
    Ok(out)
}

/// What deleting one object did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// Deletion requested.
    Deleted(String),
    /// It did not exist.
    Absent(String),
}

/// Deletes what the documents name, last first (background propagation, so
/// a Deployment takes its ReplicaSets and Pods with it). Objects already
/// gone are reported, not errors. `ko://` references need no resolution:
/// only apiVersion, kind, namespace and name are read.
pub async fn delete(cluster: &Cluster, docs: &[Doc]) -> Result<Vec<Deleted>, KubeError> {
    let mut kinds = Kinds::new(cluster);
    let mut out = Vec::new();
    let mut ordered = apply_order(docs);
    ordered.reverse();
    for doc in ordered {
        let (gvk, name) = identity(doc)?;
        let (api, resource, ns) = match kinds.api(&gvk, doc).await {
            Ok(a) => a,
            // A CRD deleted earlier takes its kind with it: nothing left to delete.
            Err(KubeError::UnknownKind { .. }) => {
                out.push(Deleted::Absent(describe(&gvk.kind, None, &name)));
                continue;
            }
            Err(e) => return Err(e),
        };
        let object = describe(&gvk.kind, Some(&ns), &name);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => out.push(Deleted::Deleted(object)),
            Err(::kube::Error::Api(s)) if s.code == 404 => out.push(Deleted::Absent(object)),
            Err(e) => return Err(cluster.error(e, "delete", &resource, &ns)),
        }
    }
    Ok(out)
}

/// Checks the manifests use the app's image: `refs` are the `ko://`
/// references found in them, `app` the import path being developed.
pub fn require_app_image(refs: &[String], app: &str, files: &str) -> Result<(), KubeError> {
    let wanted = format!("{}{app}", crate::resolve::KO_PREFIX);
    if refs.iter().any(|r| r == &wanted) {
        return Ok(());
    }
    let found = if refs.is_empty() { "none".to_string() } else { refs.join(", ") };
    Err(KubeError::Manifest {
        path: files.to_string(),
        detail: format!(
            "no container uses the app's image {wanted} (ko:// references found: {found}); set `image: {wanted}` on the app's container"
        ),
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Discovery answers as the API server gives them.
    use serde_json::{json, Value};

    pub fn apps_v1() -> Value {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["create","delete","get","list","patch","update","watch"]},
            {"name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment", "verbs": ["get","patch"]},
            {"name": "statefulsets", "singularName": "statefulset", "namespaced": true, "kind": "StatefulSet",
             "verbs": ["create","delete","get","list","patch","update","watch"]}
        ]})
    }

    pub fn core_v1() -> Value {
        json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["create","delete","get","list","patch","update","watch"]},
            {"name": "services", "singularName": "service", "namespaced": true, "kind": "Service",
             "verbs": ["create","delete","get","list","patch","update","watch"]},
            {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
             "verbs": ["create","delete","get","list","patch","update","watch"]}
        ]})
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::cluster::mock;

    /// The defaults list-map keys need are filled in where the API server
    /// would put them, and nothing given is changed.
    #[test]
    fn protocol_defaults_for_list_map_keys() {
        let mut svc = serde_json::json!({"kind": "Service", "spec": {"ports": [
            {"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 81, "protocol": null}]}});
        fill_key_defaults(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["ports"][1]["protocol"], "UDP");
        assert_eq!(svc["spec"]["ports"][2]["protocol"], "TCP");
        let mut cron = serde_json::json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"ports": "x"}},
            "spec": {"initContainers": [{"name": "i", "ports": [{"containerPort": 1}]}],
                     "containers": [{"name": "a", "ports": [{"containerPort": 8080, "name": "http"}]}, {"name": "b"}]}}}}}});
        fill_key_defaults(&mut cron);
        let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["ports"][0],
            serde_json::json!({"containerPort": 8080, "name": "http", "protocol": "TCP"})
        );
        assert_eq!(pod["initContainers"][0]["ports"][0]["protocol"], "TCP");
        assert!(pod["containers"][1].get("ports").is_none());
        let mut other = serde_json::json!({"kind": "Widget", "spec": {"ports": [{"port": 1}]}});
        let before = other.clone();
        fill_key_defaults(&mut other);
        assert_eq!(other, before, "unknown kinds are left alone");
    }

    const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers: [{name: app, image: "127.0.0.1:5000/hello@sha256:1111"}]
---
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: web}
spec: {selector: {app: hello}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: web}
"#;

    fn docs(text: &str) -> Vec<Doc> {
        let values: Vec<serde_yaml_ng::Value> = crate::resolve::yaml::split(text)
            .into_iter()
            .filter_map(|mut d| {
                d.parse().unwrap();
                d.value
            })
            .collect();
        docs_from_yaml("m.yaml", &values).unwrap()
    }

    fn api_server(seen: &mock::Seen) -> (u16, Value) {
        match (seen.method.as_str(), seen.uri.split('?').next().unwrap_or_default()) {
            ("GET", "/apis/apps/v1") => (200, apps_v1()),
            ("GET", "/api/v1") => (200, core_v1()),
            ("GET", "/apis/example.com/v1") => {
                mock::status(404, "NotFound", "the server could not find the requested resource")
            }
            ("PATCH", _) => (200, seen.json()),
            ("DELETE", p) if p.contains("/services/") => mock::status(404, "NotFound", "services \"hello\" not found"),
            ("DELETE", _) => (200, serde_json::json!({"kind": "Status", "status": "Success"})),
            _ => mock::status(500, "InternalError", "unexpected request"),
        }
    }

    /// Mock API server, for the exact requests: every document is
    /// server-side applied with fieldManager=gohot and force=true, as
    /// apply-patch+yaml, to the right (discovered) path; the Namespace goes
    /// first.
    #[tokio::test]
    async fn server_side_apply_requests() {
        let (cluster, log) = mock::cluster(api_server);
        let applied = apply(&cluster, &docs(MANIFESTS)).await.unwrap();
        let objects: Vec<&str> = applied.iter().map(|a| a.object.as_str()).collect();
        assert_eq!(objects, ["Namespace web", "Deployment default/hello", "Service web/hello"]);
        assert_eq!(applied[1].workload.as_ref().unwrap().to_string(), "Deployment default/hello");
        assert!(applied[2].workload.is_none());
        let seen = log.lock().unwrap();
        let patches: Vec<&mock::Seen> = seen.iter().filter(|s| s.method == "PATCH").collect();
        let paths: Vec<&str> = patches.iter().map(|s| s.uri.split('?').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/namespaces/web",
                "/apis/apps/v1/namespaces/default/deployments/hello",
                "/api/v1/namespaces/web/services/hello"
            ]
        );
        for p in &patches {
            assert!(p.uri.contains("fieldManager=gohot") && p.uri.contains("force=true"), "{}", p.uri);
            assert_eq!(p.content_type, "application/apply-patch+yaml");
        }
        assert_eq!(
            patches[1].json()["spec"]["template"]["spec"]["containers"][0]["image"],
            "127.0.0.1:5000/hello@sha256:1111"
        );
        // Discovery once per group version.
        assert_eq!(
            seen.iter().filter(|s| s.uri == "/api/v1").count(),
            1,
            "{:?}",
            seen.iter().map(|s| s.line()).collect::<Vec<_>>()
        );
    }

    /// Mock API server: a kind the cluster does not serve, and RBAC refusing
    /// the patch (on the real cluster, through `gohot apply`: tests/kube.rs,
    /// `apply_failures_are_named_on_a_real_cluster`).
    #[tokio::test]
    async fn apply_failures_are_named() {
        let (cluster, _) = mock::cluster(api_server);
        let e = apply(&cluster, &docs("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not serve Widget in example.com/v1"), "{e}");
        let e = apply(&cluster, &docs("apiVersion: v1\nkind: Service\nmetadata: {}\n")).await.unwrap_err();
        assert!(e.to_string().contains("m.yaml: the document has no metadata.name"), "{e}");

        let (cluster, _) = mock::cluster(|s| match s.method.as_str() {
            "GET" => (200, apps_v1()),
            _ => mock::status(
                403,
                "Forbidden",
                r#"deployments.apps "hello" is forbidden: User "dev" cannot patch resource "deployments" in API group "apps" in the namespace "default""#,
            ),
        });
        let e = apply(&cluster, &docs(MANIFESTS.split("---").next().unwrap())).await.unwrap_err().to_string();
        assert!(
            e.starts_with(
                "the cluster refused patch deployments.apps in namespace default for dev: add it to your Role"
            ),
            "{e}"
        );
        // The object does not exist and `create` is what is missing: the
        // server's message names no verb.
        let (cluster, _) = mock::cluster(|s| match s.method.as_str() {
            "GET" => (200, apps_v1()),
            _ => mock::status(403, "Forbidden", r#"deployments.apps "hello" is forbidden: "#),
        });
        let e = apply(&cluster, &docs(MANIFESTS.split("---").next().unwrap())).await.unwrap_err().to_string();
        assert!(
            e.starts_with("the cluster refused create deployments.apps in namespace default for the kubeconfig's user \"kind-mock\":"),
            "{e}"
        );
    }

    /// Mock API server: delete in reverse order; a missing object is not an error.
    #[tokio::test]
    async fn delete_requests() {
        let (cluster, log) = mock::cluster(api_server);
        let done = delete(&cluster, &docs(MANIFESTS)).await.unwrap();
        assert_eq!(
            done,
            [
                Deleted::Absent("Service web/hello".into()),
                Deleted::Deleted("Deployment default/hello".into()),
                Deleted::Deleted("Namespace web".into())
            ]
        );
        let seen = log.lock().unwrap();
        let del = seen.iter().find(|s| s.method == "DELETE" && s.uri.contains("deployments")).unwrap();
        assert!(del.json()["propagationPolicy"] == "Background", "{:?}", del.json());
    }

    #[test]
    fn lists_flattened_and_app_image_required() {
        let d = docs("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}}\n- {apiVersion: v1, kind: Service, metadata: {name: b}}\n");
        assert_eq!(d.len(), 2);
        assert!(require_app_image(&["ko://example.com/hello".into()], "example.com/hello", "m/").is_ok());
        let e =
            require_app_image(&["ko://example.com/other".into()], "example.com/hello", "m/").unwrap_err().to_string();
        assert!(
            e.contains("m/") && e.contains("image: ko://example.com/hello") && e.contains("ko://example.com/other"),
            "{e}"
        );
        let e = require_app_image(&[], "example.com/hello", "m/").unwrap_err().to_string();
        assert!(e.contains("found: none"), "{e}");
    }
}
