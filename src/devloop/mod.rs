//! The inner loop: watch → build → sync → confirm, against any [`Target`].
//!
//! # Theory of operation
//!
//! One task owns all state, in a `select!` over: file changes (debounced),
//! the running build (a future held here; dropping it kills `go build`, which
//! is how a newer save cancels a stale build), a health tick (replicas that
//! restarted or were replaced get the current binary before anything is
//! reported as done), and shutdown.
//!
//! A reload sends the binary to every replica in parallel through the
//! way-in helper: a delta against what the replica is known to hold, or the
//! whole file when that is unknown (the helper refuses a delta whose base
//! does not match, and the full payload follows). The helper renames the new
//! file into place atomically and waits until watchexec has started a
//! process from it, so a "reloaded" line always means the new code runs.

pub mod docker;
pub mod events;
pub mod watch;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sha2::Digest as _;

use crate::build::go::Package;
use crate::build::{BuildError, GoBuilder};
use crate::platform::Platform;
use crate::sync::rules::CompiledRules;
use crate::sync::wayin::{self, PutStatus};
use crate::target::{Replica, Target, TargetError};
use events::{DevEvent, EventSink, Timings};
use std::sync::Arc;
use watch::{Change, SourceWatcher};

/// Errors that end the loop (a failed build or sync does not).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// Watching the sources failed.
    #[error("cannot watch the sources: {0}")]
    Watch(#[from] notify::Error),
    /// The target failed in a way the loop cannot recover from.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Listing the package's dependencies failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// How gohot knows the new process is serving.
#[derive(Clone, Debug)]
pub enum Probe {
    /// Any HTTP answer from this URL.
    Http(String),
    /// A TCP connection to this address.
    Tcp(std::net::SocketAddr),
    /// Only that watchexec started a process from the new binary.
    Started,
}

/// The app being developed.
#[derive(Clone, Debug)]
pub struct DevApp {
    /// The package.
    pub package: Package,
    /// How the user named it (for `.ko.yaml` matching).
    pub requested: String,
    /// Its platform (one: the dev image's).
    pub platform: Platform,
}

impl DevApp {
    /// The binary's name.
    pub fn name(&self) -> String {
        self.package.binary_name()
    }
    /// Where the binary lives in the container.
    pub fn dest(&self) -> String {
        format!("{}/{}", crate::build::image::APP_DIR, self.name())
    }
    /// The package's kodata directory.
    pub fn kodata(&self) -> PathBuf {
        self.package.dir.join("kodata")
    }
    /// The module root (go.mod's directory).
    pub fn module_root(&self) -> PathBuf {
        self.package.module.as_ref().and_then(|m| m.dir.clone()).unwrap_or_else(|| self.package.dir.clone())
    }
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// Quiet time after a change before building.
    pub debounce: Duration,
    /// Readiness check after a restart.
    pub probe: Probe,
    /// How long to wait for watchexec to restart the app, and for it to answer.
    pub restart_timeout: Duration,
    /// How often to check that replicas are still the ones that got the binary.
    pub health_interval: Duration,
    /// `gohot.yaml` manual sync rules: covered files are copied (or deleted)
    /// in the containers instead of rebuilding.
    pub rules: Option<Arc<CompiledRules>>,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            debounce: Duration::from_millis(15),
            probe: Probe::Started,
            restart_timeout: Duration::from_secs(20),
            health_interval: Duration::from_millis(500),
            rules: None,
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// The binary every replica should run, and what each replica is known to hold.
struct SyncState {
    current: Bytes,
    current_sha: String,
    /// Replica instance → sha256 of the binary it holds.
    known: HashMap<String, String>,
}

/// What sending the binary to one replica did.
struct Pushed {
    bytes_sent: u64,
    sync: Duration,
    restart: Option<Duration>,
}

type BuildFuture<'a> = Pin<Box<dyn Future<Output = Result<Bytes, BuildError>> + Send + 'a>>;
type DepsFuture<'a> = Pin<Box<dyn Future<Output = Result<BTreeSet<PathBuf>, DevError>> + Send + 'a>>;

async fn poll_opt<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Sources being watched; start it before building the first image so no
/// save is lost in between (changes queue up until the loop runs).
pub struct Watching {
    watcher: SourceWatcher,
    changes: tokio::sync::mpsc::UnboundedReceiver<Change>,
}

/// Starts watching the app's sources (and files the sync rules cover).
pub async fn watch(builder: &GoBuilder, app: &DevApp, rules: Option<Arc<CompiledRules>>) -> Result<Watching, DevError> {
    let deps = package_dirs(builder, app).await?;
    let matcher: Option<watch::RuleMatcher> = rules.map(|r| -> watch::RuleMatcher {
        Arc::new(move |rel: &str| r.destinations(rel, "/").is_ok_and(|d| !d.is_empty()))
    });
    let (watcher, changes) = SourceWatcher::start(app.kodata(), app.module_root(), deps, matcher)?;
    Ok(Watching { watcher, changes })
}

/// Runs the loop until `shutdown` resolves. `initial` is the binary the
/// target's containers were started with.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    builder: &GoBuilder,
    target: &dyn Target,
    app: DevApp,
    watching: Watching,
    initial: Bytes,
    opts: LoopOptions,
    events: EventSink,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let Watching { mut watcher, mut changes } = watching;
    let mut state = SyncState { current_sha: sha256_hex(&initial), current: initial, known: HashMap::new() };
    let mut pending_sources: Vec<String> = Vec::new();
    let mut build_wanted = false;
    let mut pending_kodata: BTreeSet<String> = BTreeSet::new();
    let mut pending_rules: BTreeSet<String> = BTreeSet::new();
    let mut first_change: Option<Instant> = None;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut build: Option<BuildFuture<'_>> = None;
    let mut deps: Option<DepsFuture<'_>> = None;
    let mut import_headers: HashMap<PathBuf, String> = HashMap::new();
    let mut build_files: Vec<String> = Vec::new();
    let mut build_started = Instant::now();
    let mut build_first_change = Instant::now();
    let mut health = tokio::time::interval(opts.health_interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            Some(change) = changes.recv() => {
                first_change.get_or_insert_with(Instant::now);
                match change {
                    Change::Source(p) if crate::syncback::written_by_syncback(&builder.cache_root(), &p) => {
                        tracing::debug!("{} was written by syncback: no rebuild", p.display());
                        if first_change.is_some() && !build_wanted && pending_kodata.is_empty() && pending_rules.is_empty() {
                            first_change = None;
                        }
                        continue;
                    }
                    Change::Source(p) => {
                        build_wanted = true;
                        let name = p.strip_prefix(app.module_root()).unwrap_or(&p).display().to_string();
                        // Tools' temp files (sed -i, atomic saves) still trigger the
                        // build but are not worth naming once they are gone.
                        let named = p.exists() || name.ends_with(".go") || name.ends_with(".mod") || name.ends_with(".sum");
                        if named && !pending_sources.contains(&name) {
                            pending_sources.push(name);
                        }
                        if build.take().is_some() {
                            events(DevEvent::BuildCancelled);
                        }
                    }
                    Change::Kodata(rel) => { pending_kodata.insert(rel); }
                    Change::Rule(rel) => { pending_rules.insert(rel); }
                }
                deadline = Some(tokio::time::Instant::now() + opts.debounce);
            }
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } else { std::future::pending::<()>().await } } => {
                deadline = None;
                let started_by = first_change.take().unwrap_or_else(Instant::now);
                if let (false, Some(rules)) = (pending_rules.is_empty(), &opts.rules) {
                    let files: Vec<String> = std::mem::take(&mut pending_rules).into_iter().collect();
                    sync_rule_files(target, &app, rules, &files, &events).await;
                }
                if !pending_kodata.is_empty() && !build_wanted {
                    let files: Vec<String> = std::mem::take(&mut pending_kodata).into_iter().collect();
                    sync_kodata(target, &app, &files, &events).await;
                }
                if build_wanted {
                    build_wanted = false;
                    build_files = std::mem::take(&mut pending_sources);
                    events(DevEvent::BuildStarted { files: build_files.clone() });
                    build_started = Instant::now();
                    build_first_change = started_by;
                    build = Some(Box::pin(compile(builder, &app)));
                }
            }
            result = poll_opt(&mut build) => {
                build = None;
                let build_time = build_started.elapsed();
                match result {
                    Err(BuildError::Go(crate::build::go::GoError::Build { stderr, .. })) => {
                        events(DevEvent::BuildFailed { output: stderr });
                    }
                    Err(e) => events(DevEvent::BuildFailed { output: format!("{e}\n") }),
                    Ok(binary) if sha256_hex(&binary) == state.current_sha => events(DevEvent::Unchanged),
                    Ok(binary) => {
                        let detect = build_started.duration_since(build_first_change);
                        reload(target, &app, &mut state, binary, &opts, &events, &build_files, detect, build_time, build_first_change).await;
                        if !pending_kodata.is_empty() {
                            let files: Vec<String> = std::mem::take(&mut pending_kodata).into_iter().collect();
                            sync_kodata(target, &app, &files, &events).await;
                        }
                        // If imports changed, find what the binary depends on now,
                        // off the loop (a plain edit needs no `go list`).
                        let root = app.module_root();
                        if build_files.iter().any(|f| imports_changed(&root.join(f), &mut import_headers)) {
                            deps = Some(Box::pin(package_dirs(builder, &app)));
                        }
                    }
                }
            }
            result = poll_opt(&mut deps) => {
                deps = None;
                if let Ok(dirs) = result {
                    watcher.update(dirs)?;
                }
            }
            _ = health.tick() => {
                reconcile(target, &app, &mut state, &opts, &events).await;
            }
        }
    }
}

