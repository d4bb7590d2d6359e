//! Which pod to read from when the source is `pod/NAME` or `deploy/NAME`.
//!
//! A deployment mid-rollout has old pods still shutting down next to new
//! ones; reading from an old one would bring back stale files and could
//! fail half-way when it goes. The choice is therefore a pure function over
//! a small summary of each pod (what the Kubernetes target can fill in from
//! the API), tested on its own: only running, ready pods that are not being
//! deleted qualify, and among several the newest wins (the one a rollout
//! keeps), ties broken by fewer restarts, then by name, so the same cluster
//! state always gives the same pick. The answer carries the reason, which
//! the CLI prints: `picked web-7d9f-x2: newest of 3 ready pods`.

use super::SyncbackError;
use crate::target::Replica;

/// What syncback needs to know about one pod.
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
pub fn pick_pod(owner: &str, pods: &[PodSummary]) -> Result<PodChoice, SyncbackError> {
    let mut ready: Vec<&PodSummary> = pods.iter().filter(|p| unusable(p).is_none()).collect();
    if ready.is_empty() {
        let why = if pods.is_empty() {
            "it has no pods".to_string()
        } else {
            pods.iter().filter_map(unusable).collect::<Vec<_>>().join(", ")
        };
        return Err(SyncbackError::NoPod { owner: owner.to_string(), why });
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

/// The Kubernetes wiring point: given the pods of `owner` in `namespace`
/// (listed by the Kubernetes target, by name for `pod/NAME` or by the
/// deployment's selector for `deploy/NAME`), the replica to exec the helper
/// in, with the handle format of that target (`namespace/pod/container`),
/// and the reason to print.
pub fn kube_replica_for(
    owner: &str,
    namespace: &str,
    container: &str,
    pods: &[PodSummary],
) -> Result<(Replica, String), SyncbackError> {
    let choice = pick_pod(owner, pods)?;
    let created = pods.iter().find(|p| p.name == choice.name).map(|p| p.created_unix).unwrap_or_default();
    Ok((
        Replica {
            name: format!("{}/{container}", choice.name),
            instance: format!("{namespace}/{}@{created}", choice.name),
            handle: format!("{namespace}/{}/{container}", choice.name),
        },
        choice.reason,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, ready: bool, terminating: bool, created: i64, restarts: u32) -> PodSummary {
        PodSummary { name: name.into(), phase: phase.into(), ready, terminating, created_unix: created, restarts }
    }

    #[test]
    fn newest_ready_pod_wins_and_says_why() {
        let pods = [
            pod("web-old", "Running", true, false, 100, 0),
            pod("web-new", "Running", true, false, 300, 0),
            pod("web-mid", "Running", true, false, 200, 5),
        ];
        let c = pick_pod("deploy/web", &pods).expect("pick");
        assert_eq!(c.name, "web-new");
        assert_eq!(c.reason, "picked web-new: newest of 3 ready pods");
    }

    #[test]
    fn never_a_terminating_pod_even_if_newest_or_only_ready() {
        // Rollout: the old pod is being deleted but still reports Running and ready.
        let pods = [
            pod("web-old", "Running", true, true, 500, 0),
            pod("web-new", "Running", true, false, 400, 0),
            pod("web-starting", "Running", false, false, 600, 0),
            pod("web-pending", "Pending", false, false, 700, 0),
        ];
        let c = pick_pod("deploy/web", &pods).expect("pick");
        assert_eq!(c.name, "web-new");
        assert!(c.reason.starts_with("picked web-new: the only ready pod (3 skipped:"), "{}", c.reason);
        assert!(c.reason.contains("web-old is terminating"));
        let none = pick_pod("deploy/web", &pods[..1]).expect_err("only a terminating pod");
        assert!(none.to_string().contains("web-old is terminating"), "{none}");
        assert!(pick_pod("deploy/web", &[]).expect_err("none").to_string().contains("has no pods"));
        let failed = [pod("job", "Failed", false, false, 1, 0)];
        assert!(pick_pod("pod/job", &failed).expect_err("failed").to_string().contains("job is Failed"));
    }

    #[test]
    fn ties_are_deterministic() {
        let a = pod("b-pod", "Running", true, false, 100, 2);
        let b = pod("a-pod", "Running", true, false, 100, 2);
        let c = pod("c-pod", "Running", true, false, 100, 0);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]] {
            let pods: Vec<PodSummary> = order.iter().map(|p| (*p).clone()).collect();
            assert_eq!(pick_pod("deploy/x", &pods).expect("pick").name, "c-pod");
        }
        assert_eq!(pick_pod("deploy/x", &[a.clone(), b.clone()]).expect("pick").name, "a-pod");
    }

    #[test]
    fn kube_replica_handle() {
        let pods = [pod("web-1", "Running", true, false, 10, 0)];
        let (r, why) = kube_replica_for("deploy/web", "dev", "app", &pods).expect("replica");
        assert_eq!(r.handle, "dev/web-1/app");
        assert_eq!(r.name, "web-1/app");
        assert_eq!(why, "picked web-1: the only ready pod");
    }
}
