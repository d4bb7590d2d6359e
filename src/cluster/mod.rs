//! Kubernetes, the connection: which cluster and whether gohot may touch
//! it, through kube-rs. What gohot does with it lives above: server-side
//! apply and rollout waiting in [`crate::deploy`], the pods that get the
//! binary, exec, logs and port-forwards in [`crate::hosting::kube`].
//!
//! * [`context`] — which cluster (kubeconfig, `--context`, `--namespace`) and
//!   whether gohot may touch it (local contexts yes, others only by name);
//! * [`nodes`] — the platforms the cluster's nodes run, so the binary is built
//!   for them and never synced into a node of another architecture;
//! * [`workload`] — what an applied object owns: workloads, their pod
//!   selectors, the app's image.
//!
//! [`Cluster`] is the connection (a kube [`Client`] plus the context it was
//! made for); [`KubeError`] the errors, each naming what to fix. The
//! This module is called `cluster` rather than `kube` so that `kube::` always
//! means the kube-rs crate.

pub mod context;
pub mod nodes;
pub mod workload;

use std::ffi::OsString;
use std::path::PathBuf;

use ::kube::Client;

pub use context::ContextInfo;

/// Errors talking to a cluster; each says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// No kubeconfig file where one was looked for.
    #[error(
        "no kubeconfig found (looked in {looked}): create a cluster (`kind create cluster`, `minikube start`) or point KUBECONFIG or --kubeconfig at its config"
    )]
    NoKubeconfig {
        /// The paths looked at.
        looked: String,
    },
    /// The kubeconfig cannot be read or used.
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig {
        /// The file (or context) concerned.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// No context named and no current-context.
    #[error("the kubeconfig has no current-context: pass --context (known contexts: {known})")]
    NoContext {
        /// Contexts in the kubeconfig.
        known: String,
    },
    /// `--context` names a context the kubeconfig does not have.
    #[error("context {context:?} is not in the kubeconfig (known contexts: {known})")]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// Contexts in the kubeconfig.
        known: String,
    },
    /// The context is not local and was not allowed by name.
    #[error(
        "refusing to hot-patch context {context:?} (API server {server}): it is not a local cluster: {rule}. If you mean it, allow it by name with --allow-context {context} (or `allowContexts: [{context}]` in gohot.yaml)"
    )]
    ContextNotAllowed {
        /// The context.
        context: String,
        /// Its API server.
        server: String,
        /// The part of the rule (`cluster::context`) it fails.
        rule: String,
    },
    /// The API server cannot be reached.
    #[error(
        "cannot reach the API server {server} of context {context:?}: {detail}. Is the cluster running (`kind get clusters`, `minikube status`) and is this the right context?"
    )]
    Unreachable {
        /// The context.
        context: String,
        /// Its API server.
        server: String,
        /// The connection error.
        detail: String,
    },
    /// The API server rejected the credentials.
    #[error("context {context:?}: the API server rejected the credentials ({detail}): log in again or refresh the kubeconfig")]
    Unauthorized {
        /// The context.
        context: String,
        /// What the server said.
        detail: String,
    },
    /// RBAC denied an operation: the verb, resource and namespace refused,
    /// and for whom, as the API server reported them (else as gohot asked).
    #[error(
        "the cluster refused {verb} {resource} {scope} for {user}: {fix} (check with `kubectl auth can-i {verb} {resource}{can_i_ns}`)",
        scope = if namespace.is_empty() { "cluster-wide".to_string() } else { format!("in namespace {namespace}") },
        fix = if namespace.is_empty() { CLUSTER_FIX } else { ROLE_FIX },
        can_i_ns = if namespace.is_empty() { String::new() } else { format!(" -n {namespace}") },
    )]
    Forbidden {
        /// The verb (`create`, `patch`, `list`).
        verb: String,
        /// The resource (`pods/exec`, `deployments.apps`).
        resource: String,
        /// The namespace (empty for cluster-scoped).
        namespace: String,
        /// Who was refused (`system:serviceaccount:shop:dev`, else
        /// `the kubeconfig's user "dev"`).
        user: String,
        /// What the server said.
        message: String,
    },
    /// The API server refused a request for a reason other than RBAC (an
    /// admission plugin or webhook, a quota, a pod security rule).
    #[error("the cluster refused {what}: {message}")]
    Refused {
        /// What was being done (`patch deployments.apps in namespace shop`).
        what: String,
        /// What the server said.
        message: String,
    },
    /// Any other API failure.
    #[error("{what}: {detail}")]
    Api {
        /// What was being done (`patch deployments.apps default/hello`).
        what: String,
        /// What the server or client said.
        detail: String,
    },
    /// A manifest cannot be applied as it is.
    #[error("{path}: {detail}")]
    Manifest {
        /// The manifest file (and document).
        path: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// The API server does not know a kind used in the manifests.
    #[error("the cluster does not serve {kind} in {api_version}: is the CRD installed, or the apiVersion a typo?")]
    UnknownKind {
        /// apiVersion of the document.
        api_version: String,
        /// kind of the document.
        kind: String,
    },
    /// A workload did not become ready.
    #[error("{workload} is not ready after {waited:?}: {reason}")]
    RolloutTimeout {
        /// `Deployment default/hello`.
        workload: String,
        /// How long gohot waited.
        waited: std::time::Duration,
        /// Why, from the pods (image pull, crash loop, scheduling).
        reason: String,
    },
    /// A workload's rollout failed for good.
    #[error("{workload} failed to roll out: {reason}")]
    RolloutFailed {
        /// `Deployment default/hello`.
        workload: String,
        /// Why.
        reason: String,
    },
    /// The binary was built for another architecture than the pod's node.
    #[error(
        "not syncing into {replica}: its node {node} is {node_platform} but the binary is built for {binary_platform}; rebuild with --platform {node_platform}"
    )]
    ArchMismatch {
        /// `namespace/pod/container`.
        replica: String,
        /// Node name.
        node: String,
        /// The node's platform.
        node_platform: String,
        /// The binary's platform.
        binary_platform: String,
    },
    /// An exec did not run to the end.
    #[error("exec in {replica}: {detail}")]
    Exec {
        /// `namespace/pod/container`.
        replica: String,
        /// What went wrong.
        detail: String,
    },
}

