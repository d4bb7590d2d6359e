//! The app on the local Docker engine: one container per service, created
//! from its dev image, reached with exec for syncs, and re-created if it is
//! removed; the services of one session share a network of the session's
//! own, where each reaches the others by name.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions, StartContainerOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;

use super::ownership::{self, Claim, SessionId};
use super::{Replica, Target, TargetError};
use crate::docker::{exec_stdin_deferred, ExecOutput};

/// A published port: `[ip:]host:container`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// Host address to bind (default 127.0.0.1: a dev server is not for the network).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
}

impl std::str::FromStr for PortMapping {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let port = |p: &str| {
            p.parse::<u16>().map_err(|_| format!("invalid port {p:?} in -p {s}: use HOST:CONTAINER, e.g. 8080:8080"))
        };
        match parts.as_slice() {
            [c] => Ok(PortMapping { host_ip: "127.0.0.1".into(), host_port: port(c)?, container_port: port(c)? }),
            [h, c] => Ok(PortMapping { host_ip: "127.0.0.1".into(), host_port: port(h)?, container_port: port(c)? }),
            [ip, h, c] => Ok(PortMapping { host_ip: (*ip).into(), host_port: port(h)?, container_port: port(c)? }),
            _ => Err(format!("invalid -p {s}: use HOST:CONTAINER or IP:HOST:CONTAINER")),
        }
    }
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.host_ip, self.host_port, self.container_port)
    }
}

