//! Which containers gohot may replace or remove: only its own.
//!
//! Every container `gohot dev` makes carries two labels: [`APP_LABEL`] (the
//! app it runs, the package's import path) and [`SESSION_LABEL`] (the gohot
//! process that owns it: host, pid and the process's start time, so a
//! reused pid is not mistaken for the owner). Before it creates a container
//! under a name, gohot looks at whatever holds that name ([`claim`], pure):
//!
//! - nothing: create it;
//! - this very session's container (a re-creation): replace it;
//! - gohot's container for the same app, whose session is gone (killed,
//!   or `--keep`): replace it;
//! - gohot's container for the same app whose session still runs (a second
//!   `gohot dev` of the same package): refused, naming that session and how
//!   to stop it, or to pick another `--name`;
//! - gohot's container for another app, or a container gohot did not make:
//!   refused, naming it. gohot never removes what it did not make.
//!
//! On the way out, gohot removes a container only while it still carries
//! this session's label.

use std::collections::HashMap;

/// The label naming the app a container runs (the package's import path).
pub const APP_LABEL: &str = "dev.gohot.app";
/// The label naming the gohot process that owns a container.
pub const SESSION_LABEL: &str = "dev.gohot.session";

/// A gohot process, as the [`SESSION_LABEL`] writes it: `host/pid/start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionId {
    /// The machine's host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The process's start time (Linux: clock ticks after boot, field 22 of
    /// `/proc/PID/stat`), empty where unknown.
    pub start: String,
}

impl SessionId {
    /// This process.
    pub fn this_process() -> Self {
        let pid = std::process::id();
        SessionId { host: host_name(), pid, start: process_start(pid).unwrap_or_default() }
    }

    /// The label's value.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.host, self.pid, self.start)
    }

    /// Reads a label's value.
    pub fn parse(label: &str) -> Option<Self> {
        let (rest, start) = label.rsplit_once('/')?;
        let (host, pid) = rest.rsplit_once('/')?;
        Some(SessionId { host: host.into(), pid: pid.parse().ok()?, start: start.into() })
    }

    /// Whether this session's process still runs: `Some` on this machine
    /// (the same host name), `None` when it cannot be known (another host,
    /// or a system without `/proc`).
    pub fn is_alive(&self) -> Option<bool> {
        if self.host != host_name() {
            return None;
        }
        match process_start(self.pid) {
            Some(start) => Some(self.start.is_empty() || start == self.start),
            None if std::path::Path::new("/proc/self/stat").exists() => Some(false),
            None => None,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Field 22 of `/proc/PID/stat` (after the command, which may hold spaces).
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_string)
}

/// What may be done with a container name.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nothing holds it: create the container.
    Free,
    /// gohot's own container for this app, nobody else's now: replace it.
    Replace,
    /// Someone else's: leave it alone. Says whose, and what to do.
    Refused(String),
}

/// The labels gohot puts on a container it makes for `app` in session `me`.
pub fn labels(app: &str, me: &SessionId) -> HashMap<String, String> {
    [(APP_LABEL.to_string(), app.to_string()), (SESSION_LABEL.to_string(), me.label())].into()
}

/// Decides what to do with the container `name`, given what holds the name
/// now (`found`: its labels and image; None when nothing does), for `app`
/// in session `me`; `alive` says whether another session still runs
/// ([`SessionId::is_alive`]). Pure.
pub fn claim(
    name: &str,
    found: Option<(&HashMap<String, String>, &str)>,
    app: &str,
    me: &SessionId,
    alive: impl Fn(&SessionId) -> Option<bool>,
) -> Claim {
    let Some((labels, image)) = found else { return Claim::Free };
    let Some(owner_app) = labels.get(APP_LABEL) else {
        return Claim::Refused(format!(
            "a container named {name} (image {image}) exists and gohot did not make it; gohot never removes it. \
             Give this app another container name with --name, or remove that container yourself \
             (`docker rm -f {name}`)"
        ));
    };
    if owner_app != app {
        return Claim::Refused(format!(
            "container {name} runs another gohot app ({owner_app}). Give this one another container name with --name"
        ));
    }
    // Made by a gohot too old to say its session: nobody can own it now.
    let Some(owner) = labels.get(SESSION_LABEL).and_then(|l| SessionId::parse(l)) else {
        return Claim::Replace;
    };
    if &owner == me {
        return Claim::Replace;
    }
    match alive(&owner) {
        Some(false) => Claim::Replace,
        Some(true) => Claim::Refused(format!(
            "another gohot dev session (pid {pid}) is running {app} in container {name}. Stop it first (Ctrl-C in \
             its terminal, or `kill {pid}`), or run this one beside it under another name (--name)",
            pid = owner.pid
        )),
        None => Claim::Refused(format!(
            "a gohot dev session on host {host} (pid {pid}) made container {name} for {app}, and whether it still \
             runs cannot be seen from here. Stop it there, or run this one under another name (--name); if that \
             session is gone, remove the container (`docker rm -f {name}`)",
            host = owner.host,
            pid = owner.pid
        )),
    }
}

