//! `gohot build` and `gohot resolve`.

use std::collections::HashMap;

use anyhow::Result;

use super::{make_builder, print_stdout};
use crate::cli::args::{BuildCmd, ResolveCmd};
use crate::oci::client::Registry;
use crate::publish::select::publisher;

pub(crate) async fn run_build(cmd: BuildCmd) -> Result<()> {
    let dest = cmd.publish.destinations();
    let registry = Registry::new(dest.insecure_registry())?;
    let builder = make_builder(&cmd.build, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    for pkg in &cmd.packages {
        let pkg = pkg.strip_prefix(crate::resolve::KO_PREFIX).unwrap_or(pkg);
        let built = builder.build().build(pkg).await?;
        let reference = publisher.publish(&built).await?;
        print_stdout(&format!("{reference}\n"))?;
    }
    Ok(())
}

pub(crate) async fn run_resolve(cmd: ResolveCmd) -> Result<()> {
    let files = super::read_all_manifests(&cmd.files, cmd.recursive)?;
    let dest = cmd.publish.destinations();
    let registry = Registry::new(dest.insecure_registry())?;
    let delve = cmd.debug.delve(cmd.build.dev).map_err(anyhow::Error::msg)?;
    let debug = delve.is_some();
    let builder = super::builder_with(&cmd.build, delve, &registry)?;
    let publisher = publisher(&dest, &registry)?;
    let refs = crate::resolve::build_refs(&files, builder.build(), publisher.as_ref(), cmd.jobs).await?;
    let images: HashMap<String, String> = refs.iter().map(|(k, v)| (k.clone(), v.image.clone())).collect();
    let rendered = if cmd.build.dev {
        crate::resolve::render(&files, &images, &crate::resolve::dev_edit_with(&refs, debug))?
    } else {
        crate::resolve::render(&files, &images, &|_| Ok(false))?
    };
    print_stdout(&rendered)?;
    Ok(())
}
