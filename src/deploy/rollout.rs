//! Waiting for a rollout, and saying why it is not done.
//!
//! `readiness` judges one workload from its status the way `kubectl rollout
//! status` does (observed generation caught up, every replica updated and
//! available, no old replicas left); [`diagnose`] reads the workload's pods for
//! the reasons a person needs: an image that cannot be pulled (with the
//! image), a crash loop (with the last termination message and exit code), a
//! pod the scheduler cannot place (with its condition message). Both are
//! pure; [`wait_ready`] polls them against the API until every workload is
//! ready or the deadline passes, and the timeout error carries the last
//! diagnosis.

use std::time::{Duration, Instant};

use ::kube::api::Api;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;

use crate::cluster::workload::{list_pods, Workload};
use crate::cluster::{Cluster, KubeError};

/// A workload's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Every replica is updated and available.
    Ready,
    /// Still rolling out: progress, for people.
    Progressing(String),
    /// The controller gave up (`ProgressDeadlineExceeded`).
    Failed(String),
}

/// Deployment readiness, as `kubectl rollout status` judges it.
pub fn deployment_readiness(d: &Deployment) -> Readiness {
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Readiness::Progressing("waiting for the controller to see the new spec".into());
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| c.type_.as_deref() == Some("Progressing")) {
        if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Readiness::Failed(c.message.clone().unwrap_or_else(|| "progress deadline exceeded".into()));
        }
    }
    let want = d.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        Readiness::Progressing(format!("{updated} of {want} replicas updated"))
    } else if total > updated {
        Readiness::Progressing(format!("{} old replicas pending termination", total - updated))
    } else if available < updated {
        Readiness::Progressing(format!("{available} of {updated} updated replicas available"))
    } else {
        Readiness::Ready
    }
}

/// StatefulSet readiness.
pub fn statefulset_readiness(s: &StatefulSet) -> Readiness {
    let status = s.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < s.metadata.generation.unwrap_or(0) {
        return Readiness::Progressing("waiting for the controller to see the new spec".into());
    }
    let want = s.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if ready < want {
        Readiness::Progressing(format!("{ready} of {want} replicas ready"))
    } else if updated < want && status.update_revision != status.current_revision {
        Readiness::Progressing(format!("{updated} of {want} replicas updated"))
    } else {
        Readiness::Ready
    }
}

/// DaemonSet readiness.
pub fn daemonset_readiness(d: &DaemonSet) -> Readiness {
    let status = d.status.clone().unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return Readiness::Progressing("waiting for the controller to see the new spec".into());
    }
    let want = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < want {
        Readiness::Progressing(format!("{updated} of {want} pods updated"))
    } else if available < want {
        Readiness::Progressing(format!("{available} of {want} pods available"))
    } else {
        Readiness::Ready
    }
}

/// Pod readiness (bare Pods).
pub fn pod_readiness(p: &Pod) -> Readiness {
    let status = p.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
    match status.phase.as_deref() {
        Some("Failed") => Readiness::Failed(status.message.unwrap_or_else(|| "the pod failed".into())),
        _ if ready => Readiness::Ready,
        phase => Readiness::Progressing(format!("pod is {}", phase.unwrap_or("not scheduled yet"))),
    }
}

