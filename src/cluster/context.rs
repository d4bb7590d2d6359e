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
//! are plainly on the developer's machine, and needs every other context
//! allowed by name (`--allow-context NAME`, or `allowContexts:` in
//! `gohot.yaml`, merged by the CLI). The check runs before any
//! request to the cluster.
//!
//! # The rule
//!
//! A context is local when **both** hold:
//!
//! 1. **Its name is one a local-cluster tool writes**: `kind-*` (KinD),
//!    `k3d-*` (k3d), `minikube` (Minikube's default profile), `docker-desktop`
//!    or `docker-for-desktop` (Docker Desktop), `rancher-desktop`, `orbstack`,
//!    `colima` or `colima-*` (Colima profiles). A name alone proves nothing
//!    (anyone can call a production context `kind-prod`)…
//! 2. **…and its API server is on this machine**: the server URL's host is
//!    - a loopback address (`127.0.0.0/8`, `::1`), `localhost`, or the
//!      unspecified address (`0.0.0.0`, `::`, which k3d writes and which
//!      connects to this machine): KinD, k3d, Docker Desktop, Rancher
//!      Desktop, OrbStack, Colima and Minikube's Docker driver on macOS;
//!    - one of this machine's own addresses (a KinD API server published on
//!      the machine's LAN address);
//!    - or a private (`10/8`, `172.16/12`, `192.168/16`, IPv6 `fc00::/7`) or
//!      link-local (`169.254/16`, `fe80::/10`) address inside a network this
//!      machine hosts ([`hosted_networks`]: a directly connected network that
//!      does not carry the default route and is not a point-to-point link,
//!      that is, a Docker or Podman bridge or a hypervisor's host-only
//!      network — where Minikube's Docker driver (`192.168.49.2`) and VM
//!      drivers (`192.168.39.x`, `192.168.64.x`) put their node). The LAN
//!      and VPN tunnels are not this machine;
//!    - or a host name (`kubernetes.docker.internal`, Docker Desktop's) that
//!      resolves only to such addresses.
//!
//! So `kind-prod` on a public address, `minikube` on a LAN address or a
//! tunnel, and a context of any other name even on loopback (a
//! `kubectl port-forward` or `ssh -L` to a remote API server looks the same
//! as a local one) need allowing. Minikube profiles other than the default
//! are named after the profile and need allowing too. The refusal says which
//! half of the rule failed. [`check_allowed`] is a pure function of the
//! context, the allow list and what [`LocalMachine`] says about this machine.

use std::ffi::OsStr;
use std::net::IpAddr;
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
    /// The kubeconfig's user entry the context uses: who a refusal names
    /// when the API server's own message does not say.
    pub user: String,
}

/// Why a context may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// It is a local cluster (module doc: by name and by server).
    Local,
    /// The user allowed it by name.
    ByName,
}

/// Context names of local cluster tools: exact names, then prefixes.
const LOCAL_NAMES: &[&str] =
    &["minikube", "docker-desktop", "docker-for-desktop", "rancher-desktop", "orbstack", "colima"];
const LOCAL_PREFIXES: &[&str] = &["kind-", "k3d-", "colima-"];

/// A network this machine hosts: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostedNetwork {
    /// The network's address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

impl HostedNetwork {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix.min(32))).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix.min(128))).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Resolves a host name to its addresses.
pub type Resolver = Box<dyn Fn(&str) -> Vec<IpAddr> + Send + Sync>;

/// What the rule needs to know about this machine: the networks it hosts,
/// its own addresses, and how host names resolve. Passed in, so tests
/// describe a machine.
pub struct LocalMachine {
    /// [`hosted_networks`].
    pub networks: Vec<HostedNetwork>,
    /// Whether an address is one of this machine's own (a KinD API server
    /// published on the machine's LAN address is still on this machine).
    pub own_address: Box<dyn Fn(IpAddr) -> bool + Send + Sync>,
    /// Resolves a host name to its addresses (empty: it does not resolve).
    pub resolve: Resolver,
}

impl LocalMachine {
    /// This machine: its routing table, its addresses (those a socket can
    /// bind), the system resolver.
    pub fn this() -> Self {
        LocalMachine {
            networks: hosted_networks(),
            own_address: Box::new(|ip| std::net::UdpSocket::bind((ip, 0)).is_ok()),
            resolve: Box::new(|host| {
                use std::net::ToSocketAddrs;
                (host, 0).to_socket_addrs().map(|a| a.map(|s| s.ip()).collect()).unwrap_or_default()
            }),
        }
    }

