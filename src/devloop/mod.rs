//! The inner loop: watch → build → sync → confirm, against any [`Target`].
//!
//! # Theory of operation
//!
//! One task owns all state, in a `select!` over: file changes (debounced),
//! the running build (a future held here; dropping it kills `go build`, which
//! is how a newer save cancels a stale build), a new listing of the build
//! inputs (run off the loop when imports, embeds or the file set changed), a
//! health tick (replicas that restarted or were replaced get the current
//! binary before anything is reported as done), and shutdown.
//!
//! Only build inputs start a build ([`mod@watch`] decides what a path is): a log
//! file written next to `main.go`, an editor's swap file or a test binary
//! costs nothing. kodata and files covered by `gohot.yaml` sync rules are
//! copied without a build.
//!
//! # No starvation
//!
//! A change to a build input cancels a running build only while the chain of
//! changes that started it is younger than [`LoopOptions::restart_bound`]
//! (2 s by default); so does the debounce, which waits for a quiet moment
//! but never longer than that bound after the first unserved change. Under
//! changes that never stop, a build therefore still starts within the bound
//! and then runs to completion and is reloaded; the changes that arrived
//! meanwhile start the next build right after. The newest content always
//! ends up running, and something newer than a change runs at most
//! `restart_bound` + two builds (+ the sync) after it.
//!
//! A reload sends the binary to every replica in parallel through the
//! way-in helper: a delta against what the replica is known to hold, or the
//! whole file when that is unknown (the helper refuses a delta whose base
//! does not match, and the full payload follows). The helper renames the new
//! file into place atomically and waits until watchexec has started a
//! process from it, so a "reloaded" line always means the new code runs.

pub mod docker;
pub mod events;
pub mod kube;
mod sessions;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sha2::Digest as _;

use crate::builder::go::Package;
use crate::builder::inputs::BuildInputs;
use crate::builder::BuildError;
use crate::devimage::DevBuilder;
use crate::hosting::{Replica, Target, TargetError};
use crate::platform::Platform;
use crate::sync::dockerfile::SyncMap;
use crate::sync::rules::{CompiledRules, InferPatterns};
use crate::wayin::{self, PutStatus};
use events::{DevEvent, EventSink, Timings};
use sessions::Sessions;
use std::sync::Arc;
use watch::{Change, Scope, SourceWatcher};

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
        crate::layout::app_binary(&self.name())
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

/// `sync.infer` of `gohot.yaml`: files matching `patterns` are copied to the
/// destinations the Dockerfile gives them (as `gohot syncmap` prints them).
#[derive(Clone, Debug)]
pub struct InferSync {
    /// Which files may be synced (context-relative globs).
    pub patterns: InferPatterns,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// Its build context (paths are relative to it).
    pub context: PathBuf,
    /// `ARG` values.
    pub build_args: BTreeMap<String, String>,
}

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopOptions {
    /// Quiet time after a change before building.
    pub debounce: Duration,
    /// How long a chain of changes may keep cancelling (and debouncing) a
    /// build; past it the build runs to completion (see "No starvation").
    pub restart_bound: Duration,
    /// Readiness check after a restart.
    pub probe: Probe,
    /// How long to wait for watchexec to restart the app, and for it to answer.
    pub restart_timeout: Duration,
    /// How often to check that replicas are still the ones that got the binary.
    pub health_interval: Duration,
    /// `gohot.yaml` manual sync rules: covered files are copied (or deleted)
    /// in the containers instead of rebuilding.
    pub rules: Option<Arc<CompiledRules>>,
    /// `gohot.yaml` infer sync.
    pub infer: Option<Arc<InferSync>>,
    /// Source changes to ignore (files another gohot tool wrote, e.g.
    /// syncback's: they must not trigger a rebuild loop).
    pub ignore: Option<IgnoreFn>,
}

/// Says whether a changed source file is to be ignored.
#[derive(Clone)]
pub struct IgnoreFn(pub Arc<dyn Fn(&std::path::Path) -> bool + Send + Sync>);

