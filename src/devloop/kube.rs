//! `gohot dev [PKG…] -f manifests` on a cluster: deploy (resolve with the
//! dev rewrite for the services developed, server-side apply, wait for the
//! rollout), then hot-reload each service into every pod that runs its
//! image. Without packages every `ko://` image of the manifests is
//! developed; with some, only those — the others are deployed as production
//! images. Each service's logs and port-forwards follow its pods as they
//! come and go. Nothing is deleted on the way out: the workloads stay, and
//! the user is told how to remove them.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;

use super::events::{for_app, DevEvent, SessionSink};
use super::{per_service, DevApp, DevError, ForService, LoopOptions, PortForward, Probe, Service};
use crate::builder::{Build, BuildError, Built};
use crate::cluster::{Cluster, KubeError};
use crate::debug::Debugger;
use crate::deploy::{self, rollout, DeployError};
use crate::devimage::DevBuilder;
use crate::hosting::kube::{logs, pods, KubeTarget};
use crate::publish::Publish;
use crate::resolve::{ManifestFile, KO_PREFIX};

/// Errors starting dev mode on a cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeDevError {
    /// Building the dev image failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Resolving, applying or waiting failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The cluster failed.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The loop failed.
    #[error(transparent)]
    Loop(#[from] DevError),
    /// The manifests do not run the app.
    #[error(
        "no container in the manifests uses `image: {0}`: gohot dev reloads the containers that run the app's image (see examples/hello/manifests)"
    )]
    NoAppContainer(String),
    /// The manifests name no `ko://` image at all.
    #[error("the manifests name no `ko://` image: gohot dev develops the containers whose image is `ko://<import path>` (see examples/hello/manifests)")]
    NoKoImage,
}

impl KubeDevError {
    /// The compiler's output, when start-up failed because the app does not compile.
    pub fn compiler_output(&self) -> Option<&str> {
        match self {
            KubeDevError::Build(b) | KubeDevError::Loop(DevError::Build(b)) => b.compiler_output(),
            _ => None,
        }
    }
}

/// What to run.
pub struct KubeDev<'d> {
    /// The packages to develop; empty: every `ko://` image of the manifests.
    pub packages: Vec<String>,
    /// The manifests.
    pub files: Vec<ManifestFile>,
    /// How the user named them and the cluster (for the closing hint).
    pub delete_hint: String,
    /// `--port-forward [NAME=]LOCAL:POD_PORT`.
    pub port_forwards: Vec<ForService<PortForward>>,
    /// `--probe [NAME=]SPEC`.
    pub probes: Vec<ForService<Probe>>,
    /// How long to wait for the rollout.
    pub rollout_timeout: Duration,
    /// `--debug`: the one service developed runs under delve, and the
    /// debugger reaches a pod's delve through a port-forward of its own.
    pub debug: Option<&'d Debugger>,
    /// `--debug-replica POD`: the pod to debug while it lives (default: the
    /// first ready one; the session stays with its pod until it is gone).
    pub debug_replica: Option<String>,
}

/// Runs dev mode on the cluster until `shutdown`. A `shutdown` during
/// start-up (build, push, apply, rollout) stops there.
pub async fn run(
    builder: &DevBuilder,
    cluster: &Cluster,
    publisher: &dyn Publish,
    dev: KubeDev<'_>,
    opts: LoopOptions,
    events: SessionSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), KubeDevError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let started = tokio::select! {
        s = start(builder, cluster, publisher, &dev, &opts, &events) => s?,
        _ = &mut shutdown => return Ok(()),
    };
    let Started { services, watching, tasks } = started;
    let debug = dev.debug;
    let services = services
        .iter()
        .map(|(app, target, initial, probe)| Service {
            app: app.clone(),
            target,
            initial: initial.clone(),
            probe: probe.clone(),
            debug,
        })
        .collect();
    let result = super::run(builder, services, watching, opts, events.clone(), shutdown).await;
    // The editor hears the session is over.
    if let Some(d) = debug {
        d.end().await;
    }
    for t in tasks {
        t.abort();
    }
    result?;
    events(
        None,
        DevEvent::Warning { message: format!("the workloads stay deployed; remove them with `{}`", dev.delete_hint) },
    );
    Ok(())
}

/// What start-up produced: each service (app, target, initial binary,
/// probe), the watch, and the log and port-forward tasks.
struct Started {
    services: Vec<(DevApp, KubeTarget, bytes::Bytes, Probe)>,
    watching: super::Watching,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Builds the dev image for the packages developed and the production
/// image for every other `ko://` reference.
struct SelectedDev<'a> {
    dev: &'a DevBuilder,
    /// Import paths developed.
    developed: BTreeSet<String>,
}

#[async_trait]
impl Build for SelectedDev<'_> {
    async fn build(&self, package: &str) -> Result<Built, BuildError> {
        if self.developed.contains(package) {
            self.dev.build(package).await
        } else {
            self.dev.inner().build(package).await
        }
    }
}