/// Whether a container with these labels may be removed by session `me`
/// on its way out: only while it is still this session's.
pub fn may_remove(labels: &HashMap<String, String>, me: &SessionId) -> bool {
    labels.get(SESSION_LABEL).and_then(|l| SessionId::parse(l)).is_some_and(|owner| &owner == me)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(host: &str, pid: u32) -> SessionId {
        SessionId { host: host.into(), pid, start: "777".into() }
    }

    #[test]
    fn session_labels_round_trip_and_this_process_is_alive() {
        let me = SessionId::this_process();
        assert_eq!(SessionId::parse(&me.label()), Some(me.clone()));
        assert_eq!(
            SessionId::parse("my/host/12/34"),
            Some(SessionId { host: "my/host".into(), pid: 12, start: "34".into() })
        );
        assert_eq!(SessionId::parse("nonsense"), None);
        if std::path::Path::new("/proc/self/stat").exists() {
            assert_eq!(me.is_alive(), Some(true));
            // The same pid started at another time is another process.
            assert_eq!(SessionId { start: "1".into(), ..me.clone() }.is_alive(), Some(false));
            assert_eq!(SessionId { pid: u32::MAX, ..me.clone() }.is_alive(), Some(false));
        }
        assert_eq!(SessionId { host: "elsewhere.invalid".into(), ..me }.is_alive(), None);
    }

    #[test]
    fn only_gohots_own_containers_of_the_same_app_are_replaced() {
        let me = session("h", 10);
        let app = "example.com/hello";
        let decide = |labels: &HashMap<String, String>, alive: Option<bool>| {
            claim("web", Some((labels, "nginx:1")), app, &me, |_| alive)
        };
        assert_eq!(claim("web", None, app, &me, |_| None), Claim::Free);

        let foreign = HashMap::from([("maintainer".to_string(), "someone".to_string())]);
        let Claim::Refused(why) = decide(&foreign, Some(false)) else { panic!("a foreign container was claimed") };
        assert!(why.contains("web") && why.contains("nginx:1") && why.contains("--name"), "{why}");

        let other_app = labels("example.com/shop", &session("h", 11));
        let Claim::Refused(why) = decide(&other_app, Some(false)) else { panic!("another app's container") };
        assert!(why.contains("example.com/shop") && why.contains("--name"), "{why}");

        assert_eq!(decide(&labels(app, &me), Some(true)), Claim::Replace, "its own");
        assert_eq!(decide(&labels(app, &session("h", 11)), Some(false)), Claim::Replace, "a stale session's");
        let old = HashMap::from([(APP_LABEL.to_string(), app.to_string())]);
        assert_eq!(decide(&old, Some(true)), Claim::Replace, "made before sessions were labelled");

        let Claim::Refused(why) = decide(&labels(app, &session("h", 11)), Some(true)) else { panic!("a live session") };
        assert!(why.contains("pid 11") && why.contains("kill 11") && why.contains("--name"), "{why}");
        let Claim::Refused(why) = decide(&labels(app, &session("other", 11)), None) else { panic!("unknown") };
        assert!(why.contains("host other") && why.contains("docker rm -f web"), "{why}");
    }

    #[test]
    fn only_this_sessions_container_is_removed() {
        let me = session("h", 10);
        assert!(may_remove(&labels("a", &me), &me));
        assert!(!may_remove(&labels("a", &session("h", 11)), &me));
        assert!(!may_remove(&HashMap::new(), &me));
    }
}