impl std::fmt::Debug for IgnoreFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IgnoreFn")
    }
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            // Build on the first change: a newer one cancels and restarts
            // the build, which costs less than waiting for a quiet window.
            debounce: Duration::ZERO,
            restart_bound: DEFAULT_RESTART_BOUND,
            probe: Probe::Started,
            restart_timeout: Duration::from_secs(20),
            health_interval: Duration::from_millis(500),
            rules: None,
            infer: None,
            ignore: None,
        }
    }
}

/// See [`LoopOptions::restart_bound`]: long enough that a burst of saves
/// (an editor's save-all, a formatter, a `git checkout`) becomes one build,
/// short enough that changes which never stop still reload every few seconds.
pub const DEFAULT_RESTART_BOUND: Duration = Duration::from_secs(2);

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
    /// The helper's own part of `sync`.
    write: Duration,
    restart: Option<Duration>,
}

type BuildFuture<'a> = Pin<Box<dyn Future<Output = Result<Bytes, BuildError>> + Send + 'a>>;
type InputsFuture<'a> = Pin<Box<dyn Future<Output = Result<BuildInputs, DevError>> + Send + 'a>>;

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

/// What the loop needs from a builder: the app's binary, and what it is
/// built from. [`DevBuilder`] is the real one; the loop's tests use a fake.
#[async_trait::async_trait]
pub trait Rebuild: Send + Sync {
    /// Compiles the app's dev binary and returns it. Dropping the future
    /// stops the build (how a newer save cancels a stale one).
    async fn compile(&self, app: &DevApp) -> Result<Bytes, BuildError>;
    /// Lists what the binary is built from (see [`BuildInputs`]).
    async fn inputs(&self, app: &DevApp) -> Result<BuildInputs, BuildError>;
}

#[async_trait::async_trait]
impl Rebuild for DevBuilder {
    async fn compile(&self, app: &DevApp) -> Result<Bytes, BuildError> {
        let out = DevBuilder::compile(self, &app.package, &app.requested, &app.platform).await?;
        tokio::fs::read(&out).await.map(Bytes::from).map_err(|source| BuildError::Io { path: out, source })
    }

    async fn inputs(&self, app: &DevApp) -> Result<BuildInputs, BuildError> {
        let listed = self.inner().list_deps(&app.package, &app.requested, &app.platform).await?;
        let gowork = std::env::var("GOWORK").ok();
        let work = crate::builder::inputs::work_file(&app.module_root(), gowork.as_deref());
        Ok(BuildInputs::from_listing(&listed, work.as_deref()))
    }
}

/// Start-up shared by every target: the package resolved for the dev
/// image's platform, and its sources watched before the first build, so
/// that no save is lost between start-up and the loop.
pub async fn begin(builder: &DevBuilder, package: &str, opts: &LoopOptions) -> Result<(DevApp, Watching), DevError> {
    let app = DevApp {
        package: builder.inner().package(package).await?,
        requested: package.to_string(),
        platform: builder.platform()?,
    };
    let watching = watch(builder, &app, opts).await?;
    Ok((app, watching))
}

/// The binary the dev image was just built with: where the loop starts.
pub fn built_binary(builder: &DevBuilder, app: &DevApp) -> Result<Bytes, BuildError> {
    let path = crate::cache::binary_path(&builder.inner().cache_root(), &app.package.import_path, &app.platform);
    std::fs::read(&path).map(Bytes::from).map_err(|source| BuildError::Io { path, source })
}

/// Starts watching what the app's binary is built from, kodata, and the
/// files the sync rules cover.
pub async fn watch(builder: &dyn Rebuild, app: &DevApp, opts: &LoopOptions) -> Result<Watching, DevError> {
    let inputs = build_inputs(builder, app).await?;
    let rules = opts.rules.clone().map(|r| -> watch::PathMatcher {
        Arc::new(move |rel: &str| r.destinations(rel, "/").is_ok_and(|d| !d.is_empty()))
    });
    let infer = opts.infer.clone().map(|i| -> (PathBuf, watch::PathMatcher) {
        let context = i.context.clone();
        (context, Arc::new(move |rel: &str| i.patterns.matches(rel)))
    });
    let scope = Scope { kodata: app.kodata(), module_root: app.module_root(), inputs, rules, infer };
    let (watcher, changes) = SourceWatcher::start(scope)?;
    Ok(Watching { watcher, changes })
}