/// Whether a changed file may have changed the set of packages the binary
/// depends on: go.mod/go.sum/go.work, or a Go file whose import lines differ
/// from the last time it was seen (or that was not seen before, or is gone).
fn imports_changed(path: &std::path::Path, seen: &mut HashMap<PathBuf, String>) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if matches!(name, "go.mod" | "go.sum" | "go.work") {
        return true;
    }
    if !name.ends_with(".go") {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        seen.remove(path);
        return true;
    };
    // The header up to the first declaration holds the imports.
    let header: String = text
        .lines()
        .take_while(|l| !["func ", "type ", "var ", "const "].iter().any(|k| l.starts_with(k)))
        .filter(|l| l.contains('"') || l.trim_start().starts_with("//go:build"))
        .collect::<Vec<_>>()
        .join("\n");
    seen.insert(path.to_path_buf(), header.clone()).is_none_or(|old| old != header)
}

async fn package_dirs(builder: &GoBuilder, app: &DevApp) -> Result<BTreeSet<PathBuf>, DevError> {
    let dirs = builder.go().dependency_dirs(&app.package.dir, &app.package.import_path, &app.platform).await;
    Ok(dirs.map_err(BuildError::from)?.into_iter().collect())
}

async fn compile(builder: &GoBuilder, app: &DevApp) -> Result<Bytes, BuildError> {
    let out = builder.compile(&app.package, &app.requested, &app.platform).await?;
    tokio::fs::read(&out).await.map(Bytes::from).map_err(|source| BuildError::Io { path: out, source })
}