/// Why the pods are not ready, for people: one clause per distinct problem.
pub fn diagnose(pods: &[Pod]) -> Option<String> {
    let mut reasons: Vec<String> = Vec::new();
    let mut add = |r: String| {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let statuses =
            status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten());
        for cs in statuses {
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else { continue };
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            match reason.as_str() {
                "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName" => add(format!(
                    "pod {name}: cannot pull image {} ({reason}{}); is it published where the nodes can pull it (a registry they reach, or KO_DOCKER_REPO=kind.local on KinD)?",
                    cs.image,
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                )),
                "CrashLoopBackOff" => {
                    let last = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref());
                    let detail = match last {
                        Some(t) => format!(
                            "last exit code {}{}{}",
                            t.exit_code,
                            t.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
                            t.message.as_deref().filter(|m| !m.is_empty()).map(|m| format!(": {}", m.trim())).unwrap_or_default()
                        ),
                        None => message.clone(),
                    };
                    add(format!(
                        "pod {name}: container {} is crash-looping after {} restarts, {detail}; see `kubectl logs {name} -c {} --previous`",
                        cs.name, cs.restart_count, cs.name
                    ))
                }
                "ContainerCreating" | "PodInitializing" | "" => {}
                other => add(format!("pod {name}: container {} is waiting: {other}{}", cs.name,
                    if message.is_empty() { String::new() } else { format!(": {message}") })),
            }
        }
        if status.phase.as_deref() == Some("Pending") {
            if let Some(c) =
                status.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled" && c.status == "False")
            {
                add(format!(
                    "pod {name} cannot be scheduled ({}): {}",
                    c.reason.as_deref().unwrap_or("Unschedulable"),
                    c.message.as_deref().unwrap_or("no message from the scheduler")
                ));
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// How long and how often to wait.
#[derive(Clone, Copy, Debug)]
pub struct WaitOptions {
    /// Give up after this long (`--timeout`).
    pub timeout: Duration,
    /// Poll this often.
    pub interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions { timeout: Duration::from_secs(180), interval: Duration::from_secs(2) }
    }
}

async fn readiness(cluster: &Cluster, w: &Workload) -> Result<Option<Readiness>, KubeError> {
    let c = cluster.client.clone();
    let ns = w.namespace.as_str();
    let get_err = |e, res: &str| cluster.error(e, "get", res, ns);
    Ok(Some(match w.kind.as_str() {
        "Deployment" => deployment_readiness(
            &Api::<Deployment>::namespaced(c, ns).get(&w.name).await.map_err(|e| get_err(e, "deployments.apps"))?,
        ),
        "StatefulSet" => statefulset_readiness(
            &Api::<StatefulSet>::namespaced(c, ns).get(&w.name).await.map_err(|e| get_err(e, "statefulsets.apps"))?,
        ),
        "DaemonSet" => daemonset_readiness(
            &Api::<DaemonSet>::namespaced(c, ns).get(&w.name).await.map_err(|e| get_err(e, "daemonsets.apps"))?,
        ),
        "Pod" => pod_readiness(&Api::<Pod>::namespaced(c, ns).get(&w.name).await.map_err(|e| get_err(e, "pods"))?),
        _ => return Ok(None), // Jobs and ReplicaSets: nothing to wait for here
    }))
}

/// Waits until every workload is ready. `progress` is told about each new
/// reason (for a status line); the timeout error carries the last one.
pub async fn wait_ready(
    cluster: &Cluster,
    workloads: &[Workload],
    opts: WaitOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), KubeError> {
    let start = Instant::now();
    for w in workloads {
        let mut last = String::new();
        loop {
            let state = match readiness(cluster, w).await? {
                None | Some(Readiness::Ready) => break,
                Some(Readiness::Failed(reason)) => {
                    let pods = list_pods(cluster, std::slice::from_ref(w)).await.unwrap_or_default();
                    let why = diagnose(&pods).map(|d| format!("{reason}; {d}")).unwrap_or(reason);
                    return Err(KubeError::RolloutFailed { workload: w.to_string(), reason: why });
                }
                Some(Readiness::Progressing(p)) => p,
            };
            let pods = list_pods(cluster, std::slice::from_ref(w)).await?;
            let reason = diagnose(&pods).map(|d| format!("{state}; {d}")).unwrap_or(state);
            if reason != last {
                progress(&format!("{w}: {reason}"));
                last = reason;
            }
            if start.elapsed() >= opts.timeout {
                return Err(KubeError::RolloutTimeout { workload: w.to_string(), waited: opts.timeout, reason: last });
            }
            tokio::time::sleep(opts.interval).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::mock;
    use crate::cluster::mock::fixtures;
    use serde_json::{json, Value};

    fn deployment(generation: i64, observed: i64, updated: i32, available: i32, total: i32) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "hello", "namespace": "default", "generation": generation},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "hello"}}, "template": {"spec": {"containers": []}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "availableReplicas": available, "replicas": total}
        })
    }

    fn waiting(reason: &str, message: &str) -> Value {
        let mut p = fixtures::pod("hello-x", "uid-x", 0);
        p["status"]["phase"] = "Pending".into();
        p["status"]["containerStatuses"][0]["ready"] = false.into();
        p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": reason, "message": message}});
        p
    }

    #[test]
    fn deployment_states() {
        let d = |v: Value| deployment_readiness(&serde_json::from_value(v).unwrap());
        assert!(matches!(d(deployment(2, 1, 2, 2, 2)), Readiness::Progressing(m) if m.contains("new spec")));
        assert_eq!(d(deployment(1, 1, 1, 1, 1)), Readiness::Progressing("1 of 2 replicas updated".into()));
        assert_eq!(d(deployment(1, 1, 2, 2, 3)), Readiness::Progressing("1 old replicas pending termination".into()));
        assert_eq!(d(deployment(1, 1, 2, 1, 2)), Readiness::Progressing("1 of 2 updated replicas available".into()));
        assert_eq!(d(deployment(1, 1, 2, 2, 2)), Readiness::Ready);
        let mut failed = deployment(1, 1, 0, 0, 2);
        failed["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"hello-1\" has timed out progressing."}]);
        assert!(matches!(d(failed), Readiness::Failed(m) if m.contains("timed out")));
    }

    #[test]
    fn diagnoses() {
        let pods = |v: Vec<Value>| v.into_iter().map(|p| serde_json::from_value(p).unwrap()).collect::<Vec<Pod>>();
        let pull = diagnose(&pods(vec![waiting("ImagePullBackOff", "Back-off pulling image")])).unwrap();
        assert!(
            pull.contains("cannot pull image 127.0.0.1:5000/hello@sha256:") && pull.contains("ImagePullBackOff"),
            "{pull}"
        );

        let mut crash = waiting("CrashLoopBackOff", "back-off 10s restarting failed container");
        crash["status"]["phase"] = "Running".into();
        crash["status"]["containerStatuses"][0]["restartCount"] = 4.into();
        crash["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 2, "reason": "Error", "message": "panic: listen tcp :8080: address in use\n"}});
        let c = diagnose(&pods(vec![crash])).unwrap();
        assert!(
            c.contains("crash-looping after 4 restarts") && c.contains("last exit code 2 (Error): panic: listen tcp"),
            "{c}"
        );

        let mut pending = fixtures::pod("hello-p", "uid-p", 0);
        pending["status"] = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]});
        let p = diagnose(&pods(vec![pending])).unwrap();
        assert!(
            p.contains("hello-p cannot be scheduled (Unschedulable): 0/1 nodes are available: 1 Insufficient memory."),
            "{p}"
        );

        assert_eq!(diagnose(&pods(vec![fixtures::pod("ok", "u", 0)])), None);
    }

    use crate::cluster::mock::fixtures::workload;

    /// Mock API server: first the rollout is stuck on ImagePullBackOff
    /// (reported with the image, once, however many polls), then it becomes
    /// ready. On the real cluster: tests/kube.rs,
    /// `rollout_waits_through_image_pull_backoff_on_a_real_cluster`.
    #[tokio::test]
    async fn waits_through_image_pull_backoff_then_ready() {
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p = polls.clone();
        let (cluster, _) = mock::cluster(move |s| {
            if s.uri.starts_with("/apis/apps/v1/namespaces/default/deployments/hello") {
                let n = p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (200, if n < 2 { deployment(1, 1, 2, 0, 2) } else { deployment(1, 1, 2, 2, 2) })
            } else if s.uri.starts_with("/api/v1/namespaces/default/pods") {
                (200, fixtures::list(vec![waiting("ImagePullBackOff", "Back-off pulling image")]))
            } else {
                mock::status(404, "NotFound", "unexpected")
            }
        });
        let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let s = said.clone();
        let opts = WaitOptions { timeout: Duration::from_secs(10), interval: Duration::from_millis(5) };
        wait_ready(&cluster, &[workload()], opts, &move |m| s.lock().unwrap().push(m.to_string())).await.unwrap();
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "a reason is reported once, not per poll: {said:?}");
        assert!(
            said[0].contains(
                "Deployment default/hello: 0 of 2 updated replicas available; pod hello-x: cannot pull image"
            ),
            "{}",
            said[0]
        );
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// Mock API server: a rollout that never becomes ready times out with
    /// the reason (on the real cluster: the same test in tests/kube.rs).
    #[tokio::test]
    async fn timeout_carries_the_reason() {
        let (cluster, _) = mock::cluster(|s| {
            if s.uri.contains("/deployments/") {
                (200, deployment(1, 1, 2, 0, 2))
            } else {
                (200, fixtures::list(vec![waiting("ErrImagePull", "pull access denied")]))
            }
        });
        let opts = WaitOptions { timeout: Duration::from_millis(30), interval: Duration::from_millis(5) };
        let e = wait_ready(&cluster, &[workload()], opts, &|_| {}).await.unwrap_err();
        assert!(matches!(e, KubeError::RolloutTimeout { .. }));
        let e = e.to_string();
        assert!(e.starts_with("Deployment default/hello is not ready after"), "{e}");
        assert!(
            e.contains("cannot pull image 127.0.0.1:5000/hello@sha256:") && e.contains("pull access denied"),
            "{e}"
        );
    }
}
