//! `gohot dev` on the local Docker engine: build each service's dev image,
//! load it, run one container per service with watchexec wrapping the app
//! — several services on one network of the session's own, where each
//! reaches the others by name — then hand over to the loop. Ctrl-C removes
//! the containers and the network unless `--keep`.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::events::{for_app, DevEvent, SessionSink};
use super::{per_service, DevApp, DevError, ForService, LoopOptions, Probe, Service};
use crate::builder::{Build, BuildError};
use crate::debug::Debugger;
use crate::devimage::DevBuilder;
use crate::hosting::docker::{ContainerSpec, DockerTarget, PortMapping, SessionNetwork};
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
    /// The packages, one service each, in the order given.
    pub packages: Vec<String>,
    /// `-p [NAME=][IP:]HOST:CONTAINER`: published ports.
    pub ports: Vec<ForService<PortMapping>>,
    /// `--probe [NAME=]SPEC`: how to know a service serves (default: HTTP
    /// on its first published port's container port, asked inside the
    /// container by the helper).
    pub probes: Vec<ForService<Probe>>,
    /// The container's name (default `gohot-<name>`); with several
    /// services, the prefix of each (`NAME-<name>`) and the network's name.
    pub name: Option<String>,
    /// Environment for every service.
    pub env: Vec<String>,
    /// Arguments for the app (a session of one service).
    pub args: Vec<String>,
    /// Keep the containers (and the network) on exit.
    pub keep: bool,
}

/// Runs dev mode on Docker until `shutdown`. A `shutdown` during start-up
/// (the first builds, loading the images) stops there; once containers
/// exist, they are removed on the way out (unless `keep`).
///
/// With `debug` (`--debug`, one service), the container runs the app under
/// delve, its delve port is published on a free port of 127.0.0.1, and the
/// debugger is told where it is and when the process is replaced.
pub async fn run(
    builder: &DevBuilder,
    dev: DockerDev,
    debug: Option<&Debugger>,
    opts: LoopOptions,
    events: SessionSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DockerDevError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let prepared = tokio::select! {
        p = prepare(builder, &dev, &opts) => p?,
        _ = &mut shutdown => return Ok(()),
    };
    let Prepared { apps, watching, images, initial } = prepared;
    let names: Vec<String> = apps.iter().map(DevApp::name).collect();
    let ports = per_service("-p", &dev.ports, &names).map_err(DevError::from)?;
    let probes = per_service("--probe", &dev.probes, &names).map_err(DevError::from)?;
    let docker = crate::docker::connect().await?;
    let network = match (apps.len(), &dev.name) {
        (1, _) => None,
        (_, Some(name)) => Some(SessionNetwork::create(docker.clone(), name).await.map_err(DevError::from)?),
        (_, None) => {
            let name = format!("gohot-{}", names.join("-"));
            Some(SessionNetwork::create(docker.clone(), &name).await.map_err(DevError::from)?)
        }
    };
    let mut targets = Vec::new();
    for ((app, image), ports) in apps.iter().zip(&images).zip(&ports) {
        let spec = ContainerSpec {
            name: match (&dev.name, apps.len()) {
                (Some(name), 1) => name.clone(),
                (Some(prefix), _) => format!("{prefix}-{}", app.name()),
                (None, _) => format!("gohot-{}", app.name()),
            },
            image: image.clone(),
            entrypoint: match debug {
                Some(_) => devrewrite::debug_command(&app.name(), &[app.dest()])
                    .unwrap_or_else(|| devrewrite::dev_command(&app.name(), &[app.dest()])),
                None => devrewrite::dev_command(&app.name(), &[app.dest()]),
            },
            args: dev.args.clone(),
            env: dev.env.clone(),
            ports: match debug {
                // The engine picks the host port; the debugger looks it up.
                Some(_) => ports.iter().cloned().chain([delve_port()]).collect(),
                None => ports.clone(),
            },
            network: network.as_ref().map(|n| (n.name().to_string(), vec![app.name()])),
        };
        targets.push(DockerTarget::new(docker.clone(), spec).for_app(&app.package.import_path));
    }
    let mut started = Ok(());
    for t in &targets {
        started = t.start().await;
        if started.is_err() {
            break;
        }
    }
    let result =
        match started {
            Ok(()) => {
                let mut logs = Vec::new();
                let mut services = Vec::new();
                if let (Some(d), Some(app), Some(target)) = (debug, apps.first(), targets.first()) {
                    // delve opens its port before it has started the app: an editor
                    // attached in between had its first breakpoints never hit (one
                    // start in two here). The editor's session begins once the app answers.
                    if let Some(p) = ports.first().and_then(|p| p.first()) {
                        let host = match p.host_ip.parse::<std::net::IpAddr>() {
                            Ok(ip) if !ip.is_unspecified() => p.host_ip.clone(),
                            _ => "127.0.0.1".into(),
                        };
                        let probe = Probe::Http(format!("http://{host}:{}/", p.host_port));
                        if let Err(e) = probe.wait(std::time::Duration::from_secs(60)).await {
                            events(None, DevEvent::Warning { message: format!("debugger: {e}") });
                        }
                    }
                    let dial = std::sync::Arc::new(target.published(crate::layout::DELVE_PORT));
                    match builder.inner().list_deps(&app.package, &app.requested, &app.platform).await {
                        Ok(listed) => d.running(dial, crate::debug::PathMap::from_listing(&listed)).await,
                        Err(e) => {
                            events(None, DevEvent::Warning { message: format!("debugger: source paths: {e}") });
                            d.running(dial, crate::debug::PathMap::default()).await;
                        }
                    }
                }
                let per = ports.iter().zip(probes).zip(initial);
                for (((app, target), image), ((ports, probes), initial)) in
                    apps.into_iter().zip(&targets).zip(images).zip(per)
                {
                    let sink = for_app(&events, &app.name());
                    let (log_sink, replica) = (sink.clone(), target.spec().name.clone());
                    logs.push(target.follow_logs(move |line| {
                        log_sink(DevEvent::Log { replica: replica.clone(), line: line.into() })
                    }));
                    sink(DevEvent::Started { image, replicas: vec![target.spec().name.clone()] });
                    // Inside the container, by the helper (a crash is seen at once).
                    let probe = probes.into_iter().next().unwrap_or_else(|| match ports.first() {
                        Some(p) => Probe::InContainer(crate::reload::ContainerProbe::http(p.container_port)),
                        None => Probe::Started,
                    });
                    services.push(Service { app, target, initial, probe, debug });
                }
                let result = super::run(builder, services, watching, opts, events.clone(), shutdown).await;
                // The editor hears the session is over before the container goes.
                if let Some(d) = debug {
                    d.end().await;
                }
                for l in logs {
                    l.abort();
                }
                result
            }
            Err(e) => Err(DevError::from(e)),
        };
    if !dev.keep {
        for t in &targets {
            if let Err(e) = t.remove().await {
                events(None, DevEvent::Warning { message: e.to_string() });
            }
        }
        if let Some(n) = &network {
            if let Err(e) = n.remove().await {
                events(None, DevEvent::Warning { message: e.to_string() });
            }
        }
    }
    events(None, DevEvent::Stopped { kept: dev.keep });
    Ok(result?)
}