/// Sends `binary` to every replica and confirms the new process answers.
#[allow(clippy::too_many_arguments)]
async fn reload(
    target: &dyn Target,
    app: &DevApp,
    state: &mut SyncState,
    binary: Bytes,
    opts: &LoopOptions,
    events: &EventSink,
    files: &[String],
    detect: Duration,
    build: Duration,
    first_change: Instant,
) {
    let sync_start = Instant::now();
    let new_sha = sha256_hex(&binary);
    let old = state.current.clone();
    let old_sha = state.current_sha.clone();
    state.current = binary.clone();
    state.current_sha = new_sha.clone();
    // Encoded once, on blocking threads, while the replicas are listed and
    // each replica's exec is set up: a delta for replicas that hold the
    // previous binary, else the whole file.
    let delta = encode_shared({
        let (old, new) = (old.clone(), binary.clone());
        move || wayin::encode_delta(&old, &new)
    });
    let full = encode_shared({
        let new = binary.clone();
        move || wayin::encode_full(&new)
    });
    // Listed afresh: a replica that appeared since the last health check
    // (a replaced pod) is reloaded too, with the whole binary, before this
    // reload is reported.
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => {
            events(DevEvent::SyncFailed { errors: vec![e.to_string()] });
            return;
        }
    };
    if replicas.is_empty() {
        events(DevEvent::Warning {
            message: "no running container to reload; it will get the new binary when it is back".into(),
        });
        return;
    }
    // Sync time: from here (encoding included) to the last rename.
    let prepare = sync_start.elapsed();
    let results = futures::future::join_all(replicas.iter().map(|r| {
        let payload = match state.known.get(&r.instance) {
            Some(sha) if *sha == old_sha => delta.clone(),
            _ => full.clone(),
        };
        push(target, app, r, payload, full.clone(), opts)
    }))
    .await;
    let mut sent = 0;
    let mut sync = Duration::ZERO;
    let mut restart = Duration::ZERO;
    let mut errors = Vec::new();
    let mut updated = Vec::new();
    for (r, res) in replicas.iter().zip(results) {
        match res {
            Ok(p) => {
                sent += p.bytes_sent;
                sync = sync.max(prepare + p.sync);
                match p.restart {
                    Some(d) => {
                        restart = restart.max(d);
                        updated.push(r.clone());
                    }
                    None => errors.push(format!(
                        "{}: watchexec did not restart the app within {:?}",
                        r.name, opts.restart_timeout
                    )),
                }
                state.known.insert(r.instance.clone(), new_sha.clone());
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        events(DevEvent::SyncFailed { errors });
        if updated.is_empty() {
            return;
        }
    }
    let probe_start = Instant::now();
    if let Err(e) = probe(&opts.probe, opts.restart_timeout).await {
        events(DevEvent::SyncFailed { errors: vec![e] });
        return;
    }
    let answer = probe_start.elapsed();
    let timings = Timings {
        detect: detect.as_secs_f64(),
        build: build.as_secs_f64(),
        sync: sync.as_secs_f64(),
        restart: restart.as_secs_f64(),
        answer: answer.as_secs_f64(),
        total: first_change.elapsed().as_secs_f64(),
    };
    events(DevEvent::Reloaded {
        app: app.name(),
        files: files.to_vec(),
        timings,
        bytes_sent: sent,
        binary_bytes: binary.len() as u64,
        replicas: updated.len(),
        replicas_total: replicas.len(),
    });
}

/// A payload being encoded on a blocking thread, awaitable by many.
type SharedPayload = futures::future::Shared<futures::future::BoxFuture<'static, Bytes>>;

/// Starts encoding now (not when first awaited), so that it overlaps
/// whatever the caller does next.
fn encode_shared(encode: impl FnOnce() -> Vec<u8> + Send + 'static) -> SharedPayload {
    use futures::FutureExt;
    let task = tokio::task::spawn_blocking(encode);
    async move { task.await.map(Bytes::from).unwrap_or_default() }.boxed().shared()
}

/// Puts a payload into one replica, falling back to `full` when the
/// replica's copy is not the delta's base.
async fn push(
    target: &dyn Target,
    app: &DevApp,
    replica: &Replica,
    payload: SharedPayload,
    full: SharedPayload,
    opts: &LoopOptions,
) -> Result<Pushed, String> {
    use futures::FutureExt;
    let argv = wayin::put_wait_argv(&app.dest(), 0o755, opts.restart_timeout);
    let start = Instant::now();
    let mut payload = payload;
    let mut sent = 0;
    for attempt in 0..2 {
        let out = target.exec_deferred(replica, &argv, payload.clone().boxed()).await.map_err(|e| e.to_string())?;
        tracing::debug!(
            "put into {} took {:?}: {}",
            replica.name,
            start.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
        sent += payload.clone().await.len() as u64;
        match wayin::parse_put_status(&out.stdout) {
            Ok(PutStatus::Written { restart_ms, pid, .. }) => {
                let restart = restart_ms.map(Duration::from_millis).unwrap_or_default();
                let total = start.elapsed();
                return Ok(Pushed {
                    bytes_sent: sent,
                    sync: total.saturating_sub(restart),
                    restart: pid.map(|_| restart),
                });
            }
            Ok(PutStatus::BaseMismatch { .. }) if attempt == 0 => payload = full.clone(),
            Ok(other) => return Err(format!("{}: unexpected helper answer {other:?}", replica.name)),
            Err(e) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(format!("{}: {e} {}", replica.name, stderr.trim()));
            }
        }
    }
    Err(format!("{}: the helper kept refusing the payload", replica.name))
}

/// Checks that every live replica runs the current binary; restarted or new
/// replicas whose binary differs get it again. A target with no replica left
/// is asked to recover.
async fn reconcile(target: &dyn Target, app: &DevApp, state: &mut SyncState, opts: &LoopOptions, events: &EventSink) {
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => {
            events(DevEvent::Warning { message: e.to_string() });
            return;
        }
    };
    if replicas.is_empty() {
        match target.recover().await {
            Ok(true) => {
                events(DevEvent::Recovered { replica: app.name(), reason: "container was gone: re-created it".into() })
            }
            Ok(false) => {}
            Err(e) => events(DevEvent::Warning { message: format!("cannot bring the app back: {e}") }),
        }
        return;
    }
    state.known.retain(|instance, _| replicas.iter().any(|r| &r.instance == instance));
    let unknown: Vec<&Replica> = replicas.iter().filter(|r| !state.known.contains_key(&r.instance)).collect();
    if unknown.is_empty() {
        return;
    }
    let current_sha = state.current_sha.clone();
    let full = {
        let b = state.current.clone();
        encode_shared(move || wayin::encode_full(&b))
    };
    // Every new or restarted replica at once: each is checked, and the
    // stale ones get the current binary, in parallel.
    let checks = unknown.into_iter().map(|r| {
        let (full, current_sha) = (full.clone(), current_sha.clone());
        async move {
            let out = match target.exec(r, &wayin::hash_argv(&app.dest()), Bytes::new()).await {
                Ok(o) => o,
                Err(e) => {
                    // The container may still be starting; try again next tick.
                    tracing::debug!("hash check in {}: {e}", r.name);
                    return None;
                }
            };
            match wayin::parse_hash_status(&out.stdout) {
                Ok(wayin::RemoteFile::Present { sha256, .. }) if sha256 == current_sha => Some((r, Ok(None))),
                Ok(_) => Some((r, push(target, app, r, full.clone(), full, opts).await.map(Some))),
                Err(e) => {
                    tracing::debug!("hash check in {}: {e}", r.name);
                    None
                }
            }
        }
    });
    for (r, outcome) in futures::future::join_all(checks).await.into_iter().flatten() {
        match outcome {
            Ok(None) => {
                state.known.insert(r.instance.clone(), current_sha.clone());
            }
            Ok(Some(p)) => {
                state.known.insert(r.instance.clone(), current_sha.clone());
                let how = if p.restart.is_some() { "restarted on it" } else { "restart not confirmed" };
                events(DevEvent::Recovered {
                    replica: r.name.clone(),
                    reason: format!("new or restarted, with a stale binary: synced the current one ({how})"),
                });
            }
            Err(e) => events(DevEvent::SyncFailed { errors: vec![e] }),
        }
    }
}

