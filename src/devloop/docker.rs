//! `gohot dev` on the local Docker engine: build the dev image, load it, run
//! one container with watchexec wrapping the app, then hand over to the loop.
//! Ctrl-C removes the container unless `--keep`.

use bytes::Bytes;

use super::events::{DevEvent, EventSink};
use super::{DevApp, DevError, LoopOptions};
use crate::builder::{Build, BuildError};
use crate::devimage::DevBuilder;
use crate::hosting::docker::{ContainerSpec, DockerTarget, PortMapping};
use crate::publish::daemon::DaemonPublisher;
use crate::publish::{Naming, Publish, PublishError};
use crate::resolve::devrewrite;

/// Errors starting dev mode on Docker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerDevError {
    /// Building the dev image failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Loading it failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The loop failed.
    #[error(transparent)]
    Loop(#[from] DevError),
    /// The engine could not be reached.
    #[error(transparent)]
    Engine(#[from] crate::docker::DockerError),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct DockerDev {
    /// The package (`./cmd/app`).
    pub package: String,
    /// Container name (default `gohot-<name>`).
    pub name: Option<String>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// Environment for the app.
    pub env: Vec<String>,
    /// Arguments for the app.
    pub args: Vec<String>,
    /// Keep the container on exit.
    pub keep: bool,
}

/// Runs dev mode on Docker until `shutdown`. A `shutdown` during start-up
/// (the first build, loading the image) stops there; once the container
/// exists, it is removed on the way out (unless `keep`).
pub async fn run(
    builder: &DevBuilder,
    dev: DockerDev,
    opts: LoopOptions,
    events: EventSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DockerDevError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let prepared = tokio::select! {
        p = prepare(builder, &dev, &opts) => p?,
        _ = &mut shutdown => return Ok(()),
    };
    let Prepared { app, watching, image, initial } = prepared;
    let docker = crate::docker::connect().await?;
    let spec = ContainerSpec {
        name: dev.name.clone().unwrap_or_else(|| format!("gohot-{}", app.name())),
        image: image.clone(),
        entrypoint: devrewrite::dev_command(&app.name(), &[app.dest()]),
        args: dev.args.clone(),
        env: dev.env.clone(),
        ports: dev.ports.clone(),
    };
    let target = DockerTarget::new(docker, spec).for_app(&app.package.import_path);
    target.start().await.map_err(DevError::from)?;
    let log_events = events.clone();
    let replica = target.spec().name.clone();
    let logs =
        target.follow_logs(move |line| log_events(DevEvent::Log { replica: replica.clone(), line: line.into() }));
    events(DevEvent::Started { image, replicas: vec![target.spec().name.clone()] });

    let result = super::run(builder, &target, app, watching, initial, opts, events.clone(), shutdown).await;
    logs.abort();
    if !dev.keep {
        if let Err(e) = target.remove().await {
            events(DevEvent::Warning { message: e.to_string() });
        }
    }
    events(DevEvent::Stopped { kept: dev.keep });
    Ok(result?)
}

/// What start-up produced before the container exists.
struct Prepared {
    app: DevApp,
    watching: super::Watching,
    image: String,
    initial: Bytes,
}

/// Resolves the package, starts watching, builds the dev image and loads it.
async fn prepare(builder: &DevBuilder, dev: &DockerDev, opts: &LoopOptions) -> Result<Prepared, DockerDevError> {
    let (app, watching) = super::begin(builder, &dev.package, opts).await?;
    let built = builder.build(&dev.package).await?;
    let image = DaemonPublisher::new("ko.local".into(), Naming::Base, Vec::new()).publish(&built).await?;
    let initial = super::built_binary(builder, &app)?;
    Ok(Prepared { app, watching, image, initial })
}

impl DockerDevError {
    /// The compiler's output, when start-up failed because the app does not compile.
    pub fn compiler_output(&self) -> Option<&str> {
        match self {
            DockerDevError::Build(b) | DockerDevError::Loop(DevError::Build(b)) => b.compiler_output(),
            _ => None,
        }
    }
}