/// Changes waiting for the next build or sync.
#[derive(Default)]
struct Pending {
    /// Build inputs that changed, as named in the status line.
    sources: Vec<String>,
    build: bool,
    refresh: bool,
    kodata: BTreeSet<String>,
    rules: BTreeSet<String>,
    infer: BTreeSet<String>,
    /// Constraint-excluded `.go` files that changed, checked when settled.
    excluded: BTreeSet<PathBuf>,
    /// The oldest change not yet handled.
    since: Option<Instant>,
}

impl Pending {
    fn name(&mut self, name: String) {
        if !self.sources.contains(&name) {
            self.sources.push(name);
        }
    }
    fn is_idle(&self) -> bool {
        !self.build
            && self.kodata.is_empty()
            && self.rules.is_empty()
            && self.infer.is_empty()
            && self.excluded.is_empty()
    }
}

/// The build in flight.
struct Running {
    files: Vec<String>,
    refresh: bool,
    /// The oldest change this build serves (for timings and the restart bound).
    first_change: Instant,
    started: Instant,
    started_at: SystemTime,
}

/// Runs the loop until `shutdown` resolves. `initial` is the binary the
/// target's containers were started with.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    builder: &dyn Rebuild,
    target: &dyn Target,
    app: DevApp,
    watching: Watching,
    initial: Bytes,
    opts: LoopOptions,
    events: EventSink,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let Watching { mut watcher, mut changes } = watching;
    // kodata may have been created by the first (dev) build since watching began.
    watcher.rewatch()?;
    let mut state = SyncState { current_sha: sha256_hex(&initial), current: initial, known: HashMap::new() };
    // A put waits up to restart_timeout for the restart; past that and a
    // margin for the transfer, a replica is hung and its session closed.
    let sessions = Sessions::new(opts.restart_timeout + Duration::from_secs(10));
    let mut pending = Pending::default();
    let mut running: Option<Running> = None;
    let mut build: Option<BuildFuture<'_>> = None;
    let mut listing: Option<InputsFuture<'_>> = None;
    // When the build whose inputs are being listed again started.
    let mut listing_for = SystemTime::now();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut import_headers: HashMap<PathBuf, String> = HashMap::new();
    let mut infer_map: SyncMap = match &opts.infer {
        Some(i) => crate::sync::infer::sync_map_of_dir(&i.dockerfile, &i.context, &i.build_args).unwrap_or_else(|e| {
            events(DevEvent::Warning { message: format!("sync.infer: {e}") });
            SyncMap::new()
        }),
        None => SyncMap::new(),
    };
    let mut health = tokio::time::interval(opts.health_interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let root = app.module_root();
    let name_of = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            Some(change) = changes.recv() => {
                let now = Instant::now();
                match change {
                    Change::Source { path, .. } if opts.ignore.as_ref().is_some_and(|ignore| (ignore.0)(&path)) => {
                        tracing::debug!("{} is ignored (written by syncback): no rebuild", path.display());
                        continue;
                    }
                    Change::Source { path, refresh } => {
                        pending.build = true;
                        pending.refresh |= refresh;
                        pending.name(name_of(&path));
                        pending.since.get_or_insert(now);
                        // A newer save makes the running build stale, unless
                        // the chain has been restarting for the bound already.
                        if running.as_ref().is_some_and(|r| r.first_change.elapsed() < opts.restart_bound) {
                            if let Some(r) = running.take() {
                                build = None;
                                events(DevEvent::BuildCancelled);
                                for f in r.files {
                                    pending.name(f);
                                }
                                pending.refresh |= r.refresh;
                                pending.since = Some(pending.since.map_or(r.first_change, |s| s.min(r.first_change)));
                            }
                        }
                    }
                    Change::Kodata(rel) => { pending.kodata.insert(rel); pending.since.get_or_insert(now); }
                    Change::Rule(rel) => { pending.rules.insert(rel); pending.since.get_or_insert(now); }
                    Change::Infer(rel) => { pending.infer.insert(rel); pending.since.get_or_insert(now); }
                    Change::Excluded(path) => { pending.excluded.insert(path); pending.since.get_or_insert(now); }
                }
                let quiet = now + opts.debounce;
                let latest = pending.since.map_or(quiet, |s| s + opts.restart_bound);
                deadline = Some(tokio::time::Instant::from_std(quiet.min(latest)));
            }
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } else { std::future::pending::<()>().await } } => {
                deadline = None;
                if !pending.rules.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.rules).into_iter().collect();
                    if let Some(rules) = &opts.rules {
                        sync_rule_files(target, &sessions, &app, rules, &files, &events).await;
                    }
                }
                if !pending.infer.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.infer).into_iter().collect();
                    if let Some(infer) = &opts.infer {
                        let deleted = sync_infer(target, &sessions, infer, &mut infer_map, &files, &events).await;
                        if !deleted.is_empty() {
                            // The Skaffold proposal's rule: a deleted file under infer rebuilds.
                            pending.build = true;
                            for f in deleted {
                                pending.name(name_of(&infer.context.join(f)));
                            }
                        }
                    }
                }
                // Settled now: a constraint-excluded file counts only if its
                // constraint changed (then the set of inputs changes too).
                for path in std::mem::take(&mut pending.excluded) {
                    if watcher.constraint_changed(&path) {
                        pending.build = true;
                        pending.refresh = true;
                        pending.name(name_of(&path));
                    }
                }
                if !pending.kodata.is_empty() && !pending.build && running.is_none() {
                    let files: Vec<String> = std::mem::take(&mut pending.kodata).into_iter().collect();
                    sync_kodata(target, &sessions, &app, &files, &events).await;
                }
                if pending.build && running.is_none() {
                    let files = std::mem::take(&mut pending.sources);
                    events(DevEvent::BuildStarted { files: files.clone() });
                    running = Some(Running {
                        files,
                        refresh: std::mem::take(&mut pending.refresh),
                        first_change: pending.since.take().unwrap_or_else(Instant::now),
                        started: Instant::now(),
                        started_at: SystemTime::now(),
                    });
                    pending.build = false;
                    build = Some(builder.compile(&app));
                }
                if pending.is_idle() {
                    pending.since = None;
                }
            }
            result = poll_opt(&mut build) => {
                build = None;
                let Some(r) = running.take() else { continue };
                let build_time = r.started.elapsed();
                match result {
                    Err(BuildError::Go(crate::builder::go::GoError::Build { stderr, .. })) => {
                        events(DevEvent::BuildFailed { output: stderr });
                    }
                    Err(e) => events(DevEvent::BuildFailed { output: format!("{e}\n") }),
                    Ok(binary) => {
                        let sha = sha256_hex(&binary);
                        if sha == state.current_sha {
                            events(DevEvent::Unchanged);
                        } else {
                            let detect = r.started.duration_since(r.first_change);
                            let built = Built { binary, sha, detect, build: build_time, first_change: r.first_change };
                            reload(target, &sessions, &app, &mut state, built, &opts, &events, &r.files).await;
                        }
                    }
                }
                if !pending.kodata.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.kodata).into_iter().collect();
                    sync_kodata(target, &sessions, &app, &files, &events).await;
                }
                // If the set of build inputs may have changed (imports, embeds,
                // a new or deleted file, go.mod), list it again off the loop; a
                // plain edit needs no `go list`. Also after a failed build: the
                // fix may need a file the current set does not know.
                // Every file's header is recorded (no short circuit).
                let headers_changed =
                    r.files.iter().filter(|f| imports_changed(&root.join(f), &mut import_headers)).count() > 0;
                if r.refresh || headers_changed {
                    listing_for = r.started_at;
                    listing = Some(Box::pin(build_inputs(builder, &app)));
                }
                // Changes that came in during the build: next build now.
                if pending.build {
                    deadline = Some(tokio::time::Instant::now() + opts.debounce);
                }
                if pending.is_idle() {
                    pending.since = None;
                }
            }
            result = poll_opt(&mut listing) => {
                listing = None;
                match result {
                    Ok(inputs) => {
                        let before = watcher.inputs();
                        // A file that became an input while the listing ran may
                        // have changed after the build read it: build again.
                        let late: Vec<PathBuf> = inputs
                            .files
                            .difference(&before.files)
                            .filter(|f| std::fs::metadata(f).and_then(|m| m.modified()).is_ok_and(|t| t >= listing_for))
                            .cloned()
                            .collect();
                        watcher.set_inputs(inputs)?;
                        if !late.is_empty() {
                            pending.build = true;
                            pending.since.get_or_insert_with(Instant::now);
                            for f in late {
                                pending.name(name_of(&f));
                            }
                            deadline = Some(tokio::time::Instant::now() + opts.debounce);
                        }
                    }
                    Err(e) => tracing::debug!("listing the build inputs again: {e}"),
                }
            }
            _ = health.tick() => {
                reconcile(target, &sessions, &app, &mut state, &opts, &events).await;
            }
        }
    }
}

