//! `--debug` as the dev loop sees it: one [`Debugger`] for the debugged
//! service, told three things — a new process is on its way
//! ([`Debugger::replacing`]), it answers ([`Debugger::replaced`]), gohot
//! stops ([`Debugger::end`]). Everything else (the editor's session, the
//! replay, the relay) stays behind [`DebugServer`].
//!
//! The order is what keeps gohot's own probe out of the editor's way: the
//! session lets go of the old delve before the binary goes in, the new
//! process runs under a delve that has no breakpoints yet while the probe
//! asks it, and only then are the editor's breakpoints set in it. A reload
//! is reported after that, so `reloaded` means "serving, and stopping where
//! you asked".

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::server::{DebugEvent, DebugEvents, DebugServer, Dial, Timeouts, Upstream};
use super::{DebugError, PathMap};
use crate::hosting::docker::PublishedPort;
use crate::hosting::kube::logs::PodPort;

/// The debug session of one service across its reloads.
pub struct Debugger {
    server: DebugServer,
    events: DebugEvents,
    dial: Mutex<Option<Arc<dyn Dial>>>,
}

impl Debugger {
    /// Listens for editors on `addr` (`127.0.0.1:40000`; port 0 picks one);
    /// what happens to their sessions goes to `events`.
    pub async fn listen(addr: SocketAddr, events: DebugEvents) -> Result<Self, DebugError> {
        let server = DebugServer::bind(addr, events.clone(), Timeouts::default()).await?;
        Ok(Debugger { server, events, dial: Mutex::new(None) })
    }

    /// The address editors attach to.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The app runs under delve, reached by `dial`; its build's sources are
    /// `paths` (the editor's files ↔ the binary's names).
    pub async fn running(&self, dial: Arc<dyn Dial>, paths: PathMap) {
        self.server.set_paths(paths).await;
        self.server.set_upstream(dial.clone());
        if let Ok(mut d) = self.dial.lock() {
            *d = Some(dial);
        }
    }

    /// A new binary (or a kodata file, which restarts the app too) is about
    /// to replace the debugged process: the editor's session lets go of its
    /// delve, so that the restart can end it.
    pub async fn replacing(&self) {
        self.server.release().await;
    }

    /// The new process answers: the editor's session, if there is one, is
    /// attached to its delve and its breakpoints set again before this
    /// returns. A failure is reported as a problem; the session waits for
    /// the next reload.
    pub async fn replaced(&self) {
        let Some(dial) = self.dial.lock().ok().and_then(|d| d.clone()) else { return };
        let started = Instant::now();
        let before = dial.replica();
        match self.server.reattach(dial.clone()).await {
            Ok(Some(replayed)) => {
                let after = dial.replica();
                if after != before {
                    let message = format!("{before} is gone: the debug session moved to {after}");
                    (self.events)(DebugEvent::Problem { message });
                }
                (self.events)(DebugEvent::Reattached {
                    replica: dial.replica(),
                    breakpoints: replayed.breakpoints,
                    verified: replayed.verified,
                    errors: replayed.errors,
                    seconds: started.elapsed().as_secs_f64(),
                })
            }
            Ok(None) => {}
            Err(e) => (self.events)(DebugEvent::Problem { message: e.to_string() }),
        }
    }

    /// gohot stops: the editor is told the session is over (`terminated`).
    pub async fn end(&self) {
        self.server.shutdown().await;
    }
}

/// Delve in a pod, through a port-forward (the session's pod while it lives).
#[async_trait::async_trait]
impl Dial for PodPort {
    fn replica(&self) -> String {
        PodPort::replica(self)
    }
    async fn dial(&self) -> std::io::Result<Box<dyn Upstream>> {
        Ok(Box::new(self.connect().await.map_err(std::io::Error::other)?))
    }
}

/// Delve in a Docker container, through the host port its port is published on.
#[async_trait::async_trait]
impl Dial for PublishedPort {
    fn replica(&self) -> String {
        self.container().to_string()
    }
    async fn dial(&self) -> std::io::Result<Box<dyn Upstream>> {
        let addr = self.addr().await.map_err(std::io::Error::other)?;
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    }
}
