//! Which services of a session a changed file concerns: pure, values in and
//! values out.
//!
//! - A build input concerns exactly the services whose `go list -deps` set
//!   holds it (the watcher asks each service's [`BuildInputs`]).
//! - A kodata file concerns the one service whose package it belongs to.
//! - A file a `gohot.yaml` manual rule covers goes to the services the rule
//!   names in `apps`; a rule that names none applies to the services whose
//!   package directory holds the file, else to every service. An `infer`
//!   file follows the same default.
//!
//! [`BuildInputs`]: crate::builder::inputs::BuildInputs

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sync::rules::CompiledRules;

/// One service as routing sees it.
#[derive(Clone, Debug)]
pub struct ServiceDirs {
    /// The app's name (the binary's).
    pub name: String,
    /// Its main package's directory.
    pub package_dir: PathBuf,
    /// Its module root (manual rules are relative to it).
    pub module_root: PathBuf,
}

/// Routes sync-rule files to services.
#[derive(Clone, Debug)]
pub struct Router {
    services: Vec<ServiceDirs>,
    rules: Option<Arc<CompiledRules>>,
}

/// A rule names a service the session does not have.
#[derive(Debug, thiserror::Error)]
#[error("gohot.yaml: sync.manual[{index}] names app `{app}` in `apps`, which this session does not develop (its services: {known}); name one of them, or leave `apps` out")]
pub struct UnknownApp {
    /// The rule's index.
    pub index: usize,
    /// The name.
    pub app: String,
    /// The session's services.
    pub known: String,
}

impl Router {
    /// A router for `services` (in session order) and the manual rules;
    /// refuses a rule naming an app that is not one of them.
    pub fn new(services: Vec<ServiceDirs>, rules: Option<Arc<CompiledRules>>) -> Result<Self, UnknownApp> {
        if let Some(r) = &rules {
            for (index, app) in r.named_apps() {
                if !services.iter().any(|s| s.name == app) {
                    let known = services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(UnknownApp { index, app: app.to_string(), known });
                }
            }
        }
        Ok(Router { services, rules })
    }

    /// The services.
    pub fn services(&self) -> &[ServiceDirs] {
        &self.services
    }

    /// The services whose package directory holds `path`, else all: whom a
    /// file that names no service concerns.
    pub fn owners(&self, path: &Path) -> Vec<usize> {
        let mut owners: Vec<usize> =
            (0..self.services.len()).filter(|&i| path.starts_with(&self.services[i].package_dir)).collect();
        // A package inside another's directory (cmd/api, cmd/api/v2): the deepest owns it.
        if let Some(deepest) = owners.iter().map(|&i| self.services[i].package_dir.components().count()).max() {
            owners.retain(|&i| self.services[i].package_dir.components().count() == deepest);
        }
        if owners.is_empty() {
            (0..self.services.len()).collect()
        } else {
            owners
        }
    }

    /// Where `path` goes in `service`'s containers by the manual rules
    /// (empty: nowhere).
    pub fn rule_destinations(&self, service: usize, path: &Path) -> Vec<String> {
        let (Some(rules), Some(s)) = (&self.rules, self.services.get(service)) else { return Vec::new() };
        let Some(rel) = rel_str(path, &s.module_root) else { return Vec::new() };
        let owners = self.owners(path);
        rules
            .destinations_where(&rel, "/", |apps| {
                if apps.is_empty() {
                    owners.contains(&service)
                } else {
                    apps.contains(&s.name)
                }
            })
            .unwrap_or_default()
    }

    /// Whether any manual rules are configured.
    pub fn has_rules(&self) -> bool {
        self.rules.is_some()
    }
}

/// `path` relative to `base`, `/`-separated (None: not below it, or not UTF-8).
pub fn rel_str(path: &Path, base: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::rules::ManualRule;

    fn services() -> Vec<ServiceDirs> {
        ["api", "worker", "gateway"]
            .iter()
            .map(|n| ServiceDirs {
                name: n.to_string(),
                package_dir: format!("/m/cmd/{n}").into(),
                module_root: "/m".into(),
            })
            .collect()
    }

    fn rule(src: &str, dest: &str, apps: &[&str]) -> ManualRule {
        ManualRule {
            src: src.into(),
            dest: dest.into(),
            strip: None,
            apps: apps.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn a_file_belongs_to_the_package_it_sits_in_else_to_all() {
        let r = Router::new(services(), None).unwrap();
        assert_eq!(r.owners(Path::new("/m/cmd/worker/static/a.css")), [1]);
        assert_eq!(r.owners(Path::new("/m/static/a.css")), [0, 1, 2]);
        let mut nested = services();
        nested.push(ServiceDirs { name: "v2".into(), package_dir: "/m/cmd/api/v2".into(), module_root: "/m".into() });
        let r = Router::new(nested, None).unwrap();
        assert_eq!(r.owners(Path::new("/m/cmd/api/v2/x.html")), [3], "the deepest package owns it");
        assert_eq!(r.owners(Path::new("/m/cmd/api/x.html")), [0]);
    }

    #[test]
    fn rules_go_to_the_apps_they_name_or_to_the_owners() {
        let rules = CompiledRules::new(vec![
            rule("static/**", "/home/nonroot/www", &["api", "gateway"]),
            rule("cmd/worker/conf/*", "/home/nonroot/conf", &[]),
            rule("shared/*", "/tmp/shared", &[]),
        ])
        .unwrap();
        let r = Router::new(services(), Some(Arc::new(rules))).unwrap();
        let d = |s: usize, p: &str| r.rule_destinations(s, Path::new(p));
        assert_eq!(d(0, "/m/static/a.css"), ["/home/nonroot/www/static/a.css"]);
        assert_eq!(d(1, "/m/static/a.css"), Vec::<String>::new(), "the rule names api and gateway only");
        assert_eq!(d(2, "/m/static/a.css"), ["/home/nonroot/www/static/a.css"]);
        assert_eq!(d(1, "/m/cmd/worker/conf/w.conf"), ["/home/nonroot/conf/cmd/worker/conf/w.conf"]);
        assert_eq!(d(0, "/m/cmd/worker/conf/w.conf"), Vec::<String>::new(), "worker's package holds it");
        for s in 0..3 {
            assert_eq!(d(s, "/m/shared/x"), ["/tmp/shared/shared/x"], "no package holds it: every service");
        }
    }

    #[test]
    fn a_rule_naming_an_unknown_app_is_refused() {
        let rules = CompiledRules::new(vec![rule("a/*", "/tmp", &["api"]), rule("b/*", "/tmp", &["apy"])]).unwrap();
        let e = Router::new(services(), Some(Arc::new(rules))).unwrap_err().to_string();
        assert!(e.contains("sync.manual[1]") && e.contains("`apy`") && e.contains("api, worker, gateway"), "{e}");
    }
}