/// Whether a changed file may have changed the set of build inputs:
/// go.mod/go.sum/go.work, or a Go file whose imports, build constraints or
/// `//go:embed` lines differ from the last time it was seen (or that was not
/// seen before, or is gone).
fn imports_changed(path: &std::path::Path, seen: &mut HashMap<PathBuf, String>) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if matches!(name, "go.mod" | "go.sum" | "go.work" | "go.work.sum") {
        return true;
    }
    if !name.ends_with(".go") {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        seen.remove(path);
        return true;
    };
    // The header up to the first declaration holds the imports; embed
    // directives sit right above the variables they fill.
    let mut header: Vec<&str> = text
        .lines()
        .take_while(|l| !["func ", "type ", "var ", "const "].iter().any(|k| l.starts_with(k)))
        .filter(|l| l.contains('"') || l.trim_start().starts_with("//go:build"))
        .collect();
    header.extend(text.lines().filter(|l| l.trim_start().starts_with("//go:embed")));
    let header = header.join("\n");
    seen.insert(path.to_path_buf(), header.clone()).is_none_or(|old| old != header)
}

async fn build_inputs(builder: &dyn Rebuild, app: &DevApp) -> Result<BuildInputs, DevError> {
    Ok(builder.inputs(app).await?)
}

/// A new binary, and how long it took to have it.
struct Built {
    binary: Bytes,
    sha: String,
    detect: Duration,
    build: Duration,
    first_change: Instant,
}