/// The fix a namespaced refusal names: the Role that has every rule gohot needs.
pub const ROLE_FIX: &str =
    "add it to your Role (manifests/gohot-developer.yaml in gohot's repository has every rule gohot needs)";

/// The fix a cluster-wide refusal names: a Role cannot grant it.
pub const CLUSTER_FIX: &str = "a namespaced Role cannot grant it: bind a ClusterRole that has it (manifests/gohot-node-reader.yaml for nodes), or for nodes pass --platform so gohot needs no access to them";

/// How to reach a cluster, from flags.
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    /// `--kubeconfig` (else `KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// `--context` (else the current context).
    pub context: Option<String>,
    /// `--namespace` (else the context's, else `default`).
    pub namespace: Option<String>,
    /// `--allow-context`: non-local contexts the user allows by name.
    pub allow_contexts: Vec<String>,
}

/// A connection to one cluster: a client and the context it was made for.
#[derive(Clone)]
pub struct Cluster {
    /// The kube-rs client.
    pub client: Client,
    /// The context.
    pub context: ContextInfo,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("context", &self.context).finish()
    }
}

/// Reads the kubeconfig from `--kubeconfig`, `KUBECONFIG` or the home
/// directory, checks the context is allowed, and connects.
pub async fn connect(opts: &KubeOptions) -> Result<Cluster, KubeError> {
    let env: Option<OsString> = std::env::var_os("KUBECONFIG");
    connect_with(opts, env.as_deref(), dirs::home_dir().as_deref()).await
}

