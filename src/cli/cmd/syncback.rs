//! `gohot syncback`.

use anyhow::{Context, Result};

use super::connect_cluster;
use crate::cli::args::SyncbackCmd;

pub(crate) async fn run_syncback(cmd: SyncbackCmd) -> Result<()> {
    use crate::syncback::{plan::state_path, Options, SourceSpec, Syncback, TargetRef};
    let spec: SourceSpec = cmd.source.parse()?;
    let mut excludes = cmd.exclude.clone();
    let ignore_file = cmd.local_dir.join(".gohotignore");
    if let Ok(text) = std::fs::read_to_string(&ignore_file) {
        // The ignore file is the developer's, never the container's to replace or delete.
        excludes.push("/.gohotignore".into());
        excludes.extend(text.lines().map(str::to_string));
    }
    let target: Box<dyn crate::hosting::Target> = match (&spec.target, spec.target.named()) {
        (_, Some(named)) => {
            let cluster = connect_cluster(&cmd.kube).await?;
            let namespace = cmd.kube.namespace.clone().unwrap_or_else(|| cluster.context.namespace.clone());
            Box::new(crate::hosting::kube::KubeTarget::one_pod(cluster, namespace, named, cmd.container.clone()))
        }
        (TargetRef::Docker(name), None) | (TargetRef::Pod(name) | TargetRef::Deployment(name), None) => {
            let docker = crate::docker::connect().await?;
            Box::new(crate::hosting::docker::ExistingContainer::new(docker, name))
        }
    };
    if !cmd.dry_run {
        std::fs::create_dir_all(&cmd.local_dir)
            .with_context(|| format!("cannot create {}", cmd.local_dir.display()))?;
    }
    let local = std::fs::canonicalize(&cmd.local_dir)
        .or_else(|_| std::path::absolute(&cmd.local_dir))
        .with_context(|| format!("cannot resolve {}", cmd.local_dir.display()))?;
    let opts = Options {
        delete: cmd.delete,
        force: cmd.force,
        dry_run: cmd.dry_run,
        excludes,
        source: spec.target.to_string(),
        ..Default::default()
    };
    let state = state_path(&crate::cache::root(), &local);
    let mut sb = Syncback::new(target.as_ref(), &spec.remote_dir, &local, state, opts)?;
    let verbose = tracing::enabled!(tracing::Level::DEBUG);
    let print = |r: &crate::syncback::Report| {
        if r.dry_run || verbose {
            for line in r.details() {
                eprintln!("  {line}");
            }
        }
        eprintln!("syncback {}:{} → {}: {r}", r.replica, spec.remote_dir, cmd.local_dir.display());
    };
    if cmd.watch {
        eprintln!("watching {}:{} every {:?} (Ctrl-C to stop)", spec.target, spec.remote_dir, cmd.interval);
        sb.watch(cmd.interval, |outcome| {
            match outcome {
                Ok(r) => print(r),
                Err(e) => eprintln!("syncback: {e}"),
            }
            std::ops::ControlFlow::Continue(())
        })
        .await?;
        return Ok(());
    }
    let replica = sb.replica().await?;
    let report = sb.round(&replica).await?;
    print(&report);
    if report.has_conflicts() {
        let n = report.conflicts.len();
        anyhow::bail!("{n} conflict{} left (local changes kept; --force to overwrite)", if n == 1 { "" } else { "s" });
    }
    Ok(())
}
