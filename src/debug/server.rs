//! The I/O around [`Session`]: gohot's listener on `127.0.0.1:40000`
//! (`--debug-port`), one editor's DAP session at a time, and a plain relay
//! for clients that speak delve's JSON-RPC (GoLand, `dlv connect`).
//!
//! The first bytes a client sends decide: a DAP header (`Content-Length`)
//! is an editor, whose session gohot keeps across reloads; anything else is
//! relayed byte for byte to the debugged replica's delve, and that
//! connection ends with the process (the client reconnects).
//!
//! The dev loop calls [`DebugServer::reattach`] once the new process runs:
//! gohot connects to the new delve, initializes it as the editor did, waits
//! until delve has let the process run (its own `--continue`; a replay
//! racing it would leave stops unreported), then replays the editor's
//! configuration, and returns when every answer is in.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::dap::{self, DapError};
use super::paths::PathMap;
use super::session::{Msg, Out, Replayed, Session};
use super::DebugError;

/// A byte stream to a replica's delve.
pub trait Upstream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Upstream for T {}

/// How to reach the delve of one replica: a published port on the Docker
/// engine, a port-forward to a pod.
#[async_trait::async_trait]
pub trait Dial: Send + Sync {
    /// The replica it reaches (a container, `namespace/pod`).
    fn replica(&self) -> String;
    /// A new connection to its delve.
    async fn dial(&self) -> std::io::Result<Box<dyn Upstream>>;
}

/// A delve reachable at a TCP address.
#[derive(Clone, Debug)]
pub struct TcpDial {
    /// Where.
    pub addr: SocketAddr,
    /// The replica behind it.
    pub replica: String,
}

#[async_trait::async_trait]
impl Dial for TcpDial {
    fn replica(&self) -> String {
        self.replica.clone()
    }
    async fn dial(&self) -> std::io::Result<Box<dyn Upstream>> {
        let s = TcpStream::connect(self.addr).await?;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    }
}

/// What happens to debug sessions, for the dev loop's events.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DebugEvent {
    /// An editor attached (its first connection to a delve).
    Attached {
        /// The replica debugged.
        replica: String,
    },
    /// After a reload, the editor's session moved to the new process and
    /// its breakpoints were set again.
    Reattached {
        /// The replica debugged.
        replica: String,
        /// Breakpoints set again.
        breakpoints: usize,
        /// Of those, verified in the new process.
        verified: usize,
        /// Requests of the replay delve refused.
        errors: Vec<String>,
        /// Seconds from the new process answering until the replay was done.
        seconds: f64,
    },
    /// The editor ended its session.
    Detached,
    /// A client refused or a session that failed, and why.
    Problem {
        /// What went wrong.
        message: String,
    },
}

/// Where [`DebugEvent`]s go.
pub type DebugEvents = Arc<dyn Fn(DebugEvent) + Send + Sync>;

/// Limits of a reattach.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connecting to the new delve and replaying, in all.
    pub reattach: Duration,
    /// Of that, waiting for delve to let the new process run before the replay.
    pub running: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { reattach: Duration::from_secs(20), running: Duration::from_secs(5) }
    }
}

enum Command {
    Release { done: oneshot::Sender<()> },
    Reattach { dial: Arc<dyn Dial>, done: oneshot::Sender<Result<Replayed, DebugError>> },
    Paths(Arc<PathMap>),
    End { done: oneshot::Sender<()> },
}

struct Shared {
    upstream: Mutex<Option<Arc<dyn Dial>>>,
    paths: Mutex<Arc<PathMap>>,
    session: Mutex<Option<mpsc::Sender<Command>>>,
    events: DebugEvents,
    timeouts: Timeouts,
}

impl Shared {
    fn upstream(&self) -> Option<Arc<dyn Dial>> {
        self.upstream.lock().ok().and_then(|u| u.clone())
    }
    fn session(&self) -> Option<mpsc::Sender<Command>> {
        self.session.lock().ok().and_then(|s| s.clone().filter(|s| !s.is_closed()))
    }
}

