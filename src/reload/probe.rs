//! How gohot knows the new process serves: from inside the container, by
//! the helper, in the same reply as the put (no round trip of its own; an
//! exit is seen at once) — or from the host, at a URL or address the user
//! named.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ReloadOptions;
use crate::hosting::Target;
use crate::wayin::{self, Serving};

/// How gohot knows the new process is serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Any HTTP answer from this URL (from the host).
    Http(String),
    /// A TCP connection to this address (from the host).
    Tcp(std::net::SocketAddr),
    /// The helper probes the app's port inside each container right after
    /// the restart, and answers the put only once the new process answers
    /// or has exited: on a cluster, no port-forward in a reload's path.
    InContainer(ContainerProbe),
    /// HTTP inside the container on the app's port, once the target knows it
    /// (what `gohot dev` does when no probe is named): the caller turns it
    /// into [`Probe::InContainer`], or [`Probe::Started`] when the app
    /// declares no port.
    AppPort,
    /// Only that watchexec started a process from the new binary.
    Started,
}

/// A probe the helper runs inside the container, on its loopback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerProbe {
    /// The app's port in the container.
    pub port: u16,
    /// Any HTTP answer (else: a connection accepted).
    pub http: bool,
}

impl ContainerProbe {
    /// Any HTTP answer on `port`.
    pub fn http(port: u16) -> Self {
        ContainerProbe { port, http: true }
    }
}

impl std::fmt::Display for ContainerProbe {
    /// As the helper's `-probe` takes it: `http:8080`, `tcp:5432`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", if self.http { "http" } else { "tcp" }, self.port)
    }
}

impl std::fmt::Display for Probe {
    /// As `--probe` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Http(url) => f.write_str(url),
            Probe::Tcp(addr) => write!(f, "tcp:{}", addr.port()),
            Probe::Started => f.write_str("none"),
            Probe::InContainer(p) => write!(f, "{p} (inside the container)"),
            Probe::AppPort => f.write_str("the app's port (inside the container)"),
        }
    }
}

impl std::str::FromStr for Probe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Probe::parse(s)
    }
}

impl Probe {
    /// Parses `--probe`: an `http://` or `https://` URL, `tcp:PORT` (on
    /// 127.0.0.1), or `none`.
    pub fn parse(spec: &str) -> Result<Probe, String> {
        match spec {
            "none" => Ok(Probe::Started),
            p if p.starts_with("http://") || p.starts_with("https://") => Ok(Probe::Http(p.into())),
            p => match p.strip_prefix("tcp:").and_then(|port| port.parse::<u16>().ok()) {
                Some(port) => Ok(Probe::Tcp(([127, 0, 0, 1], port).into())),
                None => Err(format!("invalid probe {p:?}: use an http:// URL, tcp:PORT or none")),
            },
        }
    }

    /// Waits until the probe answers, at most `timeout`.
    pub async fn wait(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        match self {
            // The helper waited for it already, in each put.
            Probe::Started | Probe::AppPort | Probe::InContainer(_) => Ok(()),
            Probe::Tcp(addr) => loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(format!("the app did not accept connections on {addr} within {timeout:?}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            },
            Probe::Http(url) => {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .map_err(|e| e.to_string())?;
                loop {
                    if client.get(url).send().await.is_ok() {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(format!("the app did not answer {url} within {timeout:?}"));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

/// Waits until the app's process serves in one of the target's replicas —
/// the session's first start — and says how it went: the helper waits in
/// the container as it does after a put (`helper serving`), in a one-shot
/// exec so that the replica's session stays free for a reload meanwhile.
/// A probe from the host is tried from the host. Err: no replica answered,
/// with the reason of one.
pub async fn first_answer(target: &dyn Target, opts: &ReloadOptions) -> Result<(), String> {
    let probe = match &opts.probe {
        Probe::Http(_) | Probe::Tcp(_) => return opts.probe.wait(opts.restart_timeout).await,
        Probe::InContainer(p) => Some(p.to_string()),
        Probe::Started | Probe::AppPort => None,
    };
    let replicas = target.replicas().await.map_err(|e| e.to_string())?;
    if replicas.is_empty() {
        return Err("no replica is running".into());
    }
    let argv = wayin::serving_argv(&opts.dest, opts.restart_timeout, probe.as_deref());
    let tries = replicas.iter().map(|r| {
        let argv = &argv;
        let probing = probe.is_some();
        Box::pin(async move {
            let out = target.exec(r, argv, Bytes::new()).await.map_err(|e| e.to_string())?;
            match wayin::parse_serving_status(&out.stdout, probing) {
                Ok(Serving::Answered) => Ok(()),
                Ok(Serving::Exited(how)) => {
                    let how = if how.is_empty() { String::new() } else { format!(" ({how})") };
                    Err(format!("{}: the app exited before it answered{how}", r.name))
                }
                Ok(Serving::NotYet) => {
                    Err(format!("{}: the app did not answer within {:?} of starting", r.name, opts.restart_timeout))
                }
                Err(e) => Err(format!("{}: {e}", r.name)),
            }
        })
    });
    futures::future::select_ok(tries).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_specs() {
        assert_eq!(Probe::parse("none"), Ok(Probe::Started));
        assert_eq!(
            Probe::parse("http://127.0.0.1:8080/healthz"),
            Ok(Probe::Http("http://127.0.0.1:8080/healthz".into()))
        );
        assert_eq!(Probe::parse("tcp:9090"), Ok(Probe::Tcp(([127, 0, 0, 1], 9090).into())));
        for bad in ["tcp:x", "8080", "ftp://x"] {
            assert!(Probe::parse(bad).unwrap_err().contains("http:// URL, tcp:PORT or none"), "{bad}");
        }
    }

    /// A real listener on loopback answers the TCP probe; a closed port does
    /// not, and the error names the address.
    #[tokio::test]
    async fn tcp_probe_waits_for_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        Probe::Tcp(addr).wait(Duration::from_secs(5)).await.unwrap();
        drop(l);
        let e = Probe::Tcp(addr).wait(Duration::from_millis(50)).await.unwrap_err();
        assert!(e.contains(&addr.to_string()), "{e}");
    }
}
