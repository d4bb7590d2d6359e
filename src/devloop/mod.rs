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
//! The reload itself — the binary into every replica, files beside it,
//! replicas that restarted, the probe — is [`crate::reload`]'s; the loop
//! decides when, and turns its reports into [`DevEvent`]s.

pub mod docker;
pub mod events;
mod files;
pub mod kube;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::builder::go::Package;
use crate::builder::inputs::BuildInputs;
use crate::builder::BuildError;
use crate::devimage::DevBuilder;
use crate::hosting::{Target, TargetError};
use crate::platform::Platform;
pub use crate::reload::Probe;
use crate::reload::{Binary, PushReport, ReloadOptions, Reloader};
use crate::sync::dockerfile::SyncMap;
use crate::sync::rules::{CompiledRules, InferPatterns};
use events::{DevEvent, EventSink, Timings};
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
    let reload_opts = ReloadOptions {
        app: app.name(),
        dest: app.dest(),
        restart_timeout: opts.restart_timeout,
        probe: opts.probe.clone(),
        one_shot: false,
    };
    let mut reloader = Reloader::new(target, reload_opts, Some(Binary::new(initial)));
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
                        files::sync_rule_files(&mut reloader, &app, rules, &files, &events).await;
                    }
                }
                if !pending.infer.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.infer).into_iter().collect();
                    if let Some(infer) = &opts.infer {
                        let deleted = files::sync_infer(&mut reloader, infer, &mut infer_map, &files, &events).await;
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
                    files::sync_kodata(&mut reloader, &app, &files, &events).await;
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
                        let binary = Binary::new(binary);
                        if reloader.current().is_some_and(|c| c.sha256 == binary.sha256) {
                            events(DevEvent::Unchanged);
                        } else {
                            let binary_bytes = binary.bytes.len() as u64;
                            let report = reloader.push_binary(binary).await;
                            let detect = r.started.duration_since(r.first_change);
                            report_push(&app, report, &r, detect, build_time, binary_bytes, &events);
                        }
                    }
                }
                if !pending.kodata.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.kodata).into_iter().collect();
                    files::sync_kodata(&mut reloader, &app, &files, &events).await;
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
                let report = reloader.check_replicas().await;
                for (replica, reason) in report.recovered {
                    events(DevEvent::Recovered { replica, reason });
                }
                for message in report.warnings {
                    events(DevEvent::Warning { message });
                }
                if !report.errors.is_empty() {
                    events(DevEvent::SyncFailed { errors: report.errors });
                }
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

/// A binary reload's report as events: a failure where a replica or the
/// probe failed, the status line where the new process answered.
fn report_push(
    app: &DevApp,
    report: PushReport,
    build: &Running,
    detect: Duration,
    build_time: Duration,
    binary_bytes: u64,
    events: &EventSink,
) {
    if report.replicas.is_empty() && report.errors.is_empty() {
        return events(DevEvent::Warning {
            message: "no running container to reload; it will get the new binary when it is back".into(),
        });
    }
    let failures = report.failures();
    if !failures.is_empty() {
        events(DevEvent::SyncFailed { errors: failures });
    }
    if !report.answered {
        return;
    }
    let timings = Timings {
        detect: detect.as_secs_f64(),
        build: build_time.as_secs_f64(),
        sync: report.sync.as_secs_f64(),
        encode: report.encode.as_secs_f64(),
        write: report.write.as_secs_f64(),
        restart: report.restart.as_secs_f64(),
        answer: report.answer.as_secs_f64(),
        total: build.first_change.elapsed().as_secs_f64(),
    };
    events(DevEvent::Reloaded {
        app: app.name(),
        files: build.files.clone(),
        timings,
        bytes_sent: report.bytes_sent,
        binary_bytes,
        replicas: report.current(),
        replicas_total: report.replicas.len(),
    });
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
