//! `gohot skaffold build|deps` (the custom-builder contract) and `gohot syncmap`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{builder_in, print_stdout, Builder};
use crate::builder::go::GoToolchain;
use crate::cli::args::{SkaffoldBuildCmd, SkaffoldCmd, SkaffoldDepsCmd, SkaffoldSyncCmd, SyncmapCmd};
use crate::oci::client::Registry;

/// The Go builder for `gohot skaffold build`: like [`make_builder`], but in
/// `workdir` ($BUILD_CONTEXT) with the platforms from $PLATFORMS.
pub(crate) fn make_builder_in(
    cmd: &SkaffoldBuildCmd,
    registry: &Registry,
    workdir: PathBuf,
    platforms: Vec<crate::platform::Platform>,
) -> Result<Builder> {
    builder_in(&cmd.build, registry, workdir, platforms)
}

pub(crate) async fn run_skaffold(cmd: SkaffoldCmd) -> Result<()> {
    match cmd {
        SkaffoldCmd::Build(c) => run_skaffold_build(c).await,
        SkaffoldCmd::Deps(c) => run_skaffold_deps(c).await,
        SkaffoldCmd::Sync(c) => run_skaffold_sync(c).await,
    }
}

/// `gohot skaffold sync`: Skaffold's hook variables → a dev builder in the
/// build context and the cluster → [`crate::skaffold::hook::run_hook`] →
/// one line on stderr. A compile error is printed and exits 0: Skaffold
/// would otherwise retry the sync three times, compiling the same error.
pub(crate) async fn run_skaffold_sync(cmd: SkaffoldSyncCmd) -> Result<()> {
    use crate::skaffold::hook::{run_hook, HookOutcome, SyncHookEnv};
    let env = SyncHookEnv::from_env(&|k| std::env::var(k).ok())?;
    let mut flags = cmd.build.clone();
    flags.dev = true;
    let platforms = if flags.platform.is_empty() || flags.all_platforms() {
        Vec::new()
    } else {
        crate::platform::parse_list(&flags.platform.join(","))?
    };
    let registry = Registry::new(None)?;
    let Builder::Dev(builder) = builder_in(&flags, &registry, env.build_context.clone(), platforms)? else {
        anyhow::bail!("internal: a dev build was asked for")
    };
    let mut kube = cmd.kube.clone();
    if kube.context.is_none() {
        kube.context = env.kube_context.clone();
    }
    let cluster = super::connect_cluster(&kube).await?;
    let timeout = std::time::Duration::from_secs(cmd.restart_timeout);
    match run_hook(&builder, cluster, &env, &cmd.package, timeout).await? {
        HookOutcome::NothingToBuild => tracing::info!("only kodata changed: Skaffold copies it"),
        HookOutcome::CompileFailed(out) => {
            eprint!("{out}");
            eprintln!("gohot: the build failed; the old binary keeps running");
        }
        HookOutcome::Reloaded { name, build, binary_bytes, report } => {
            let total = report.updated.len() + report.unchanged.len();
            if report.updated.is_empty() {
                eprintln!("gohot: {name} unchanged · {total}/{total} containers already run it");
            } else {
                eprintln!(
                    "gohot: reloaded {name} (build {:.2} · sync {:.2} · restart {:.2}) · {} sent of {} · {}/{total} containers",
                    build.as_secs_f64(),
                    report.sync.as_secs_f64(),
                    report.restart.as_secs_f64(),
                    crate::progress::human_bytes(report.bytes_sent),
                    crate::progress::human_bytes(binary_bytes),
                    total,
                );
            }
        }
    }
    Ok(())
}

pub(crate) async fn run_skaffold_build(cmd: SkaffoldBuildCmd) -> Result<()> {
    use crate::skaffold::BuildRequest;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let host = crate::platform::Platform::host_linux();
    let request = BuildRequest::from_env(&|k| std::env::var(k).ok(), &cwd, &host)?;
    let destinations = request.destinations(cmd.insecure_registry.unwrap_or(false));
    let registry = Registry::new(destinations.insecure_registry())?;
    // $PLATFORMS (set by Skaffold) wins; --platform applies when it is unset.
    let platforms = if request.platforms.is_empty() && !cmd.build.platform.is_empty() && !cmd.build.all_platforms() {
        crate::platform::parse_list(&cmd.build.platform.join(","))?
    } else {
        request.platforms.clone()
    };
    let builder = make_builder_in(&cmd, &registry, request.context.clone(), platforms)?;
    let publisher = crate::publish::select::publisher(&destinations, &registry)?;
    let pkg = cmd.package.strip_prefix(crate::resolve::KO_PREFIX).unwrap_or(&cmd.package);
    let built = builder.build().build(pkg).await?;
    let reference = publisher.publish(&built).await?;
    print_stdout(&format!("{reference}\n"))?;
    Ok(())
}

pub(crate) async fn run_skaffold_deps(cmd: SkaffoldDepsCmd) -> Result<()> {
    let go = GoToolchain::find()?;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let dir = cwd.join(&cmd.context);
    let platform = crate::platform::Platform::host_linux();
    let files = crate::skaffold::dependencies(&go, &dir, &cmd.package, &platform).await?;
    print_stdout(&format!("{}\n", serde_json::to_string(&files)?))?;
    Ok(())
}

pub(crate) async fn run_syncmap(cmd: SyncmapCmd) -> Result<()> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let context = cmd.context.map(|c| cwd.join(c)).unwrap_or(cwd);
    let args =
        crate::skaffold::parse_build_args(&cmd.build_args, &|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    let map = crate::skaffold::sync_map_of_dir(&cmd.dockerfile, &context, &args)?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&map)?))?;
    Ok(())
}
