//! The binary into every replica: which payload each gets, the puts in
//! parallel, the probe, and the report.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;

use super::{Binary, Probe, Reloader};
use crate::hosting::Replica;
use crate::wayin::{self, PutStatus, RemoteFile};

/// What one replica came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaOutcome {
    /// It runs the new binary: sent, and watchexec started it.
    Updated {
        /// Payload bytes sent to it (a refused delta and the whole file after it, both counted).
        bytes_sent: u64,
    },
    /// It held the binary already: nothing was sent.
    Unchanged,
    /// It did not get the binary, or did not restart on it; the message names the replica.
    Failed(String),
}

/// What [`Reloader::push_binary`] did.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    /// Every replica that was running, with what happened there.
    pub replicas: Vec<(Replica, ReplicaOutcome)>,
    /// Payload bytes sent, all replicas together.
    pub bytes_sent: u64,
    /// Encoding and sending, up to the last rename (the slowest replica).
    pub sync: Duration,
    /// Of `sync`: waiting for the delta to be encoded.
    pub encode: Duration,
    /// Of `sync`: the helper receiving, decoding and writing (the slowest replica).
    pub write: Duration,
    /// The rename until watchexec started the new process (the slowest replica).
    pub restart: Duration,
    /// The new process started until it answered the probe.
    pub answer: Duration,
    /// Failures that are not one replica's: listing the replicas, the probe.
    pub errors: Vec<String>,
    /// The new binary runs somewhere and answered the probe.
    pub answered: bool,
}

impl PushReport {
    /// Replicas that run the new binary (sent now, or held already).
    pub fn current(&self) -> usize {
        self.replicas.iter().filter(|(_, o)| !matches!(o, ReplicaOutcome::Failed(_))).count()
    }

    /// Every failure: each replica's, then the others.
    pub fn failures(&self) -> Vec<String> {
        let replicas = self.replicas.iter().filter_map(|(_, o)| match o {
            ReplicaOutcome::Failed(e) => Some(e.clone()),
            _ => None,
        });
        replicas.chain(self.errors.iter().cloned()).collect()
    }
}

/// What one put did.
pub(super) struct Pushed {
    pub(super) bytes_sent: u64,
    pub(super) sync: Duration,
    /// The helper's own part of `sync`.
    pub(super) write: Duration,
    /// None: the file is in place but watchexec did not start it in time.
    pub(super) restart: Option<Duration>,
    /// With a probe in the container: the new process started until it
    /// answered (None: it did not, in time).
    pub(super) answer: Option<Duration>,
    /// The new process exited before it answered: how (`exit status 2`, or
    /// "" when unknown), and the container's last lines.
    pub(super) exited: Option<(String, Vec<String>)>,
    /// The last payload's bytes and how long it took to arrive (a session's
    /// measure of the link).
    pub(super) arrival: Option<(u64, Duration)>,
}

/// Lines of the container's output a report of an exited app shows.
const LAST_LINES: usize = 10;
/// How long the container's last lines are given to reach its log.
const LOG_SETTLE: Duration = Duration::from_millis(200);

/// How a replica is brought to the new binary.
enum Plan {
    /// It holds the new binary.
    Nothing,
    /// It holds (or may hold) the delta's base: the delta, then the whole
    /// file if the helper refuses the base.
    Delta,
    /// Its binary is not known: ask, then the whole file unless it is the new one.
    AskFirst,
    /// It holds something else: the whole file.
    Full,
}

/// A payload being encoded on a blocking thread, awaitable by many.
pub(super) type SharedPayload = futures::future::Shared<futures::future::BoxFuture<'static, Bytes>>;

/// Starts encoding now (not when first awaited), so that it overlaps
/// whatever the caller does next.
fn encode_now(encode: impl FnOnce() -> Vec<u8> + Send + 'static) -> SharedPayload {
    let task = tokio::task::spawn_blocking(encode);
    async move { task.await.map(Bytes::from).unwrap_or_default() }.boxed().shared()
}

/// Encodes only when first awaited (a payload that may not be needed).
pub(super) fn encode_lazy(encode: impl FnOnce() -> Vec<u8> + Send + 'static) -> SharedPayload {
    async move { tokio::task::spawn_blocking(encode).await.map(Bytes::from).unwrap_or_default() }.boxed().shared()
}

