//! `gohot dev PKG -f manifests` on a cluster: deploy the dev image (resolve
//! with the dev rewrite, server-side apply, wait for the rollout), then
//! hot-reload into every pod that runs it. The app's logs and an optional
//! port-forward follow the workloads as pods come and go. Nothing is
//! deleted on the way out: the workloads stay, and the user is told how to
//! remove them.

use std::time::Duration;

use super::events::{DevEvent, EventSink};
use super::{DevError, LoopOptions, Probe};
use crate::builder::{Build, BuildError};
use crate::cluster::{Cluster, KubeError};
use crate::deploy::{self, rollout, DeployError};
use crate::devimage::DevBuilder;
use crate::hosting::kube::{logs, pods, KubeTarget};
use crate::publish::Publish;
use crate::resolve::ManifestFile;

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
pub struct KubeDev {
    /// The package (`./cmd/app`).
    pub package: String,
    /// The manifests.
    pub files: Vec<ManifestFile>,
    /// How the user named them (for the closing hint).
    pub file_names: Vec<String>,
    /// `--port-forward LOCAL:POD_PORT`.
    pub port_forward: Option<(u16, u16)>,
    /// How long to wait for the rollout.
    pub rollout_timeout: Duration,
}

/// Runs dev mode on the cluster until `shutdown`. A `shutdown` during
/// start-up (build, push, apply, rollout) stops there.
pub async fn run(
    builder: &DevBuilder,
    cluster: &Cluster,
    publisher: &dyn Publish,
    dev: KubeDev,
    mut opts: LoopOptions,
    events: EventSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), KubeDevError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let started = tokio::select! {
        s = start(builder, cluster, publisher, &dev, &opts, &events) => s?,
        _ = &mut shutdown => return Ok(()),
    };
    let Started { app, watching, initial, target, logs, forward, app_port } = started;
    // Probed inside each pod by the helper: no port-forward in a reload's path.
    if opts.probe == Probe::AppPort {
        opts.probe = match dev.port_forward.map(|(_, pod_port)| pod_port).or(app_port) {
            Some(port) => Probe::InContainer(crate::reload::ContainerProbe::http(port)),
            None => Probe::Started,
        };
    }
    let result = super::run(builder, &target, app, watching, initial, opts, events.clone(), shutdown).await;
    logs.abort();
    if let Some((_, task)) = forward {
        task.abort();
    }
    result?;
    events(DevEvent::Warning {
        message: format!(
            "the workloads stay deployed; remove them with `gohot delete -f {}`",
            dev.file_names.join(" -f ")
        ),
    });
    Ok(())
}

/// What start-up produced.
struct Started {
    app: super::DevApp,
    watching: super::Watching,
    initial: bytes::Bytes,
    target: KubeTarget,
    logs: tokio::task::JoinHandle<()>,
    forward: Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>,
    /// The first port the app's container declares.
    app_port: Option<u16>,
}

async fn start(
    builder: &DevBuilder,
    cluster: &Cluster,
    publisher: &dyn Publish,
    dev: &KubeDev,
    opts: &LoopOptions,
    events: &EventSink,
) -> Result<Started, KubeDevError> {
    let (app, watching) = super::begin(builder, &dev.package, opts).await?;
    let reference = format!("{}{}", crate::resolve::KO_PREFIX, app.package.import_path);
    if !deploy::ko_refs(&dev.files).contains(&reference) {
        return Err(KubeDevError::NoAppContainer(reference));
    }
    let deploy_opts = deploy::DeployOptions {
        dev: true,
        jobs: 2,
        wait: Some(rollout::WaitOptions { timeout: dev.rollout_timeout, ..Default::default() }),
    };
    let status = crate::progress::Status::new();
    let progress = |m: &str| status.update(m);
    let build: &dyn Build = builder;
    let deployed = deploy::deploy(cluster, &dev.files, build, publisher, &deploy_opts, &progress).await?;
    let image = deployed.app_image(&reference).ok_or_else(|| KubeDevError::NoAppContainer(reference.clone()))?;
    let initial = super::built_binary(builder, &app)?;
    let warn = events.clone();
    let target = KubeTarget::new(
        cluster.clone(),
        deployed.workloads.clone(),
        image.clone(),
        vec![app.platform.clone()],
        Box::new(move |m: &str| warn(DevEvent::Warning { message: m.to_string() })),
    )
    .watching();
    let found = pods::discover(cluster, &deployed.workloads, &image).await?;
    let log_events = events.clone();
    let line: logs::LineFn = std::sync::Arc::new(move |replica: &str, text: &str| {
        log_events(DevEvent::Log { replica: replica.to_string(), line: text.to_string() })
    });
    let logs = logs::follow_logs(cluster, deployed.workloads.clone(), image.clone(), opts.health_interval, line);
    let forward = match dev.port_forward {
        Some((local, remote)) => {
            let (addr, task) =
                logs::port_forward(cluster, deployed.workloads.clone(), image.clone(), local, remote).await?;
            let names: Vec<String> = deployed.workloads.iter().map(|w| format!("{}/{}", w.namespace, w.name)).collect();
            events(DevEvent::Forwarding { local: addr.to_string(), remote, workloads: names });
            Some((addr, task))
        }
        None => None,
    };
    events(DevEvent::Started {
        image: deployed.refs.get(&reference).map(|r| r.image.clone()).unwrap_or_default(),
        replicas: found.containers.iter().map(|c| format!("{}/{}", c.pod, c.container)).collect(),
    });
    let app_port = found.containers.iter().find_map(|c| c.ports.first().copied());
    Ok(Started { app, watching, initial, target, logs, forward, app_port })
}
