//! Docker's `identitytoken` (an OAuth2 refresh token, as OAuth logins such
//! as `az acr login` leave in config.json) against Debian's real
//! docker-registry in token-auth mode. The token server is this test's own
//! (no token server can be installed here): it trades the refresh token for
//! an ES256 JWT the registry verifies against the test's certificate, as
//! Docker's auth servers do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::util::*;

const REFRESH: &str = "the-refresh-token";
const SERVICE: &str = "gohot-test-registry";
const ISSUER: &str = "gohot-test-issuer";

/// One request the token server answered: its form fields.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A token server on loopback: POST with `grant_type=refresh_token` and the
/// right refresh token gets a JWT for the requested scope; anything else 401.
pub(crate) struct TokenServer {
    port: u16,
    seen: Seen,
    /// Connections accepted, whatever they asked.
    pub(crate) connections: Arc<std::sync::atomic::AtomicUsize>,
    cert_pem: std::path::PathBuf,
}

impl TokenServer {
    pub(crate) fn start(dir: &std::path::Path) -> TokenServer {
        Self::start_answering(dir, serde_json::json!(300))
    }

    /// A token server whose answers say `expires_in`.
    fn start_answering(dir: &std::path::Path, expires_in: serde_json::Value) -> TokenServer {
        let openssl = require("openssl");
        let key_der = dir.join("key.der");
        let key_pem = dir.join("key.pem");
        let cert_pem = dir.join("cert.pem");
        let cert_der = dir.join("cert.der");
        ok(Command::new(&openssl)
            .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&key_pem));
        ok(Command::new(&openssl)
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&key_der));
        ok(Command::new(&openssl)
            .args(["req", "-new", "-x509", "-days", "2", "-subj", "/CN=gohot-test-token-issuer", "-key"])
            .arg(&key_pem)
            .arg("-out")
            .arg(&cert_pem));
        ok(Command::new(&openssl).args(["x509", "-outform", "DER", "-in"]).arg(&cert_pem).arg("-out").arg(&cert_der));
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &std::fs::read(&key_der).expect("key"),
            &rng,
        )
        .expect("an ES256 key");
        let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&cert_der).expect("cert"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, body) = match read_form(&mut stream) {
                    Some(form) => {
                        log.lock().unwrap().push(form.clone());
                        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                        if field("grant_type") == Some("refresh_token") && field("refresh_token") == Some(REFRESH) {
                            let jwt = jwt(&key, &rng, &x5c, field("scope").unwrap_or(""));
                            (200, serde_json::json!({"access_token": jwt, "expires_in": expires_in}).to_string())
                        } else {
                            (401, r#"{"error":"invalid_grant"}"#.to_string())
                        }
                    }
                    None => (400, "bad request".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { port, seen, connections, cert_pem }
    }

    /// The registry's `auth:` section for this server.
    pub(crate) fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            self.cert_pem.display()
        )
    }
}

/// The form fields of a POST (None for anything else).
fn read_form(stream: &mut std::net::TcpStream) -> Option<Vec<(String, String)>> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    if !line.starts_with("POST ") {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(form_urlencoded::parse(&body).into_owned().collect())
}

/// An ES256 JWT as distribution's token auth verifies it: the certificate
/// in `x5c`, and the access `scope` (`repository:NAME:ACTIONS`, space-separated) asks.
fn jwt(key: &ring::signature::EcdsaKeyPair, rng: &ring::rand::SystemRandom, x5c: &str, scope: &str) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "gohot-test", "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scope.len()),
        "access": access,
    });
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = key.sign(rng, signing_input.as_bytes()).expect("sign");
    format!("{signing_input}.{}", b64(signature.as_ref()))
}

/// With only an identity token for the registry, gohot trades it at the
/// registry's token server for each repository it pushes to and pulls from,
/// and builds; a refresh token the server refuses fails with the registry
/// named and the fix.
#[test]
fn identity_tokens_are_traded_for_access_tokens() {
    let sb = Sandbox::new();
    let tokens = TokenServer::start(sb.path());
    let reg = Registry::start_with_auth(|_| tokens.registry_auth());
    let app = sb.copy_example("hello", "hello");
    let config = sb.path().join("docker/config.json");
    std::fs::write(&config, serde_json::json!({"auths": {reg.host(): {"identitytoken": REFRESH}}}).to_string())
        .expect("config");

    // Anonymous access is refused: the registry really demands the token.
    let (status, _) = http_get(reg.port, "/v2/").expect("registry");
    assert_eq!(status, 401);

    let repo = format!("{}/private", reg.host());
    let pushed = ok(sb.gohot(&app).args(["build", "--bare", "--repo", &repo, "--sbom=none"]));
    assert!(pushed.trim().starts_with(&format!("{repo}@sha256:")), "{pushed}");
    // Pull with it too: the pushed image as the base of another build.
    let other = format!("{}/other", reg.host());
    let rebuilt =
        ok(sb.gohot(&app).args(["build", "--bare", "--repo", &other, "--sbom=none", "--base", pushed.trim()]));
    assert!(rebuilt.trim().starts_with(&format!("{other}@sha256:")), "{rebuilt}");
    let seen = tokens.seen.lock().unwrap().clone();
    let scopes: Vec<String> =
        seen.iter().map(|f| f.iter().find(|(k, _)| k == "scope").map(|(_, v)| v.clone()).unwrap_or_default()).collect();
    assert!(scopes.contains(&"repository:private:pull,push".to_string()), "{scopes:?}");
    assert!(scopes.contains(&"repository:private:pull".to_string()), "the base pull: {scopes:?}");
    assert!(scopes.contains(&"repository:other:pull,push".to_string()), "{scopes:?}");
    for form in &seen {
        assert!(form.contains(&("service".into(), SERVICE.into())), "{form:?}");
        assert!(form.contains(&("grant_type".into(), "refresh_token".into())), "{form:?}");
    }

    std::fs::write(&config, serde_json::json!({"auths": {reg.host(): {"identitytoken": "expired"}}}).to_string())
        .expect("config");
    let out = run(sb.gohot(&app).args(["build", "--bare", "--repo", &repo, "--sbom=none"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the identity token") && stderr.contains("docker login"), "{stderr}");
}

/// A token server answering a lifetime no `Instant` can hold (`u64::MAX`
/// seconds) does not crash gohot: the token is used, and reused for a
/// bounded time.
#[test]
fn a_token_answer_with_a_huge_expires_in_does_not_crash_gohot() {
    let sb = Sandbox::new();
    let tokens = TokenServer::start_answering(sb.path(), serde_json::json!(u64::MAX));
    let reg = Registry::start_with_auth(|_| tokens.registry_auth());
    let app = sb.copy_example("hello", "hello");
    std::fs::write(
        sb.path().join("docker/config.json"),
        serde_json::json!({"auths": {reg.host(): {"identitytoken": REFRESH}}}).to_string(),
    )
    .expect("config");
    let repo = format!("{}/private", reg.host());
    let out = run(sb.gohot(&app).args(["build", "--bare", "--repo", &repo, "--sbom=none"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with(&format!("{repo}@sha256:")), "{stderr}");
    assert!(!tokens.seen.lock().unwrap().is_empty(), "the token was traded at the server");
}
