//! One way-in session per replica (or one-shot execs, for short-lived callers) ([`crate::wayin::session`]), opened on
//! first use, kept open across reloads, and reopened when it breaks — so a
//! reload pays no exec setup. Requests to one replica go one at a time;
//! replicas are independent.
//!
//! A request that gets no answer within the deadline closes that replica's
//! session (the stream may be out of step) and fails for that replica only;
//! the next request opens a new one. A session that broke (the container
//! restarted, the exec stream was cut) is reopened once within the same
//! request. A target that keeps no sessions, or a helper that predates them,
//! gets one-shot execs instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::hosting::{Replica, Target};
use crate::wayin::session::{serve_argv, Session};

enum Slot {
    /// No session yet, or the last one was dropped.
    Closed,
    Open(Session),
    /// The target or the helper keeps no sessions: one-shot execs.
    OneShot,
}

/// The sessions of the dev loop, by replica instance.
pub(crate) struct Sessions {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// What synced files hold in each replica instance: (instance, container
    /// path) → sha256 of the content written there ("" once removed).
    written: Mutex<HashMap<(String, String), String>>,
    deadline: Duration,
    /// Every request a one-shot exec (no session is tried).
    one_shot: bool,
}

impl Sessions {
    /// Sessions whose requests must be answered within `deadline`.
    pub(crate) fn new(deadline: Duration) -> Self {
        Sessions { slots: Mutex::new(HashMap::new()), written: Mutex::new(HashMap::new()), deadline, one_shot: false }
    }

    /// Like [`Sessions::new`], but every request is a one-shot exec: for a
    /// caller that makes one request per replica and exits.
    pub(crate) fn one_shot(deadline: Duration) -> Self {
        Sessions { one_shot: true, ..Sessions::new(deadline) }
    }

    /// Forgets the sessions of replicas that are gone (which closes them).
    pub(crate) fn retain(&self, live: &[Replica]) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.retain(|instance, _| live.iter().any(|r| &r.instance == instance));
        }
        if let Ok(mut written) = self.written.lock() {
            written.retain(|(instance, _), _| live.iter().any(|r| &r.instance == instance));
        }
    }

    /// Whether `path` in `replica` already holds the content with `sha256`
    /// ("": removed), as written through these sessions: a second save of
    /// the same content, or a file both an event and a walk reported, need
    /// not be sent again. A restarted container is a new instance: nothing.
    pub(crate) fn holds(&self, replica: &Replica, path: &str, sha256: &str) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.get(&(replica.instance.clone(), path.to_string())).is_some_and(|s| s == sha256)
    }

    /// Records that `path` in `replica` now holds the content with `sha256`.
    pub(crate) fn wrote(&self, replica: &Replica, path: &str, sha256: &str) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.insert((replica.instance.clone(), path.to_string()), sha256.to_string());
    }

    fn slot(&self, replica: &Replica) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let first = if self.one_shot { Slot::OneShot } else { Slot::Closed };
        slots.entry(replica.instance.clone()).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(first))).clone()
    }

    /// Runs one helper request (`argv` as for a one-shot exec) in `replica`
    /// with `stdin` as its input, and returns the helper's stdout.
    pub(crate) async fn call(
        &self,
        target: &dyn Target,
        replica: &Replica,
        argv: &[String],
        stdin: BoxFuture<'static, Bytes>,
    ) -> Result<Vec<u8>, String> {
        let slot = self.slot(replica);
        let mut slot = slot.lock().await;
        if matches!(*slot, Slot::OneShot) {
            return self.exec_once(target, replica, argv, stdin).await;
        }
        let stdin = stdin.await;
        let attempt = tokio::time::timeout(self.deadline, async {
            // A session that was open may have broken since: one reopen.
            let was_open = matches!(*slot, Slot::Open(_));
            for reopened in [false, true] {
                if !matches!(*slot, Slot::Open(_)) {
                    match open(target, replica).await {
                        Ok(Some(s)) => *slot = Slot::Open(s),
                        Ok(None) => {
                            *slot = Slot::OneShot;
                            return None;
                        }
                        Err(e) => {
                            tracing::debug!("no session with {}: {e}", replica.name);
                            return None;
                        }
                    }
                }
                let Slot::Open(session) = &mut *slot else { unreachable!("opened above") };
                match session.request(argv, &stdin).await {
                    Ok(reply) => return Some(Ok(reply)),
                    Err(e) => {
                        *slot = Slot::Closed;
                        if !was_open || reopened {
                            return Some(Err(format!("{}: {e}", replica.name)));
                        }
                        tracing::debug!("session with {} broke ({e}): reopening", replica.name);
                    }
                }
            }
            None
        })
        .await;
        match attempt {
            Ok(Some(result)) => result,
            // No session to be had now: this request goes one-shot.
            Ok(None) => self.exec_once(target, replica, argv, Box::pin(async move { stdin })).await,
            Err(_) => {
                *slot = Slot::Closed;
                Err(format!("{}: no answer from the gohot helper within {:?}", replica.name, self.deadline))
            }
        }
    }
}

