//! Talking to OCI registries: one client for pulls (base images) and pushes,
//! credentials from the Docker config, and errors turned into messages that
//! say what to do.
//!
//! How a registry is reached ([`Transport`]), as go-containerregistry (and so
//! ko) does it, with one rule on top: credentials and identity tokens never
//! go over plain HTTP to a host that was not named insecure, loopback aside.
//!
//! - Every registry is spoken to over HTTPS, its certificate verified.
//! - A loopback registry (`localhost`, `127.0.0.0/8`, `[::1]`) is tried over
//!   HTTPS first and reached over plain HTTP when that fails (nothing leaves
//!   the machine).
//! - The destination registry named insecure (`--insecure-registry`, which,
//!   as ko's, applies to `KO_DOCKER_REPO`'s registry only) is tried over
//!   HTTPS without verifying its certificate first, then over plain HTTP.
//! - A Bearer challenge that sends Basic credentials to a plain-HTTP token
//!   server while the registry itself is on HTTPS is refused.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};

use super::identity::{AccessTokens, ExchangeError};

/// Errors talking to a registry, classified by what the user can do about them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Nothing answered.
    #[error(
        "cannot reach registry {registry}: {detail}. Is it running, and is the address in KO_DOCKER_REPO/--repo right?"
    )]
    Unreachable {
        /// `host[:port]`
        registry: String,
        /// The underlying failure.
        detail: String,
    },
    /// The registry refused the credentials (or there were none).
    #[error("registry {registry} refused access ({detail}): log in with `docker login {registry}` or add credentials for it to ~/.docker/config.json")]
    Unauthorized {
        /// `host[:port]`
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The image or tag does not exist.
    #[error("{reference} not found in the registry: check the name and tag")]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// Any other registry failure.
    #[error("registry {registry}: {detail}")]
    Other {
        /// `host[:port]`
        registry: String,
        /// What went wrong.
        detail: String,
    },
    /// A reference that does not parse.
    #[error("invalid image reference {reference:?}: {detail}")]
    BadReference {
        /// The text.
        reference: String,
        /// Why.
        detail: String,
    },
    /// Reached over HTTPS, it answered something else (plain HTTP).
    #[error(
        "registry {registry} does not answer HTTPS ({detail}): gohot reaches it over HTTPS only, as it is neither \
         on loopback nor the destination named --insecure-registry, so that credentials never cross the network \
         in the clear. Serve it over HTTPS, or make it the destination (KO_DOCKER_REPO) with --insecure-registry"
    )]
    NotHttps {
        /// `host[:port]`
        registry: String,
        /// The TLS failure.
        detail: String,
    },
    /// The registry's certificate is not trusted here.
    #[error(
        "registry {registry} answers over HTTPS with a certificate this machine does not trust ({detail}): trust its CA \
         (SSL_CERT_FILE), or, when it is the destination in KO_DOCKER_REPO/--repo, pass --insecure-registry"
    )]
    Untrusted {
        /// `host[:port]`
        registry: String,
        /// The TLS failure.
        detail: String,
    },
    /// The registry would have credentials sent somewhere over plain HTTP.
    #[error(
        "registry {registry} asks for credentials at {realm}, which is not HTTPS: gohot does not send them there. \
         Configure the registry's token realm with https://"
    )]
    PlainHttpRealm {
        /// `host[:port]`
        registry: String,
        /// The token server it named.
        realm: String,
    },
    /// The Docker config file is unreadable or malformed.
    #[error("cannot use Docker credentials from {path}: {detail}")]
    Credentials {
        /// The config file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// Whether a registry host is on loopback (and so spoken to over HTTP).
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry
            .rsplit_once(':')
            .map_or(registry, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { registry })
    };
    host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses an image reference.
pub fn parse_reference(s: &str) -> Result<Reference, RegistryError> {
    s.parse::<Reference>().map_err(|e| RegistryError::BadReference { reference: s.into(), detail: e.to_string() })
}

/// How one registry host is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS, certificate verified.
    Https,
    /// HTTPS, certificate not verified (the destination named insecure).
    HttpsUnverified,
    /// Plain HTTP (loopback, or the destination named insecure).
    Http,
}

impl Transport {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Https | Transport::HttpsUnverified => "https",
            Transport::Http => "http",
        }
    }
}

