//! A simulated network link, for the cluster tests and `bench/reload --link`:
//! a TCP relay on 127.0.0.1 in front of a server (the API server, a
//! registry) that delays each direction by half the round-trip time and
//! paces each direction to a bandwidth. The bandwidth is one link shared by
//! every connection through the relay, as a developer's uplink is. Bytes
//! pass through untouched, TLS included: a client that verified the server
//! by its IP or name still does (point a copy of the kubeconfig at
//! [`Link::addr`], with `tls-server-name` where the certificate names a host).
//!
//! The kernel here has no netem; this is the same model in user space: a
//! chunk read from one side leaves once the link is free and its bits have
//! been sent at the link's rate, and arrives half a round trip later.
//!
//! It counts what crosses it ([`Counts`]): bytes each way, connections
//! opened, and *turns* — how often the client spoke again after the server
//! last did (or first). With the delay injected, everything a client sends
//! at once reaches the relay long before any answer can, so a turn is one
//! round trip the client waited for: a reload that makes one request per
//! replica in parallel over open sessions is one turn, whatever the number
//! of replicas.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The link's shape.
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    /// Round-trip time added (half each way).
    pub rtt: Duration,
    /// Client → server rate, bits per second (None: unlimited).
    pub up_bps: Option<u64>,
    /// Server → client rate, bits per second (None: unlimited).
    pub down_bps: Option<u64>,
}

impl LinkSpec {
    /// `rtt` milliseconds, `mbit` Mbit/s up (down unlimited: downloads are
    /// replies and logs here, and links are asymmetric the other way).
    pub fn new(rtt_ms: u64, up_mbit: f64) -> Self {
        LinkSpec { rtt: Duration::from_millis(rtt_ms), up_bps: Some((up_mbit * 1e6) as u64), down_bps: None }
    }
}

/// What crossed the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Bytes client → server.
    pub up: u64,
    /// Bytes server → client.
    pub down: u64,
    /// Connections opened.
    pub connections: u64,
    /// Times the client spoke after the server had (see the module doc).
    pub turns: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            up: self.up - o.up,
            down: self.down - o.down,
            connections: self.connections - o.connections,
            turns: self.turns - o.turns,
        }
    }
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
    turns: AtomicU64,
    /// Who spoke last: 0 nobody, 1 the client, 2 the server.
    last: AtomicU8,
}

/// One direction of the link: when it is next free to send.
struct Pipe {
    bps: Option<u64>,
    free_at: Mutex<Instant>,
}

impl Pipe {
    /// When `len` bytes read now have been sent at the link's rate.
    fn departure(&self, len: usize) -> Instant {
        let now = Instant::now();
        let Some(bps) = self.bps else { return now };
        let mut free = self.free_at.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*free).max(now);
        *free = start + Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
        *free
    }
}

/// A running relay; dropping it stops it and closes its connections.
pub struct Link {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Link {
    /// A relay on a free port of 127.0.0.1 to `upstream`.
    pub fn start(upstream: SocketAddr, spec: LinkSpec) -> Link {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the link's port");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("the link's address");
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let c = counters.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                let up = Arc::new(Pipe { bps: spec.up_bps, free_at: Mutex::new(Instant::now()) });
                let down = Arc::new(Pipe { bps: spec.down_bps, free_at: Mutex::new(Instant::now()) });
                let half = spec.rtt / 2;
                let accept = async {
                    while let Ok((client, _)) = listener.accept().await {
                        c.connections.fetch_add(1, Ordering::SeqCst);
                        let (c, up, down) = (c.clone(), up.clone(), down.clone());
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(upstream).await else { return };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (cr, cw) = client.into_split();
                            let (sr, sw) = server.into_split();
                            tokio::join!(relay(cr, sw, up, half, c.clone(), true), relay(sr, cw, down, half, c, false));
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Link { addr, counters, stop: Some(stop), thread: Some(thread) }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What crossed the link so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            up: c.up.load(Ordering::SeqCst),
            down: c.down.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
            turns: c.turns.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// At most this much per scheduled piece: a packet's worth, so that pacing
/// delivers a large write progressively, as a link does.
const PIECE: usize = 1500;

/// Moves bytes from `from` to `to` through one direction of the link.
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    pipe: Arc<Pipe>,
    delay: Duration,
    counters: Arc<Counters>,
    client_side: bool,
) {
    // Reading never waits for the writer: the link holds what is in flight.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            if n == 0 {
                let _ = tx.send((Instant::now() + delay, None));
                return;
            }
            if client_side {
                counters.up.fetch_add(n as u64, Ordering::SeqCst);
                if counters.last.swap(1, Ordering::SeqCst) != 1 {
                    counters.turns.fetch_add(1, Ordering::SeqCst);
                }
            } else {
                counters.down.fetch_add(n as u64, Ordering::SeqCst);
                counters.last.store(2, Ordering::SeqCst);
            }
            for piece in buf[..n].chunks(PIECE) {
                let at = pipe.departure(piece.len()) + delay;
                if tx.send((at, Some(piece.to_vec()))).is_err() {
                    return;
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, piece)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            match piece {
                Some(p) => {
                    if to.write_all(&p).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// A link in front of the API server of `kubeconfig`'s current context, and
/// a copy of the kubeconfig written to `out` that reaches the cluster
/// through it. TLS passes through untouched, so the certificate must still
/// name what the client checks: a server named by host name keeps that name
/// as `tls-server-name`.
pub fn api_server_link(kubeconfig: &std::path::Path, spec: LinkSpec, out: &std::path::Path) -> Link {
    let text = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("kubeconfig YAML");
    let current = config["current-context"].as_str().expect("current-context").to_string();
    let contexts = config["contexts"].as_sequence().expect("contexts");
    let context = contexts.iter().find(|c| c["name"] == current.as_str()).expect("the current context");
    let cluster = context["context"]["cluster"].as_str().expect("its cluster").to_string();
    let clusters = config["clusters"].as_sequence_mut().expect("clusters");
    let entry = clusters.iter_mut().find(|c| c["name"] == cluster.as_str()).expect("the context's cluster");
    let server: http::Uri = entry["cluster"]["server"].as_str().expect("server").parse().expect("server URL");
    let host = server.host().expect("server host").trim_matches(['[', ']']).to_string();
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), server.port_u16().unwrap_or(443)))
        .expect("resolve the API server")
        .next()
        .expect("an address");
    let link = Link::start(upstream, spec);
    entry["cluster"]["server"] = format!("https://127.0.0.1:{}", link.addr().port()).into();
    if host.parse::<std::net::IpAddr>().is_err() {
        entry["cluster"]["tls-server-name"] = host.into();
    }
    std::fs::write(out, serde_yaml_ng::to_string(&config).expect("YAML")).expect("write the kubeconfig");
    link
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// An echo server on loopback: what the link is tested against.
    fn echo() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Bytes cross intact both ways; each request answered is one turn,
    /// two requests written at once before reading are one turn; the
    /// connection and the bytes are counted.
    #[test]
    fn relays_and_counts_turns() {
        let link = Link::start(echo(), LinkSpec { rtt: Duration::from_millis(40), up_bps: None, down_bps: None });
        let mut s = std::net::TcpStream::connect(link.addr()).unwrap();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&payload).unwrap();
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back).unwrap();
        assert!(back == payload, "the bytes came back intact");
        s.write_all(b"a").unwrap();
        s.write_all(b"b").unwrap();
        let mut two = [0u8; 2];
        s.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"ab");
        let c = link.counts();
        assert_eq!((c.up, c.down, c.connections, c.turns), (100_002, 100_002, 1, 2), "{c:?}");
    }
}
