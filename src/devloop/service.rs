//! One service's loop: its changes (already routed to it) debounced into
//! builds, a newer save cancelling a stale build, each build's binary
//! handed to the reload layer, files synced without a build, replicas
//! checked — and each build's end reported, so the session knows when a
//! save has reached every service it touched.

use futures::FutureExt;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::events::{DevEvent, EventSink, Timings};
use super::route::Router;
use super::watch::{Change, SourceWatcher};
use super::waves::Ended;
use super::{files, DevApp, DevError, LoopOptions, Rebuild, Service};
use crate::builder::inputs::BuildInputs;
use crate::builder::BuildError;
use crate::reload::{Binary, Probe, PushReport, ReloadOptions, Reloader};
use crate::sync::dockerfile::SyncMap;

type BuildFuture<'a> = Pin<Box<dyn Future<Output = Result<Bytes, BuildError>> + Send + 'a>>;
type InputsFuture<'a> = Pin<Box<dyn Future<Output = Result<BuildInputs, BuildError>> + Send + 'a>>;

async fn poll_opt<F: Future + Unpin>(f: &mut Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// What every service of a session shares.
pub(super) struct Shared<'a> {
    pub builder: &'a dyn Rebuild,
    pub watcher: &'a std::sync::Mutex<SourceWatcher>,
    pub router: &'a Router,
    pub opts: &'a LoopOptions,
    /// Builds at once, across services.
    pub builds: &'a Semaphore,
    /// Where a service reports each build's end (service, covered sequence, how).
    pub ended: mpsc::UnboundedSender<(usize, u64, Ended)>,
}

/// Changes waiting for the next build or sync.
#[derive(Default)]
struct Pending {
    /// Build inputs that changed, as named in the status line.
    sources: Vec<String>,
    build: bool,
    refresh: bool,
    /// The highest sequence number of a build input change waiting.
    seq: u64,
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
    /// The highest sequence number of the changes it serves.
    seq: u64,
    /// The oldest change this build serves (for timings and the restart bound).
    first_change: Instant,
    started: Instant,
    started_at: SystemTime,
}

