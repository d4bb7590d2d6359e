//! Which Docker engine to talk to, decided as the Docker CLI decides it
//! (docker/cli `cli/command/cli.go` `resolveContextName`, and the default
//! context's `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`):
//!
//! 1. `--docker-host` (Docker's `-H`), then `DOCKER_HOST`: that host, with
//!    TLS when `DOCKER_TLS_VERIFY` (verified) or `DOCKER_TLS` (not verified)
//!    is set, the certificates `ca.pem`, `cert.pem`, `key.pem` taken from
//!    `DOCKER_CERT_PATH` (default: the Docker config directory);
//! 2. the context `DOCKER_CONTEXT` names;
//! 3. the `currentContext` of `config.json` in the Docker config directory
//!    (`DOCKER_CONFIG`, default `~/.docker`);
//! 4. the local socket `unix:///var/run/docker.sock`.
//!
//! A context other than `default` is read from where `docker context create`
//! writes it: `contexts/meta/<sha256 of its name>/meta.json`
//! (`Endpoints.docker.Host`, `SkipTLSVerify`) and its TLS material under
//! `contexts/tls/<sha256 of its name>/docker/`.
//!
//! Nothing here connects: [`resolve`] takes the environment as a function
//! and returns an [`Endpoint`], so each route is unit-tested.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The local engine's socket when nothing else is named.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is, how to speak to it, and why gohot chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// TLS settings for a `tcp://` host (None: plain HTTP or a socket).
    pub tls: Option<Tls>,
    /// Which setting chose this engine (for messages).
    pub route: Route,
}

/// TLS towards the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Check the engine's certificate (against `ca`, else the web's roots).
    pub verify: bool,
    /// The CA that signed the engine's certificate.
    pub ca: Option<PathBuf>,
    /// The client certificate and its key, for engines that ask for one.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The directory the files come from (for messages).
    pub dir: PathBuf,
}

/// The setting that chose the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `--docker-host`.
    Flag,
    /// `DOCKER_HOST`.
    DockerHost,
    /// A context named by `DOCKER_CONTEXT`.
    EnvContext(String),
    /// The `currentContext` of a `config.json`.
    ConfigContext(String, PathBuf),
    /// Nothing set: the local socket.
    Default,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Flag => write!(f, "--docker-host"),
            Route::DockerHost => write!(f, "DOCKER_HOST"),
            Route::EnvContext(name) => write!(f, "Docker context {name:?} (DOCKER_CONTEXT)"),
            Route::ConfigContext(name, path) => {
                write!(f, "Docker context {name:?} (currentContext in {})", path.display())
            }
            Route::Default => write!(f, "the default socket"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (from {}", self.host, self.route)?;
        if let Some(tls) = &self.tls {
            let verify = if tls.verify { "verified" } else { "not verified" };
            write!(f, ", TLS {verify}, certificates in {}", tls.dir.display())?;
        }
        write!(f, ")")
    }
}

/// Why no engine could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// A host gohot cannot speak to.
    #[error("{route} names {host:?}, which gohot cannot reach: {reason}")]
    BadHost {
        /// The setting.
        route: String,
        /// Its value.
        host: String,
        /// What is wrong and what to use.
        reason: String,
    },
    /// A context that `docker context create` never wrote.
    #[error("{route}: no such context ({path} is missing); `docker context ls` lists the contexts, `docker context use default` goes back to the local engine")]
    NoContext {
        /// The setting.
        route: String,
        /// The meta.json that is missing.
        path: PathBuf,
    },
    /// A file that cannot be read or parsed.
    #[error("{route}: cannot read {path}: {detail}")]
    Read {
        /// The setting.
        route: String,
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// The Docker config directory: `DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => dirs::home_dir().unwrap_or_else(|| PathBuf::from("/")).join(".docker"),
    }
}

/// Chooses the engine: `flag` is `--docker-host`, `env` looks up
/// environment variables.
pub fn resolve(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, EndpointError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let config = config_dir(&env);
    if let Some(host) = flag.filter(|h| !h.is_empty()) {
        return default_context(host, Route::Flag, &env, &config);
    }
    if let Some(host) = env("DOCKER_HOST") {
        return default_context(&host, Route::DockerHost, &env, &config);
    }
    if let Some(name) = env("DOCKER_CONTEXT") {
        return context(&name, Route::EnvContext(name.clone()), &env, &config);
    }
    let path = config.join("config.json");
    let current = match std::fs::read(&path) {
        Ok(bytes) => {
            #[derive(serde::Deserialize)]
            struct ConfigFile {
                #[serde(default, rename = "currentContext")]
                current_context: Option<String>,
            }
            let file: ConfigFile = serde_json::from_slice(&bytes).map_err(|e| EndpointError::Read {
                route: "the Docker config".into(),
                path: path.clone(),
                detail: e.to_string(),
            })?;
            file.current_context.filter(|c| !c.is_empty())
        }
        Err(_) => None,
    };
    match current {
        Some(name) => context(&name, Route::ConfigContext(name.clone(), path), &env, &config),
        None => Ok(Endpoint { host: DEFAULT_HOST.into(), tls: None, route: Route::Default }),
    }
}