/// [`connect`] with the environment passed in.
pub async fn connect_with(
    opts: &KubeOptions,
    kubeconfig_env: Option<&std::ffi::OsStr>,
    home: Option<&std::path::Path>,
) -> Result<Cluster, KubeError> {
    let config = context::read_kubeconfig(opts.kubeconfig.as_deref(), kubeconfig_env, home)?;
    let info = context::select_context(&config, opts.context.as_deref(), opts.namespace.as_deref())?;
    context::check_allowed(&info, &opts.allow_contexts, &context::LocalMachine::this())?;
    // kube-rs speaks TLS through rustls with the ring provider, as the registry client does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube_opts = ::kube::config::KubeConfigOptions { context: Some(info.name.clone()), ..Default::default() };
    let mut cfg = ::kube::Config::from_custom_kubeconfig(config, &kube_opts)
        .await
        .map_err(|e| KubeError::Kubeconfig { path: format!("context {}", info.name), detail: e.to_string() })?;
    cfg.default_namespace = info.namespace.clone();
    let client = client_without_nagle(cfg)
        .map_err(|e| KubeError::Kubeconfig { path: format!("context {}", info.name), detail: e.to_string() })?;
    Ok(Cluster { client, context: info })
}

/// kube-rs's own client stack (timeouts, TLS, auth, headers, retries), on
/// sockets with `TCP_NODELAY`: kube-rs leaves Nagle's algorithm on, and a new
/// connection's first request then waits for the ACK of the TLS handshake's
/// last flight, which the API server delays by 40 ms. Every port-forward,
/// exec and log stream opens a connection: measured here, a port-forward
/// took 51 ms instead of 8 (tcpdump: the request held back 41 ms).
/// A kubeconfig with a `proxy-url` gets kube-rs's client as it is (which
/// says what it cannot do with the proxy).
fn client_without_nagle(cfg: ::kube::Config) -> Result<Client, ::kube::Error> {
    use ::kube::client::ConfigExt as _;
    use tower::ServiceBuilder;
    if cfg.proxy_url.is_some() {
        return Client::try_from(cfg);
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = cfg.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(cfg.connect_timeout);
    connector.set_read_timeout(cfg.read_timeout);
    connector.set_write_timeout(cfg.write_timeout);
    let http_client = hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new()).build(connector);
    let retry =
        cfg.default_retry.then(|| tower::retry::RetryLayer::new(::kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(cfg.base_uri_layer())
        .option_layer(retry)
        .option_layer(cfg.auth_layer()?)
        .layer(cfg.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(Client::new(service, cfg.default_namespace))
}

impl Cluster {
    /// A cluster from an existing client (tests use kube-rs's mock service).
    pub fn from_client(client: Client, context: ContextInfo) -> Self {
        Cluster { client, context }
    }

    /// Checks the API server answers (and accepts the credentials).
    pub async fn ping(&self) -> Result<String, KubeError> {
        let v = self.client.apiserver_version().await.map_err(|e| self.error(e, "get", "version", ""))?;
        Ok(v.git_version)
    }

    /// Turns a kube-rs error into one that names what to fix. `verb`,
    /// `resource` and `namespace` say what gohot was doing (`create`,
    /// `pods/exec`, `default`).
    pub fn error(&self, e: ::kube::Error, verb: &str, resource: &str, namespace: &str) -> KubeError {
        classify(&self.context, e, verb, resource, namespace)
    }
}

/// See [`Cluster::error`].
pub fn classify(ctx: &ContextInfo, e: ::kube::Error, verb: &str, resource: &str, namespace: &str) -> KubeError {
    let what = || {
        if namespace.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource} in namespace {namespace}")
        }
    };
    match e {
        ::kube::Error::Api(s) if s.code == 401 => {
            KubeError::Unauthorized { context: ctx.name.clone(), detail: s.message.clone() }
        }
        ::kube::Error::Api(s) if s.code == 403 => match rbac_denial(&s.message) {
            Some(d) => KubeError::Forbidden {
                verb: d.verb,
                resource: d.resource,
                namespace: d.namespace.unwrap_or_default(),
                user: d.user,
                message: s.message.clone(),
            },
            // The handler's own check (server-side apply creating an object
            // checks `create` inside the patch handler) gives no reason.
            None if s.message.trim_end().ends_with("is forbidden:") => KubeError::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                namespace: namespace.into(),
                user: format!("the kubeconfig's user {:?}", ctx.user),
                message: s.message.clone(),
            },
            None => KubeError::Refused { what: what(), message: s.message.clone() },
        },
        ::kube::Error::Api(s) => KubeError::Api { what: what(), detail: format!("{} ({})", s.message, s.code) },
        e @ (::kube::Error::HyperError(_) | ::kube::Error::Service(_)) => {
            KubeError::Unreachable { context: ctx.name.clone(), server: ctx.server.clone(), detail: error_chain(&e) }
        }
        e => KubeError::Api { what: what(), detail: error_chain(&e) },
    }
}