/// Copies (or deletes) files covered by `gohot.yaml` sync rules in every
/// replica, at every destination the rules give, through the same atomic way in.
async fn sync_rule_files(
    target: &dyn Target,
    app: &DevApp,
    rules: &CompiledRules,
    files: &[String],
    events: &EventSink,
) {
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => return events(DevEvent::SyncFailed { errors: vec![e.to_string()] }),
    };
    let root = app.module_root();
    let (mut sent, mut copied, mut deleted, mut errors) = (0, Vec::new(), Vec::new(), Vec::new());
    for rel in files {
        let dests = rules.destinations(rel, "/").unwrap_or_default();
        let local = root.join(rel);
        let content = std::fs::read(&local).ok();
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&local)
                .map(|m| if m.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 })
                .unwrap_or(0o644)
        };
        let payload = content.as_ref().map(|c| Bytes::from(wayin::encode_full(c)));
        for dest in &dests {
            for r in &replicas {
                let (argv, stdin) = match &payload {
                    Some(p) => (wayin::put_argv(dest, mode), p.clone()),
                    None => (wayin::rm_argv(dest), Bytes::new()),
                };
                let result = target.exec(r, &argv, stdin.clone()).await.map_err(|e| e.to_string()).and_then(|out| {
                    if payload.is_some() {
                        wayin::parse_put_status(&out.stdout).map(|_| ()).map_err(|e| e.to_string())
                    } else {
                        wayin::parse_rm_status(&out.stdout).map(|_| ()).map_err(|e| e.to_string())
                    }
                });
                match result {
                    Ok(()) => sent += stdin.len() as u64,
                    Err(e) => errors.push(format!("{}: {dest}: {e}", r.name)),
                }
            }
        }
        if payload.is_some() {
            copied.push(rel.clone())
        } else {
            deleted.push(rel.clone())
        }
    }
    if !errors.is_empty() {
        events(DevEvent::SyncFailed { errors });
    }
    events(DevEvent::RulesSynced { copied, deleted, bytes_sent: sent });
}

