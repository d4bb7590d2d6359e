//! The inner loop: watch → which services → build → reload → events, for
//! one or several services (each a main package with its own image,
//! containers and probe) on any [`Target`].
//!
//! # Theory of operation
//!
//! One watcher covers the union of every service's build inputs, kodata
//! and sync-rule files, and routes each change to exactly the services it
//! concerns ([`route`]: a package edit goes to the services whose
//! `go list -deps` set holds it). Each service runs its own loop
//! (`service.rs`), a `select!` over: its changes (debounced), its running
//! build (a future held there; dropping it kills `go build`, which is how a
//! newer save cancels a stale build), a new listing of its build inputs
//! (when imports, embeds or the file set changed), a health tick (replicas
//! that restarted or were replaced are brought current before anything is
//! reported as done), and shutdown. Services build concurrently, at most one
//! build per core; each reloads as soon as its own binary is ready, so one
//! service's compile error or hung replica holds no other. A save that
//! touched several services ends with one [`DevEvent::ReloadedAll`] once the
//! last of them is done (`waves.rs`).
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
pub mod route;
mod service;
pub mod watch;
mod waves;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use tokio::sync::mpsc;

use crate::builder::go::Package;
use crate::builder::inputs::BuildInputs;
use crate::builder::BuildError;
use crate::devimage::DevBuilder;
use crate::hosting::{Target, TargetError};
use crate::platform::Platform;
pub use crate::reload::Probe;
use crate::sync::rules::{CompiledRules, InferPatterns};
use events::{DevEvent, ServiceResult, SessionSink};
use route::{Router, ServiceDirs, UnknownApp};
use watch::{Change, Scope, ServiceScope, SourceWatcher};
use waves::Waves;

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
    /// A sync rule names a service the session does not have.
    #[error(transparent)]
    UnknownApp(#[from] UnknownApp),
    /// A flag for one service names none of the session's, or names none in
    /// a session of several.
    #[error(transparent)]
    ServiceFlag(#[from] ServiceFlagError),
    /// Two packages of the session build binaries of the same name.
    #[error("{first} and {second} both build a binary named `{name}`: a session's services need distinct names (they name the containers, `-p NAME=…` and the events); develop one of them in another session")]
    SameName {
        /// The binary name.
        name: String,
        /// One package.
        first: String,
        /// The other.
        second: String,
    },
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
    /// How long to wait for watchexec to restart the app, and for it to answer.
    pub restart_timeout: Duration,
    /// How often to check that replicas are still the ones that got the binary.
    pub health_interval: Duration,
    /// `gohot.yaml` manual sync rules: covered files are copied (or deleted)
    /// in the containers of the services they apply to instead of rebuilding.
    pub rules: Option<Arc<CompiledRules>>,
    /// `gohot.yaml` infer sync.
    pub infer: Option<Arc<InferSync>>,
    /// Source changes to ignore (files another gohot tool wrote, e.g.
    /// syncback's: they must not trigger a rebuild loop).
    pub ignore: Option<IgnoreFn>,
    /// When the session began (the `serving` event counts from it).
    pub began: Instant,
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
            restart_timeout: Duration::from_secs(20),
            health_interval: Duration::from_millis(500),
            rules: None,
            infer: None,
            ignore: None,
            began: Instant::now(),
        }
    }
}

/// Why `gohot.yaml`'s sync settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("gohot.yaml: sync.infer infers destinations from the Dockerfile (sync.dockerfile): {0}")]
pub struct InferConfigError(#[from] crate::sync::infer::InferError);

impl LoopOptions {
    /// The loop's settings from `gohot.yaml` (sync rules, infer) and the
    /// debounce; files syncback brought back (under `cache_root`'s record)
    /// are not edits. A Dockerfile `infer` cannot read is reported now, not
    /// at the first save.
    pub fn from_config(
        config: crate::config::gohot::GohotConfig,
        debounce: Duration,
        cache_root: PathBuf,
    ) -> Result<Self, InferConfigError> {
        let infer = match config.rules.infer {
            Some(patterns) => {
                let infer = InferSync {
                    patterns,
                    dockerfile: config.rules.dockerfile,
                    context: config.dir.clone(),
                    build_args: config.rules.build_args,
                };
                crate::sync::infer::sync_map_of_dir(&infer.dockerfile, &infer.context, &infer.build_args)?;
                Some(Arc::new(infer))
            }
            None => None,
        };
        let rules = (!config.rules.manual.is_empty()).then(|| Arc::new(config.rules.manual));
        let ignore =
            IgnoreFn(Arc::new(move |p: &std::path::Path| crate::syncback::written_by_syncback(&cache_root, p)));
        Ok(LoopOptions { debounce, rules, infer, ignore: Some(ignore), ..Default::default() })
    }
}

/// See [`LoopOptions::restart_bound`]: long enough that a burst of saves
/// (an editor's save-all, a formatter, a `git checkout`) becomes one build,
/// short enough that changes which never stop still reload every few seconds.
pub const DEFAULT_RESTART_BOUND: Duration = Duration::from_secs(2);

/// A setting given for one service (`NAME=…`), or without a name for the
/// only service of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForService<T> {
    /// The service (its app name); None: the only one.
    pub app: Option<String>,
    /// The setting.
    pub value: T,
}