/// Which of `ports` the engine's start error says is taken, if it says a
/// port is taken at all: `Bind for 127.0.0.1:8080 failed: port is already
/// allocated` (another container holds it) or `listen tcp4 127.0.0.1:8080:
/// bind: address already in use` (another process does).
fn port_in_use<'a>(error: &str, ports: &'a [PortMapping]) -> Option<&'a PortMapping> {
    if !(error.contains("port is already allocated") || error.contains("address already in use")) {
        return None;
    }
    let names = |p: &PortMapping| {
        let needle = format!(":{}", p.host_port);
        error.match_indices(&needle).any(|(i, _)| !error[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    ports.iter().find(|p| names(p)).or(match ports {
        [only] => Some(only),
        _ => None,
    })
}

/// How to run the app's container.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference (loaded in the engine).
    pub image: String,
    /// Entrypoint (the watchexec-wrapped command).
    pub entrypoint: Vec<String>,
    /// Arguments after it.
    pub args: Vec<String>,
    /// Extra environment (`K=V`).
    pub env: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortMapping>,
    /// The session's network, and the names the container has on it.
    pub network: Option<(String, Vec<String>)>,
}

/// How long a stopped container is left alone before gohot starts it again:
/// a `docker restart` stops and starts it within its stop timeout.
const STOPPED_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The Docker target.
pub struct DockerTarget {
    docker: Docker,
    spec: ContainerSpec,
    /// The app its container runs, for the ownership label (default: the container's name).
    app: String,
    /// This gohot process, for the ownership label.
    session: SessionId,
}

fn api(e: impl std::fmt::Display) -> TargetError {
    TargetError::Api { target: "Docker engine".into(), detail: e.to_string() }
}

impl DockerTarget {
    /// A target that runs `spec` on `docker`.
    pub fn new(docker: Docker, spec: ContainerSpec) -> Self {
        let app = spec.name.clone();
        DockerTarget { docker, spec, app, session: SessionId::this_process() }
    }

    /// The same, its container labelled as running `app` (the package's
    /// import path): another gohot app's container is never replaced.
    pub fn for_app(mut self, app: &str) -> Self {
        self.app = app.to_string();
        self
    }

    /// The container spec.
    pub fn spec(&self) -> &ContainerSpec {
        &self.spec
    }

    /// Creates and starts the container, replacing a leftover one of the
    /// same name only when it is gohot's for this app and no other running
    /// session's ([`ownership::claim`]); anything else is refused, named.
    pub async fn start(&self) -> Result<(), TargetError> {
        let name = &self.spec.name;
        let found = self.inspect().await?;
        let found = found.as_ref().map(|(labels, image)| (labels, image.as_str()));
        match ownership::claim(name, found, &self.app, &self.session, SessionId::is_alive) {
            Claim::Free => {}
            Claim::Replace => self.force_remove().await?,
            Claim::Refused(reason) => return Err(TargetError::NameTaken { name: name.clone(), reason }),
        }
        let mut bindings = HashMap::new();
        let mut exposed = Vec::new();
        for p in &self.spec.ports {
            let key = format!("{}/tcp", p.container_port);
            exposed.push(key.clone());
            bindings
                .entry(key)
                .or_insert_with(Vec::new)
                .push(PortBinding { host_ip: Some(p.host_ip.clone()), host_port: Some(p.host_port.to_string()) });
        }
        let body = ContainerCreateBody {
            image: Some(self.spec.image.clone()),
            entrypoint: Some(self.spec.entrypoint.clone()),
            cmd: Some(self.spec.args.clone()),
            env: Some(self.spec.env.clone()),
            exposed_ports: Some(exposed),
            labels: Some(ownership::labels(&self.app, &self.session)),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings.into_iter().map(|(k, v)| (k, Some(v))).collect()),
                network_mode: self.spec.network.as_ref().map(|(n, _)| n.clone()),
                ..Default::default()
            }),
            networking_config: self.spec.network.as_ref().map(|(network, aliases)| NetworkingConfig {
                endpoints_config: Some(
                    [(network.clone(), EndpointSettings { aliases: Some(aliases.clone()), ..Default::default() })]
                        .into(),
                ),
            }),
            ..Default::default()
        };
        self.docker
            .create_container(
                Some(CreateContainerOptions { name: Some(self.spec.name.clone()), ..Default::default() }),
                body,
            )
            .await
            .map_err(|e| api(format!("cannot create container {}: {e}", self.spec.name)))?;
        if let Err(e) = self.docker.start_container(&self.spec.name, None::<StartContainerOptions>).await {
            // Nothing left behind: the container was created by this call and never ran.
            let _ = self.force_remove().await;
            let detail = e.to_string();
            if let Some(p) = port_in_use(&detail, &self.spec.ports) {
                let holder =
                    self.port_holder(p.host_port).await.map(|c| format!(" (by container {c})")).unwrap_or_default();
                return Err(TargetError::PortInUse {
                    container: self.spec.name.clone(),
                    port: p.to_string(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    holder,
                });
            }
            return Err(api(format!("cannot start container {}: {detail}", self.spec.name)));
        }
        Ok(())
    }

    /// The name of a container that publishes `host_port`, if one does.
    async fn port_holder(&self, host_port: u16) -> Option<String> {
        let filters = HashMap::from([("publish".to_string(), vec![host_port.to_string()])]);
        let options = ListContainersOptions { all: false, filters: Some(filters), ..Default::default() };
        let found = self.docker.list_containers(Some(options)).await.ok()?;
        let names = found.into_iter().next()?.names?;
        names.into_iter().next().map(|n| n.trim_start_matches('/').to_string())
    }

    /// The labels and image of the container holding the name, if any.
    async fn inspect(&self) -> Result<Option<(HashMap<String, String>, String)>, TargetError> {
        match self.docker.inspect_container(&self.spec.name, None).await {
            Ok(info) => {
                let config = info.config.unwrap_or_default();
                Ok(Some((config.labels.unwrap_or_default(), config.image.unwrap_or_default())))
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(api(format!("cannot inspect container {}: {e}", self.spec.name))),
        }
    }

    /// Removes the container if it exists and is still this session's (a
    /// container someone else put under the name since is left alone).
    pub async fn remove(&self) -> Result<(), TargetError> {
        match self.inspect().await? {
            Some((labels, _)) if ownership::may_remove(&labels, &self.session) => self.force_remove().await,
            _ => Ok(()),
        }
    }

    async fn force_remove(&self) -> Result<(), TargetError> {
        match self
            .docker
            .remove_container(&self.spec.name, Some(RemoveContainerOptions { force: true, ..Default::default() }))
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(api(format!("cannot remove container {}: {e}", self.spec.name))),
        }
    }

    /// Follows the container's output, calling `line` for each line; when
    /// the container is re-created, follows the new one (from that moment).
    pub fn follow_logs(&self, line: impl Fn(&str) + Send + 'static) -> tokio::task::JoinHandle<()> {
        let docker = self.docker.clone();
        let name = self.spec.name.clone();
        tokio::spawn(async move {
            let mut since = 0;
            loop {
                let opts = LogsOptions {
                    follow: true,
                    stdout: true,
                    stderr: true,
                    since,
                    tail: "all".into(),
                    ..Default::default()
                };
                let mut stream = docker.logs(&name, Some(opts));
                let mut pending = String::new();
                while let Some(Ok(chunk)) = stream.next().await {
                    pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                    while let Some(i) = pending.find('\n') {
                        line(&pending[..i]);
                        pending.drain(..=i);
                    }
                }
                // The container stopped or was removed: wait for it to be back.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i32)
                    .unwrap_or(0);
            }
        })
    }
}

