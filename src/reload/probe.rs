//! How gohot knows the new process serves: a probe from the host.

use std::time::{Duration, Instant};

/// How gohot knows the new process is serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Any HTTP answer from this URL.
    Http(String),
    /// A TCP connection to this address.
    Tcp(std::net::SocketAddr),
    /// Only that watchexec started a process from the new binary.
    Started,
}

impl std::fmt::Display for Probe {
    /// As `--probe` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Http(url) => f.write_str(url),
            Probe::Tcp(addr) => write!(f, "tcp:{}", addr.port()),
            Probe::Started => f.write_str("none"),
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
            Probe::Started => Ok(()),
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