impl<T: std::str::FromStr> ForService<T> {
    /// Parses `[NAME=]VALUE`: a leading `NAME=` whose name is a plain app
    /// name (letters, digits, `-`, `_`, `.`) names the service; anything
    /// else (a URL's query, say) is the value's.
    pub fn parse(s: &str) -> Result<Self, T::Err> {
        let named = s.split_once('=').filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
        match named {
            Some((app, value)) => Ok(ForService { app: Some(app.to_string()), value: value.parse()? }),
            None => Ok(ForService { app: None, value: s.parse()? }),
        }
    }
}

/// `--port-forward LOCAL:POD_PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortForward {
    /// The port on 127.0.0.1.
    pub local: u16,
    /// The port in the pod.
    pub remote: u16,
}

impl std::str::FromStr for PortForward {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.split_once(':')
            .and_then(|(l, r)| Some(PortForward { local: l.parse().ok()?, remote: r.parse().ok()? }))
            .ok_or_else(|| format!("invalid --port-forward {s:?}: use [NAME=]LOCAL:POD_PORT, e.g. 8080:8080"))
    }
}

impl std::fmt::Display for PortForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.local, self.remote)
    }
}

/// A per-service flag that does not fit the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceFlagError {
    /// It names a service the session does not develop.
    #[error("{flag} names `{app}`, which this session does not develop (its services: {known})")]
    Unknown {
        /// The flag.
        flag: &'static str,
        /// The name given.
        app: String,
        /// The session's services.
        known: String,
    },
    /// It names none, and the session has several.
    #[error(
        "{flag} {value}: this session develops several services ({known}): say which, e.g. {flag} {example}={value}"
    )]
    Which {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// The session's services.
        known: String,
        /// The first service's name.
        example: String,
    },
}

/// Sorts per-service settings by service (`names`, in session order): a
/// name must be one of them; a setting without a name needs a session of
/// one service.
pub fn per_service<T: Clone + std::fmt::Display>(
    flag: &'static str,
    given: &[ForService<T>],
    names: &[String],
) -> Result<Vec<Vec<T>>, ServiceFlagError> {
    let known = names.join(", ");
    let mut out = vec![Vec::new(); names.len()];
    for g in given {
        let index = match &g.app {
            Some(app) => names.iter().position(|n| n == app).ok_or_else(|| ServiceFlagError::Unknown {
                flag,
                app: app.clone(),
                known: known.clone(),
            })?,
            None if names.len() == 1 => 0,
            None => {
                return Err(ServiceFlagError::Which {
                    flag,
                    value: g.value.to_string(),
                    known,
                    example: names.first().cloned().unwrap_or_default(),
                })
            }
        };
        out[index].push(g.value.clone());
    }
    Ok(out)
}

