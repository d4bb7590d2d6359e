//! Replicas that restarted or replaced another have lost what the session
//! put into them: they get the current binary and the synced files before
//! they count as current. A target with no replica left is asked to bring
//! the app back.

use super::binary::encode_lazy;
use super::Reloader;
use crate::wayin::{self, RemoteFile};

/// What [`Reloader::check_replicas`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// Replicas brought current, with what happened (`pod/container`, reason).
    pub recovered: Vec<(String, String)>,
    /// Worth knowing, not an error (the target could not be listed).
    pub warnings: Vec<String>,
    /// Replicas that could not be brought current.
    pub errors: Vec<String>,
}

impl Reloader<'_> {
    /// Checks that every live replica runs the current binary and holds the
    /// synced files; new or restarted replicas are checked (their binary's
    /// hash) and brought current, in parallel. A replica whose helper does
    /// not answer yet (still starting) is checked again next time.
    pub async fn check_replicas(&mut self) -> HealthReport {
        let mut report = HealthReport::default();
        let replicas = match self.target.replicas().await {
            Ok(r) => r,
            Err(e) => {
                report.warnings.push(e.to_string());
                return report;
            }
        };
        if replicas.is_empty() {
            match self.target.recover().await {
                Ok(Some(what)) => report.recovered.push((self.opts.app.clone(), what)),
                Ok(None) => {}
                Err(e) => report.warnings.push(format!("cannot bring the app back: {e}")),
            }
            return report;
        }
        self.known.retain(|instance, _| replicas.iter().any(|r| &r.instance == instance));
        self.sessions.retain(&replicas);
        let Some(current) = self.current.clone() else { return report };
        let unknown: Vec<_> = replicas.iter().filter(|r| !self.known.contains_key(&r.instance)).collect();
        if unknown.is_empty() {
            return report;
        }
        let full = {
            let b = current.bytes.clone();
            encode_lazy(move || wayin::encode_full(&b))
        };
        let this = &*self;
        let checks = unknown.into_iter().map(|r| {
            let full = full.clone();
            let sha = current.sha256.clone();
            async move {
                let out = match this
                    .sessions
                    .call(this.target, r, &wayin::hash_argv(&this.opts.dest), super::binary::empty())
                    .await
                {
                    Ok(o) => o,
                    Err(e) => {
                        // The container may still be starting; try again next time.
                        tracing::debug!("hash check in {}: {e}", r.name);
                        return None;
                    }
                };
                match wayin::parse_hash_status(&out) {
                    Ok(RemoteFile::Present { sha256, .. }) if sha256 == sha => Some((r, Ok(None))),
                    Ok(_) => Some((r, this.put_binary(r, full.clone(), full).await.map(Some))),
                    Err(e) => {
                        tracing::debug!("hash check in {}: {e}", r.name);
                        None
                    }
                }
            }
        });
        let checked = futures::future::join_all(checks).await;
        for (r, outcome) in checked.into_iter().flatten() {
            let binary = match outcome {
                Ok(None) => None,
                Ok(Some(p)) => Some(if p.restart.is_some() { "restarted on it" } else { "restart not confirmed" }),
                Err(e) => {
                    report.errors.push(e);
                    continue;
                }
            };
            self.known.insert(r.instance.clone(), current.sha256.clone());
            let files = match self.resend_files(r).await {
                Ok(()) => !self.synced.is_empty(),
                Err(errors) => {
                    report.errors.extend(errors);
                    false
                }
            };
            let reason = match (binary, files) {
                (Some(how), true) => {
                    format!(
                        "new or restarted, with a stale binary: synced the current one ({how}) and the synced files"
                    )
                }
                (Some(how), false) => format!("new or restarted, with a stale binary: synced the current one ({how})"),
                (None, true) => "new or restarted: synced the files synced before".to_string(),
                (None, false) => continue,
            };
            report.recovered.push((r.name.clone(), reason));
        }
        report
    }
}