/// Sends the new binary to every replica and confirms the new process answers.
#[allow(clippy::too_many_arguments)]
async fn reload(
    target: &dyn Target,
    sessions: &Sessions,
    app: &DevApp,
    state: &mut SyncState,
    built: Built,
    opts: &LoopOptions,
    events: &EventSink,
    files: &[String],
) {
    let sync_start = Instant::now();
    let Built { binary, sha: new_sha, detect, build, first_change } = built;
    let old = state.current.clone();
    let old_sha = state.current_sha.clone();
    state.current = binary.clone();
    state.current_sha = new_sha.clone();
    // Encoded once, on a blocking thread, while the replicas are listed: a
    // delta for replicas that hold the previous binary. The whole file only
    // for those that don't: on a small machine it would otherwise take CPU
    // from the delta, the helpers and the app's start.
    let encoded = Arc::new(std::sync::OnceLock::new());
    let delta = encode_shared({
        let (old, new, encoded) = (old.clone(), binary.clone(), encoded.clone());
        let (old_sha, new_sha) = (old_sha.clone(), new_sha.clone());
        move || {
            let payload = wayin::encode_delta_hashed(&old, &old_sha, &new, &new_sha);
            let _ = encoded.set(Instant::now());
            payload
        }
    });
    let full = encode_lazy({
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
        push(target, sessions, app, r, payload, full.clone(), opts)
    }))
    .await;
    let mut sent = 0;
    let mut sync = Duration::ZERO;
    let mut write = Duration::ZERO;
    let mut restart = Duration::ZERO;
    let mut errors = Vec::new();
    let mut updated = Vec::new();
    for (r, res) in replicas.iter().zip(results) {
        match res {
            Ok(p) => {
                sent += p.bytes_sent;
                sync = sync.max(prepare + p.sync);
                write = write.max(p.write);
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
        encode: encoded.get().map_or(Duration::ZERO, |t| t.duration_since(sync_start)).as_secs_f64(),
        write: write.as_secs_f64(),
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

fn empty() -> futures::future::BoxFuture<'static, Bytes> {
    Box::pin(async { Bytes::new() })
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

/// Encodes only when first awaited (a payload that may not be needed).
fn encode_lazy(encode: impl FnOnce() -> Vec<u8> + Send + 'static) -> SharedPayload {
    use futures::FutureExt;
    async move { tokio::task::spawn_blocking(encode).await.map(Bytes::from).unwrap_or_default() }.boxed().shared()
}

/// Puts a payload into one replica, falling back to `full` when the
/// replica's copy is not the delta's base.
async fn push(
    target: &dyn Target,
    sessions: &Sessions,
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
        let out = sessions.call(target, replica, &argv, payload.clone().boxed()).await?;
        tracing::debug!(
            "put into {} took {:?}: {}",
            replica.name,
            start.elapsed(),
            String::from_utf8_lossy(&out).trim()
        );
        sent += payload.clone().await.len() as u64;
        match wayin::parse_put_status(&out) {
            Ok(PutStatus::Written { restart_ms, pid, write_ms, .. }) => {
                let restart = restart_ms.map(Duration::from_millis).unwrap_or_default();
                let total = start.elapsed();
                return Ok(Pushed {
                    bytes_sent: sent,
                    sync: total.saturating_sub(restart),
                    write: write_ms.map(Duration::from_millis).unwrap_or_default(),
                    restart: pid.map(|_| restart),
                });
            }
            Ok(PutStatus::BaseMismatch { .. }) if attempt == 0 => payload = full.clone(),
            Ok(other) => return Err(format!("{}: unexpected helper answer {other:?}", replica.name)),
            Err(e) => return Err(format!("{}: {e}", replica.name)),
        }
    }
    Err(format!("{}: the helper kept refusing the payload", replica.name))
}

/// Checks that every live replica runs the current binary; restarted or new
/// replicas whose binary differs get it again. A target with no replica left
/// is asked to recover.
async fn reconcile(
    target: &dyn Target,
    sessions: &Sessions,
    app: &DevApp,
    state: &mut SyncState,
    opts: &LoopOptions,
    events: &EventSink,
) {
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
    sessions.retain(&replicas);
    let unknown: Vec<&Replica> = replicas.iter().filter(|r| !state.known.contains_key(&r.instance)).collect();
    if unknown.is_empty() {
        return;
    }
    let current_sha = state.current_sha.clone();
    let full = {
        let b = state.current.clone();
        encode_lazy(move || wayin::encode_full(&b))
    };
    // Every new or restarted replica at once: each is checked, and the
    // stale ones get the current binary, in parallel.
    let checks = unknown.into_iter().map(|r| {
        let (full, current_sha) = (full.clone(), current_sha.clone());
        async move {
            let out = match sessions.call(target, r, &wayin::hash_argv(&app.dest()), empty()).await {
                Ok(o) => o,
                Err(e) => {
                    // The container may still be starting; try again next tick.
                    tracing::debug!("hash check in {}: {e}", r.name);
                    return None;
                }
            };
            match wayin::parse_hash_status(&out) {
                Ok(wayin::RemoteFile::Present { sha256, .. }) if sha256 == current_sha => Some((r, Ok(None))),
                Ok(_) => Some((r, push(target, sessions, app, r, full.clone(), full, opts).await.map(Some))),
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

/// Copies (or deletes) files covered by `gohot.yaml` manual sync rules in
/// every replica, at every destination the rules give, through the same
/// atomic way in.
async fn sync_rule_files(
    target: &dyn Target,
    sessions: &Sessions,
    app: &DevApp,
    rules: &CompiledRules,
    files: &[String],
    events: &EventSink,
) {
    let root = app.module_root();
    let items: Vec<(String, PathBuf, Vec<String>)> = files
        .iter()
        .map(|rel| (rel.clone(), root.join(rel), rules.destinations(rel, "/").unwrap_or_default()))
        .collect();
    send_files(target, sessions, items, events).await;
}

/// `sync.infer`: copies changed files to the destinations the Dockerfile
/// gives them now, removes deleted ones from where they had been copied
/// (the map before), and returns the deleted files (they ask for a rebuild).
async fn sync_infer(
    target: &dyn Target,
    sessions: &Sessions,
    infer: &InferSync,
    map: &mut SyncMap,
    files: &[String],
    events: &EventSink,
) -> Vec<String> {
    let (changed, deleted): (Vec<String>, Vec<String>) =
        files.iter().cloned().partition(|f| infer.context.join(f).is_file());
    let now = match crate::sync::infer::sync_map_of_dir(&infer.dockerfile, &infer.context, &infer.build_args) {
        Ok(m) => m,
        Err(e) => {
            events(DevEvent::SyncFailed { errors: vec![format!("sync.infer: {e}")] });
            return deleted;
        }
    };
    let plan = crate::sync::infer::plan(map, &now, &changed, &deleted);
    *map = now;
    let items: Vec<(String, PathBuf, Vec<String>)> = plan
        .copy
        .into_iter()
        .chain(plan.delete)
        .map(|(rel, dests)| (rel.clone(), infer.context.join(&rel), dests))
        .collect();
    if !items.is_empty() {
        send_files(target, sessions, items, events).await;
    }
    deleted
}

/// Puts each local file (or removes it, when it no longer exists) at every
/// destination in every replica, and reports what reached them all as one [`DevEvent::RulesSynced`].
async fn send_files(
    target: &dyn Target,
    sessions: &Sessions,
    items: Vec<(String, PathBuf, Vec<String>)>,
    events: &EventSink,
) {
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => return events(DevEvent::SyncFailed { errors: vec![e.to_string()] }),
    };
    if replicas.is_empty() {
        let files: Vec<&str> = items.iter().map(|(rel, ..)| rel.as_str()).collect();
        return events(DevEvent::Warning { message: format!("no running container: {} not synced", files.join(", ")) });
    }
    let (mut sent, mut copied, mut deleted, mut errors) = (0, Vec::new(), Vec::new(), Vec::new());
    for (rel, local, dests) in items {
        if dests.is_empty() {
            errors.push(format!("{rel}: the sync rules give it no destination"));
            continue;
        }
        let content = std::fs::read(&local).ok();
        let sha = content.as_deref().map(sha256_hex).unwrap_or_default();
        let mode = file_mode(&local);
        let payload = content.as_ref().map(|c| Bytes::from(wayin::encode_full(c)));
        let errors_before = errors.len();
        let mut requests = 0;
        for dest in &dests {
            for r in &replicas {
                if sessions.holds(r, dest, &sha) {
                    continue;
                }
                requests += 1;
                let (argv, stdin) = match &payload {
                    Some(p) => (wayin::put_argv(dest, mode), p.clone()),
                    None => (wayin::rm_argv(dest), Bytes::new()),
                };
                let input = stdin.clone();
                let result = sessions.call(target, r, &argv, Box::pin(async move { input })).await.and_then(|out| {
                    // The helper's own failure: where the hint for an unwritable destination applies.
                    let helper_failed = |e: wayin::WayInError| {
                        let e = e.to_string();
                        format!("{e}{}", unwritable_hint(&e))
                    };
                    if payload.is_some() {
                        wayin::parse_put_status(&out).map(|_| ()).map_err(helper_failed)
                    } else {
                        wayin::parse_rm_status(&out).map(|_| ()).map_err(helper_failed)
                    }
                });
                match result {
                    Ok(()) => {
                        sent += stdin.len() as u64;
                        sessions.wrote(r, dest, &sha);
                    }
                    Err(e) => errors.push(format!("{}: {dest}: {e}", r.name)),
                }
            }
        }
        // Reported as synced only where it reached every destination of
        // every replica, and not when every one held it already.
        if errors.len() > errors_before || requests == 0 {
            continue;
        }
        if payload.is_some() {
            copied.push(rel)
        } else {
            deleted.push(rel)
        }
    }
    if !errors.is_empty() {
        events(DevEvent::SyncFailed { errors });
    }
    if !copied.is_empty() || !deleted.is_empty() {
        events(DevEvent::RulesSynced { copied, deleted, bytes_sent: sent });
    }
}

/// The fix for a sync rule whose destination the container's user cannot
/// write: the usual mistake on the default (nonroot) base.
fn unwritable_hint(error: &str) -> &'static str {
    if error.contains("permission denied") || error.contains("read-only file system") {
        " (the container's user cannot write there: point the rule's dest at a directory it owns, \
         e.g. under /home/nonroot or /tmp on the default base, or an emptyDir/volume)"
    } else {
        ""
    }
}

/// 0755 for an executable file, else 0644.
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| if m.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 }).unwrap_or(0o644)
}

/// Sends changed kodata files (no rebuild).
async fn sync_kodata(target: &dyn Target, sessions: &Sessions, app: &DevApp, files: &[String], events: &EventSink) {
    let replicas = match target.replicas().await {
        Ok(r) => r,
        Err(e) => return events(DevEvent::SyncFailed { errors: vec![e.to_string()] }),
    };
    if replicas.is_empty() {
        return events(DevEvent::Warning {
            message: format!("no running container: kodata {} not synced", files.join(", ")),
        });
    }
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
        let mode = file_mode(&local);
        let sha = sha256_hex(&data);
        let payload = Bytes::from(wayin::encode_full(&data));
        let dest = format!("{}/{rel}", crate::layout::KODATA_PATH);
        let errors_before = errors.len();
        let mut requests = 0;
        for r in &replicas {
            if sessions.holds(r, &dest, &sha) {
                continue;
            }
            requests += 1;
            let input = payload.clone();
            match sessions.call(target, r, &wayin::put_argv(&dest, mode), Box::pin(async move { input })).await {
                Ok(out) => match wayin::parse_put_status(&out) {
                    Ok(PutStatus::Written { .. }) => {
                        sent += payload.len() as u64;
                        sessions.wrote(r, &dest, &sha);
                    }
                    Ok(other) => errors.push(format!("{}: {rel}: {other:?}", r.name)),
                    Err(e) => errors.push(format!("{}: {rel}: {e}", r.name)),
                },
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == errors_before && requests > 0 {
            synced.push(rel.clone());
        }
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
mod loop_tests;

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
        let with_embed = "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/m/lib\"\n)\n\n//go:embed a.txt\nvar a string\n\nfunc main() { fmt.Println(lib.X, a) }\n";
        std::fs::write(&f, with_embed).unwrap();
        assert!(imports_changed(&f, &mut seen), "a new embed pattern");
        std::fs::write(&f, with_embed.replace("a.txt", "b.txt")).unwrap();
        assert!(imports_changed(&f, &mut seen), "another embed pattern");
        assert!(imports_changed(&d.path().join("go.mod"), &mut seen));
        assert!(!imports_changed(&d.path().join("README.md"), &mut seen));
        std::fs::remove_file(&f).unwrap();
        assert!(imports_changed(&f, &mut seen), "a deleted file");
    }
}