    /// Whether `ip` is on this machine: loopback, unspecified (connects
    /// here), one of its own addresses, or a private or link-local address
    /// in a network it hosts.
    pub fn holds(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_loopback()
            || ip.is_unspecified()
            || (is_private_or_link_local(ip) && self.networks.iter().any(|n| n.contains(ip)))
            || (self.own_address)(ip)
    }
}

/// Whether the name is one a local-cluster tool writes (half 1 of the rule).
pub fn name_is_local(name: &str) -> bool {
    LOCAL_NAMES.contains(&name) || LOCAL_PREFIXES.iter().any(|p| name.starts_with(p) && name.len() > p.len())
}

/// Half 2 of the rule: Ok when the API server is on this machine, else
/// why not (for the refusal).
pub fn server_is_local(server: &str, machine: &LocalMachine) -> Result<(), String> {
    let Ok(uri) = server.parse::<http::Uri>() else {
        return Err(format!("its server {server:?} is not a URL"));
    };
    let Some(host) = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']')) else {
        return Err(format!("its server {server:?} names no host"));
    };
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(());
    }
    let (addresses, resolved) = match host.parse::<IpAddr>() {
        Ok(ip) => (vec![ip], false),
        Err(_) => ((machine.resolve)(host), true),
    };
    if addresses.is_empty() {
        return Err(format!("its server's host {host} does not resolve"));
    }
    for ip in addresses {
        if !machine.holds(ip) {
            let at =
                if resolved { format!("its server's host {host} is {ip}, which") } else { format!("its server {ip}") };
            let kind = if is_private_or_link_local(ip) {
                "is a private address outside every network this machine hosts (a LAN or a tunnel, not a bridge of \
                 its own)"
            } else {
                "is not on this machine"
            };
            return Err(format!("{at} {kind}"));
        }
    }
    Ok(())
}

fn is_private_or_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether a context is a cluster on this machine (the module doc's rule);
/// Err says which half failed.
pub fn is_local(name: &str, server: &str, machine: &LocalMachine) -> Result<(), String> {
    if !name_is_local(name) {
        return Err("its name is not one a local-cluster tool writes (kind-*, k3d-*, minikube, docker-desktop, \
                    rancher-desktop, orbstack, colima[-*])"
            .to_string());
    }
    server_is_local(server, machine).map_err(|why| format!("its name says local, but {why}"))
}

/// The networks this machine hosts, from Linux's routing table: directly
/// connected networks (no gateway) on interfaces that carry no default
/// route and are not point-to-point (`/sys/class/net/IF/flags`). Elsewhere
/// none: only loopback counts as this machine.
pub fn hosted_networks() -> Vec<HostedNetwork> {
    #[cfg(target_os = "linux")]
    {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let point_to_point = |iface: &str| {
            let flags = read(&format!("/sys/class/net/{iface}/flags"));
            u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x10 != 0)
        };
        parse_routes(&read("/proc/net/route"), &read("/proc/net/ipv6_route"), point_to_point)
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// [`hosted_networks`] from `/proc/net/route` and `/proc/net/ipv6_route`'s text. Pure.
pub fn parse_routes(v4: &str, v6: &str, point_to_point: impl Fn(&str) -> bool) -> Vec<HostedNetwork> {
    const RTF_GATEWAY: u32 = 0x2;
    // (interface, network, default route?, has a gateway?)
    let mut routes: Vec<(String, HostedNetwork, bool, bool)> = Vec::new();
    for line in v4.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(iface), Some(dest), Some(gw), Some(flags), Some(mask)) =
            (f.first(), f.get(1), f.get(2), f.get(3), f.get(7))
        else {
            continue;
        };
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(gw), Some(flags), Some(mask)) = (hex(dest), hex(gw), hex(flags), hex(mask)) else {
            continue;
        };
        // The kernel prints them in host (little-endian) byte order.
        let addr = IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(dest.to_le())));
        let prefix = u32::from_be(mask.to_le()).leading_ones() as u8;
        let net = HostedNetwork { addr, prefix };
        routes.push((iface.to_string(), net, prefix == 0, gw != 0 || flags & RTF_GATEWAY != 0));
    }
    for line in v6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(dest), Ok(prefix), Ok(next), Ok(flags)) = (
            u128::from_str_radix(f[0], 16),
            u8::from_str_radix(f[1], 16),
            u128::from_str_radix(f[4], 16),
            u32::from_str_radix(f[8], 16),
        ) else {
            continue;
        };
        let net = HostedNetwork { addr: IpAddr::V6(std::net::Ipv6Addr::from(dest)), prefix };
        routes.push((f[9].to_string(), net, prefix == 0, next != 0 || flags & RTF_GATEWAY != 0));
    }
    let default_ifaces: Vec<&str> = routes.iter().filter(|r| r.2).map(|r| r.0.as_str()).collect();
    routes
        .iter()
        .filter(|(iface, _, default, gateway)| {
            !default && !gateway && iface != "lo" && !default_ifaces.contains(&iface.as_str()) && !point_to_point(iface)
        })
        .map(|r| r.1)
        .collect()
}