/// Sources being watched; start it before building the first image so no
/// save is lost in between (changes queue up until the loop runs).
pub struct Watching {
    watcher: SourceWatcher,
    changes: mpsc::UnboundedReceiver<(usize, Change)>,
    router: Router,
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

/// Start-up shared by every target: each package resolved for the dev
/// image's platform (one service each, in the order given), and their
/// sources watched before the first build, so that no save is lost between
/// start-up and the loop.
pub async fn begin(
    builder: &DevBuilder,
    packages: &[String],
    opts: &LoopOptions,
) -> Result<(Vec<DevApp>, Watching), DevError> {
    let platform = builder.platform()?;
    let mut apps: Vec<DevApp> = Vec::new();
    for requested in packages {
        let app = DevApp {
            package: builder.inner().package(requested).await?,
            requested: requested.clone(),
            platform: platform.clone(),
        };
        if let Some(other) = apps.iter().find(|a| a.name() == app.name()) {
            return Err(DevError::SameName {
                name: app.name(),
                first: other.requested.clone(),
                second: requested.clone(),
            });
        }
        apps.push(app);
    }
    let watching = watch(builder, &apps, opts).await?;
    Ok((apps, watching))
}

/// The binary the dev image was just built with: where the loop starts.
pub fn built_binary(builder: &DevBuilder, app: &DevApp) -> Result<Bytes, BuildError> {
    let path = crate::cache::binary_path(&builder.inner().cache_root(), &app.package.import_path, &app.platform);
    std::fs::read(&path).map(Bytes::from).map_err(|source| BuildError::Io { path, source })
}

/// Starts watching what the services' binaries are built from, their
/// kodata, and the files the sync rules cover.
pub async fn watch(builder: &dyn Rebuild, apps: &[DevApp], opts: &LoopOptions) -> Result<Watching, DevError> {
    let listed = futures::future::try_join_all(apps.iter().map(|a| builder.inputs(a))).await?;
    let dirs = apps
        .iter()
        .map(|a| ServiceDirs { name: a.name(), package_dir: a.package.dir.clone(), module_root: a.module_root() })
        .collect();
    let router = Router::new(dirs, opts.rules.clone())?;
    let services = apps.iter().zip(listed).map(|(a, inputs)| ServiceScope { kodata: a.kodata(), inputs }).collect();
    let infer = opts.infer.clone().map(|i| -> (PathBuf, watch::PathMatcher) {
        let context = i.context.clone();
        (context, Arc::new(move |rel: &str| i.patterns.matches(rel)))
    });
    let (watcher, changes) = SourceWatcher::start(Scope { services, router: router.clone(), infer })?;
    Ok(Watching { watcher, changes, router })
}

/// One service of a session, as the loop runs it.
pub struct Service<'t> {
    /// The app.
    pub app: DevApp,
    /// Where its containers run.
    pub target: &'t dyn Target,
    /// The binary its containers were started with.
    pub initial: Bytes,
    /// How gohot knows its new process serves.
    pub probe: Probe,
    /// `--debug`: the editor's session, told when the process is replaced.
    pub debug: Option<&'t crate::debug::Debugger>,
}

/// Runs the loop for `services` (in the order [`begin`] returned their
/// apps) until `shutdown` resolves; events about one service carry its app.
pub async fn run(
    builder: &dyn Rebuild,
    services: Vec<Service<'_>>,
    watching: Watching,
    opts: LoopOptions,
    events: SessionSink,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let Watching { mut watcher, mut changes, router } = watching;
    // kodata may have been created by the first (dev) build since watching began.
    watcher.rewatch()?;
    let watcher = std::sync::Mutex::new(watcher);
    let shutdown = Box::pin(shutdown).shared();
    let names: Vec<String> = services.iter().map(|s| s.app.name()).collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let builds = tokio::sync::Semaphore::new(cores);
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    let shared =
        service::Shared { builder, watcher: &watcher, router: &router, opts: &opts, builds: &builds, ended: ended_tx };
    let mut senders = Vec::new();
    let mut loops = Vec::new();
    for (index, s) in services.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        let sink = events::for_app(&events, &s.app.name());
        loops.push(service::run(index, &shared, s, rx, sink, shutdown.clone()));
    }
    let roots: Vec<PathBuf> = router.services().iter().map(|s| s.module_root.clone()).collect();
    // Routes each change to its service, and tells when a save is done everywhere.
    let dispatch = async {
        let mut waves = Waves::default();
        let mut shutdown = shutdown.clone();
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok::<(), DevError>(()),
                Some((index, change)) = changes.recv() => {
                    let seq = match &change {
                        Change::Source { path, .. } if opts.ignore.as_ref().is_some_and(|ignore| (ignore.0)(path)) => {
                            tracing::debug!("{} is ignored (written by syncback): no rebuild", path.display());
                            continue;
                        }
                        Change::Source { path, .. } => {
                            let name = path.strip_prefix(&roots[index]).unwrap_or(path).display().to_string();
                            waves.dispatched(Instant::now(), index, &name)
                        }
                        _ => 0,
                    };
                    if let Some(tx) = senders.get(index) {
                        let _ = tx.send((seq, change));
                    }
                }
                Some((index, seq, how)) = ended.recv() => {
                    for done in waves.ended(Instant::now(), index, seq, how) {
                        let services = done
                            .services
                            .iter()
                            .map(|(i, how, total)| ServiceResult {
                                app: names[*i].clone(),
                                outcome: how.as_str().into(),
                                total: total.as_secs_f64(),
                            })
                            .collect();
                        events(None, DevEvent::ReloadedAll { files: done.files, total: done.total.as_secs_f64(), services });
                    }
                }
            }
        }
    };
    futures::future::try_join(dispatch, futures::future::try_join_all(loops)).await?;
    Ok(())
}

#[cfg(test)]
mod loop_tests;
#[cfg(test)]
mod multi_tests;