/// A registry client factory with credentials resolved per registry.
///
/// oci-client fixes HTTP-vs-HTTPS per client, and keeps the first
/// credentials it is given per registry host for every repository there,
/// for good; an access token traded for an identity token is good for one
/// repository and a few minutes only. So one client is kept per repository,
/// replaced when [`Registry::auth_for`] trades for a new access token (ask
/// for credentials first, then for the client).
#[derive(Clone)]
pub struct Registry {
    /// The destination registry named insecure (`host[:port]`).
    insecure: Option<String>,
    /// Per host, how it is reached (decided once, by [`Registry::transport`]).
    transports: std::sync::Arc<std::sync::Mutex<HashMap<String, Transport>>>,
    clients: std::sync::Arc<std::sync::Mutex<HashMap<String, CachedClient>>>,
    creds: DockerCredentials,
    /// Identity tokens traded (`oci::identity`).
    access_tokens: std::sync::Arc<AccessTokens>,
}

impl Registry {
    /// A factory; `insecure` is the destination registry (`host[:port]`)
    /// named insecure (ko's `--insecure-registry`), if any.
    pub fn new(insecure: Option<String>) -> Result<Self, RegistryError> {
        // rustls needs a process-wide crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Registry {
            insecure: insecure.map(|h| normalize_registry_key(&h)),
            transports: Default::default(),
            clients: Default::default(),
            creds: DockerCredentials::load()?,
            access_tokens: Default::default(),
        })
    }

    /// The client for the repository of `reference`.
    pub async fn client(&self, reference: &Reference) -> Result<oci_client::Client, RegistryError> {
        let transport = self.transport(reference.resolve_registry()).await?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        Ok(clients.entry(client_key(reference)).or_insert_with(|| (new_client(transport), None)).0.clone())
    }

    /// How `registry` (`host[:port]`) is reached (module doc): decided on
    /// the first use, by asking `/v2/` where a fallback is allowed.
    pub async fn transport(&self, registry: &str) -> Result<Transport, RegistryError> {
        let key = normalize_registry_key(registry);
        if let Some(t) = self.transports.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(*t);
        }
        let transport = if self.insecure.as_deref() == Some(key.as_str()) {
            match ping(registry, Transport::HttpsUnverified).await {
                Ok(_) => Transport::HttpsUnverified,
                Err(_) => Transport::Http,
            }
        } else if is_loopback(registry) {
            match ping(registry, Transport::Https).await {
                Ok(_) => Transport::Https,
                Err(e) if is_certificate_error(&e) => {
                    return Err(RegistryError::Untrusted { registry: registry.into(), detail: root_cause(&e) })
                }
                Err(_) => Transport::Http,
            }
        } else {
            Transport::Https
        };
        tracing::debug!("registry {registry}: {transport:?}");
        self.transports.lock().unwrap_or_else(|p| p.into_inner()).insert(key, transport);
        Ok(transport)
    }

    /// Credentials for `operation` on the repository of `reference`: what
    /// the Docker config holds for its registry, an identity token traded
    /// for an access token first.
    pub async fn auth_for(
        &self,
        reference: &Reference,
        operation: RegistryOperation,
    ) -> Result<RegistryAuth, RegistryError> {
        let registry = reference.resolve_registry();
        match self.creds.lookup(registry) {
            Some(Credential::Auth(auth)) => {
                if matches!(auth, RegistryAuth::Basic(..)) {
                    self.check_realm(registry).await?;
                }
                Ok(auth)
            }
            Some(Credential::Identity(refresh)) => {
                let scope = match operation {
                    RegistryOperation::Pull => format!("repository:{}:pull", reference.repository()),
                    RegistryOperation::Push => format!("repository:{}:pull,push", reference.repository()),
                };
                let transport = self.transport(registry).await?;
                let base_url = format!("{}://{registry}", transport.scheme());
                let unverified = transport == Transport::HttpsUnverified;
                let token =
                    self.access_tokens.get(&base_url, unverified, registry, &scope, &refresh).await.map_err(|e| {
                        let registry = registry.to_string();
                        match e {
                            ExchangeError::Unreachable(detail) => RegistryError::Unreachable { registry, detail },
                            ExchangeError::Refused(detail) => RegistryError::Unauthorized { registry, detail },
                        }
                    })?;
                // A client that holds another (an expired, or a pull-only) token would keep using it.
                let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
                let key = client_key(reference);
                if clients.get(&key).and_then(|(_, t)| t.as_deref()) != Some(token.as_str()) {
                    clients.insert(key, (new_client(transport), Some(token.clone())));
                }
                Ok(RegistryAuth::Bearer(token))
            }
            None => Ok(RegistryAuth::Anonymous),
        }
    }

    /// Refuses a registry reached over HTTPS whose Bearer challenge names a
    /// plain-HTTP token server: oci-client would send Basic credentials there.
    async fn check_realm(&self, registry: &str) -> Result<(), RegistryError> {
        let transport = self.transport(registry).await?;
        if transport == Transport::Http {
            return Ok(());
        }
        let Ok(answer) = ping(registry, transport).await else {
            return Ok(()); // unreachable: the pull or push says so
        };
        let challenge = answer
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(super::identity::bearer_challenge);
        match challenge {
            Some(c) if super::identity::may_send_to(&format!("https://{registry}"), &c.realm).is_err() => {
                Err(RegistryError::PlainHttpRealm { registry: registry.into(), realm: c.realm })
            }
            _ => Ok(()),
        }
    }
}