async fn start(
    builder: &DevBuilder,
    cluster: &Cluster,
    publisher: &dyn Publish,
    dev: &KubeDev<'_>,
    opts: &LoopOptions,
    events: &SessionSink,
) -> Result<Started, KubeDevError> {
    let refs = deploy::ko_refs(&dev.files);
    let packages: Vec<String> = if dev.packages.is_empty() {
        if refs.is_empty() {
            return Err(KubeDevError::NoKoImage);
        }
        refs.iter().map(|r| r.trim_start_matches(KO_PREFIX).to_string()).collect()
    } else {
        dev.packages.clone()
    };
    let (apps, watching) = super::begin(builder, &packages, opts).await?;
    for app in &apps {
        let reference = format!("{KO_PREFIX}{}", app.package.import_path);
        if !refs.contains(&reference) {
            return Err(KubeDevError::NoAppContainer(reference));
        }
    }
    let names: Vec<String> = apps.iter().map(DevApp::name).collect();
    let forwards = per_service("--port-forward", &dev.port_forwards, &names).map_err(DevError::from)?;
    let probes = per_service("--probe", &dev.probes, &names).map_err(DevError::from)?;

    let developed = apps.iter().map(|a| a.package.import_path.clone()).collect();
    let selected = SelectedDev { dev: builder, developed };
    let deploy_opts = deploy::DeployOptions {
        dev: true,
        dev_only: Some(apps.iter().map(|a| format!("{KO_PREFIX}{}", a.package.import_path)).collect()),
        debug: dev.debug.is_some(),
        jobs: 2,
        wait: Some(rollout::WaitOptions { timeout: dev.rollout_timeout, ..Default::default() }),
    };
    let status = crate::progress::Status::new();
    let progress = |m: &str| status.update(m);
    let deployed = deploy::deploy(cluster, &dev.files, &selected, publisher, &deploy_opts, &progress).await?;
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    for ((app, forwards), probes) in apps.into_iter().zip(forwards).zip(probes) {
        let reference = format!("{KO_PREFIX}{}", app.package.import_path);
        let image = deployed.app_image(&reference).ok_or_else(|| KubeDevError::NoAppContainer(reference.clone()))?;
        // This service's workloads only: the others' pods are not foreign to it.
        let workloads = deployed.workloads_running(&image.reference);
        let initial = super::built_binary(builder, &app)?;
        let sink = for_app(events, &app.name());
        let warn = sink.clone();
        let target = KubeTarget::new(
            cluster.clone(),
            workloads.clone(),
            image.clone(),
            vec![app.platform.clone()],
            Box::new(move |m: &str| warn(DevEvent::Warning { message: m.to_string() })),
        )
        .watching();
        let found = pods::discover(cluster, &workloads, &image).await?;
        let log_sink = sink.clone();
        let line: logs::LineFn = std::sync::Arc::new(move |replica: &str, text: &str| {
            log_sink(DevEvent::Log { replica: replica.to_string(), line: text.to_string() })
        });
        tasks.push(logs::follow_logs(cluster, workloads.clone(), image.clone(), opts.health_interval, line));
        // Probed inside each pod by the helper (no port-forward in a reload's
        // path): the forwarded pod port, else the container's first declared port.
        let app_port = forwards
            .first()
            .map(|f| f.remote)
            .or_else(|| found.containers.iter().find_map(|c| c.ports.first().copied()));
        let probe = probes.into_iter().next().unwrap_or(match app_port {
            Some(port) => Probe::InContainer(crate::reload::ContainerProbe::http(port)),
            None => Probe::Started,
        });
        // A refused port-forward is told as a warning, naming the permission.
        let warn_sink = sink.clone();
        let warn: logs::WarnFn =
            std::sync::Arc::new(move |m: &str| warn_sink(DevEvent::Warning { message: m.to_string() }));
        for PortForward { local, remote } in forwards {
            let (addr, task) =
                logs::port_forward(cluster, workloads.clone(), image.clone(), local, remote, warn.clone()).await?;
            tasks.push(task);
            let names: Vec<String> = workloads.iter().map(|w| format!("{}/{}", w.namespace, w.name)).collect();
            sink(DevEvent::Forwarding { local: addr.to_string(), remote, workloads: names });
        }
        if let Some(d) = dev.debug {
            let port = crate::layout::DELVE_PORT;
            let wanted = dev.debug_replica.clone();
            let dial = std::sync::Arc::new(logs::PodPort::new(cluster, workloads.clone(), image.clone(), port, wanted));
            let listed = builder.inner().list_deps(&app.package, &app.requested, &app.platform).await?;
            d.running(dial, crate::debug::PathMap::from_listing(&listed)).await;
        }
        sink(DevEvent::Started {
            image: deployed.refs.get(&reference).map(|r| r.image.clone()).unwrap_or_default(),
            replicas: found.containers.iter().map(|c| format!("{}/{}", c.pod, c.container)).collect(),
        });
        services.push((app, target, initial, probe));
    }
    Ok(Started { services, watching, tasks })
}