/// The safety rule: local contexts are allowed; any other only if named in
/// `allowed`. The refusal names the context, its server, the half of the
/// rule that refused it, and how to allow it.
pub fn check_allowed(ctx: &ContextInfo, allowed: &[String], machine: &LocalMachine) -> Result<Allowed, KubeError> {
    match is_local(&ctx.name, &ctx.server, machine) {
        Ok(()) => Ok(Allowed::Local),
        Err(_) if allowed.iter().any(|a| a == &ctx.name) => Ok(Allowed::ByName),
        Err(rule) => Err(KubeError::ContextNotAllowed { context: ctx.name.clone(), server: ctx.server.clone(), rule }),
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
    Ok(ContextInfo {
        name,
        cluster: ctx.cluster.clone(),
        server,
        namespace,
        user: ctx.user.clone().unwrap_or_default(),
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
        ContextInfo {
            name: name.into(),
            cluster: name.into(),
            server: server.into(),
            namespace: "default".into(),
            user: "u".into(),
        }
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

    /// A machine with a Docker bridge (172.17/16), Minikube's Docker network
    /// (192.168.49/24) and a KVM host-only network (192.168.39/24); its LAN
    /// is 10.0.0.0/24 (the default route) and a VPN gives 10.8.0.0/16.
    fn laptop() -> LocalMachine {
        let v4 = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
                  wlan0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  wlan0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                  br-1a2b\t0031A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  virbr1\t0027A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  tun0\t0000080A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                  tun0\t0000000A\t0100080A\t0003\t0\t0\t0\t000000FF\t0\t0\t0\n";
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003    wlan0\n\
                  fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  docker0\n";
        LocalMachine {
            networks: parse_routes(v4, v6, |iface| iface == "tun0"),
            own_address: Box::new(|ip| ip == IpAddr::from([10, 0, 0, 42])),
            resolve: Box::new(|host| match host {
                "kubernetes.docker.internal" => vec!["127.0.0.1".parse().unwrap()],
                "minikube.lan" => vec!["127.0.0.1".parse().unwrap(), "10.0.0.9".parse().unwrap()],
                "prod.example.com" => vec!["203.0.113.7".parse().unwrap()],
                _ => vec![],
            }),
        }
    }

    #[test]
    fn hosted_networks_are_bridges_not_the_lan_or_tunnels() {
        let nets = laptop().networks;
        let shown: Vec<String> = nets.iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect();
        assert_eq!(shown, ["172.17.0.0/16", "192.168.49.0/24", "192.168.39.0/24", "fd00::/64"]);
        // This machine's real table parses (whatever it holds).
        let _ = hosted_networks();
    }

    #[test]
    fn local_means_a_local_tools_name_and_a_server_on_this_machine() {
        let m = laptop();
        let local = |name: &str, server: &str| is_local(name, server, &m);
        // What each tool writes.
        for (name, server) in [
            ("kind-dev", "https://127.0.0.1:41234"),
            ("k3d-dev", "https://0.0.0.0:6550"),
            ("minikube", "https://192.168.49.2:8443"),
            ("minikube", "https://192.168.39.17:8443"),
            ("minikube", "https://127.0.0.1:32771"),
            ("docker-desktop", "https://kubernetes.docker.internal:6443"),
            ("docker-for-desktop", "https://localhost:6443"),
            ("rancher-desktop", "https://127.0.0.1:6443"),
            ("orbstack", "https://127.0.0.1:26443"),
            ("colima", "https://127.0.0.1:6443"),
            ("colima-work", "https://[::1]:6443"),
            ("kind-v6", "https://[fd00::5]:6443"),
            ("kind-shared", "https://10.0.0.42:6443"), // the laptop's own LAN address
        ] {
            assert_eq!(local(name, server), Ok(()), "{name} at {server}");
        }
        // A local tool's name, a server elsewhere: refused, saying so.
        for (name, server, why) in [
            (
                "kind-prod",
                "https://prod.example.com:6443",
                "prod.example.com is 203.0.113.7, which is not on this machine",
            ),
            ("minikube", "https://34.1.2.3:443", "its server 34.1.2.3 is not on this machine"),
            // The unit test that called this local read a name and ignored the server: 10.0.0.1 is
            // on the LAN (the default route's network), no network of this machine's own.
            ("kind-a", "https://10.0.0.1", "private address outside every network this machine hosts"),
            ("minikube", "https://10.8.3.4:8443", "private address outside"), // over the VPN
            ("docker-desktop", "https://minikube.lan:6443", "10.0.0.9"),      // resolves partly elsewhere
            ("k3d-x", "https://nowhere.invalid:6443", "does not resolve"),
            ("kind-x", "not a url", "not a URL"),
        ] {
            let err = local(name, server).unwrap_err();
            assert!(err.contains("its name says local") && err.contains(why), "{name} at {server}: {err}");
        }
        // Any other name, even on loopback (a port-forward or ssh -L to a remote cluster looks the same).
        for (name, server) in [
            ("default", "https://127.0.0.1:6443"),
            ("kind", "https://127.0.0.1:1"),
            ("kind-", "https://127.0.0.1:1"),
            ("minikube-prod", "https://192.168.49.2:8443"),
        ] {
            let err = local(name, server).unwrap_err();
            assert!(err.contains("its name is not one a local-cluster tool writes"), "{name}: {err}");
        }
    }

    #[test]
    fn remote_context_needs_allowing_by_name() {
        let m = laptop();
        let prod = ctx("prod-eu", "https://prod.example.com:6443");
        let err = check_allowed(&prod, &[], &m).unwrap_err().to_string();
        assert!(err.contains("prod-eu") && err.contains("--allow-context prod-eu"), "{err}");
        assert!(err.contains("https://prod.example.com:6443") && err.contains("its name is not one"), "{err}");
        assert!(check_allowed(&prod, &["other".into()], &m).is_err());
        assert_eq!(check_allowed(&prod, &["prod-eu".into()], &m).unwrap(), Allowed::ByName);
        let kind_a = ctx("kind-a", "https://10.0.0.1");
        let err = check_allowed(&kind_a, &[], &m).unwrap_err().to_string();
        assert!(err.contains("its name says local, but") && err.contains("--allow-context kind-a"), "{err}");
        assert_eq!(check_allowed(&kind_a, &["kind-a".into()], &m).unwrap(), Allowed::ByName);
        assert_eq!(check_allowed(&ctx("kind-dev", "https://127.0.0.1:1"), &[], &m).unwrap(), Allowed::Local);
    }

    #[test]
    fn selects_context_and_namespace() {
        let config = Kubeconfig::from_yaml(CONFIG).unwrap();
        let c = select_context(&config, None, None).unwrap();
        assert_eq!(c, ContextInfo { user: "kind-dev".into(), ..ctx("kind-dev", "https://127.0.0.1:41234") });
        let c = select_context(&config, Some("prod-eu"), None).unwrap();
        assert_eq!((c.server.as_str(), c.namespace.as_str()), ("https://prod.example.com:6443", "shop"));
        assert_eq!(c.user, "admin", "the kubeconfig's user entry: who a refusal without a reason names");
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
    fn kind_cluster_names() {
        assert_eq!(kind_cluster("kind-kind"), Some("kind"));
        assert_eq!(kind_cluster("kind-dev"), Some("dev"));
        assert_eq!(kind_cluster("minikube"), None);
    }
}
