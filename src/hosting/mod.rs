//! Where the app runs: the seam between the dev loop and a container engine
//! or cluster.
//!
//! The dev loop is written once against [`Target`]: list the live replicas of
//! the app, run the way-in helper in one of them with a payload on stdin, and
//! bring the app back when it has gone. [`docker::DockerTarget`] implements it
//! on the local Docker engine; [`kube::KubeTarget`] implements the same trait
//! on a cluster through the exec API.

pub mod docker;
pub mod kube;
pub mod ownership;

use async_trait::async_trait;
use bytes::Bytes;

/// One running container of the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// For people: container name, or `pod/container`.
    pub name: String,
    /// Identifies this incarnation: it changes when the container restarts or
    /// is replaced, which is when a synced binary may have been lost.
    pub instance: String,
    /// What the target needs to reach it (container id; `namespace/pod/container`).
    pub handle: String,
}

pub use crate::exec::{Attached, ExecOutput, ExecStream, StderrTail};

/// Errors from a target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The engine or API server failed or refused.
    #[error("{target}: {detail}")]
    Api {
        /// Which target (`Docker engine`, `cluster <context>`).
        target: String,
        /// What went wrong and what to do.
        detail: String,
    },
    /// The container name is held by a container gohot may not replace.
    #[error("cannot use the container name {name}: {reason}")]
    NameTaken {
        /// The container name.
        name: String,
        /// Whose it is, and what to do ([`ownership::claim`]).
        reason: String,
    },
    /// A `-p` host port is held by something else: the engine could not
    /// publish it (the container it created is removed again).
    #[error("cannot publish -p {port} for container {container}: host port {host_port} is already in use{holder}; stop what holds it or pick another host port (-p OTHER:{container_port})")]
    PortInUse {
        /// The container that could not start.
        container: String,
        /// The mapping as given (`ip:host:container`).
        port: String,
        /// The host port.
        host_port: u16,
        /// The container port, for the suggested `-p`.
        container_port: u16,
        /// ` (by container NAME)` when another container publishes it, else empty.
        holder: String,
    },
    /// Running a command in a container failed.
    #[error("exec in {replica}: {detail}")]
    Exec {
        /// The replica.
        replica: String,
        /// What went wrong.
        detail: String,
    },
}

/// A place where the app runs.
#[async_trait]
pub trait Target: Send + Sync {
    /// Live containers running the app, ready to receive a binary.
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError>;

    /// Runs `argv` in the replica's container with `stdin` as its input.
    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError>;

    /// Like [`Target::exec`], with stdin still being computed: a target may
    /// set the exec up while the payload is encoded (the Docker target does),
    /// taking the exec's setup off a reload's critical path.
    async fn exec_deferred(
        &self,
        replica: &Replica,
        argv: &[String],
        stdin: futures::future::BoxFuture<'static, Bytes>,
    ) -> Result<ExecOutput, TargetError> {
        let stdin = stdin.await;
        self.exec(replica, argv, stdin).await
    }

    /// Like [`Target::exec`], with stdout read as it comes instead of
    /// collected: for answers of any size (syncback's listing and files).
    /// The default collects the output whole; the Docker and Kubernetes
    /// targets stream it.
    async fn exec_stream(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecStream, TargetError> {
        Ok(ExecStream::from_output(self.exec(replica, argv, stdin).await?))
    }

    /// Starts `argv` in the replica's container and keeps its stdin and
    /// stdout open (the way-in helper's session). A target that cannot
    /// answers with an error, and callers fall back to [`Target::exec`].
    async fn attach(&self, replica: &Replica, _argv: &[String]) -> Result<Attached, TargetError> {
        Err(TargetError::Exec { replica: replica.name.clone(), detail: "this target keeps no sessions".into() })
    }

    /// The last `lines` lines the replica's container printed, oldest first:
    /// what a report of an app that exited shows. Empty when the target
    /// cannot tell.
    async fn last_lines(&self, _replica: &Replica, _lines: usize) -> Vec<String> {
        Vec::new()
    }

    /// Called when the app has no live replica: bring it back if the target
    /// owns its lifecycle (the Docker target re-creates its container).
    /// Returns what was done, for people (None: nothing).
    async fn recover(&self) -> Result<Option<String>, TargetError> {
        Ok(None)
    }
}