/// gohot's debug listener.
pub struct DebugServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl DebugServer {
    /// Listens on `addr` (`127.0.0.1:40000`; port 0 picks one).
    pub async fn bind(addr: SocketAddr, events: DebugEvents, timeouts: Timeouts) -> Result<Self, DebugError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| DebugError::Listen { addr, source })?;
        let addr = listener.local_addr().map_err(|source| DebugError::Listen { addr, source })?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(None),
            paths: Mutex::new(Arc::new(PathMap::default())),
            session: Mutex::new(None),
            events,
            timeouts,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(DebugServer { addr, shared, accept })
    }

    /// The address editors connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Source paths of the build (after every listing of its packages).
    pub async fn set_paths(&self, paths: PathMap) {
        let paths = Arc::new(paths);
        if let Ok(mut p) = self.shared.paths.lock() {
            *p = paths.clone();
        }
        if let Some(s) = self.shared.session() {
            let _ = s.send(Command::Paths(paths)).await;
        }
    }

    /// The replica new clients reach, with no session to move (start-up).
    pub fn set_upstream(&self, dial: Arc<dyn Dial>) {
        if let Ok(mut u) = self.shared.upstream.lock() {
            *u = Some(dial);
        }
    }

    /// The debugged process is about to be replaced (a new binary or
    /// kodata file is on its way): the session lets go of its delve, which
    /// can then end the process when watchexec stops it ([`Session::release`]).
    /// Returns once delve has answered (or after a second).
    pub async fn release(&self) {
        let Some(session) = self.shared.session() else { return };
        let (done, released) = oneshot::channel();
        if session.send(Command::Release { done }).await.is_ok() {
            let _ = released.await;
        }
    }

    /// The debugged replica runs a new process (a reload, or another
    /// replica): new clients reach it, and the editor's session, if there
    /// is one, is connected to it and configured again. `None`: no session.
    pub async fn reattach(&self, dial: Arc<dyn Dial>) -> Result<Option<Replayed>, DebugError> {
        self.set_upstream(dial.clone());
        let Some(session) = self.shared.session() else {
            return Ok(None);
        };
        let (done, result) = oneshot::channel();
        if session.send(Command::Reattach { dial, done }).await.is_err() {
            return Ok(None);
        }
        match result.await {
            Ok(r) => r.map(Some),
            // The editor left meanwhile.
            Err(_) => Ok(None),
        }
    }

    /// Whether an editor's session is open.
    pub fn has_session(&self) -> bool {
        self.shared.session().is_some()
    }

    /// gohot is stopping: the editor's session ends (`terminated`), the
    /// app is left running under delve, and the listener closes.
    pub async fn shutdown(&self) {
        if let Some(s) = self.shared.session() {
            let (done, ended) = oneshot::channel();
            if s.send(Command::End { done }).await.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(2), ended).await;
            }
        }
        self.accept.abort();
    }
}

impl Drop for DebugServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut tasks = tokio::task::JoinSet::new();
    while let Ok((conn, _)) = listener.accept().await {
        while tasks.try_join_next().is_some() {}
        let _ = conn.set_nodelay(true);
        tasks.spawn(serve(conn, shared.clone()));
    }
}

/// One client: an editor (DAP) or a JSON-RPC client (relayed).
async fn serve(conn: TcpStream, shared: Arc<Shared>) {
    let mut conn = BufReader::new(conn);
    let is_dap = match conn.fill_buf().await {
        Ok([]) | Err(_) => return,
        Ok(first) => dap::looks_like_dap(first),
    };
    if !is_dap {
        return relay(conn, &shared).await;
    }
    let (commands, receiver) = mpsc::channel(8);
    let taken = match shared.session.lock() {
        Ok(mut slot) if slot.as_ref().is_none_or(|s| s.is_closed()) => {
            *slot = Some(commands);
            true
        }
        _ => false,
    };
    if !taken {
        return refuse(conn, &shared).await;
    }
    run_session(conn, &shared, receiver).await;
    (shared.events)(DebugEvent::Detached);
}

