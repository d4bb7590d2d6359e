//! `gohot skaffold build|deps` (the custom-builder contract) and `gohot syncmap`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{builder_in, print_stdout, Builder};
use crate::build::go::GoToolchain;
use crate::cli::args::{SkaffoldBuildCmd, SkaffoldCmd, SkaffoldDepsCmd, SyncmapCmd};
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
    }
}

pub(crate) async fn run_skaffold_build(cmd: SkaffoldBuildCmd) -> Result<()> {
    use crate::skaffold::BuildRequest;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let host = crate::platform::Platform::host_linux();
    let request = BuildRequest::from_env(&|k| std::env::var(k).ok(), &cwd, &host)?;
    let insecure = cmd.insecure_registry.unwrap_or(false);
    let registry = Registry::new(insecure)?;
    // $PLATFORMS (set by Skaffold) wins; --platform applies when it is unset.
    let platforms = if request.platforms.is_empty() && !cmd.build.platform.is_empty() && !cmd.build.all_platforms() {
        crate::platform::parse_list(&cmd.build.platform.join(","))?
    } else {
        request.platforms.clone()
    };
    let builder = make_builder_in(&cmd, &registry, request.context.clone(), platforms)?;
    let publisher = crate::publish::select::publisher(&request.destinations(insecure), &registry)?;
    let pkg = cmd.package.strip_prefix(crate::resolve::KO_PREFIX).unwrap_or(&cmd.package);
    let built = builder.build().build(pkg).await?;
    let reference = publisher.publish(&built).await?;
    if let Some(dir) = &cmd.sync_binary {
        let platforms = builder.go().platforms()?;
        let platform = platforms
            .iter()
            .find(|p| p.os == host.os && p.arch == host.arch)
            .or(platforms.first())
            .context("no platform was built")?;
        let binary = crate::cache::binary_path(&crate::cache::root(), &built.package.import_path, platform);
        let dest = request.context.join(dir).join(built.package.binary_name());
        crate::skaffold::copy_binary(&binary, &dest)?;
        tracing::info!("copied the {platform} binary to {}", dest.display());
    }
    print_stdout(&format!("{reference}\n"))?;
    Ok(())
}

pub(crate) async fn run_skaffold_deps(cmd: SkaffoldDepsCmd) -> Result<()> {
    let go = GoToolchain::find()?;
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let dir = cwd.join(&cmd.context);
    let platform = crate::platform::Platform::host_linux();
    let files = match &cmd.sync_binary {
        None => crate::skaffold::dependencies(&go, &dir, &cmd.package, &platform).await?,
        Some(bin) => crate::skaffold::binary_dependencies(&go, &dir, &cmd.package, bin).await?,
    };
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
