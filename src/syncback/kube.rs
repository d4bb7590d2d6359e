//! Syncback from Kubernetes: `pod/NAME` or `deploy/NAME` as a [`Target`].
//!
//! Each round lists the pods again (by name, or by the deployment's
//! selector) and picks one with [`super::pods::pick_pod`] — running, ready,
//! not terminating — so a replaced pod is followed and an old pod that is
//! shutting down is never read. Exec goes through the cluster's exec API.

use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::pods::{kube_replica_for, PodSummary};
use super::TargetRef;
use crate::cluster::Cluster;
use crate::target::{ExecOutput, Replica, Target, TargetError};

/// The pods of `pod/NAME` or `deploy/NAME` in a namespace.
pub struct PodSource {
    cluster: Cluster,
    namespace: String,
    owner: TargetRef,
    container: Option<String>,
}

impl PodSource {
    /// Reads from `owner` in `namespace`; `container` defaults to the pod's first.
    pub fn new(cluster: Cluster, namespace: String, owner: TargetRef, container: Option<String>) -> Self {
        PodSource { cluster, namespace, owner, container }
    }

    fn api_err(&self, e: kube::Error, verb: &str, resource: &str) -> TargetError {
        TargetError::Api {
            target: format!("cluster {}", self.cluster.context.name),
            detail: self.cluster.error(e, verb, resource, &self.namespace).to_string(),
        }
    }

    async fn pods(&self) -> Result<Vec<Pod>, TargetError> {
        let api: Api<Pod> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        let params = match &self.owner {
            TargetRef::Pod(name) => ListParams::default().fields(&format!("metadata.name={name}")),
            TargetRef::Deployment(name) => {
                let deployments: Api<Deployment> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
                let d = deployments.get(name).await.map_err(|e| self.api_err(e, "get", "deployments"))?;
                let labels = d
                    .spec
                    .selector
                    .match_labels
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                ListParams::default().labels(&labels)
            }
            TargetRef::Docker(_) => return Ok(Vec::new()),
        };
        Ok(api.list(&params).await.map_err(|e| self.api_err(e, "list", "pods"))?.items)
    }
}

/// What syncback's pod choice needs from a Pod object.
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

#[async_trait]
impl Target for PodSource {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        let pods = self.pods().await?;
        let summaries: Vec<PodSummary> = pods.iter().map(summarize).collect();
        let choice = super::pods::pick_pod(&self.owner.to_string(), &summaries)
            .map_err(|e| TargetError::Api { target: self.owner.to_string(), detail: e.to_string() })?;
        let chosen = pods.iter().find(|p| p.metadata.name.as_deref() == Some(choice.name.as_str()));
        let container = match &self.container {
            Some(c) => c.clone(),
            None => chosen
                .and_then(|p| p.spec.as_ref())
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        };
        let (replica, reason) = kube_replica_for(&self.owner.to_string(), &self.namespace, &container, &summaries)
            .map_err(|e| TargetError::Api { target: self.owner.to_string(), detail: e.to_string() })?;
        tracing::info!("{reason}");
        Ok(vec![replica])
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        let mut parts = replica.handle.splitn(3, '/');
        let (Some(ns), Some(pod), Some(container)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TargetError::Exec { replica: replica.name.clone(), detail: "bad handle".into() });
        };
        crate::cluster::exec::exec(&self.cluster, ns, pod, container, argv, stdin)
            .await
            .map_err(|e| TargetError::Exec { replica: replica.name.clone(), detail: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn pod(name: &str, created: &str, ready: bool, terminating: bool) -> serde_json::Value {
        let mut meta = serde_json::json!({"name": name, "namespace": "dev", "uid": format!("uid-{name}"), "creationTimestamp": created});
        if terminating {
            meta["deletionTimestamp"] = serde_json::json!("2026-01-01T01:00:00Z");
        }
        serde_json::json!({
            "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        })
    }

    /// Mock API server (kube-rs's tower-test service; no cluster runs here):
    /// deploy/web lists its pods by the deployment's selector and reads from
    /// the newest ready pod — never from the newer one still terminating.
    #[tokio::test]
    async fn deploy_source_picks_a_ready_pod_by_selector() {
        let (cluster, log) = crate::cluster::mock::cluster(|seen| {
            if seen.uri.starts_with("/apis/apps/v1/namespaces/dev/deployments/web") {
                (
                    200,
                    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "dev"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": []}}}}),
                )
            } else if seen.uri.starts_with("/api/v1/namespaces/dev/pods") {
                (
                    200,
                    serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                        pod("web-old", "2026-01-01T00:00:00Z", true, false),
                        pod("web-new", "2026-01-01T00:05:00Z", true, false),
                        pod("web-going", "2026-01-01T00:09:00Z", true, true),
                        pod("web-starting", "2026-01-01T00:10:00Z", false, false),
                    ]}),
                )
            } else {
                crate::cluster::mock::status(404, "NotFound", "unexpected")
            }
        });
        let source = PodSource::new(cluster, "dev".into(), TargetRef::Deployment("web".into()), None);
        let replicas = source.replicas().await.unwrap();
        assert_eq!(replicas[0].handle, "dev/web-new/app");
        let seen = log.lock().unwrap();
        let list = seen.iter().find(|s| s.uri.starts_with("/api/v1/namespaces/dev/pods")).unwrap();
        assert!(list.uri.contains("labelSelector=app%3Dweb"), "{}", list.uri);
    }
}