/// A second editor: one session at a time (delve serves one DAP client).
async fn refuse(mut conn: BufReader<TcpStream>, shared: &Shared) {
    let message = "another editor is debugging through gohot: one debug session at a time";
    (shared.events)(DebugEvent::Problem { message: message.into() });
    if let Ok(Some(req)) = dap::read_message(&mut conn).await {
        let answer = json!({"seq": 1, "type": "response", "request_seq": req.get("seq").cloned().unwrap_or(0.into()),
            "success": false, "command": req.get("command").cloned().unwrap_or_default(), "message": message,
            "body": {"error": {"id": 3001, "format": message, "showUser": true}}});
        if let Value::Object(m) = answer {
            let _ = dap::write_message(conn.get_mut(), &m).await;
        }
    }
}

/// A JSON-RPC client: bytes both ways to the debugged replica's delve
/// (waiting for it while a reload replaces it, as long as a reattach may take).
async fn relay(mut conn: BufReader<TcpStream>, shared: &Shared) {
    let deadline = Instant::now() + shared.timeouts.reattach;
    let mut upstream = loop {
        let dialed = match shared.upstream() {
            Some(dial) => dial.dial().await.map_err(|e| format!("cannot reach delve in {}: {e}", dial.replica())),
            None => Err("no app to debug yet".into()),
        };
        match dialed {
            Ok(u) => break u,
            Err(message) if Instant::now() >= deadline => {
                return (shared.events)(DebugEvent::Problem { message });
            }
            // A condition with a deadline: the new delve listening.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
}

type Reader = dap::MessageReader<tokio::io::ReadHalf<Box<dyn Upstream>>>;
type Writer = tokio::io::WriteHalf<Box<dyn Upstream>>;

struct Link {
    reader: Reader,
    writer: Writer,
}

impl Link {
    fn new(stream: Box<dyn Upstream>) -> Self {
        let (r, w) = tokio::io::split(stream);
        Link { reader: dap::MessageReader::new(r), writer: w }
    }
    async fn send(&mut self, msg: &Msg) -> Result<(), DapError> {
        dap::write_message(&mut self.writer, msg).await
    }
    /// The answer to `request` (other messages meanwhile are the
    /// handshake's: dropped).
    async fn answer(&mut self, request: &Msg) -> Result<Msg, DapError> {
        loop {
            let m = self.reader.next().await?.ok_or_else(|| DapError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
            if m.get("type").and_then(Value::as_str) == Some("response") && m.get("request_seq") == request.get("seq") {
                return Ok(m);
            }
        }
    }
}

async fn read_opt(link: &mut Option<Link>) -> Result<Option<Msg>, DapError> {
    match link {
        // Cancel safe: it waits in the session's `select!`.
        Some(l) => l.reader.next().await,
        None => std::future::pending().await,
    }
}

/// The editor's session until it leaves or gohot stops.
async fn run_session(editor: BufReader<TcpStream>, shared: &Shared, mut commands: mpsc::Receiver<Command>) {
    let (editor_read, mut editor_write) = tokio::io::split(editor);
    // Cancel safe: it waits in the `select!` below beside delve's messages.
    let mut editor_read = dap::MessageReader::new(editor_read);
    let paths = shared.paths.lock().map(|p| p.clone()).unwrap_or_default();
    let mut session = Session::new(paths);
    let mut link: Option<Link> = None;
    let mut waiting: Option<oneshot::Sender<Result<Replayed, DebugError>>> = None;
    if let Some(dial) = shared.upstream() {
        let deadline = Instant::now() + shared.timeouts.reattach;
        match connect(&mut session, dial.as_ref(), deadline, shared.timeouts.running).await {
            Ok(l) => {
                link = Some(l);
                (shared.events)(DebugEvent::Attached { replica: dial.replica() });
            }
            Err(e) => (shared.events)(DebugEvent::Problem { message: e.to_string() }),
        }
    }
    let mut outs = if link.is_some() { session.begin_replay() } else { Vec::new() };
    let mut replay_deadline: Option<tokio::time::Instant> = None;
    loop {
        if waiting.is_none() {
            replay_deadline = None;
        }
        if deliver(std::mem::take(&mut outs), &mut editor_write, &mut link, &mut waiting).await {
            return;
        }
        tokio::select! {
            m = editor_read.next() => match m {
                Ok(Some(m)) => outs = session.from_editor(m),
                Ok(None) => break,
                Err(e) => {
                    (shared.events)(DebugEvent::Problem { message: format!("the editor's connection: {e}") });
                    break;
                }
            },
            m = read_opt(&mut link) => match m {
                Ok(Some(m)) => outs = session.from_delve(m),
                Ok(None) | Err(_) => {
                    link = None;
                    outs = session.delve_lost();
                }
            },
            _ = sleep_until_opt(replay_deadline), if waiting.is_some() => {
                replay_deadline = None;
                if let Some(w) = waiting.take() {
                    let replica = shared.upstream().map(|d| d.replica()).unwrap_or_default();
                    let detail = format!("delve did not answer the replay within {:?}", shared.timeouts.reattach);
                    let _ = w.send(Err(DebugError::Reattach { replica, detail }));
                }
                link = None;
                outs = session.delve_lost();
            },
            cmd = commands.recv() => match cmd {
                Some(Command::Release { done }) => {
                    let over = release(&mut session, &mut link, &mut editor_write, &mut waiting).await;
                    let _ = done.send(());
                    if over {
                        return;
                    }
                }
                Some(Command::Reattach { dial, done }) => {
                    if release(&mut session, &mut link, &mut editor_write, &mut waiting).await {
                        let _ = done.send(Ok(Replayed::default()));
                        return;
                    }
                    let deadline = Instant::now() + shared.timeouts.reattach;
                    match connect(&mut session, dial.as_ref(), deadline, shared.timeouts.running).await {
                        Ok(l) => {
                            link = Some(l);
                            waiting = Some(done);
                            replay_deadline = Some(deadline.into());
                            outs = session.begin_replay();
                        }
                        Err(e) => {
                            let _ = done.send(Err(e));
                        }
                    }
                }
                Some(Command::Paths(p)) => session.set_paths(p),
                Some(Command::End { done }) => {
                    let outs = session.end();
                    let bye = first_to_delve(&outs);
                    deliver(outs, &mut editor_write, &mut link, &mut waiting).await;
                    if let (Some(l), Some(bye)) = (link.as_mut(), bye) {
                        let _ = tokio::time::timeout(Duration::from_secs(1), l.answer(&bye)).await;
                    }
                    let _ = done.send(());
                    return;
                }
                None => break,
            },
        }
    }
    // The editor left without a disconnect: leave delve as a disconnect would.
    if let Some(mut l) = link {
        let bye = session.own_request("disconnect", json!({"terminateDebuggee": false}));
        let _ = tokio::time::timeout(Duration::from_secs(2), l.send(&bye)).await;
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn first_to_delve(outs: &[Out]) -> Option<Msg> {
    outs.iter().find_map(|o| if let Out::Delve(m) = o { Some(m.clone()) } else { None })
}

/// Lets go of the connected delve, if any ([`Session::release`]): its
/// `disconnect` answered (a second at most), the connection closed. True
/// when the session is over.
async fn release(
    session: &mut Session,
    link: &mut Option<Link>,
    editor: &mut tokio::io::WriteHalf<BufReader<TcpStream>>,
    waiting: &mut Option<oneshot::Sender<Result<Replayed, DebugError>>>,
) -> bool {
    if link.is_none() {
        return false;
    }
    let outs = if session.is_live() { session.release() } else { session.delve_lost() };
    let bye = first_to_delve(&outs);
    let over = deliver(outs, editor, link, waiting).await;
    if let (Some(l), Some(bye)) = (link.as_mut(), bye) {
        let _ = tokio::time::timeout(Duration::from_secs(1), l.answer(&bye)).await;
    }
    *link = None;
    over
}

/// Carries out a session's outputs; true when the session is over.
async fn deliver(
    outs: Vec<Out>,
    editor: &mut tokio::io::WriteHalf<BufReader<TcpStream>>,
    link: &mut Option<Link>,
    waiting: &mut Option<oneshot::Sender<Result<Replayed, DebugError>>>,
) -> bool {
    let mut over = false;
    for out in outs {
        match out {
            Out::Editor(m) => {
                if dap::write_message(editor, &m).await.is_err() {
                    over = true;
                }
            }
            Out::Delve(m) => {
                if let Some(l) = link {
                    if l.send(&m).await.is_err() {
                        // Seen as lost by the next read.
                        tracing::debug!("writing to delve failed");
                    }
                }
            }
            Out::Replayed(r) => {
                if let Some(w) = waiting.take() {
                    let _ = w.send(Ok(r));
                }
            }
            Out::Close => over = true,
        }
    }
    over
}

/// Connects to a delve (again and again until `deadline`: the new one may
/// not listen yet), initializes it as the editor did (or as editors do, for
/// an editor yet to send its own `initialize`) and waits until it lets the
/// process run: an editor attaching in the same moment as delve's own
/// `--continue` would have its `setBreakpoints` wait on a process it can
/// no longer stop.
async fn connect(
    session: &mut Session,
    dial: &dyn Dial,
    deadline: Instant,
    running: Duration,
) -> Result<Link, DebugError> {
    let replica = dial.replica();
    let mut last = String::new();
    while Instant::now() < deadline {
        let attempt = async {
            let mut link = Link::new(dial.dial().await.map_err(DapError::Io)?);
            handshake(session, &mut link, running).await?;
            Ok::<_, DapError>(link)
        };
        // One connection that delve never answers does not use up the
        // deadline: it is dropped and a new one tried.
        let left = deadline.saturating_duration_since(Instant::now()).min(running + Duration::from_secs(5));
        match tokio::time::timeout(left, attempt).await {
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {left:?}"),
        }
        // A condition with a deadline: the new delve listening.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(DebugError::Reattach { replica, detail: last })
}

/// `initialize`, then `threads` until delve answers with its placeholder
/// for a running process: delve's own `--continue` has happened, so the
/// replay's (or the editor's) `configurationDone` is the one that runs the
/// process and its stops reach the editor. A process still halted after
/// `running` (a JSON-RPC client stopped it) is attached to as it is.
async fn handshake(session: &mut Session, link: &mut Link, running: Duration) -> Result<(), DapError> {
    let arguments = session.configured().initialize.clone().unwrap_or_else(
        || json!({"adapterID": "go", "pathFormat": "path", "linesStartAt1": true, "columnsStartAt1": true}),
    );
    let init = session.own_request("initialize", arguments);
    // The first `threads` goes with `initialize` (delve answers in order):
    // through a cluster's port-forward that is a round trip less per reload.
    let mut threads = session.own_request("threads", json!({}));
    link.send(&init).await?;
    link.send(&threads).await?;
    link.answer(&init).await?;
    let until = Instant::now() + running;
    loop {
        let answer = link.answer(&threads).await?;
        let list = answer.get("body").and_then(|b| b.get("threads")).and_then(Value::as_array);
        let placeholder = list.is_some_and(|t| t.len() == 1 && t[0]["id"] == -1);
        if placeholder || Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        threads = session.own_request("threads", json!({}));
        link.send(&threads).await?;
    }
}
