//! `TARGET:REMOTE_DIR`: where to read from.

use std::fmt;
use std::str::FromStr;

use super::SyncbackError;

/// What runs the files to bring back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    /// A Docker container, by name or id (`docker:NAME` or plain `NAME`).
    Docker(String),
    /// A Kubernetes pod (`pod/NAME`).
    Pod(String),
    /// A Kubernetes deployment (`deploy/NAME`): one of its ready pods.
    Deployment(String),
}

impl TargetRef {
    /// The pod or deployment it names on a cluster (None for a container).
    pub fn named(&self) -> Option<crate::hosting::kube::Named> {
        use crate::hosting::kube::Named;
        match self {
            TargetRef::Docker(_) => None,
            TargetRef::Pod(n) => Some(Named::Pod(n.clone())),
            TargetRef::Deployment(n) => Some(Named::Deployment(n.clone())),
        }
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRef::Docker(n) => write!(f, "container {n}"),
            TargetRef::Pod(n) => write!(f, "pod/{n}"),
            TargetRef::Deployment(n) => write!(f, "deploy/{n}"),
        }
    }
}

/// A parsed `TARGET:REMOTE_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// Where.
    pub target: TargetRef,
    /// The directory in the container (absolute).
    pub remote_dir: String,
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !n.starts_with(['.', '-'])
}

impl FromStr for SourceSpec {
    type Err = SyncbackError;
    fn from_str(s: &str) -> Result<Self, SyncbackError> {
        let bad = |reason: &str| SyncbackError::BadSpec { spec: s.to_string(), reason: reason.to_string() };
        let rest = s.strip_prefix("docker:");
        let (target, dir) = rest
            .unwrap_or(s)
            .split_once(':')
            .ok_or_else(|| bad("want TARGET:REMOTE_DIR, e.g. my-container:/app/out or deploy/web:/app/out"))?;
        if !dir.starts_with('/') {
            return Err(bad("REMOTE_DIR must be an absolute path in the container"));
        }
        if dir.contains('\0') {
            return Err(bad("REMOTE_DIR contains NUL"));
        }
        let kube = |kind: &str, n: &str| {
            if name_ok(n) {
                Ok(n.to_string())
            } else {
                Err(bad(&format!("{kind} name {n:?} is not a valid Kubernetes name")))
            }
        };
        let target = match target.split_once('/') {
            Some(("pod" | "pods" | "po", n)) if rest.is_none() => TargetRef::Pod(kube("pod", n)?),
            Some(("deploy" | "deployment" | "deployments", n)) if rest.is_none() => {
                TargetRef::Deployment(kube("deployment", n)?)
            }
            Some(_) => return Err(bad("TARGET is a container name, pod/NAME or deploy/NAME")),
            None if name_ok(target) => TargetRef::Docker(target.to_string()),
            None => return Err(bad("container name may only have letters, digits, `_`, `.` and `-`")),
        };
        Ok(SourceSpec { target, remote_dir: dir.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let p = |s: &str| s.parse::<SourceSpec>();
        assert_eq!(p("web:/app/out").expect("plain").target, TargetRef::Docker("web".into()));
        assert_eq!(p("docker:web:/a").expect("docker:").target, TargetRef::Docker("web".into()));
        assert_eq!(p("pod/web-1:/a").expect("pod").target, TargetRef::Pod("web-1".into()));
        let d = p("deploy/web:/app/x y").expect("deploy");
        assert_eq!((d.target, d.remote_dir.as_str()), (TargetRef::Deployment("web".into()), "/app/x y"));
        for bad in ["web", "web:rel/dir", ":/a", "docker:pod/x:/a", "svc/x:/a", "we b:/a", "pod/:/a", "-x:/a"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
