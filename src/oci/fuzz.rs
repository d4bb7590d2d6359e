//! Fuzz harnesses for what a registry or its token server sends gohot
//! (`WWW-Authenticate` challenges, token answers), one function per target;
//! the cargo-fuzz target in `fuzz/fuzz_targets/` and `tests/fuzz_seeds.rs`
//! both call them, as [`crate::sync::fuzz`] explains. Not part of gohot's API.

use std::time::{Duration, Instant};

use super::identity::{bearer_challenge, may_send_to, parse_token_response, MAX_LIFETIME};

/// Fuzzes the challenge parser, the rule on where a secret may go, and the
/// token answer's parser: none may panic; a realm found is non-empty text,
/// a secret never goes to a plain-HTTP realm of an HTTPS registry, and a
/// token's lifetime is bounded and usable as a deadline.
///
/// Input: `WWW-AUTHENTICATE HEADER \0 TOKEN RESPONSE BODY`.
pub fn registry_auth(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (header, body) = text.split_once('\0').unwrap_or((&text, ""));
    if let Some(challenge) = bearer_challenge(header) {
        let https = may_send_to("https://registry.example", &challenge.realm);
        assert!(
            https.is_err() || challenge.realm.starts_with("https://"),
            "a secret would go to {:?} from an HTTPS registry",
            challenge.realm
        );
        if !challenge.realm.starts_with("http://") && !challenge.realm.starts_with("https://") {
            assert!(may_send_to("http://127.0.0.1:5000", &challenge.realm).is_err(), "{:?}", challenge.realm);
        }
    }
    if let Ok((token, lifetime)) = parse_token_response(body) {
        assert!(!token.is_empty());
        assert!(lifetime <= MAX_LIFETIME && lifetime >= Duration::from_secs(5), "{lifetime:?}");
        let _deadline = Instant::now() + lifetime;
    }
}

#[cfg(test)]
mod tests {
    /// A property test on stable Rust: challenges and token answers put
    /// together from the pieces servers send (and break), through the
    /// harness's invariants. xorshift, fixed seed: the same cases every run.
    #[test]
    fn generated_challenges_and_token_answers_keep_the_invariants() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let schemes = ["Bearer", "bearer", "Basic", "Digest", "", "Bearer,"];
        let realms = ["https://auth.example/token", "http://auth.example/t", "ftp://x", "", "https://", "\\\"", "a b"];
        let params = ["realm", "service", "scope", "REALM", "realm ", ""];
        let numbers = ["0", "5", "9", "10", "300", "-1", "1.5", "1e400", "-1e400", "\"60\"", "null", "{}"];
        for _ in 0..20_000 {
            let mut header = String::new();
            for _ in 0..(next() % 4) {
                header.push_str(schemes[(next() % schemes.len() as u64) as usize]);
                header.push(' ');
                for _ in 0..(next() % 4) {
                    let (p, r) = (params[(next() % 6) as usize], realms[(next() % realms.len() as u64) as usize]);
                    header.push_str(&if next() % 2 == 0 { format!("{p}=\"{r}\",") } else { format!("{p}={r},") });
                }
            }
            let expires = match next() % 3 {
                0 => next().to_string(),
                1 => (u64::MAX - next() % 16).to_string(),
                _ => numbers[(next() % numbers.len() as u64) as usize].to_string(),
            };
            let token = ["\"t\"", "\"\"", "null", "1"][(next() % 4) as usize];
            let key = ["access_token", "token", "accessToken"][(next() % 3) as usize];
            let body = format!("{{\"{key}\":{token},\"expires_in\":{expires}}}");
            super::registry_auth(format!("{header}\0{body}").as_bytes());
        }
    }
}
