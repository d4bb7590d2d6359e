//! Which cluster gohot talks to, and whether it may: reading the kubeconfig
//! (`--kubeconfig` / `KUBECONFIG` / `~/.kube/config`, `--context`,
//! `--namespace`) and the context-safety rule.
//!
//! # Why a safety rule
//!
//! `gohot dev` replaces the binary inside running containers. Doing that by
//! accident to a shared or production cluster (a stale `current-context`) is
//! the one mistake a hot-reload tool must not make. As Tilt's
//! `allow_k8s_contexts` does, gohot acts without asking only on clusters that
//! are plainly on the developer's machine — contexts named as KinD, Minikube,
//! Docker Desktop, k3d, Rancher Desktop or OrbStack name them, or any whose
//! API server is on loopback — and needs every other context allowed by name
//! (`--allow-context NAME`, or `allowContexts:` in `gohot.yaml`, read by
//! [`allowed_from_config`]). [`check_allowed`] is a pure function of the
//! context and the allow list.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use ::kube::config::Kubeconfig;

use super::KubeError;

/// The context gohot will use, as the kubeconfig describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextInfo {
    /// Context name (`kind-dev`, `minikube`, `prod-eu`).
    pub name: String,
    /// The cluster entry it points at.
    pub cluster: String,
    /// The API server URL (`https://127.0.0.1:6443`).
    pub server: String,
    /// Namespace for namespaced objects that name none: `--namespace`, else
    /// the context's, else `default`.
    pub namespace: String,
}

/// Why a context may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// It is a local cluster (by name or loopback API server).
    Local,
    /// The user allowed it by name.
    ByName,
}

/// Context names of local cluster tools: exact names, then prefixes.
const LOCAL_NAMES: &[&str] = &["minikube", "docker-desktop", "docker-for-desktop", "rancher-desktop", "orbstack"];
const LOCAL_PREFIXES: &[&str] = &["kind-", "k3d-"];

/// Whether a context is a cluster on this machine: named by a local cluster
/// tool, or its API server is on loopback.
pub fn is_local(name: &str, server: &str) -> bool {
    LOCAL_NAMES.contains(&name) || LOCAL_PREFIXES.iter().any(|p| name.starts_with(p)) || server_is_loopback(server)
}

/// Whether the API server URL's host is `localhost`, `127.0.0.0/8` or `::1`.
pub fn server_is_loopback(server: &str) -> bool {
    let Ok(uri) = server.parse::<http::Uri>() else { return false };
    let Some(host) = uri.host() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// The safety rule: local contexts are allowed; any other only if named in
/// `allowed`. The refusal names the context, its server, and how to allow it.
pub fn check_allowed(ctx: &ContextInfo, allowed: &[String]) -> Result<Allowed, KubeError> {
    if is_local(&ctx.name, &ctx.server) {
        Ok(Allowed::Local)
    } else if allowed.iter().any(|a| a == &ctx.name) {
        Ok(Allowed::ByName)
    } else {
        Err(KubeError::ContextNotAllowed { context: ctx.name.clone(), server: ctx.server.clone() })
    }
}

/// Where the kubeconfig comes from: `explicit` (`--kubeconfig`), else the
/// `KUBECONFIG` value (a path list, merged), else `~/.kube/config` under `home`.
/// Environment values are passed in so tests never read the ambient config.
pub fn read_kubeconfig(
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    home: Option<&Path>,
) -> Result<Kubeconfig, KubeError> {
    let paths: Vec<PathBuf> = match (explicit, env) {
        (Some(p), _) => vec![p.to_path_buf()],
        (None, Some(v)) if !v.is_empty() => std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()).collect(),
        _ => home.map(|h| vec![h.join(".kube").join("config")]).unwrap_or_default(),
    };
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
    if existing.is_empty() {
        let looked = if paths.is_empty() {
            "no home directory".to_string()
        } else {
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        };
        return Err(KubeError::NoKubeconfig { looked });
    }
    let mut merged: Option<Kubeconfig> = None;
    for p in existing {
        let config = Kubeconfig::read_from(p)
            .map_err(|e| KubeError::Kubeconfig { path: p.display().to_string(), detail: e.to_string() })?;
        merged = Some(match merged {
            None => config,
            Some(m) => m
                .merge(config)
                .map_err(|e| KubeError::Kubeconfig { path: p.display().to_string(), detail: e.to_string() })?,
        });
    }
    merged.ok_or(KubeError::NoKubeconfig { looked: String::new() })
}