/// An oci-client client for one transport.
fn new_client(transport: Transport) -> oci_client::Client {
    oci_client::Client::new(ClientConfig {
        protocol: if transport == Transport::Http { ClientProtocol::Http } else { ClientProtocol::Https },
        accept_invalid_certificates: transport == Transport::HttpsUnverified,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    })
}

/// `GET /v2/` (no credentials): any HTTP answer means the transport works.
async fn ping(registry: &str, transport: Transport) -> Result<reqwest::Response, reqwest::Error> {
    let http = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(transport == Transport::HttpsUnverified)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    http.get(format!("{}://{registry}/v2/", transport.scheme())).send().await
}

/// The rustls error behind a failed request, if TLS failed.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An io::Error's source() skips the error it wraps.
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &dyn std::error::Error),
            None => err.source(),
        };
    }
    None
}

/// Whether a failed HTTPS request got as far as a certificate it refused
/// (a TLS server), rather than finding no TLS at all.
fn is_certificate_error(e: &reqwest::Error) -> bool {
    matches!(tls_error(e), Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented))
}

/// Whether the server answered an HTTPS request with something that is not
/// TLS (a plain-HTTP server answers a ClientHello with an HTTP 400).
fn is_not_tls(e: &reqwest::Error) -> bool {
    matches!(tls_error(e), Some(rustls::Error::InvalidMessage(_)))
}

/// Per `host/repository`: the client, and the access token it was made for.
type CachedClient = (oci_client::Client, Option<String>);

fn client_key(reference: &Reference) -> String {
    format!("{}/{}", reference.resolve_registry(), reference.repository())
}