/// A hash of the file's content (`None`: it cannot be read, e.g. deleted).
fn content_hash(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// Runs one service until `shutdown` resolves.
pub(super) async fn run(
    index: usize,
    shared: &Shared<'_>,
    service: Service<'_>,
    mut changes: mpsc::UnboundedReceiver<(u64, Change)>,
    events: EventSink,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let Shared { builder, watcher, router, opts, builds, .. } = *shared;
    let Service { app, target, initial, probe, debug } = service;
    let reload_opts = ReloadOptions {
        app: app.name(),
        dest: app.dest(),
        restart_timeout: opts.restart_timeout,
        probe,
        one_shot: false,
    };
    // The first start's answer, told once (a reload meanwhile does not wait
    // for it). Under --debug only that the process runs: a request could stop
    // at a breakpoint the editor set meanwhile.
    let first_opts = match debug {
        Some(_) => ReloadOptions { probe: Probe::Started, ..reload_opts.clone() },
        None => reload_opts.clone(),
    };
    let first_answer = crate::reload::first_answer(target, &first_opts).fuse();
    tokio::pin!(first_answer);
    let mut reloader = Reloader::new(target, reload_opts.clone(), Some(Binary::new(initial)));
    let mut pending = Pending::default();
    let mut running: Option<Running> = None;
    let mut build: Option<BuildFuture<'_>> = None;
    let mut listing: Option<InputsFuture<'_>> = None;
    // When the build whose inputs are being listed again started.
    let mut listing_for = SystemTime::now();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut import_headers: HashMap<PathBuf, String> = HashMap::new();
    // Each changed source's content as of its last event: a second event
    // for one write (a rename can report twice) finds it the same.
    let mut contents: HashMap<PathBuf, Option<u64>> = HashMap::new();
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
    let ended = |seq: u64, how: Ended| {
        if seq > 0 {
            let _ = shared.ended.send((index, seq, how));
        }
    };
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            answered = &mut first_answer => match answered {
                Ok(()) => events(DevEvent::Serving { seconds: opts.began.elapsed().as_secs_f64() }),
                Err(e) => events(DevEvent::Warning { message: format!("not serving yet: {e}") }),
            },
            Some((seq, change)) = changes.recv() => {
                let now = Instant::now();
                match change {
                    Change::Source { path, refresh } => {
                        let content = content_hash(&path);
                        let again = contents.insert(path.clone(), content) == Some(content);
                        // The same content again, while its build waits or runs: that
                        // build covers it (a restart would only build it twice).
                        if again && (pending.build || running.is_some()) {
                            match running.as_mut() {
                                Some(r) => r.seq = r.seq.max(seq),
                                None => pending.seq = pending.seq.max(seq),
                            }
                            continue;
                        }
                        pending.build = true;
                        pending.refresh |= refresh;
                        pending.seq = pending.seq.max(seq);
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
                                pending.seq = pending.seq.max(r.seq);
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
                    let dests = |rel: &str| router.rule_destinations(index, &root.join(rel));
                    files::sync_rule_files(&mut reloader, &app, &dests, &files, &events).await;
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
                    if lock(watcher).constraint_changed(index, &path) {
                        pending.build = true;
                        pending.refresh = true;
                        pending.name(name_of(&path));
                    }
                }
                if !pending.kodata.is_empty() && !pending.build && running.is_none() {
                    let files: Vec<String> = std::mem::take(&mut pending.kodata).into_iter().collect();
                    sync_kodata(&mut reloader, &app, &files, &events, debug).await;
                }
                if pending.build && running.is_none() {
                    let files = std::mem::take(&mut pending.sources);
                    events(DevEvent::BuildStarted { files: files.clone() });
                    running = Some(Running {
                        files,
                        refresh: std::mem::take(&mut pending.refresh),
                        seq: std::mem::take(&mut pending.seq),
                        first_change: pending.since.take().unwrap_or_else(Instant::now),
                        started: Instant::now(),
                        started_at: SystemTime::now(),
                    });
                    pending.build = false;
                    let app = &app;
                    build = Some(Box::pin(async move {
                        // Several services' builds share the machine's cores.
                        let _turn = builds.acquire().await;
                        builder.compile(app).await
                    }));
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
                        ended(r.seq, Ended::Failed);
                    }
                    Err(e) => {
                        events(DevEvent::BuildFailed { output: format!("{e}\n") });
                        ended(r.seq, Ended::Failed);
                    }
                    Ok(binary) => {
                        let binary = Binary::new(binary);
                        if reloader.current().is_some_and(|c| c.sha256 == binary.sha256) {
                            events(DevEvent::Unchanged);
                            ended(r.seq, Ended::Unchanged);
                        } else {
                            let binary_bytes = binary.bytes.len() as u64;
                            if let Some(d) = debug {
                                d.replacing().await;
                            }
                            let report = reloader.push_binary(binary).await;
                            let detect = r.started.duration_since(r.first_change);
                            let answered = report.answered;
                            // Reported once the editor's breakpoints are set in the new process.
                            if let (Some(d), true) = (debug, answered) {
                                d.replaced().await;
                            }
                            report_push(&app, report, &r, detect, build_time, binary_bytes, &events);
                            ended(r.seq, if answered { Ended::Reloaded } else { Ended::Failed });
                            // The next delta's base, indexed while the developer reads the result.
                            reloader.index_current();
                        }
                    }
                }
                if !pending.kodata.is_empty() {
                    let files: Vec<String> = std::mem::take(&mut pending.kodata).into_iter().collect();
                    sync_kodata(&mut reloader, &app, &files, &events, debug).await;
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
                    listing = Some(builder.inputs(&app));
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
                        let before = lock(watcher).inputs(index);
                        // A file that became an input while the listing ran may
                        // have changed after the build read it: build again.
                        let late: Vec<PathBuf> = inputs
                            .files
                            .difference(&before.files)
                            .filter(|f| std::fs::metadata(f).and_then(|m| m.modified()).is_ok_and(|t| t >= listing_for))
                            .cloned()
                            .collect();
                        lock(watcher).set_inputs(index, inputs)?;
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
                // A restarted container runs a new delve: the editor's session follows.
                if let (Some(d), false) = (debug, report.recovered.is_empty()) {
                    d.replaced().await;
                }
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

/// kodata files into the replicas; watchexec restarts the app for them,
/// so under `--debug` the editor's session moves to the new process.
async fn sync_kodata(
    reloader: &mut Reloader<'_>,
    app: &DevApp,
    files: &[String],
    events: &EventSink,
    debug: Option<&crate::debug::Debugger>,
) {
    if let Some(d) = debug {
        d.replacing().await;
    }
    files::sync_kodata(reloader, app, files, events).await;
    if let Some(d) = debug {
        d.replaced().await;
    }
}

fn lock(watcher: &std::sync::Mutex<SourceWatcher>) -> std::sync::MutexGuard<'_, SourceWatcher> {
    watcher.lock().unwrap_or_else(|p| p.into_inner())
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

/// Whether a changed file may have changed the set of build inputs:
/// go.mod/go.sum/go.work, or a Go file whose imports, build constraints or
/// `//go:embed` lines differ from the last time it was seen (or that was not
/// seen before, or is gone).
pub(super) fn imports_changed(path: &Path, seen: &mut HashMap<PathBuf, String>) -> bool {
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
