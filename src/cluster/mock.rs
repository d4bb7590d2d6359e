//! A scripted API server for unit tests: kube-rs's mock service
//! (`tower_test::mock::pair`) answered by a closure, every request recorded.
//!
//! CI runs a real cluster (Kubernetes 1.20, `tests/kube.rs`), and what it
//! can show is tested there. This mock is for the rest: the exact requests
//! kube-rs builds (method, path, query, content type, body), checked in unit
//! tests, and answers the real cluster does not give on demand. Among those
//! is exec's v5 protocol (`v5.channel.k8s.io`, Kubernetes 1.29+), which a 1.20
//! server cannot speak; the fake WebSocket exec server beside the exec code
//! (`hosting/kube/exec.rs`) speaks it for those tests. The answers are the
//! JSON a real API server sends.

use std::sync::{Arc, Mutex};

use ::kube::client::Body;
use ::kube::Client;
use http::{Request, Response};
use serde_json::Value;

use super::{Cluster, ContextInfo};

/// One request the mock saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `PATCH`…
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Content-Type header.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

impl Seen {
    /// The body as JSON (Null if not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// `PATCH /apis/apps/v1/...`
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }
}

/// The requests seen so far.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A kube `Status` answer.
pub fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}),
    )
}

/// The context the mock clusters claim to be.
pub fn context() -> ContextInfo {
    ContextInfo {
        name: "kind-mock".into(),
        cluster: "kind-mock".into(),
        server: "https://127.0.0.1:6443".into(),
        namespace: "default".into(),
        user: "kind-mock".into(),
    }
}

/// A [`Cluster`] whose API server is `answer`: called with each request,
/// returns the status code and JSON body (a JSON string is sent as raw text). Requests are recorded in the log.
pub fn cluster(mut answer: impl FnMut(&Seen) -> (u16, Value) + Send + 'static) -> (Cluster, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let seen_log = log.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            let seen = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
                body,
            };
            let (code, json) = answer(&seen);
            seen_log.lock().unwrap().push(seen);
            // A JSON string answer is sent as raw text (log streams).
            let (content_type, body) = match json {
                Value::String(text) => ("text/plain", text.into_bytes()),
                json => ("application/json", serde_json::to_vec(&json).unwrap()),
            };
            let response = Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap();
            send.send_response(response);
        }
    });
    let client = Client::new(service, "default");
    (Cluster::from_client(client, context()), log)
}

pub mod fixtures {
    //! Pod JSON as the API server returns it.
    use serde_json::{json, Value};

    pub const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The hello Deployment, selected by `app=hello`.
    pub fn workload() -> crate::cluster::workload::Workload {
        crate::cluster::workload::Workload {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "hello".into(),
            selector: crate::cluster::workload::PodSelector::Labels("app=hello".into()),
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
