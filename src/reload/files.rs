//! Files beside the binary — kodata, `gohot.yaml` sync rules — copied into
//! (or removed from) every replica through the same atomic way in, and
//! remembered so a replica that restarts gets them again.

use std::path::PathBuf;

use bytes::Bytes;

use super::{file_mode, Reloader, Synced};
use crate::hosting::Replica;
use crate::wayin;

/// One local file and where it goes.
#[derive(Clone, Debug)]
pub struct FileItem {
    /// How reports name it (module- or kodata-relative).
    pub rel: String,
    /// The local file; when it does not exist, it is removed at every destination.
    pub local: PathBuf,
    /// Its paths in the container.
    pub dests: Vec<String>,
}

/// What [`Reloader::sync_files`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesReport {
    /// Files now at every destination of every replica (`rel`).
    pub copied: Vec<String>,
    /// Files removed from every destination of every replica.
    pub deleted: Vec<String>,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// What failed, naming the replica and the destination.
    pub errors: Vec<String>,
    /// No replica was running: nothing was synced.
    pub no_replica: bool,
}

/// One file's content as it goes out (None: remove it).
struct Content {
    payload: Option<Bytes>,
    sha256: String,
    mode: u32,
}

impl Content {
    fn read(local: &std::path::Path) -> Content {
        match std::fs::read(local) {
            Ok(data) => Content {
                sha256: wayin::sha256_hex(&data),
                payload: Some(Bytes::from(wayin::encode_full(&data))),
                mode: file_mode(local),
            },
            Err(_) => Content { payload: None, sha256: String::new(), mode: 0 },
        }
    }
}

impl Reloader<'_> {
    /// Puts each item's local file (or removes it, when it no longer
    /// exists) at every destination in every replica, replicas in parallel.
    /// A file is reported as synced only where it reached every destination
    /// of every replica, and not when every one held it already.
    pub async fn sync_files(&mut self, items: Vec<FileItem>) -> FilesReport {
        let mut report = FilesReport::default();
        let replicas = match self.target.replicas().await {
            Ok(r) => r,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        if replicas.is_empty() {
            report.no_replica = true;
            return report;
        }
        for item in items {
            if item.dests.is_empty() {
                report.errors.push(format!("{}: the sync rules give it no destination", item.rel));
                continue;
            }
            let content = Content::read(&item.local);
            let this = &*self;
            let results =
                futures::future::join_all(replicas.iter().map(|r| this.put_file(r, &item.dests, &content))).await;
            let (mut requests, mut failed) = (0, false);
            for result in results {
                requests += result.requests;
                report.bytes_sent += result.bytes_sent;
                failed |= !result.errors.is_empty();
                report.errors.extend(result.errors);
            }
            for dest in &item.dests {
                let synced = match content.payload {
                    Some(_) => Synced::Copied { local: item.local.clone() },
                    None => Synced::Removed,
                };
                self.synced.insert(dest.clone(), synced);
            }
            if failed || requests == 0 {
                continue;
            }
            if content.payload.is_some() {
                report.copied.push(item.rel);
            } else {
                report.deleted.push(item.rel);
            }
        }
        report
    }

    /// Gives `replica` (new, or restarted) every file this session synced,
    /// as it is locally now.
    pub(super) async fn resend_files(&self, replica: &Replica) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for (dest, synced) in &self.synced {
            let content = match synced {
                Synced::Copied { local } => Content::read(local),
                Synced::Removed => Content { payload: None, sha256: String::new(), mode: 0 },
            };
            errors.extend(self.put_file(replica, std::slice::from_ref(dest), &content).await.errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// One file at each of `dests` in one replica, skipping destinations
    /// that hold it already.
    async fn put_file(&self, replica: &Replica, dests: &[String], content: &Content) -> PutFile {
        let mut out = PutFile::default();
        for dest in dests {
            if self.sessions.holds(replica, dest, &content.sha256) {
                continue;
            }
            out.requests += 1;
            let (argv, stdin) = match &content.payload {
                Some(p) => (wayin::put_argv(dest, content.mode), p.clone()),
                None => (wayin::rm_argv(dest), Bytes::new()),
            };
            let input = stdin.clone();
            let result =
                self.sessions.call(self.target, replica, &argv, Box::pin(async move { input })).await.and_then(|out| {
                    // The helper's own failure: where the hint for an unwritable destination applies.
                    let helper_failed = |e: wayin::WayInError| {
                        let e = e.to_string();
                        format!("{e}{}", unwritable_hint(&e))
                    };
                    if content.payload.is_some() {
                        match wayin::parse_put_status(&out).map_err(helper_failed)? {
                            wayin::PutStatus::Written { .. } => Ok(()),
                            other => Err(format!("unexpected helper answer {other:?}")),
                        }
                    } else {
                        wayin::parse_rm_status(&out).map(|_| ()).map_err(helper_failed)
                    }
                });
            match result {
                Ok(()) => {
                    out.bytes_sent += stdin.len() as u64;
                    self.sessions.wrote(replica, dest, &content.sha256);
                }
                Err(e) => out.errors.push(format!("{}: {dest}: {e}", replica.name)),
            }
        }
        out
    }
}

/// What putting one file into one replica did.
#[derive(Default)]
struct PutFile {
    requests: usize,
    bytes_sent: u64,
    errors: Vec<String>,
}

/// The fix for a destination the container's user cannot write: the usual
/// mistake on the default (nonroot) base.
fn unwritable_hint(error: &str) -> &'static str {
    if error.contains("permission denied") || error.contains("read-only file system") {
        " (the container's user cannot write there: point the rule's dest at a directory it owns, \
         e.g. under /home/nonroot or /tmp on the default base, or an emptyDir/volume)"
    } else {
        ""
    }
}