impl Reloader<'_> {
    /// Sends `new` to every running replica in parallel and waits until it
    /// runs and answers the probe. Replicas that appeared since the last
    /// check get the files synced before too. `new` becomes the binary
    /// every replica should run, whatever the outcome (a replica that
    /// missed it gets it at the next [`Reloader::check_replicas`]).
    pub async fn push_binary(&mut self, new: Binary) -> PushReport {
        let sync_start = Instant::now();
        let previous = self.current.replace(new.clone());
        // The delta is encoded on a blocking thread while the replicas are
        // listed; the whole file only for a replica that needs it: on a small
        // machine it would otherwise take CPU from the delta, the helpers and
        // the app's start.
        // The gzip level is chosen for the link the last reloads measured (payload.rs).
        let encoded = Arc::new(OnceLock::new());
        let base = previous.filter(|p| p.sha256 != new.sha256);
        // The base's seeds, when indexed since the last reload.
        let seeds = self.seeds.take().filter(|(sha, _)| base.as_ref().is_some_and(|b| b.sha256 == *sha));
        let delta = base.as_ref().map(|old| {
            let (old, new, encoded) = (old.clone(), new.clone(), encoded.clone());
            let chooser = self.chooser.clone();
            encode_now(move || {
                let records = match seeds.as_ref().and_then(|(_, s)| s.get()) {
                    Some(seeds) => {
                        wayin::DeltaRecords::encode_indexed(seeds, &old.bytes, &old.sha256, &new.bytes, &new.sha256)
                    }
                    None => wayin::DeltaRecords::encode(&old.bytes, &old.sha256, &new.bytes, &new.sha256),
                };
                let (payload, how) = chooser.encode(&records);
                let _ = encoded.set((Instant::now(), how));
                payload
            })
        });
        let full = {
            let bytes = new.bytes.clone();
            encode_lazy(move || wayin::encode_full(&bytes))
        };
        let mut report = PushReport::default();
        // Listed afresh: a replica that appeared since the last check (a
        // replaced pod) is reloaded too before this reload is reported.
        let replicas = match self.target.replicas().await {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        if replicas.is_empty() {
            return report;
        }
        let prepare = sync_start.elapsed();
        let base_sha = base.as_ref().map(|b| b.sha256.clone());
        let plans: Vec<Plan> = replicas
            .iter()
            .map(|r| match self.known.get(&r.instance) {
                Some(sha) if *sha == new.sha256 => Plan::Nothing,
                Some(sha) if delta.is_some() && Some(sha) == base_sha.as_ref() => Plan::Delta,
                None if delta.is_some() => Plan::Delta,
                None => Plan::AskFirst,
                Some(_) => Plan::Full,
            })
            .collect();
        let this = &*self;
        let results = futures::future::join_all(replicas.iter().zip(&plans).map(|(r, plan)| {
            let payload = match plan {
                Plan::Delta => delta.clone(),
                _ => None,
            };
            let full = full.clone();
            let sha = new.sha256.clone();
            async move {
                match plan {
                    Plan::Nothing => Ok(None),
                    Plan::AskFirst if this.holds_binary(r, &sha).await => Ok(None),
                    _ => this.put_binary(r, payload.unwrap_or_else(|| full.clone()), full).await.map(Some),
                }
            }
        }))
        .await;
        let in_container = matches!(self.opts.probe, Probe::InContainer(_));
        let mut arrivals = Vec::new();
        let mut newcomers = Vec::new();
        for (r, result) in replicas.into_iter().zip(results) {
            if !self.known.contains_key(&r.instance) {
                newcomers.push(r.clone());
            }
            // The file is in place even when the restart was not seen in time.
            let (outcome, in_place) = match result {
                Ok(None) => (ReplicaOutcome::Unchanged, true),
                Ok(Some(p)) => {
                    report.bytes_sent += p.bytes_sent;
                    report.sync = report.sync.max(prepare + p.sync);
                    report.write = report.write.max(p.write);
                    arrivals.extend(p.arrival);
                    let outcome = match (&p.exited, p.restart) {
                        (Some((how, lines)), _) => ReplicaOutcome::Failed(exited(&r.name, how, lines)),
                        (None, Some(_)) if in_container && p.answer.is_none() => ReplicaOutcome::Failed(format!(
                            "{}: the new process runs but did not answer {} inside its container within {:?}",
                            r.name,
                            probe_name(&self.opts.probe),
                            self.opts.restart_timeout
                        )),
                        (None, Some(d)) => {
                            report.restart = report.restart.max(d);
                            report.answer = report.answer.max(p.answer.unwrap_or_default());
                            ReplicaOutcome::Updated { bytes_sent: p.bytes_sent }
                        }
                        (None, None) => ReplicaOutcome::Failed(format!(
                            "{}: the binary is in place, but watchexec did not start it within {:?} \
                             (the container's command must be gohot's watchexec: gohot dev and \
                             `gohot resolve --dev` write it; see examples/skaffold/k8s)",
                            r.name, self.opts.restart_timeout
                        )),
                    };
                    (outcome, true)
                }
                Err(e) => (ReplicaOutcome::Failed(e), false),
            };
            if in_place {
                self.known.insert(r.instance.clone(), new.sha256.clone());
            }
            report.replicas.push((r, outcome));
        }
        report.encode = encoded.get().map_or(Duration::ZERO, |(t, _)| t.duration_since(sync_start));
        if let Some((_, how)) = encoded.get() {
            tracing::debug!("delta at gzip level {} (link {:?} B/s)", how.level, self.chooser.rate());
            self.chooser.encoded(how);
        }
        self.chooser.received(&arrivals);
        // A replica seen for the first time has none of the synced files.
        for r in &newcomers {
            if let Err(errors) = self.resend_files(r).await {
                report.errors.extend(errors);
            }
        }
        if report.current() == 0 {
            return report;
        }
        if in_container {
            // Each put waited for its replica's answer.
            report.answered = true;
            return report;
        }
        let probe_start = Instant::now();
        match self.opts.probe.wait(self.opts.restart_timeout).await {
            Ok(()) => {
                report.answer = probe_start.elapsed();
                report.answered = true;
            }
            Err(e) => report.errors.push(e),
        }
        report
    }

    /// Indexes the binary every replica should now run, on a blocking
    /// thread, for the next reload's delta (which encodes without waiting
    /// for it, and indexes its base itself when this is not done). The dev
    /// loop calls it once a reload is reported, so that the index takes no
    /// core from the restart, the probe or the debugger's replay.
    pub fn index_current(&mut self) {
        let Some(current) = self.current.clone() else { return };
        let seeds = Arc::new(OnceLock::new());
        self.seeds = Some((current.sha256.clone(), seeds.clone()));
        tokio::task::spawn_blocking(move || {
            let _ = seeds.set(wayin::delta::SeedIndex::build(&current.bytes));
        });
    }

    /// Whether `replica` holds the binary with `sha256` (asked with `hash`).
    pub(super) async fn holds_binary(&self, replica: &Replica, sha256: &str) -> bool {
        let out = self.sessions.call(self.target, replica, &wayin::hash_argv(&self.opts.dest), empty()).await;
        matches!(
            out.as_deref().map(wayin::parse_hash_status),
            Ok(Ok(RemoteFile::Present { sha256: held, .. })) if held == sha256
        )
    }

    /// Puts a payload into one replica, falling back to `full` when the
    /// replica's copy is not the delta's base.
    pub(super) async fn put_binary(
        &self,
        replica: &Replica,
        payload: SharedPayload,
        full: SharedPayload,
    ) -> Result<Pushed, String> {
        let argv = match &self.opts.probe {
            Probe::InContainer(p) => {
                wayin::put_probe_argv(&self.opts.dest, 0o755, self.opts.restart_timeout, &p.to_string())
            }
            _ => wayin::put_wait_argv(&self.opts.dest, 0o755, self.opts.restart_timeout),
        };
        let start = Instant::now();
        let mut payload = payload;
        let mut sent = 0;
        for attempt in 0..2 {
            let out = self.sessions.call(self.target, replica, &argv, payload.clone().boxed()).await?;
            tracing::debug!(
                "put into {} took {:?}: {}",
                replica.name,
                start.elapsed(),
                String::from_utf8_lossy(&out).trim()
            );
            let len = payload.clone().await.len() as u64;
            sent += len;
            match wayin::parse_put_status(&out) {
                Ok(PutStatus::Written { restart_ms, pid, write_ms, answer_ms, exited, exit_ms, recv_us, .. }) => {
                    let ms = |v: Option<u64>| v.map(Duration::from_millis).unwrap_or_default();
                    let restart = ms(restart_ms);
                    // What the helper waited for after the rename: the
                    // restart, then the answer (or the exit).
                    let waited = match exit_ms {
                        Some(_) => ms(exit_ms),
                        None => restart + ms(answer_ms),
                    };
                    let exited = match exited {
                        Some(how) => {
                            // The runtime copies a container's output on its
                            // own time, and watchexec's `[Command exited with
                            // N]` follows the exit: a moment for both to land.
                            tokio::time::sleep(LOG_SETTLE).await;
                            Some((how, self.target.last_lines(replica, LAST_LINES).await))
                        }
                        None => None,
                    };
                    return Ok(Pushed {
                        bytes_sent: sent,
                        sync: start.elapsed().saturating_sub(waited),
                        write: ms(write_ms),
                        restart: pid.map(|_| restart),
                        answer: answer_ms.map(Duration::from_millis),
                        exited,
                        arrival: recv_us.map(|us| (len, Duration::from_micros(us))),
                    });
                }
                Ok(PutStatus::BaseMismatch { .. }) if attempt == 0 => payload = full.clone(),
                Ok(other) => return Err(format!("{}: unexpected helper answer {other:?}", replica.name)),
                Err(e) => return Err(format!("{}: {e}", replica.name)),
            }
        }
        Err(format!("{}: the helper kept refusing the payload", replica.name))
    }
}

/// What a report says of a replica whose new process exited before it
/// answered: how, and the container's last lines (watchexec's
/// `[Command exited with N]` among them).
fn exited(replica: &str, how: &str, lines: &[String]) -> String {
    let how = if how.is_empty() { String::new() } else { format!(" ({how})") };
    let mut m = format!("{replica}: the app exited{how} right after the reload, before it answered");
    // From watchexec's last `[Running: …]` on: this run's lines only.
    let lines = match lines.iter().rposition(|l| l.starts_with("[Running: ")) {
        Some(i) => &lines[i..],
        None => lines,
    };
    if !lines.is_empty() {
        m.push_str("; its last lines:");
        for l in lines {
            m.push_str("\n  ");
            m.push_str(l);
        }
    }
    m
}

fn probe_name(probe: &Probe) -> String {
    match probe {
        Probe::InContainer(p) => p.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn empty() -> futures::future::BoxFuture<'static, Bytes> {
    Box::pin(async { Bytes::new() })
}