/// Picks the context (`--context`, else `current-context`) and describes it.
pub fn select_context(
    config: &Kubeconfig,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<ContextInfo, KubeError> {
    let known = || config.contexts.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(", ");
    let name = match context.or(config.current_context.as_deref()).filter(|c| !c.is_empty()) {
        Some(n) => n.to_string(),
        None => return Err(KubeError::NoContext { known: known() }),
    };
    let Some(ctx) = config.contexts.iter().find(|c| c.name == name).and_then(|c| c.context.as_ref()) else {
        return Err(KubeError::UnknownContext { context: name, known: known() });
    };
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    let namespace = namespace
        .map(str::to_string)
        .or_else(|| ctx.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    Ok(ContextInfo { name, cluster: ctx.cluster.clone(), server, namespace })
}

/// `allowContexts:` from `gohot.yaml` in `dir`, read by the one gohot.yaml
/// parser ([`crate::config::gohot`]), so the whole file is checked. No file is an
/// empty list.
pub fn allowed_from_config(dir: &Path) -> Result<Vec<String>, KubeError> {
    // One parser for gohot.yaml: the same schema the dev loop reads.
    crate::config::gohot::GohotConfig::load(dir).map(|c| c.allow_contexts).map_err(|e| KubeError::Kubeconfig {
        path: dir.join(crate::config::gohot::FILE_NAME).display().to_string(),
        detail: e.to_string(),
    })
}

/// Whether the context is Minikube's default profile (`minikube`). Other
/// profiles are chosen with `KO_DOCKER_REPO=minikube.local` and `MINIKUBE_PROFILE`.
pub fn is_minikube(ctx: &ContextInfo) -> bool {
    ctx.name == "minikube"
}

/// The KinD cluster name of a `kind-<name>` context.
pub fn kind_cluster(context: &str) -> Option<&str> {
    context.strip_prefix("kind-").filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str, server: &str) -> ContextInfo {
        ContextInfo { name: name.into(), cluster: name.into(), server: server.into(), namespace: "default".into() }
    }

    const CONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: kind-dev
clusters:
- name: kind-dev
  cluster: {server: "https://127.0.0.1:41234"}
- name: prod
  cluster: {server: "https://prod.example.com:6443"}
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev}
- name: prod-eu
  context: {cluster: prod, user: admin, namespace: shop}
users:
- name: kind-dev
  user: {token: abc}
- name: admin
  user: {token: def}
"#;

    #[test]
    fn local_contexts_by_name_and_server() {
        for name in ["kind-dev", "minikube", "docker-desktop", "k3d-x", "rancher-desktop", "orbstack"] {
            assert!(is_local(name, "https://10.1.2.3:6443"), "{name}");
        }
        for server in ["https://127.0.0.1:6443", "https://localhost:1", "https://[::1]:6443", "http://127.3.4.5"] {
            assert!(is_local("anything", server), "{server}");
        }
        assert!(!is_local("prod", "https://prod.example.com:6443"));
        assert!(!is_local("kind", "https://10.0.0.1")); // "kind" alone is not KinD's naming
        assert!(!is_local("minikube-prod", "https://10.0.0.1"));
        assert!(!is_local("x", "not a url"));
    }

    #[test]
    fn remote_context_needs_allowing_by_name() {
        let prod = ctx("prod-eu", "https://prod.example.com:6443");
        let err = check_allowed(&prod, &[]).unwrap_err().to_string();
        assert!(err.contains("prod-eu") && err.contains("--allow-context prod-eu"), "{err}");
        assert!(err.contains("https://prod.example.com:6443"), "{err}");
        assert!(check_allowed(&prod, &["other".into()]).is_err());
        assert_eq!(check_allowed(&prod, &["prod-eu".into()]).unwrap(), Allowed::ByName);
        assert_eq!(check_allowed(&ctx("kind-a", "https://10.0.0.1"), &[]).unwrap(), Allowed::Local);
    }

    #[test]
    fn selects_context_and_namespace() {
        let config = Kubeconfig::from_yaml(CONFIG).unwrap();
        let c = select_context(&config, None, None).unwrap();
        assert_eq!(c, ctx("kind-dev", "https://127.0.0.1:41234"));
        let c = select_context(&config, Some("prod-eu"), None).unwrap();
        assert_eq!((c.server.as_str(), c.namespace.as_str()), ("https://prod.example.com:6443", "shop"));
        let c = select_context(&config, Some("prod-eu"), Some("dev")).unwrap();
        assert_eq!(c.namespace, "dev");
        let err = select_context(&config, Some("nope"), None).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("kind-dev, prod-eu"), "{err}");
        let empty = Kubeconfig::from_yaml("apiVersion: v1\nkind: Config\n").unwrap();
        let err = select_context(&empty, None, None).unwrap_err().to_string();
        assert!(err.contains("--context"), "{err}");
    }

    #[test]
    fn kubeconfig_sources() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_kubeconfig(None, None, Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains(".kube/config") && err.contains("KUBECONFIG"), "{err}");
        let missing = dir.path().join("missing");
        let err = read_kubeconfig(Some(&missing), None, None).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");

        let a = dir.path().join("a");
        std::fs::write(&a, CONFIG).unwrap();
        let b = dir.path().join("b");
        std::fs::write(&b, "apiVersion: v1\nkind: Config\ncontexts:\n- name: extra\n  context: {cluster: kind-dev}\n")
            .unwrap();
        let env = std::env::join_paths([&a, &b]).unwrap();
        let merged = read_kubeconfig(None, Some(&env), None).unwrap();
        assert_eq!(merged.contexts.len(), 3);
        assert_eq!(merged.current_context.as_deref(), Some("kind-dev"));
        // --kubeconfig wins over KUBECONFIG.
        let only_b = read_kubeconfig(Some(&b), Some(&env), None).unwrap();
        assert_eq!(only_b.contexts.len(), 1);

        std::fs::write(&a, "clusters: [[[").unwrap();
        let err = read_kubeconfig(Some(&a), None, None).unwrap_err().to_string();
        assert!(err.contains(&a.display().to_string()), "{err}");
    }

    #[test]
    fn allow_list_from_gohot_yaml() {
        let dir = tempfile::tempdir().unwrap();
        assert!(allowed_from_config(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join("gohot.yaml"), "sync: {}\nallowContexts: [staging, prod-eu]\n").unwrap();
        assert_eq!(allowed_from_config(dir.path()).unwrap(), ["staging", "prod-eu"]);
        std::fs::write(dir.path().join("gohot.yaml"), "allowContexts: staging\n").unwrap();
        let e = allowed_from_config(dir.path()).unwrap_err().to_string();
        assert!(e.contains("gohot.yaml") && e.contains("list of context names"), "{e}");
    }

    #[test]
    fn kind_cluster_names() {
        assert_eq!(kind_cluster("kind-kind"), Some("kind"));
        assert_eq!(kind_cluster("kind-dev"), Some("dev"));
        assert_eq!(kind_cluster("minikube"), None);
    }
}
