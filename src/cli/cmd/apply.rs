//! `gohot apply` and `gohot delete`.

use anyhow::Result;

use super::{builder_with, cluster_destinations, connect_cluster, read_all_manifests};
use crate::cli::args::{ApplyCmd, DeleteCmd};
use crate::oci::client::Registry;
use crate::publish::select::publisher;

pub(crate) async fn run_apply(mut cmd: ApplyCmd) -> Result<()> {
    use crate::cluster::nodes;
    use crate::deploy::{self, rollout};
    let files = read_all_manifests(&cmd.files, cmd.recursive)?;
    let refs = deploy::ko_refs(&files);
    if refs.is_empty() {
        tracing::warn!("no ko:// image references in the manifests: applying them as they are");
    }
    let cluster = connect_cluster(&cmd.kube).await?;
    if cmd.build.platform.is_empty() && !refs.is_empty() {
        let found = nodes::build_platforms(&nodes::list(&cluster).await?, &Default::default());
        tracing::info!(
            "building for the cluster's nodes: {}",
            found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
        cmd.build.platform = found.iter().map(ToString::to_string).collect();
    }
    let dest = cluster_destinations(&cluster, cmd.publish.destinations());
    let registry = Registry::new(dest.insecure_registry())?;
    let delve = cmd.debug.delve(cmd.build.dev).map_err(anyhow::Error::msg)?;
    let debug = delve.is_some();
    let builder = builder_with(&cmd.build, delve, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let opts = deploy::DeployOptions {
        dev: cmd.build.dev,
        debug,
        dev_only: None,
        jobs: cmd.jobs,
        wait: cmd.wait.then_some(rollout::WaitOptions { timeout: cmd.timeout, ..Default::default() }),
    };
    let status = crate::progress::Status::new();
    let progress = |m: &str| status.update(m);
    let deployed = deploy::deploy(&cluster, &files, builder.build(), publisher.as_ref(), &opts, &progress).await?;
    for a in &deployed.applied {
        eprintln!("applied {}", a.object);
    }
    if cmd.wait && !deployed.workloads.is_empty() {
        eprintln!("ready: {}", deployed.workloads.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}

pub(crate) async fn run_delete(cmd: DeleteCmd) -> Result<()> {
    use crate::deploy::{self, apply};
    let files = read_all_manifests(&cmd.files, cmd.recursive)?;
    let docs = deploy::raw_docs(&files)?;
    let cluster = connect_cluster(&cmd.kube).await?;
    for d in apply::delete(&cluster, &docs).await? {
        match d {
            apply::Deleted::Deleted(o) => eprintln!("deleted {o}"),
            apply::Deleted::Absent(o) => eprintln!("{o} was not there"),
        }
    }
    Ok(())
}