/// A container port published on the host, looked up on the engine each
/// time (a re-created container gets another host port when it asked for
/// port 0, the engine's pick).
#[derive(Clone)]
pub struct PublishedPort {
    docker: Docker,
    container: String,
    port: u16,
}

impl PublishedPort {
    /// The container it belongs to.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Where the host reaches it now (an unspecified host IP as 127.0.0.1).
    pub async fn addr(&self) -> Result<std::net::SocketAddr, String> {
        let info = self
            .docker
            .inspect_container(&self.container, None)
            .await
            .map_err(|e| format!("cannot inspect container {}: {e}", self.container))?;
        let key = format!("{}/tcp", self.port);
        let bindings = info.network_settings.and_then(|n| n.ports).and_then(|mut p| p.remove(&key)).flatten();
        let found = bindings.into_iter().flatten().find_map(|b| {
            let port = b.host_port.as_deref()?.parse::<u16>().ok().filter(|p| *p != 0)?;
            let ip = match b.host_ip.as_deref() {
                None | Some("") | Some("0.0.0.0") => std::net::Ipv4Addr::LOCALHOST.into(),
                Some("::") => std::net::Ipv6Addr::LOCALHOST.into(),
                Some(ip) => ip.parse().ok()?,
            };
            Some(std::net::SocketAddr::new(ip, port))
        });
        found.ok_or_else(|| format!("container {} publishes no host port for its port {}", self.container, self.port))
    }
}

impl DockerTarget {
    /// Its container's `port`, as published on the host (see [`ContainerSpec::ports`]).
    pub fn published(&self, port: u16) -> PublishedPort {
        PublishedPort { docker: self.docker.clone(), container: self.spec.name.clone(), port }
    }
}

/// The last `lines` lines a container printed (empty when they cannot be read).
async fn last_lines(docker: &Docker, container: &str, lines: usize) -> Vec<String> {
    let opts = LogsOptions { stdout: true, stderr: true, tail: lines.to_string(), ..Default::default() };
    let mut text = String::new();
    let mut stream = docker.logs(container, Some(opts));
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.lines().map(str::to_string).collect()
}

#[async_trait]
impl Target for DockerTarget {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        let info = match self.docker.inspect_container(&self.spec.name, None).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(Vec::new()),
            Err(e) => return Err(api(e)),
        };
        let state = info.state.unwrap_or_default();
        if state.running != Some(true) {
            return Ok(Vec::new());
        }
        let id = info.id.unwrap_or_default();
        Ok(vec![Replica {
            name: self.spec.name.clone(),
            instance: format!("{id}@{}", state.started_at.unwrap_or_default()),
            handle: id,
        }])
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        self.exec_deferred(replica, argv, Box::pin(async move { stdin })).await
    }

    async fn exec_deferred(
        &self,
        replica: &Replica,
        argv: &[String],
        stdin: futures::future::BoxFuture<'static, Bytes>,
    ) -> Result<ExecOutput, TargetError> {
        exec_stdin_deferred(&self.docker, &replica.handle, argv, stdin)
            .await
            .map_err(|detail| TargetError::Exec { replica: replica.name.clone(), detail })
    }

    async fn exec_stream(
        &self,
        replica: &Replica,
        argv: &[String],
        stdin: Bytes,
    ) -> Result<super::ExecStream, TargetError> {
        crate::docker::exec_streaming(&self.docker, &replica.handle, argv, stdin)
            .await
            .map_err(|detail| TargetError::Exec { replica: replica.name.clone(), detail })
    }

    async fn attach(&self, replica: &Replica, argv: &[String]) -> Result<super::Attached, TargetError> {
        crate::docker::exec_attached(&self.docker, &replica.handle, argv)
            .await
            .map_err(|detail| TargetError::Exec { replica: replica.name.clone(), detail })
    }

    async fn last_lines(&self, replica: &Replica, lines: usize) -> Vec<String> {
        last_lines(&self.docker, &replica.handle, lines).await
    }

    /// A removed container is re-created from the image. One that exists
    /// but stopped is started again (its files, the synced binary among
    /// them, are kept) — unless it stopped only now: a `docker restart` in
    /// progress starts it itself, and re-creating it then would race it.
    async fn recover(&self) -> Result<Option<String>, TargetError> {
        let state = match self.docker.inspect_container(&self.spec.name, None).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                self.start().await?;
                return Ok(Some("container was gone: re-created it".into()));
            }
            Err(e) => return Err(api(e)),
            Ok(info) => info.state.unwrap_or_default(),
        };
        if state.running == Some(true) || state.restarting == Some(true) {
            return Ok(None);
        }
        let stopped_at = state.finished_at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let stopped_for = stopped_at.and_then(|t| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
            Some(now - t.timestamp() as f64)
        });
        if stopped_for.is_none_or(|s| s < STOPPED_GRACE.as_secs_f64()) {
            return Ok(None);
        }
        match self.docker.start_container(&self.spec.name, None::<StartContainerOptions>).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {
                Ok(Some("container was stopped: started it again".into()))
            }
            Err(e) => Err(api(format!("cannot start container {}: {e}", self.spec.name))),
        }
    }
}

