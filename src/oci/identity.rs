//! Docker's `identitytoken`: an OAuth2 refresh token (what `docker login`
//! stores for registries with OAuth logins, such as `az acr login`), traded
//! for a short-lived access token the way Docker's own client does it: ask
//! the registry's `/v2/` for its Bearer challenge, then POST the refresh
//! token to the challenge's realm (`grant_type=refresh_token`, with the
//! service and the repository scope), and use the `access_token` it answers
//! as the Bearer token.
//!
//! The exchange goes to the realm the registry names, and happens only for
//! the registry the identity token was stored under; never over plain HTTP
//! to a registry reached over HTTPS.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http_auth::parser::ChallengeParser;

/// A registry's Bearer challenge (`WWW-Authenticate: Bearer realm=…,service=…`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Where tokens are asked for.
    pub(crate) realm: String,
    /// The `service` to ask them for.
    pub(crate) service: Option<String>,
}

/// The Bearer challenge in a `WWW-Authenticate` header, if there is one.
pub(crate) fn bearer_challenge(header: &str) -> Option<Challenge> {
    ChallengeParser::new(header).filter_map(Result::ok).find(|c| c.scheme.eq_ignore_ascii_case("Bearer")).and_then(
        |c| {
            let param =
                |name: &str| c.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_unescaped());
            Some(Challenge { realm: param("realm")?, service: param("service") })
        },
    )
}

/// Whether the refresh token, a long-lived secret, may go to `realm`: over
/// HTTPS, or over plain HTTP only when the registry itself (`base_url`) is
/// spoken to that way (loopback, or the destination named insecure).
pub(crate) fn may_send_to(base_url: &str, realm: &str) -> Result<(), String> {
    if realm.starts_with("https://") || (realm.starts_with("http://") && base_url.starts_with("http://")) {
        Ok(())
    } else {
        Err(format!("the token server it names, {realm}, is not HTTPS: gohot does not send the identity token there"))
    }
}

/// What a token server answers (`token` is the older name of `access_token`).
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token: Option<String>,
    /// Seconds; read leniently (a float, a string or a negative number is
    /// no lifetime), the server is not trusted to send a sane one.
    expires_in: Option<serde_json::Value>,
}

/// Distribution's default token lifetime, for an answer that gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a traded token is reused, whatever the server says: a
/// session outlives no token by more than this, and no `Instant` overflows.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// The access token and how long to reuse it, from a token server's 2xx
/// body: renewed 5 s early, at least 5 s, at most [`MAX_LIFETIME`]. Pure.
pub(crate) fn parse_token_response(body: &str) -> Result<(String, Duration), String> {
    let parsed: TokenResponse = serde_json::from_str(body).map_err(|e| format!("answered no token: {e}"))?;
    let token = parsed.access_token.or(parsed.token).filter(|t| !t.is_empty()).ok_or("answered no access_token")?;
    let lifetime = parsed
        .expires_in
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .map_or(DEFAULT_LIFETIME, |s| Duration::from_secs(s.clamp(10, MAX_LIFETIME.as_secs() + 5) - 5));
    Ok((token, lifetime))
}

/// Why no access token came of an identity token.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The registry or its token server did not answer.
    Unreachable(String),
    /// They answered, but gave no token.
    Refused(String),
}

fn unreachable(e: reqwest::Error) -> ExchangeError {
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    ExchangeError::Unreachable(format!("{e}: {cause}"))
}

/// Access tokens already traded for, per registry and scope, until they expire.
#[derive(Default)]
pub(crate) struct AccessTokens {
    cache: Mutex<HashMap<(String, String), (String, Instant)>>,
    /// Made on the first exchange (most runs have no identity token); the
    /// second skips certificate checks, for the destination named insecure.
    http: [std::sync::OnceLock<reqwest::Client>; 2],
}

