//! The pods of some workloads, kept current by the API server's watch
//! instead of a list on every question.
//!
//! On a remote cluster every list is a round trip and a few kilobytes per
//! pod: the dev loop asked before each reload (a round trip in the
//! reload's path) and twice a second for its health check and its log
//! follower (megabytes a minute on an idle session). A [`PodWatch`] lists
//! each workload's pods once, then follows changes: answering costs nothing,
//! an idle session sends nothing but a new watch request every few minutes
//! (the server ends each watch after [`WATCH_SECONDS`]), and a replaced pod
//! arrives half a round trip after the API server knows it.
//!
//! A watch that breaks is resumed from the last resource version seen; one
//! the server no longer has (410 Gone) or any other failure starts over
//! with a new list, after a pause that grows to [`MAX_BACKOFF`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use tokio::task::JoinHandle;

use crate::cluster::workload::{PodSelector, Workload};
use crate::cluster::{Cluster, KubeError};

/// How long the server keeps one watch open before it is renewed.
pub const WATCH_SECONDS: u32 = 290;
/// The longest pause before listing again after a failure.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What is known: per workload, its pods by name, or why it is not known.
#[derive(Default)]
struct State {
    /// Per workload (same order as given): None until its first list.
    pods: Vec<Option<BTreeMap<String, Pod>>>,
    /// The last failure to list, while some workload has never been listed.
    error: Option<String>,
    /// The cluster refuses to watch (RBAC): said on every question until a
    /// watch is allowed, since without one the pods are only as fresh as
    /// the last list.
    refused: Option<String>,
}

/// The pods of some workloads, as the API server last said; see the module doc.
pub struct PodWatch {
    state: Arc<Mutex<State>>,
    /// Bumped on every change (and on a failure before the first list).
    changed: tokio::sync::watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
    what: String,
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl PodWatch {
    /// Starts watching the pods of `workloads` (one watch per workload).
    pub fn start(cluster: &Cluster, workloads: &[Workload]) -> PodWatch {
        let state = Arc::new(Mutex::new(State { pods: vec![None; workloads.len()], error: None, refused: None }));
        let (tx, changed) = tokio::sync::watch::channel(0u64);
        let tx = Arc::new(tx);
        let tasks = workloads
            .iter()
            .enumerate()
            .map(|(i, w)| tokio::spawn(follow(cluster.clone(), w.clone(), i, state.clone(), tx.clone())))
            .collect();
        let what = format!("cluster {}", cluster.context.name);
        PodWatch { state, changed, tasks, what }
    }

    /// The pods as of now, once every workload has been listed; the error of
    /// the last failed list while one has not (it is retried meanwhile).
    pub async fn pods(&self) -> Result<Vec<Pod>, KubeError> {
        let mut changed = self.changed.clone();
        loop {
            {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(e) = &state.refused {
                    return Err(KubeError::Api { what: self.what.clone(), detail: e.clone() });
                }
                if state.pods.iter().all(Option::is_some) {
                    return Ok(state.pods.iter().flatten().flat_map(|m| m.values().cloned()).collect());
                }
                if let Some(e) = &state.error {
                    return Err(KubeError::Api { what: self.what.clone(), detail: e.clone() });
                }
            }
            if changed.changed().await.is_err() {
                return Err(KubeError::Api { what: self.what.clone(), detail: "the pod watch stopped".into() });
            }
        }
    }

    /// Changes from now on: `changed().await` on it resolves at the next
    /// change of the pods (or failure to list them). Take it before looking
    /// at [`PodWatch::pods`], so that no change in between is missed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut changes = self.changed.clone();
        changes.borrow_and_update();
        changes
    }
}

/// Lists and watches one workload's pods into `state.pods[slot]`, for ever.
async fn follow(
    cluster: Cluster,
    w: Workload,
    slot: usize,
    state: Arc<Mutex<State>>,
    tx: Arc<tokio::sync::watch::Sender<u64>>,
) {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &w.namespace);
    let (lp, wp) = match &w.selector {
        PodSelector::Labels(l) => (ListParams::default().labels(l), WatchParams::default().labels(l)),
        PodSelector::Name(n) => {
            let f = format!("metadata.name={n}");
            (ListParams::default().fields(&f), WatchParams::default().fields(&f))
        }
        PodSelector::All => (ListParams::default(), WatchParams::default()),
    };
    let wp = wp.timeout(WATCH_SECONDS);
    let bump = || tx.send_modify(|n| *n += 1);
    let mut backoff = Duration::from_millis(200);
    loop {
        let list = match api.list(&lp).await {
            Ok(list) => list,
            Err(e) => {
                let e = cluster.error(e, "list", "pods", &w.namespace).to_string();
                tracing::debug!("pod watch of {w}: {e}");
                state.lock().unwrap_or_else(|p| p.into_inner()).error = Some(e);
                bump();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut version = list.metadata.resource_version.clone().unwrap_or_default();
        let pods = list.items.into_iter().map(|p| (p.metadata.name.clone().unwrap_or_default(), p)).collect();
        state.lock().unwrap_or_else(|p| p.into_inner()).pods[slot] = Some(pods);
        bump();
        // Watch from the list's version; renewed from the last one seen
        // whenever the server ends a watch, until it no longer has it.
        let relist = loop {
            let events = match api.watch(&wp, &version).await {
                Ok(s) => s,
                Err(e) => {
                    let e = cluster.error(e, "watch", "pods", &w.namespace);
                    let refused = matches!(e, KubeError::Forbidden { .. }).then(|| e.to_string());
                    let changed = {
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        std::mem::replace(&mut st.refused, refused.clone()) != refused
                    };
                    if changed {
                        bump();
                    }
                    break e.to_string();
                }
            };
            if state.lock().unwrap_or_else(|p| p.into_inner()).refused.take().is_some() {
                bump();
            }
            let mut events = events.boxed();
            let ended = loop {
                match events.try_next().await {
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                    Ok(Some(WatchEvent::Error(status))) => break Some(status.message.clone()),
                    Ok(Some(WatchEvent::Bookmark(b))) => version = b.metadata.resource_version,
                    Ok(Some(event)) => {
                        let (pod, gone) = match event {
                            WatchEvent::Added(p) | WatchEvent::Modified(p) => (p, false),
                            WatchEvent::Deleted(p) => (p, true),
                            _ => continue,
                        };
                        version = pod.metadata.resource_version.clone().unwrap_or(version);
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(pods) = st.pods[slot].as_mut() else { continue };
                        if gone {
                            pods.remove(&name);
                        } else {
                            pods.insert(name, pod);
                        }
                        drop(st);
                        bump();
                        backoff = Duration::from_millis(200);
                    }
                }
            };
            if let Some(e) = ended {
                break e;
            }
        };
        tracing::debug!("pod watch of {w}: {relist}; listing again");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
