//! Publishing into a Minikube cluster (`KO_DOCKER_REPO=minikube.local`)
//! without a registry: the image is written as a `docker load` archive and
//! handed to `minikube -p <profile> image load <archive>`, which loads it
//! into the cluster's container runtime whatever that is (docker, containerd,
//! cri-o). The profile is `MINIKUBE_PROFILE`, else `minikube` — the default
//! profile and context name.
//!
//! The image is tagged `minikube.local/<name>:<manifest digest hex>`; a tag
//! other than `latest` makes Kubernetes' default pull policy `IfNotPresent`,
//! so the kubelet runs the loaded image instead of trying to pull it.

use std::path::PathBuf;

use async_trait::async_trait;

use super::tarball::{pick_image, write_docker_archive};
use super::{Naming, Publish, PublishError};
use crate::builder::Built;
use crate::oci;

/// The profile to load into: `MINIKUBE_PROFILE`, else `minikube`.
pub fn profile(env: Option<String>) -> String {
    env.filter(|s| !s.is_empty()).unwrap_or_else(|| "minikube".into())
}

/// `minikube` arguments that load `archive` into `profile`.
pub fn load_args(profile: &str, archive: &std::path::Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = ["-p", profile, "image", "load"].iter().map(Into::into).collect();
    v.push(archive.into());
    v
}

/// Loads images into a Minikube cluster with the `minikube` program.
pub struct MinikubePublisher {
    repo: String,
    naming: Naming,
    profile: String,
    program: PathBuf,
}

impl MinikubePublisher {
    /// `repo` is `minikube.local[/…]`; `program` the `minikube` binary.
    pub fn new(repo: String, naming: Naming, profile: String, program: PathBuf) -> Self {
        MinikubePublisher { repo, naming, profile, program }
    }

    /// Finds `minikube` on PATH, with a message saying what to do when it is missing.
    pub fn find_program() -> Result<PathBuf, PublishError> {
        which::which("minikube").map_err(|_| {
            PublishError::Destination(
                "minikube.local needs the `minikube` program on PATH; install it, or push to a registry the cluster can pull from (KO_DOCKER_REPO=localhost:5000 with `minikube addons enable registry`)".into(),
            )
        })
    }
}

#[async_trait]
impl Publish for MinikubePublisher {
    async fn publish(&self, built: &Built) -> Result<String, PublishError> {
        let repository = self.naming.repository(&self.repo, &built.package.import_path);
        let image = pick_image(&built.artifact);
        let tag = format!("{repository}:{}", oci::digest_hex(&image.digest()));
        let io = |path: PathBuf| move |source| PublishError::Io { path: path.clone(), source };
        let mut file = tempfile::Builder::new()
            .prefix("gohot-minikube")
            .suffix(".tar")
            .tempfile()
            .map_err(io("<temp dir>".into()))?;
        let path = file.path().to_path_buf();
        write_docker_archive(image, std::slice::from_ref(&tag), std::io::BufWriter::new(file.as_file_mut()))
            .map_err(io(path.clone()))?;
        let bar = crate::progress::spinner(format!("loading {tag} into minikube profile {}", self.profile));
        let out = tokio::process::Command::new(&self.program)
            .args(load_args(&self.profile, &path))
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        bar.finish_and_clear();
        let out = out.map_err(|e| PublishError::Destination(format!("cannot run {}: {e}", self.program.display())))?;
        if !out.status.success() {
            return Err(PublishError::Destination(format!(
                "`minikube -p {} image load` failed ({}): {}; is the cluster running (`minikube status -p {}`)?",
                self.profile,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.profile
            )));
        }
        tracing::info!("loaded {tag} into minikube profile {} ({})", self.profile, image.platform);
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let args = load_args("dev", std::path::Path::new("/tmp/x.tar"));
        assert_eq!(args, ["-p", "dev", "image", "load", "/tmp/x.tar"]);
        assert_eq!(profile(None), "minikube");
        assert_eq!(profile(Some("dev".into())), "dev");
    }
}
