//! `gohot dev`: the loop on the Docker engine, or on a cluster with `-f`.

use anyhow::{Context, Result};

use super::{cluster_destinations, connect_cluster, make_dev_builder, print_stdout, read_all_manifests};
use crate::cli::args::{DevCmd, DevSettings, TargetKind};
use crate::cli::interrupted;
use crate::devloop::events::{DevEvent, SessionSink};
use crate::devloop::LoopOptions;
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
        let event = DevEvent::Error { message: format!("{e:#}") };
        let _ = print_stdout(&format!("{}\n", event.json_line(None, std::time::SystemTime::now())));
    }
    result
}

/// Where events go: JSON lines on stdout, or a line for people on stderr
/// (named by service when there are several).
fn sink(json: bool, several: bool) -> SessionSink {
    std::sync::Arc::new(move |app: Option<&str>, e: DevEvent| {
        // With --json everything is an event, the app's log lines included.
        if json {
            let _ = print_stdout(&format!("{}\n", e.json_line(app, std::time::SystemTime::now())));
            return;
        }
        let Some(line) = e.human() else { return };
        match (&e, app) {
            (DevEvent::Stopped { kept: false }, _) if several => {
                eprintln!("stopped; removed the containers and the session's network")
            }
            // `reloaded …` names its app, a log line its container.
            (DevEvent::Reloaded { .. } | DevEvent::Log { .. }, _) => eprintln!("{line}"),
            (_, Some(app)) if several => eprintln!("{app}: {line}"),
            _ => eprintln!("{line}"),
        }
    })
}

async fn run_dev_events(cmd: DevCmd) -> Result<()> {
    let settings = cmd.normalise().map_err(anyhow::Error::msg)?;
    let several = cmd.packages.len() != 1;
    let events = sink(cmd.json, several);
    let workdir = std::env::current_dir().context("cannot determine the current directory")?;
    let config = crate::config::gohot::GohotConfig::load(&workdir)?;
    let debounce = std::time::Duration::from_millis(cmd.debounce_ms);
    let opts = LoopOptions::from_config(config, debounce, crate::cache::root())?;
    // Registered now, so Ctrl-C is honoured during start-up too.
    let stop = futures::FutureExt::shared(Box::pin(interrupted()));
    if settings.target == TargetKind::Kube {
        let debugger = debugger(&cmd, &events).await?;
        return run_dev_kube(cmd, settings, debugger.as_ref(), opts, events, stop).await;
    }
    // Listening before the first build: a port in use is said at once.
    let debugger = debugger(&cmd, &events).await?;
    let registry = Registry::new(cmd.publish.destinations().insecure_registry())?;
    let builder = with_delve(make_dev_builder(&cmd.build, &registry)?, &cmd);
    let dev = crate::devloop::docker::DockerDev {
        packages: cmd.packages.clone(),
        ports: settings.ports,
        probes: settings.probes,
        name: cmd.name.clone(),
        env: cmd.env.clone(),
        args: cmd.args.clone(),
        keep: cmd.keep,
    };
    crate::devloop::docker::run(&builder, dev, debugger.as_ref(), opts, events, stop).await?;
    Ok(())
}

/// `--debug`: gohot's listener for editors.
async fn debugger(cmd: &DevCmd, events: &SessionSink) -> Result<Option<crate::debug::Debugger>> {
    if !cmd.debug {
        return Ok(None);
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cmd.debug_port));
    let d = crate::debug::Debugger::listen(addr, debug_events(events.clone())).await?;
    events(None, DevEvent::DebugListening { address: d.addr().to_string() });
    Ok(Some(d))
}

/// `--debug`: delve in the dev image, and a build for debugging.
fn with_delve(builder: crate::devimage::DevBuilder, cmd: &DevCmd) -> crate::devimage::DevBuilder {
    use crate::devimage::delve::DelveSource;
    match cmd.debug {
        true => builder.with_delve(DelveSource::from_settings(cmd.delve.clone(), cmd.delve_src.clone())),
        false => builder,
    }
}

/// The debugger's news as the session's events (about the whole session:
/// one service is debugged).
fn debug_events(events: SessionSink) -> crate::debug::DebugEvents {
    use crate::debug::DebugEvent;
    std::sync::Arc::new(move |e| {
        let event = match e {
            DebugEvent::Attached { replica } => DevEvent::DebugAttached { replica },
            DebugEvent::Reattached { replica, breakpoints, verified, errors, seconds } => {
                DevEvent::DebugReattached { replica, breakpoints, verified, errors, seconds }
            }
            DebugEvent::Detached => DevEvent::DebugDetached,
            DebugEvent::Problem { message } => DevEvent::Warning { message: format!("debugger: {message}") },
        };
        events(None, event)
    })
}

/// `gohot dev [PKG…] -f manifests`: the cluster, the dev image's platform
/// (the nodes'), where images go; then the loop on the cluster.
async fn run_dev_kube(
    cmd: DevCmd,
    settings: DevSettings,
    debugger: Option<&crate::debug::Debugger>,
    opts: LoopOptions,
    events: SessionSink,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    use crate::cluster::nodes;
    let files = read_all_manifests(&cmd.files, cmd.recursive)?;
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
    let builder = with_delve(make_dev_builder(&flags, &registry)?, &cmd);
    let publisher = publisher(&dest, &registry)?;
    let dev = crate::devloop::kube::KubeDev {
        packages: cmd.packages.clone(),
        files,
        delete_hint: delete_hint(&cmd),
        port_forwards: settings.port_forwards,
        probes: settings.probes,
        rollout_timeout: std::time::Duration::from_secs(180),
        debug: debugger,
    };
    crate::devloop::kube::run(&builder, &cluster, publisher.as_ref(), dev, opts, events, shutdown).await?;
    Ok(())
}

/// The `gohot delete` that removes what this session deployed: the same
/// files, kubeconfig, context and namespace.
fn delete_hint(cmd: &DevCmd) -> String {
    let mut words: Vec<(&str, String)> = cmd.files.iter().map(|f| ("-f", f.display().to_string())).collect();
    if let Some(k) = &cmd.kube.kubeconfig {
        words.push(("--kubeconfig", k.display().to_string()));
    }
    if let Some(c) = &cmd.kube.context {
        words.push(("--context", c.clone()));
    }
    if let Some(n) = &cmd.kube.namespace {
        words.push(("-n", n.clone()));
    }
    words.extend(cmd.kube.allow_context.iter().map(|a| ("--allow-context", a.clone())));
    let mut hint = String::from("gohot delete");
    for (flag, value) in words {
        hint.push_str(&format!(" {flag} {}", shell_word(&value)));
    }
    if cmd.recursive {
        hint.push_str(" -R");
    }
    hint
}

/// A word as a POSIX shell reads it back.
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