/// Sends changed kodata files (no rebuild).
async fn sync_kodata(target: &dyn Target, app: &DevApp, files: &[String], events: &EventSink) {
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => return events(DevEvent::SyncFailed { errors: vec![e.to_string()] }),
    };
    let mut sent = 0;
    let mut synced = Vec::new();
    let mut errors = Vec::new();
    for rel in files {
        let local = app.kodata().join(rel);
        let Ok(data) = std::fs::read(&local) else {
            events(DevEvent::Warning {
                message: format!(
                    "kodata/{rel} was removed locally; it stays in the container until the next image build"
                ),
            });
            continue;
        };
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&local)
                .map(|m| if m.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 })
                .unwrap_or(0o644)
        };
        let payload = Bytes::from(wayin::encode_full(&data));
        let dest = format!("{}/{rel}", crate::build::image::KODATA_PATH);
        for r in &replicas {
            match target.exec(r, &wayin::put_argv(&dest, mode), payload.clone()).await {
                Ok(out) => match wayin::parse_put_status(&out.stdout) {
                    Ok(PutStatus::Written { .. }) => sent += payload.len() as u64,
                    Ok(other) => errors.push(format!("{}: {rel}: {other:?}", r.name)),
                    Err(e) => errors.push(format!("{}: {rel}: {e}", r.name)),
                },
                Err(e) => errors.push(e.to_string()),
            }
        }
        synced.push(rel.clone());
    }
    if !errors.is_empty() {
        events(DevEvent::SyncFailed { errors });
    }
    if !synced.is_empty() {
        events(DevEvent::KodataSynced { files: synced, bytes_sent: sent });
    }
}

/// Waits until the probe answers.
async fn probe(probe: &Probe, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    match probe {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_import_changes_refresh_dependencies() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("main.go");
        let mut seen = HashMap::new();
        std::fs::write(&f, "package main\n\nimport \"fmt\"\n\nvar g = \"a\"\n\nfunc main() { fmt.Println(g) }\n")
            .unwrap();
        assert!(imports_changed(&f, &mut seen), "first sight");
        std::fs::write(&f, "package main\n\nimport \"fmt\"\n\nvar g = \"b\"\n\nfunc main() { fmt.Println(g) }\n")
            .unwrap();
        assert!(!imports_changed(&f, &mut seen), "a string edit");
        std::fs::write(
            &f,
            "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/m/lib\"\n)\n\nfunc main() { fmt.Println(lib.X) }\n",
        )
        .unwrap();
        assert!(imports_changed(&f, &mut seen), "a new import");
        assert!(imports_changed(&d.path().join("go.mod"), &mut seen));
        assert!(!imports_changed(&d.path().join("README.md"), &mut seen));
        std::fs::remove_file(&f).unwrap();
        assert!(imports_changed(&f, &mut seen), "a deleted file");
    }
}