/// An RBAC refusal as the API server words it (the authorization filter's
/// message): `pods "p" is forbidden: User "dev" cannot create resource
/// "pods/exec" in API group "" in the namespace "shop"` (or `at the cluster
/// scope`), possibly followed by the authorizer's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Who was refused.
    pub user: String,
    /// The verb.
    pub verb: String,
    /// `resource[/subresource]`, with `.group` when the group is not core
    /// (`deployments.apps`), as `kubectl auth can-i` takes it.
    pub resource: String,
    /// The namespace; None at the cluster scope.
    pub namespace: Option<String>,
}

/// Reads an RBAC refusal out of a 403's message; None for any other 403.
pub fn rbac_denial(message: &str) -> Option<Denial> {
    fn quoted(s: &str) -> Option<(&str, &str)> {
        let s = s.strip_prefix('"')?;
        let end = s.find('"')?;
        Some((&s[..end], &s[end + 1..]))
    }
    let rest = &message[message.find("is forbidden: User ")? + "is forbidden: User ".len()..];
    let (user, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(" cannot ")?;
    let (verb, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("resource ")?;
    let (resource, rest) = quoted(rest)?;
    let (group, rest) = quoted(rest.strip_prefix(" in API group ")?)?;
    let namespace = match rest.strip_prefix(" in the namespace ") {
        Some(r) => Some(quoted(r)?.0.to_string()),
        None => None,
    };
    let resource = match (group, resource.split_once('/')) {
        ("", _) => resource.to_string(),
        (g, Some((r, sub))) => format!("{r}.{g}/{sub}"),
        (g, None) => format!("{resource}.{g}"),
    };
    Some(Denial { user: user.into(), verb: verb.into(), resource, namespace })
}

/// An error and its causes on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `Kind namespace/name` for messages.
pub fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

#[cfg(test)]
pub(crate) mod mock;

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ContextInfo {
        ContextInfo {
            name: "kind-dev".into(),
            cluster: "kind-dev".into(),
            server: "https://127.0.0.1:1".into(),
            namespace: "default".into(),
            user: "kind-dev".into(),
        }
    }

    fn status(code: u16, message: &str) -> ::kube::Error {
        let s: ::kube::core::Status = serde_json::from_value(
            serde_json::json!({"status": "Failure", "code": code, "message": message, "reason": "x"}),
        )
        .unwrap();
        ::kube::Error::Api(Box::new(s))
    }

    #[test]
    fn forbidden_names_verb_resource_namespace_user_and_the_role() {
        let msg = r#"pods "hello-1" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "shop""#;
        let e = classify(&ctx(), status(403, msg), "create", "pods/exec", "shop").to_string();
        assert!(e.starts_with("the cluster refused create pods/exec in namespace shop for dev: add it to your Role (manifests/gohot-developer.yaml"), "{e}");
        assert!(e.contains("kubectl auth can-i create pods/exec -n shop"), "{e}");
        // What the server reports wins over what gohot guessed (a WebSocket exec is a `get` before 1.31).
        let msg = r#"pods "hello-1" is forbidden: User "system:serviceaccount:shop:dev" cannot get resource "pods/exec" in API group "" in the namespace "shop""#;
        let e = classify(&ctx(), status(403, msg), "create", "pods/exec", "shop").to_string();
        assert!(
            e.starts_with("the cluster refused get pods/exec in namespace shop for system:serviceaccount:shop:dev:"),
            "{e}"
        );
        let e = classify(&ctx(), status(401, "Unauthorized"), "get", "version", "").to_string();
        assert!(e.contains("credentials") && e.contains("kind-dev"), "{e}");
        let e = classify(&ctx(), status(409, "conflict"), "patch", "deployments.apps", "x").to_string();
        assert!(e.contains("patch deployments.apps in namespace x") && e.contains("409"), "{e}");
    }

    #[test]
    fn forbidden_without_a_reason_names_what_gohot_asked() {
        // Server-side apply of an object that does not exist: the patch
        // handler's `create` check gives no reason.
        let e = classify(&ctx(), status(403, r#"configmaps "c1" is forbidden: "#), "create", "configmaps", "shop");
        assert!(matches!(&e, KubeError::Forbidden { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(
                "the cluster refused create configmaps in namespace shop for the kubeconfig's user \"kind-dev\": add it to your Role"
            ),
            "{e}"
        );
    }

    #[test]
    fn other_refusals_are_not_called_rbac() {
        let msg = r#"pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"#;
        let e = classify(&ctx(), status(403, msg), "patch", "pods", "shop").to_string();
        assert_eq!(e, format!("the cluster refused patch pods in namespace shop: {msg}"));
    }

    #[test]
    fn rbac_denials_parsed() {
        let d = rbac_denial(r#"nodes is forbidden: User "system:serviceaccount:a:b" cannot list resource "nodes" in API group "" at the cluster scope"#).unwrap();
        assert_eq!(
            d,
            Denial {
                user: "system:serviceaccount:a:b".into(),
                verb: "list".into(),
                resource: "nodes".into(),
                namespace: None
            }
        );
        let d = rbac_denial(r#"deployments.apps "hello" is forbidden: User "dev" cannot patch resource "deployments" in API group "apps" in the namespace "shop": RBAC: role.rbac.authorization.k8s.io "x" not found"#).unwrap();
        assert_eq!(
            (d.verb.as_str(), d.resource.as_str(), d.namespace.as_deref()),
            ("patch", "deployments.apps", Some("shop"))
        );
        let d = rbac_denial(r#"deployments.apps "h" is forbidden: User "dev" cannot update resource "deployments/scale" in API group "apps" in the namespace "s""#).unwrap();
        assert_eq!(d.resource, "deployments.apps/scale");
        assert_eq!(rbac_denial(r#"configmaps "c1" is forbidden: "#), None);
    }

    /// A kubeconfig in `dir` with one context, `context`, on a cluster
    /// given as a YAML flow map (`{server: "…"}`), token user.
    fn kubeconfig(dir: &std::path::Path, context: &str, cluster: &str) -> std::path::PathBuf {
        let path = dir.join("config");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: c\n  cluster: {cluster}\ncontexts:\n- name: {context}\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user: {{token: t}}\n"
            ),
        )
        .unwrap();
        path
    }

    /// Real, not a mock: a client pointed at a loopback port nobody listens on.
    #[tokio::test]
    async fn unreachable_api_server_is_named() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "kind-gone", &format!("{{server: \"{server}\"}}"));
        let opts = KubeOptions { kubeconfig: Some(path), ..Default::default() };
        let cluster = connect_with(&opts, None, None).await.unwrap();
        let e = cluster.ping().await.unwrap_err();
        assert!(matches!(e, KubeError::Unreachable { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains(&server) && e.contains("kind-gone") && e.contains("Is the cluster running"), "{e}");
    }

    /// gohot's own client stack (no Nagle) does not ignore a kubeconfig's
    /// `proxy-url`: kube-rs's client gets it, and refuses this build's lack
    /// of proxy support by naming the proxy, as before.
    #[tokio::test]
    async fn a_proxy_url_is_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = r#"{server: "https://127.0.0.1:6443", proxy-url: "http://127.0.0.1:3128"}"#;
        let path = kubeconfig(dir.path(), "kind-p", cluster);
        let opts = KubeOptions { kubeconfig: Some(path), ..Default::default() };
        let Err(e) = connect_with(&opts, None, None).await else { panic!("a proxy-url kubeconfig was used") };
        let e = e.to_string();
        assert!(e.contains("127.0.0.1:3128") && e.contains("kind-p"), "{e}");
    }

    #[tokio::test]
    async fn remote_context_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path(), "prod", r#"{server: "https://k8s.example.com"}"#);
        let mut opts = KubeOptions { kubeconfig: Some(path), ..Default::default() };
        let e = connect_with(&opts, None, None).await.unwrap_err().to_string();
        assert!(e.contains("--allow-context prod"), "{e}");
        opts.allow_contexts = vec!["prod".into()];
        let c = connect_with(&opts, None, None).await.unwrap();
        assert_eq!(c.context.namespace, "default");
    }
}