/// delve's port, published on a port of 127.0.0.1 the engine picks.
fn delve_port() -> PortMapping {
    PortMapping { host_ip: "127.0.0.1".into(), host_port: 0, container_port: crate::layout::DELVE_PORT }
}

/// What start-up produced before the containers exist.
struct Prepared {
    apps: Vec<DevApp>,
    watching: super::Watching,
    images: Vec<String>,
    initial: Vec<Bytes>,
}

/// Resolves the packages, starts watching, builds the dev images (two at
/// once) and loads them.
async fn prepare(builder: &DevBuilder, dev: &DockerDev, opts: &LoopOptions) -> Result<Prepared, DockerDevError> {
    let packages = &dev.packages;
    let (apps, watching) = super::begin(builder, packages, opts).await?;
    let publisher = DaemonPublisher::new("ko.local".into(), Naming::Base, Vec::new());
    // Two at once, in order (a boxed future per package keeps the stream Send).
    let builds: Vec<futures::future::BoxFuture<'_, Result<String, DockerDevError>>> = packages
        .iter()
        .map(|p| {
            let publisher = &publisher;
            Box::pin(async move {
                let built = builder.build(p).await?;
                Ok(publisher.publish(&built).await?)
            }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    let images: Vec<String> = futures::stream::iter(builds).buffered(2).try_collect().await?;
    let initial = apps.iter().map(|a| super::built_binary(builder, a)).collect::<Result<_, _>>()?;
    Ok(Prepared { apps, watching, images, initial })
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