/// The `default` context: a host from `-H`/`DOCKER_HOST`, TLS from the environment.
fn default_context(
    host: &str,
    route: Route,
    env: &dyn Fn(&str) -> Option<String>,
    config: &Path,
) -> Result<Endpoint, EndpointError> {
    let verify = env("DOCKER_TLS_VERIFY").is_some();
    let tls = verify || env("DOCKER_TLS").is_some();
    let dir = env("DOCKER_CERT_PATH").map(PathBuf::from).unwrap_or_else(|| config.to_path_buf());
    let tls = tls.then(|| {
        let existing = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        let client = existing("cert.pem").zip(existing("key.pem"));
        Tls { verify, ca: existing("ca.pem"), client, dir: dir.clone() }
    });
    let host = normalise_host(host, tls.is_some(), &route)?;
    let tls = if host.starts_with("tcp://") { tls } else { None };
    Ok(Endpoint { host, tls, route })
}

/// A named context, as `docker context create` stores it.
fn context(
    name: &str,
    route: Route,
    env: &dyn Fn(&str) -> Option<String>,
    config: &Path,
) -> Result<Endpoint, EndpointError> {
    if name == "default" {
        let host = env("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.into());
        return default_context(&host, route, env, config);
    }
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta = config.join("contexts").join("meta").join(&id).join("meta.json");
    let bytes = match std::fs::read(&meta) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EndpointError::NoContext { route: route.to_string(), path: meta })
        }
        Err(e) => return Err(EndpointError::Read { route: route.to_string(), path: meta, detail: e.to_string() }),
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Meta {
        #[serde(default)]
        endpoints: std::collections::HashMap<String, DockerEndpoint>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct DockerEndpoint {
        #[serde(default)]
        host: Option<String>,
        #[serde(default, rename = "SkipTLSVerify")]
        skip_tls_verify: bool,
    }
    let parsed: Meta = serde_json::from_slice(&bytes).map_err(|e| EndpointError::Read {
        route: route.to_string(),
        path: meta.clone(),
        detail: e.to_string(),
    })?;
    let docker = parsed.endpoints.get("docker");
    let host = docker.and_then(|d| d.host.clone()).filter(|h| !h.is_empty()).unwrap_or_else(|| DEFAULT_HOST.into());
    let skip = docker.is_some_and(|d| d.skip_tls_verify);
    let dir = config.join("contexts").join("tls").join(&id).join("docker");
    let existing = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    let (ca, client) = (existing("ca.pem"), existing("cert.pem").zip(existing("key.pem")));
    let tls = (skip || ca.is_some() || client.is_some()).then(|| Tls { verify: !skip, ca, client, dir: dir.clone() });
    let host = normalise_host(&host, tls.is_some(), &route)?;
    let tls = if host.starts_with("tcp://") { tls } else { None };
    Ok(Endpoint { host, tls, route })
}

