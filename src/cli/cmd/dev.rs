//! `gohot dev`: the loop on the Docker engine, or on a cluster with `-f`.

use anyhow::{Context, Result};

use super::{cluster_destinations, connect_cluster, make_dev_builder, print_stdout, read_all_manifests};
use crate::cli::args::{DevCmd, TargetKind};
use crate::cli::interrupted;
use crate::oci::client::Registry;
use crate::publish::select::publisher;

pub(crate) async fn run_dev(cmd: DevCmd) -> Result<()> {
    let json = cmd.json;
    if json {
        crate::progress::hide_all();
    }
    let result = run_dev_events(cmd).await;
    // With --json a fatal error is the last event, so a tool reading stdout sees why gohot stopped.
    if let (true, Err(e)) = (json, &result) {
        let event = crate::devloop::events::DevEvent::Error { message: format!("{e:#}") };
        let _ = print_stdout(&format!("{}\n", event.json_line(std::time::SystemTime::now())));
    }
    result
}

async fn run_dev_events(cmd: DevCmd) -> Result<()> {
    use crate::devloop::{docker, events::DevEvent, LoopOptions, Probe};
    use crate::hosting::docker::PortMapping;
    let target = cmd.target.unwrap_or(if cmd.files.is_empty() { TargetKind::Docker } else { TargetKind::Kube });
    if target == TargetKind::Docker && !cmd.files.is_empty() {
        anyhow::bail!("-f manifests are for --target kube; the Docker target runs the package itself");
    }
    let ports: Vec<PortMapping> =
        cmd.ports.iter().map(|p| p.parse::<PortMapping>().map_err(anyhow::Error::msg)).collect::<Result<_>>()?;
    let probe = match cmd.probe.as_deref() {
        Some("none") => Probe::Started,
        Some(p) if p.starts_with("http://") || p.starts_with("https://") => Probe::Http(p.into()),
        Some(p) => match p.strip_prefix("tcp:").and_then(|port| port.parse::<u16>().ok()) {
            Some(port) => Probe::Tcp(([127, 0, 0, 1], port).into()),
            None => anyhow::bail!("invalid --probe {p:?}: use an http:// URL, tcp:PORT or none"),
        },
        // Inside the container, by the helper (a crash is seen at once, and
        // on a cluster no port-forward sits in a reload's path).
        None => match ports.first() {
            Some(p) if target == TargetKind::Docker => {
                Probe::InContainer(crate::reload::ContainerProbe::http(p.container_port))
            }
            _ if target == TargetKind::Kube => Probe::AppPort,
            _ => Probe::Started,
        },
    };
    let json = cmd.json;
    let events = std::sync::Arc::new(move |e: DevEvent| {
        // With --json everything is an event, the app's log lines included.
        if json {
            let _ = print_stdout(&format!("{}\n", e.json_line(std::time::SystemTime::now())));
        } else if let Some(line) = e.human() {
            eprintln!("{line}");
        }
    });
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let config = crate::config::gohot::GohotConfig::load(&workdir)?;
    let infer = match config.rules.infer {
        Some(patterns) => {
            let infer = crate::devloop::InferSync {
                patterns,
                dockerfile: config.rules.dockerfile,
                context: config.dir.clone(),
                build_args: config.rules.build_args,
            };
            // A Dockerfile that cannot be read is a mistake to report now, not at the first save.
            crate::sync::infer::sync_map_of_dir(&infer.dockerfile, &infer.context, &infer.build_args)
                .context("gohot.yaml: sync.infer infers destinations from the Dockerfile (sync.dockerfile)")?;
            Some(std::sync::Arc::new(infer))
        }
        None => None,
    };
    let rules = (!config.rules.manual.is_empty()).then(|| std::sync::Arc::new(config.rules.manual));
    // Files syncback brought back into the package are not edits.
    let cache_root = crate::cache::root();
    let ignore = crate::devloop::IgnoreFn(std::sync::Arc::new(move |p: &std::path::Path| {
        crate::syncback::written_by_syncback(&cache_root, p)
    }));
    let opts = LoopOptions {
        debounce: std::time::Duration::from_millis(cmd.debounce_ms),
        probe,
        rules,
        infer,
        ignore: Some(ignore),
        ..Default::default()
    };
    // Registered now, so Ctrl-C is honoured during start-up too.
    let stop = futures::FutureExt::shared(Box::pin(interrupted()));
    if target == TargetKind::Kube {
        return run_dev_kube(cmd, opts, events, stop).await;
    }
    let registry = Registry::new(cmd.publish.destinations().insecure_registry())?;
    let builder = make_dev_builder(&cmd.build, &registry)?;
    let dev = docker::DockerDev {
        package: cmd.package.clone(),
        name: cmd.name.clone(),
        ports,
        env: cmd.env.clone(),
        args: cmd.args.clone(),
        keep: cmd.keep,
    };
    docker::run(&builder, dev, opts, events, stop).await?;
    Ok(())
}

/// `gohot dev PKG -f manifests`: the cluster, the dev image's platform
/// (the nodes'), where images go; then the loop on the cluster.
pub(crate) async fn run_dev_kube(
    cmd: DevCmd,
    opts: crate::devloop::LoopOptions,
    events: crate::devloop::events::EventSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    use crate::cluster::nodes;
    let files = read_all_manifests(&cmd.files, cmd.recursive)?;
    let port_forward = match &cmd.port_forward {
        Some(spec) => Some(
            spec.split_once(':')
                .and_then(|(l, r)| Some((l.parse::<u16>().ok()?, r.parse::<u16>().ok()?)))
                .with_context(|| format!("invalid --port-forward {spec:?}: use LOCAL:POD_PORT, e.g. 8080:8080"))?,
        ),
        None => None,
    };
    let cluster = connect_cluster(&cmd.kube).await?;
    let mut flags = cmd.build.clone();
    if flags.platform.is_empty() {
        let found = nodes::build_platforms(&nodes::list(&cluster).await?, &Default::default());
        if found.len() > 1 {
            let list: Vec<String> = found.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "the cluster's nodes run {}; a dev image holds one binary: pass --platform with the one the app's pods land on",
                list.join(", ")
            );
        }
        flags.platform = found.iter().map(ToString::to_string).collect();
    }
    let dest = cluster_destinations(&cluster, cmd.publish.destinations());
    let registry = Registry::new(dest.insecure_registry())?;
    let builder = make_dev_builder(&flags, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let dev = crate::devloop::kube::KubeDev {
        package: cmd.package.clone(),
        files,
        file_names: cmd.files.iter().map(|f| f.display().to_string()).collect(),
        port_forward,
        rollout_timeout: std::time::Duration::from_secs(180),
    };
    crate::devloop::kube::run(&builder, &cluster, publisher.as_ref(), dev, opts, events, shutdown).await?;
    Ok(())
}