impl AccessTokens {
    /// An access token for `scope` (`repository:NAME:pull[,push]`) at
    /// `registry` (reached at `base_url`, `http[s]://host`, its certificate
    /// not verified when `unverified`), from the refresh token `refresh`.
    pub(crate) async fn get(
        &self,
        base_url: &str,
        unverified: bool,
        registry: &str,
        scope: &str,
        refresh: &str,
    ) -> Result<String, ExchangeError> {
        let key = (registry.to_string(), scope.to_string());
        if let Some((token, until)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let slot = &self.http[usize::from(unverified)];
        let http = match slot.get() {
            Some(http) => http,
            None => {
                let http = reqwest::Client::builder()
                    .tls_danger_accept_invalid_certs(unverified)
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(unreachable)?;
                slot.get_or_init(|| http)
            }
        };
        let probe = http.get(format!("{base_url}/v2/")).send().await.map_err(unreachable)?;
        let challenge = probe
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(bearer_challenge)
            .ok_or_else(|| {
                ExchangeError::Refused(format!(
                    "the Docker config holds an identity token for {registry}, but the registry asks for no Bearer \
                     token (HTTP {} from /v2/) to trade it for",
                    probe.status().as_u16()
                ))
            })?;
        may_send_to(base_url, &challenge.realm).map_err(|why| ExchangeError::Refused(format!("{registry}: {why}")))?;
        let mut form =
            vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "gohot"), ("scope", scope)];
        if let Some(service) = &challenge.service {
            form.push(("service", service));
        }
        let answer = http.post(&challenge.realm).form(&form).send().await.map_err(unreachable)?;
        let status = answer.status();
        let body = answer.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(ExchangeError::Refused(format!(
                "the token server {} refused the identity token for {scope} (HTTP {}: {})",
                challenge.realm,
                status.as_u16(),
                body.trim().chars().take(200).collect::<String>()
            )));
        }
        let (token, lifetime) = parse_token_response(&body)
            .map_err(|why| ExchangeError::Refused(format!("the token server {} {why}", challenge.realm)))?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, (token.clone(), Instant::now() + lifetime));
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        assert_eq!(
            bearer_challenge(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="x""#),
            Some(Challenge { realm: "https://auth.example/token".into(), service: Some("registry.example".into()) })
        );
        assert_eq!(
            bearer_challenge(r#"Basic realm="r", Bearer realm="https://a/t""#),
            Some(Challenge { realm: "https://a/t".into(), service: None })
        );
        assert_eq!(bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(bearer_challenge(r#"Bearer service="no realm""#), None);
    }

    #[test]
    fn token_answers_with_any_lifetime_are_bounded() {
        let life = |body: &str| parse_token_response(body).map(|(_, l)| l);
        assert_eq!(life(r#"{"access_token":"t","expires_in":300}"#), Ok(Duration::from_secs(295)));
        assert_eq!(life(r#"{"token":"t"}"#), Ok(DEFAULT_LIFETIME));
        assert_eq!(life(r#"{"token":"t","expires_in":0}"#), Ok(Duration::from_secs(5)));
        // What would overflow an Instant (or ask to be trusted for centuries) is capped.
        for huge in [u64::MAX.to_string(), (u64::MAX - 4).to_string(), "1e300".into(), "99999999999999999999999".into()]
        {
            let lifetime = life(&format!(r#"{{"token":"t","expires_in":{huge}}}"#));
            assert!(lifetime.as_ref().is_ok_and(|l| *l <= MAX_LIFETIME), "{huge}: {lifetime:?}");
            let _ = Instant::now() + lifetime.unwrap();
        }
        // Not a count of seconds: the default, not a refusal.
        for odd in ["-1", "1.5", "\"60\"", "null", "[]"] {
            assert_eq!(life(&format!(r#"{{"token":"t","expires_in":{odd}}}"#)), Ok(DEFAULT_LIFETIME), "{odd}");
        }
        assert!(life(r#"{"access_token":""}"#).is_err());
        assert!(life("not json").is_err());
    }

    #[test]
    fn refresh_tokens_never_leave_https_for_plain_http() {
        assert!(may_send_to("https://r.example", "https://auth.example/token").is_ok());
        assert!(may_send_to("http://127.0.0.1:5000", "http://127.0.0.1:5001/token").is_ok());
        assert!(may_send_to("http://127.0.0.1:5000", "https://auth.example/token").is_ok());
        let refused = may_send_to("https://r.example", "http://auth.example/token").unwrap_err();
        assert!(refused.contains("http://auth.example/token") && refused.contains("not HTTPS"), "{refused}");
        assert!(may_send_to("https://r.example", "ftp://auth.example/token").is_err());
    }
}