/// Checks the scheme and gives a `tcp://` host its default port (2376
/// with TLS, 2375 without), as Docker does.
fn normalise_host(host: &str, tls: bool, route: &Route) -> Result<String, EndpointError> {
    let bad =
        |reason: &str| EndpointError::BadHost { route: route.to_string(), host: host.into(), reason: reason.into() };
    let host = host.trim();
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("a unix:// host needs the socket's path, e.g. unix:///var/run/docker.sock"));
        }
        return Ok(host.into());
    }
    let rest = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")).or_else(|| {
        // Docker's `https://` is TCP with TLS: TLS itself comes from DOCKER_TLS_VERIFY.
        host.strip_prefix("https://")
    });
    let Some(rest) = rest else {
        if host.starts_with("ssh://") {
            return Err(bad("ssh:// engines are not supported; forward the socket instead \
                (ssh -NL /tmp/docker.sock:/var/run/docker.sock HOST) and use DOCKER_HOST=unix:///tmp/docker.sock"));
        }
        return Err(bad("use unix:///path/to/docker.sock or tcp://HOST:PORT"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad("a tcp:// host is tcp://HOST:PORT with no path"));
    }
    let has_port = match rest.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, port)| port.len() > 1 && port.starts_with(':')),
        None => rest.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
    };
    Ok(if has_port { format!("tcp://{rest}") } else { format!("tcp://{rest}:{}", if tls { 2376 } else { 2375 }) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn write_context(config: &Path, name: &str, meta: &str, tls: &[&str]) {
        let id = hex::encode(Sha256::digest(name.as_bytes()));
        let dir = config.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), meta).unwrap();
        let tls_dir = config.join("contexts/tls").join(&id).join("docker");
        for f in tls {
            std::fs::create_dir_all(&tls_dir).unwrap();
            std::fs::write(tls_dir.join(f), "x").unwrap();
        }
    }

    #[test]
    fn docker_order_flag_then_host_then_context_then_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().to_str().unwrap();
        write_context(dir.path(), "ctx", r#"{"Name":"ctx","Endpoints":{"docker":{"Host":"unix:///ctx.sock"}}}"#, &[]);
        write_context(dir.path(), "cur", r#"{"Name":"cur","Endpoints":{"docker":{"Host":"tcp://10.0.0.1"}}}"#, &[]);
        std::fs::write(dir.path().join("config.json"), r#"{"auths":{},"currentContext":"cur"}"#).unwrap();
        let all = env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_HOST", "unix:///env.sock"), ("DOCKER_CONTEXT", "ctx")]);
        assert_eq!(resolve(Some("unix:///flag.sock"), &all).unwrap().host, "unix:///flag.sock");
        assert_eq!(resolve(None, &all).unwrap().route, Route::DockerHost);
        let no_host = env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "ctx")]);
        let e = resolve(None, &no_host).unwrap();
        assert_eq!((e.host.as_str(), e.route), ("unix:///ctx.sock", Route::EnvContext("ctx".into())));
        let config_only = env_of(&[("DOCKER_CONFIG", cfg)]);
        let e = resolve(None, &config_only).unwrap();
        assert_eq!(e.host, "tcp://10.0.0.1:2375");
        assert!(matches!(e.route, Route::ConfigContext(ref n, _) if n == "cur"));
        let empty = tempfile::tempdir().unwrap();
        let nothing = env_of(&[("DOCKER_CONFIG", empty.path().to_str().unwrap())]);
        assert_eq!(
            resolve(None, &nothing).unwrap(),
            Endpoint { host: DEFAULT_HOST.into(), tls: None, route: Route::Default }
        );
    }

    #[test]
    fn tls_from_the_environment_and_from_a_context() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let certs = dir.path().to_str().unwrap();
        let env =
            env_of(&[("DOCKER_HOST", "tcp://192.168.49.2"), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", certs)]);
        let e = resolve(None, &env).unwrap();
        assert_eq!(e.host, "tcp://192.168.49.2:2376");
        let tls = e.tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca, Some(dir.path().join("ca.pem")));
        assert_eq!(tls.client, Some((dir.path().join("cert.pem"), dir.path().join("key.pem"))));
        // No TLS variable: plain TCP even with certificates around.
        let plain = env_of(&[("DOCKER_HOST", "tcp://127.0.0.1:2375"), ("DOCKER_CERT_PATH", certs)]);
        assert_eq!(resolve(None, &plain).unwrap().tls, None);

        write_context(
            dir.path(),
            "remote",
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://h:1","SkipTLSVerify":true}}}"#,
            &["ca.pem"],
        );
        let env = env_of(&[("DOCKER_CONFIG", certs), ("DOCKER_CONTEXT", "remote")]);
        let tls = resolve(None, &env).unwrap().tls.unwrap();
        assert!(!tls.verify);
        assert!(tls.ca.is_some() && tls.client.is_none());
    }

    #[test]
    fn bad_hosts_and_missing_contexts_name_the_route() {
        let env = env_of(&[("DOCKER_HOST", "ssh://me@box")]);
        let e = resolve(None, &env).unwrap_err().to_string();
        assert!(e.contains("DOCKER_HOST") && e.contains("ssh -NL"), "{e}");
        let e = resolve(Some("/var/run/docker.sock"), &env).unwrap_err().to_string();
        assert!(e.contains("--docker-host") && e.contains("unix://"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[("DOCKER_CONFIG", dir.path().to_str().unwrap()), ("DOCKER_CONTEXT", "colima")]);
        let e = resolve(None, &env).unwrap_err().to_string();
        assert!(e.contains("\"colima\" (DOCKER_CONTEXT)") && e.contains("docker context ls"), "{e}");
        assert_eq!(normalise_host("tcp://[::1]", false, &Route::Flag).unwrap(), "tcp://[::1]:2375");
        assert_eq!(normalise_host("tcp://[::1]:9", false, &Route::Flag).unwrap(), "tcp://[::1]:9");
    }
}