/// Maps a client error to what the user should do.
pub fn classify(reference: &Reference, err: OciDistributionError) -> RegistryError {
    let registry = reference.resolve_registry().to_string();
    let unauthorized = |detail: String| RegistryError::Unauthorized { registry: registry.clone(), detail };
    match err {
        OciDistributionError::RequestError(e) if is_not_tls(&e) => {
            RegistryError::NotHttps { registry, detail: root_cause(&e) }
        }
        OciDistributionError::RequestError(e) if is_certificate_error(&e) => {
            RegistryError::Untrusted { registry, detail: root_cause(&e) }
        }
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            RegistryError::Unreachable { registry, detail: root_cause(&e) }
        }
        OciDistributionError::RequestError(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403)) => {
            unauthorized(format!("HTTP {}", e.status().map_or(0, |s| s.as_u16())))
        }
        OciDistributionError::RequestError(e) if e.status().map(|s| s.as_u16()) == Some(404) => {
            RegistryError::NotFound { reference: reference.whole() }
        }
        OciDistributionError::UnauthorizedError { .. } => unauthorized("HTTP 401 Unauthorized".into()),
        OciDistributionError::AuthenticationFailure(m) => unauthorized(m),
        OciDistributionError::ServerError { code, .. } if code == 401 || code == 403 => {
            unauthorized(format!("HTTP {code}"))
        }
        OciDistributionError::ServerError { code: 404, .. } | OciDistributionError::ImageManifestNotFoundError(_) => {
            RegistryError::NotFound { reference: reference.whole() }
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                unauthorized(envelope.to_string())
            } else if codes.iter().any(|c| {
                matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound)
            }) {
                RegistryError::NotFound { reference: reference.whole() }
            } else {
                RegistryError::Other { registry, detail: envelope.to_string() }
            }
        }
        other => RegistryError::Other { registry, detail: other.to_string() },
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Credentials from `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`),
/// looked up under the keys Docker writes: `auths` entries (`auth` or
/// `username`/`password`, `registrytoken`, `identitytoken`) keyed by the
/// registry's host, Docker Hub's under `https://index.docker.io/v1/`; and
/// credential helpers (`credHelpers` per registry, `credsStore` for the
/// rest), asked `docker-credential-<helper> get` with the server address
/// Docker itself stores them under (the host, or Hub's URL).
#[derive(Clone, Debug, Default)]
pub struct DockerCredentials {
    auths: HashMap<String, Credential>,
    helpers: HashMap<String, String>,
    store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What the Docker config holds for a registry.
#[derive(Clone, Debug)]
pub enum Credential {
    /// Usable as is.
    Auth(RegistryAuth),
    /// An OAuth2 refresh token (`identitytoken`, or a helper's secret under
    /// the user `<token>`), traded for an access token per repository
    /// (`oci::identity`).
    Identity(String),
}

/// Docker Hub's key in `auths` and for credential helpers (Docker's `IndexServer`).
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The server address Docker stores a registry's credentials under: Hub's
/// URL for Docker Hub, else the host (`127.0.0.1:5000`, `gcr.io`).
pub fn docker_server_key(registry: &str) -> String {
    match normalize_registry_key(registry).as_str() {
        "docker.io" => DOCKER_HUB_KEY.into(),
        host => host.to_string(),
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `host:5000` stays.
fn normalize_registry_key(key: &str) -> String {
    let k = key.trim_start_matches("https://").trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

impl DockerCredentials {
    /// Reads the Docker config; a missing file means anonymous access.
    pub fn load() -> Result<Self, RegistryError> {
        let path = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d).join("config.json"),
            None => match dirs::home_dir() {
                Some(h) => h.join(".docker").join("config.json"),
                None => return Ok(Self::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(RegistryError::Credentials { path, detail: e.to_string() }),
        };
        Self::parse(&text).map_err(|detail| RegistryError::Credentials { path, detail })
    }

    /// Parses config.json text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: DockerConfigFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut auths = HashMap::new();
        for (key, entry) in file.auths {
            let auth = if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
                Credential::Auth(RegistryAuth::Bearer(token))
            } else if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credential::Identity(token)
            } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
                Credential::Auth(RegistryAuth::Basic(u, p))
            } else if let Some(a) = entry.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|e| format!("auths[{key}].auth is not base64: {e}"))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("auths[{key}].auth is not UTF-8"))?;
                let (u, p) = raw.split_once(':').ok_or_else(|| format!("auths[{key}].auth is not user:password"))?;
                Credential::Auth(RegistryAuth::Basic(u.into(), p.into()))
            } else {
                continue;
            };
            auths.insert(normalize_registry_key(&key), auth);
        }
        let helpers = file.cred_helpers.into_iter().map(|(k, v)| (normalize_registry_key(&k), v)).collect();
        Ok(DockerCredentials { auths, helpers, store: file.creds_store.filter(|s| !s.is_empty()) })
    }

    /// Credentials for a registry host: its helper (`credHelpers`, else
    /// `credsStore` when `auths` has nothing for it) first, then `auths`;
    /// `None` means anonymous.
    pub fn lookup(&self, registry: &str) -> Option<Credential> {
        let key = normalize_registry_key(registry);
        self.helpers
            .get(&key)
            .or(self.store.as_ref().filter(|_| !self.auths.contains_key(&key)))
            .and_then(|helper| run_credential_helper(helper, &docker_server_key(registry)))
            .or_else(|| self.auths.get(&key).cloned())
    }
}

/// `docker-credential-<helper> get` with the server address on stdin.
fn run_credential_helper(helper: &str, server: &str) -> Option<Credential> {
    use std::io::Write;
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperOut {
        username: String,
        secret: String,
    }
    let h: HelperOut = serde_json::from_slice(&out.stdout).ok()?;
    // Docker's helpers return an identity token under the user `<token>`.
    Some(if h.username == "<token>" {
        Credential::Identity(h.secret)
    } else {
        Credential::Auth(RegistryAuth::Basic(h.username, h.secret))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("gcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn docker_config_auths() {
        let creds = DockerCredentials::parse(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let basic = |registry: &str| match creds.lookup(registry) {
            Some(Credential::Auth(RegistryAuth::Basic(u, p))) => Some((u, p)),
            _ => None,
        };
        assert_eq!(basic("docker.io"), Some(("u".into(), "p".into())));
        assert_eq!(basic("127.0.0.1:5000").map(|(u, _)| u), Some("a".into()));
        assert!(creds.lookup("other:1").is_none());
        assert!(DockerCredentials::parse(r#"{"auths":{"x":{"auth":"!!"}}}"#).is_err());
        assert_eq!(docker_server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(docker_server_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(docker_server_key("127.0.0.1:5000"), "127.0.0.1:5000");
        // An identity token is kept apart, to be traded, never sent as an access token.
        let creds = DockerCredentials::parse(r#"{"auths":{"r.io":{"identitytoken":"refresh"}}}"#).unwrap();
        assert!(matches!(creds.lookup("r.io"), Some(Credential::Identity(t)) if t == "refresh"));
    }
}