/// The network of a session with several services: a user-defined bridge,
/// so that the engine's DNS lets each container reach the others by name
/// (as Docker Compose does). Labelled as gohot's; a leftover one of the same
/// name from an earlier session is replaced.
pub struct SessionNetwork {
    docker: Docker,
    name: String,
}

/// The label on every network gohot makes.
const NETWORK_LABEL: &str = "dev.gohot.network";

impl SessionNetwork {
    /// Creates the network `name` (a leftover gohot network of that name is
    /// removed first; a network gohot did not make is refused, named).
    pub async fn create(docker: Docker, name: &str) -> Result<Self, TargetError> {
        if let Ok(found) = docker.inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>).await
        {
            let ours = found.labels.as_ref().is_some_and(|l| l.contains_key(NETWORK_LABEL));
            if !ours {
                return Err(api(format!(
                    "a network named {name} exists and gohot did not make it: remove it (`docker network rm {name}`) \
                     or develop these services from another directory"
                )));
            }
            docker.remove_network(name).await.map_err(|e| {
                api(format!("cannot remove the leftover network {name}: {e} (is a container still on it?)"))
            })?;
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some([(NETWORK_LABEL.to_string(), name.to_string())].into()),
            ..Default::default()
        };
        docker.create_network(request).await.map_err(|e| api(format!("cannot create network {name}: {e}")))?;
        Ok(SessionNetwork { docker, name: name.to_string() })
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the network (its containers must be gone).
    pub async fn remove(&self) -> Result<(), TargetError> {
        match self.docker.remove_network(&self.name).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(api(format!("cannot remove network {}: {e}", self.name))),
        }
    }
}

/// A container that already runs, reached by name or id — e.g. the source
/// of `gohot syncback`. gohot does not own its lifecycle, so
/// [`Target::recover`] does nothing; replicas and exec are the
/// [`DockerTarget`]'s (which only use the name).
pub struct ExistingContainer(DockerTarget);

impl ExistingContainer {
    /// The container `name` (or id) on `docker`.
    pub fn new(docker: Docker, name: &str) -> Self {
        let spec = ContainerSpec {
            name: name.to_string(),
            image: String::new(),
            entrypoint: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            network: None,
        };
        ExistingContainer(DockerTarget::new(docker, spec))
    }
}

#[async_trait]
impl Target for ExistingContainer {
    async fn replicas(&self) -> Result<Vec<Replica>, TargetError> {
        self.0.replicas().await
    }

    async fn exec(&self, replica: &Replica, argv: &[String], stdin: Bytes) -> Result<ExecOutput, TargetError> {
        self.0.exec(replica, argv, stdin).await
    }

    async fn exec_stream(
        &self,
        replica: &Replica,
        argv: &[String],
        stdin: Bytes,
    ) -> Result<super::ExecStream, TargetError> {
        self.0.exec_stream(replica, argv, stdin).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_mappings() {
        let p: PortMapping = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip.as_str(), p.host_port, p.container_port), ("127.0.0.1", 8080, 80));
        let p: PortMapping = "0.0.0.0:1:2".parse().unwrap();
        assert_eq!(p.host_ip, "0.0.0.0");
        assert!("x:1".parse::<PortMapping>().is_err());
    }

    #[test]
    fn port_in_use_names_the_mapping_the_engine_could_not_bind() {
        let ports: Vec<PortMapping> = vec!["8080:80".parse().unwrap(), "8081:81".parse().unwrap()];
        let proxy = "driver failed programming external connectivity on endpoint x: Error starting userland proxy: \
                     listen tcp4 127.0.0.1:8081: bind: address already in use";
        assert_eq!(port_in_use(proxy, &ports), Some(&ports[1]));
        let taken = "Bind for 127.0.0.1:8080 failed: port is already allocated";
        assert_eq!(port_in_use(taken, &ports), Some(&ports[0]));
        assert_eq!(port_in_use("Bind for 127.0.0.1:80801 failed: port is already allocated", &ports), None);
        assert_eq!(port_in_use("no such image", &ports), None);
    }
}