impl Sessions {
    /// One exec for one request, answered within the deadline too: a hung
    /// replica fails for itself alone.
    async fn exec_once(
        &self,
        target: &dyn Target,
        replica: &Replica,
        argv: &[String],
        stdin: BoxFuture<'static, Bytes>,
    ) -> Result<Vec<u8>, String> {
        match tokio::time::timeout(self.deadline, one_shot(target, replica, argv, stdin)).await {
            Ok(result) => result,
            Err(_) => Err(format!("{}: no answer from the gohot helper within {:?}", replica.name, self.deadline)),
        }
    }
}

/// Opens a session in `replica`: `Ok(None)` when its helper keeps none (an
/// older dev image), `Err` when no session can be started now (a target
/// without sessions, a container not yet running): that request then goes
/// one-shot, and the next one tries again.
async fn open(target: &dyn Target, replica: &Replica) -> Result<Option<Session>, String> {
    let attached = target.attach(replica, &serve_argv()).await.map_err(|e| e.to_string())?;
    match Session::open(attached.stdin, attached.stdout, attached.keep).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            tracing::debug!("the helper in {} keeps no session ({e}): one exec per request", replica.name);
            Ok(None)
        }
    }
}

async fn one_shot(
    target: &dyn Target,
    replica: &Replica,
    argv: &[String],
    stdin: BoxFuture<'static, Bytes>,
) -> Result<Vec<u8>, String> {
    match target.exec_deferred(replica, argv, stdin).await {
        Ok(out) if out.stdout.iter().any(|b| !b.is_ascii_whitespace()) => Ok(out.stdout),
        Ok(out) => Err(format!("{}: {}", replica.name, String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! Against a fake target whose sessions are in-process pipes to a fake
    //! `helper serve` (the real one runs in tests/wayin.rs, tests/dev.rs and
    //! tests/kube.rs): how sessions are opened, reused, reopened and given up.
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::hosting::{Attached, ExecOutput, TargetError};

    #[derive(Clone, Copy, PartialEq)]
    enum Behaviour {
        /// Answers every request.
        Serve,
        /// Answers `n` requests, then the stream ends (a container restart).
        DieAfter(usize),
        /// Reads requests and never answers (a hung container).
        Hang,
        /// An old helper: `serve` is an unknown subcommand.
        NoServe,
    }

    struct FakeTarget {
        behaviour: std::sync::Mutex<Behaviour>,
        attaches: AtomicUsize,
        execs: AtomicUsize,
    }

    impl FakeTarget {
        fn new(b: Behaviour) -> Self {
            FakeTarget {
                behaviour: std::sync::Mutex::new(b),
                attaches: AtomicUsize::new(0),
                execs: AtomicUsize::new(0),
            }
        }
    }

    /// A fake `helper serve`: reads `{"args":…,"payload":N}` lines and their
    /// payloads, answers `{"ok":true,"args":…}` (the version request with a
    /// version line).
    async fn fake_serve(io: tokio::io::DuplexStream, behaviour: Behaviour) {
        let (r, mut w) = tokio::io::split(io);
        let mut r = BufReader::new(r);
        let mut answered = 0;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let req: serde_json::Value = serde_json::from_str(&line).expect("request line");
            let mut payload = vec![0u8; req["payload"].as_u64().expect("payload") as usize];
            r.read_exact(&mut payload).await.expect("payload");
            let reply = match behaviour {
                Behaviour::NoServe => {
                    let _ =
                        w.write_all(b"{\"ok\":false,\"error\":\"usage\",\"message\":\"unknown subcommand\"}\n").await;
                    return;
                }
                Behaviour::Hang if answered > 0 => std::future::pending().await,
                Behaviour::DieAfter(n) if answered > n => return,
                _ if req["args"][0] == "version" => {
                    serde_json::json!({"name": "gohot-helper", "protocol": crate::wayin::HELPER_PROTOCOL, "go": "go1", "arch": "amd64"})
                }
                _ => serde_json::json!({"ok": true, "args": req["args"], "bytes": payload.len()}),
            };
            answered += 1;
            if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                return;
            }
        }
    }

    #[async_trait::async_trait]
    impl Target for FakeTarget {
        async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
            Ok(vec![replica()])
        }
        async fn exec(&self, _: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
            self.execs.fetch_add(1, Ordering::SeqCst);
            let out = serde_json::json!({"ok": true, "args": argv[1..], "bytes": stdin.len(), "oneshot": true});
            Ok(ExecOutput { stdout: format!("{out}\n").into_bytes(), stderr: Vec::new(), exit_code: 0 })
        }
        async fn attach(&self, _: &Replica, argv: &[String]) -> Result<Attached, TargetError> {
            assert_eq!(argv, serve_argv());
            self.attaches.fetch_add(1, Ordering::SeqCst);
            let behaviour = *self.behaviour.lock().unwrap();
            let (ours, theirs) = tokio::io::duplex(1 << 16);
            tokio::spawn(fake_serve(theirs, behaviour));
            let (r, w) = tokio::io::split(ours);
            Ok(Attached { stdin: Box::pin(w), stdout: Box::pin(r), keep: Box::new(()) })
        }
    }

    fn replica() -> Replica {
        Replica { name: "app".into(), instance: "app@1".into(), handle: "app".into() }
    }

    fn input(b: &'static [u8]) -> BoxFuture<'static, Bytes> {
        Box::pin(async move { Bytes::from_static(b) })
    }

    fn argv(cmd: &str) -> Vec<String> {
        vec![crate::layout::HELPER_PATH.into(), cmd.into(), "--".into(), "/ko-app/app".into()]
    }

    fn reply(out: &[u8]) -> serde_json::Value {
        serde_json::from_slice(out).expect("reply")
    }

    #[tokio::test]
    async fn one_session_serves_many_requests() {
        let t = FakeTarget::new(Behaviour::Serve);
        let s = Sessions::new(Duration::from_secs(5));
        for i in 0..10 {
            let out = s.call(&t, &replica(), &argv("put"), input(b"payload")).await.expect("put");
            let r = reply(&out);
            assert_eq!(r["args"][0], "put", "request {i}: the helper's path is not sent, the argv is");
            assert_eq!(r["bytes"], 7);
        }
        assert_eq!(t.attaches.load(Ordering::SeqCst), 1, "one exec for all requests");
        assert_eq!(t.execs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_broken_session_is_reopened_within_the_request() {
        let t = FakeTarget::new(Behaviour::DieAfter(1));
        let s = Sessions::new(Duration::from_secs(5));
        s.call(&t, &replica(), &argv("hash"), input(b"")).await.expect("first");
        *t.behaviour.lock().unwrap() = Behaviour::Serve;
        // The session ends before answering: reopened, and the request succeeds.
        let out = s.call(&t, &replica(), &argv("put"), input(b"x")).await.expect("after the break");
        assert_eq!(reply(&out)["args"][0], "put");
        assert_eq!(t.attaches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hung_replica_fails_at_the_deadline_and_gets_a_new_session() {
        let t = FakeTarget::new(Behaviour::Hang);
        let s = Sessions::new(Duration::from_millis(300));
        let e = s.call(&t, &replica(), &argv("put"), input(b"x")).await.unwrap_err();
        assert!(e.contains("no answer") && e.contains("app"), "{e}");
        *t.behaviour.lock().unwrap() = Behaviour::Serve;
        s.call(&t, &replica(), &argv("put"), input(b"x")).await.expect("a new session");
        assert_eq!(t.attaches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_older_helper_without_sessions_gets_one_shot_execs() {
        let t = FakeTarget::new(Behaviour::NoServe);
        let s = Sessions::new(Duration::from_secs(5));
        for _ in 0..3 {
            let out = s.call(&t, &replica(), &argv("put"), input(b"abc")).await.expect("put");
            assert_eq!(reply(&out)["oneshot"], true);
        }
        assert_eq!(t.attaches.load(Ordering::SeqCst), 1, "tried once, not on every request");
        assert_eq!(t.execs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn sessions_of_gone_replicas_are_closed() {
        let t = FakeTarget::new(Behaviour::Serve);
        let s = Sessions::new(Duration::from_secs(5));
        s.call(&t, &replica(), &argv("hash"), input(b"")).await.expect("hash");
        s.retain(&[]);
        s.call(&t, &replica(), &argv("hash"), input(b"")).await.expect("hash");
        assert_eq!(t.attaches.load(Ordering::SeqCst), 2, "the replica was forgotten, then seen again");
    }

    /// What was written is remembered per instance and per path, and
    /// forgotten with the instance (a restarted container holds none of it).
    #[test]
    fn written_content_is_remembered_per_instance() {
        let s = Sessions::new(Duration::from_secs(1));
        let a = Replica { name: "a".into(), instance: "a/1".into(), handle: "a".into() };
        let restarted = Replica { instance: "a/2".into(), ..a.clone() };
        assert!(!s.holds(&a, "/srv/x", "s1"));
        s.wrote(&a, "/srv/x", "s1");
        assert!(s.holds(&a, "/srv/x", "s1"));
        assert!(!s.holds(&a, "/srv/x", "s2"), "other content");
        assert!(!s.holds(&a, "/srv/y", "s1"), "another path");
        assert!(!s.holds(&restarted, "/srv/x", "s1"), "a new instance");
        s.wrote(&a, "/srv/x", "");
        assert!(s.holds(&a, "/srv/x", ""), "removed");
        s.retain(std::slice::from_ref(&restarted));
        s.wrote(&restarted, "/srv/x", "s1");
        assert!(!s.holds(&a, "/srv/x", ""), "forgotten with its instance");
    }
}
