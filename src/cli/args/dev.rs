//! `gohot dev`: its flags, grouped by what a developer reaches for first,
//! and their normalised form ([`DevCmd::normalise`]).

// These doc comments are clap's --help text, not Markdown: `<name>` and
// `[IP:]` are meant literally.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::Args;

use super::build::BuildFlags;
use super::kube::KubeFlags;
use super::publish::PublishFlags;
use crate::devloop::{ForService, PortForward, Probe};
use crate::hosting::docker::PortMapping;

/// `gohot dev`.
#[derive(Debug, Args)]
#[command(after_long_help = DEV_EXAMPLES)]
pub struct DevCmd {
    /// Go main packages to develop, one service each (./cmd/api ./cmd/worker).
    /// With -f and none given: every `ko://` image the manifests name.
    pub packages: Vec<String>,

    /// Publish a container port: [NAME=][IP:]HOST:CONTAINER (IP defaults to
    /// 127.0.0.1; NAME picks the service when there are several). Docker only.
    #[arg(short = 'p', long = "publish", value_name = "[NAME=][IP:]HOST:CONTAINER", help_heading = "Running")]
    pub ports: Vec<String>,
    /// Environment for the app (every service): KEY=VALUE.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", help_heading = "Running")]
    pub env: Vec<String>,
    /// How to know a new process serves, from the host: [NAME=]SPEC, SPEC an
    /// http:// URL, tcp:PORT, or `none` (only that it started). Default:
    /// HTTP on the app's port, asked inside the container by gohot's helper
    /// (the service's first -p's container port; on a cluster its
    /// --port-forward's pod port, else the container's first declared port).
    #[arg(long, value_name = "[NAME=]SPEC", help_heading = "Running")]
    pub probe: Vec<String>,
    /// One JSON event per line on stdout instead of status lines on stderr.
    #[arg(long, help_heading = "Running")]
    pub json: bool,
    /// Keep the containers (and the session's network) when gohot stops. Docker only.
    #[arg(long, help_heading = "Running")]
    pub keep: bool,
    /// The container's name (default gohot-<name>); with several services,
    /// the prefix of each container (NAME-<name>) and the network's name. A
    /// container of that name that gohot did not make, or that another
    /// running session owns, is refused, never replaced. Docker only.
    #[arg(long, help_heading = "Running")]
    pub name: Option<String>,
    /// Arguments for the app (after --), for a single service.
    #[arg(last = true)]
    pub args: Vec<String>,

    /// Kubernetes manifests to deploy (files or directories); a service's
    /// containers use `image: ko://<its import path>`.
    #[arg(short = 'f', long = "filename", help_heading = "Kubernetes")]
    pub files: Vec<PathBuf>,
    /// Read the directories given with -f recursively (as ko and kubectl).
    #[arg(short = 'R', long, help_heading = "Kubernetes")]
    pub recursive: bool,
    /// Forward [NAME=]LOCAL:POD_PORT from 127.0.0.1 to a pod of the service
    /// (POD_PORT is also the port probed inside each pod after a reload);
    /// repeatable. Cluster only.
    #[arg(long, value_name = "[NAME=]LOCAL:POD_PORT", help_heading = "Kubernetes")]
    pub port_forward: Vec<String>,
    /// Where the apps run (default: kube with -f, else docker).
    #[arg(long, value_enum, help_heading = "Kubernetes")]
    pub target: Option<TargetKind>,
    /// Cluster.
    #[command(flatten, next_help_heading = "Kubernetes")]
    pub kube: KubeFlags,

    /// Run the app under delve and keep your editor's debug session across
    /// reloads: gohot listens for editors (DAP: VS Code Go's remote attach,
    /// nvim-dap, Zed, Helix) and delve clients (GoLand, `dlv connect`) on
    /// 127.0.0.1:--debug-port, and after each reload attaches to the new
    /// process and sets the editor's breakpoints again. One service at a time.
    #[arg(long, help_heading = "Debugging")]
    pub debug: bool,
    /// The port editors attach to, on 127.0.0.1 (ko's and delve's 40000).
    #[arg(long, value_name = "PORT", default_value_t = crate::layout::DELVE_PORT, help_heading = "Debugging")]
    pub debug_port: u16,
    /// A delve binary for the container's platform, instead of the one gohot
    /// builds with your Go (once, cached).
    #[arg(long, value_name = "PATH", help_heading = "Debugging")]
    pub delve: Option<PathBuf>,
    /// Build delve from this copy of its source (a directory or .tar.gz with
    /// vendor/), offline.
    #[arg(long, value_name = "DIR|FILE.tar.gz", env = "GOHOT_DELVE_SRC", help_heading = "Debugging")]
    pub delve_src: Option<PathBuf>,

    /// Quiet time after a change before building, in milliseconds. 0: build
    /// on the first change, and let a newer one cancel and restart it.
    #[arg(long, default_value_t = 0, help_heading = "Reloading")]
    pub debounce_ms: u64,

    /// Build settings.
    #[command(flatten, next_help_heading = "Building")]
    pub build: BuildFlags,
    /// Destination for the dev images on a cluster (default on kind-*: kind.local).
    #[command(flatten, next_help_heading = "Publishing (cluster)")]
    pub publish: PublishFlags,
}

const DEV_EXAMPLES: &str = "\
Examples:
  gohot dev ./cmd/app -p 8080:8080                           one service on the local Docker engine
  gohot dev ./cmd/api ./cmd/worker -p api=8080:8080          two services, one network: the api reaches http://worker:PORT
  gohot dev -f manifests/ --port-forward api=8080:8080       every ko:// image of the manifests, on the cluster
  gohot dev ./cmd/api -f manifests/                          only the api hot-reloads; other ko:// images deploy as built";

/// Where `gohot dev` runs the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// The local Docker engine.
    Docker,
    /// A Kubernetes cluster.
    Kube,
}

/// `gohot dev`'s flags, checked and parsed once.
#[derive(Debug)]
pub struct DevSettings {
    /// Where the apps run.
    pub target: TargetKind,
    /// `-p`, per service.
    pub ports: Vec<ForService<PortMapping>>,
    /// `--probe`, per service.
    pub probes: Vec<ForService<Probe>>,
    /// `--port-forward`, per service.
    pub port_forwards: Vec<ForService<PortForward>>,
}

impl DevCmd {
    /// Checks the flags against each other and the target, and parses the
    /// per-service ones. A flag that would do nothing for the target is
    /// refused, naming the one that does.
    pub fn normalise(&self) -> Result<DevSettings, String> {
        let target = self.target.unwrap_or(if self.files.is_empty() { TargetKind::Docker } else { TargetKind::Kube });
        if target == TargetKind::Docker {
            if !self.files.is_empty() {
                return Err("-f manifests are for --target kube; the Docker target runs the packages itself".into());
            }
            if self.packages.is_empty() {
                return Err("name the Go main packages to develop, e.g. `gohot dev ./cmd/app -p 8080:8080` \
                            (on a cluster, `gohot dev -f manifests/` develops every ko:// image they name)"
                    .into());
            }
            if let Some(f) = self.port_forward.first() {
                return Err(format!(
                    "--port-forward {f} is for a cluster; on the Docker engine publish the port with -p {f}"
                ));
            }
        } else {
            if let Some(p) = self.ports.first() {
                return Err(format!(
                    "-p {p} publishes a port of a Docker container; on a cluster forward one with --port-forward {p}"
                ));
            }
            if self.keep {
                return Err("--keep is for the Docker engine: on a cluster the workloads always stay \
                            (remove them with gohot delete -f …)"
                    .into());
            }
            if self.name.is_some() {
                return Err("--name names a Docker container; on a cluster the manifests name the workloads".into());
            }
        }
        let several = self.packages.len() > 1 || (self.packages.is_empty() && target == TargetKind::Kube);
        if several && !self.args.is_empty() {
            return Err("arguments after -- go to one app; with several services, set them in the manifests \
                        or develop that service alone"
                .into());
        }
        if self.debug {
            if self.packages.is_empty() && target == TargetKind::Kube {
                return Err("--debug debugs one service: name its package, e.g. \
                            `gohot dev ./cmd/api -f manifests/ --debug` (the other ko:// images deploy as built)"
                    .into());
            }
            if several {
                return Err(format!(
                    "--debug debugs one service at a time, and this session develops {}: start one session \
                     with --debug for the service to debug (`gohot dev {} --debug`) and another for the rest",
                    self.packages.len(),
                    self.packages.first().map(String::as_str).unwrap_or("./cmd/app")
                ));
            }
        } else if let Some(d) = &self.delve {
            return Err(format!("--delve {} is for --debug: add --debug to run the app under it", d.display()));
        }
        Ok(DevSettings {
            target,
            ports: parse_all(&self.ports)?,
            probes: parse_all(&self.probe)?,
            port_forwards: parse_all(&self.port_forward)?,
        })
    }
}

fn parse_all<T: std::str::FromStr<Err = String>>(given: &[String]) -> Result<Vec<ForService<T>>, String> {
    given.iter().map(|g| ForService::parse(g)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn dev(args: &[&str]) -> Result<DevSettings, String> {
        let cli = super::super::Cli::try_parse_from([&["gohot", "dev"], args].concat()).map_err(|e| e.to_string())?;
        match cli.command {
            super::super::Command::Dev(d) => d.normalise(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn per_service_flags_parse_with_and_without_a_name() {
        let s = dev(&["./cmd/api", "./cmd/worker", "-p", "api=8080:80", "-p", "worker=0.0.0.0:9090:9090"]).unwrap();
        assert_eq!(s.target, TargetKind::Docker);
        assert_eq!(s.ports[0].app.as_deref(), Some("api"));
        assert_eq!(s.ports[0].value.container_port, 80);
        assert_eq!(s.ports[1].value.host_ip, "0.0.0.0");
        let s = dev(&["./cmd/app", "-p", "8080:8080", "--probe", "http://127.0.0.1:8080/healthz?x=1"]).unwrap();
        assert_eq!(s.ports[0].app, None);
        assert_eq!(s.probes[0].app, None, "a URL's query is not a service name");
        let s = dev(&["-f", "m/", "--port-forward", "api=8080:8080", "--probe", "worker=tcp:9090"]).unwrap();
        assert_eq!((s.target, s.port_forwards[0].value.local), (TargetKind::Kube, 8080));
        assert_eq!(s.probes[0].value, Probe::Tcp(([127, 0, 0, 1], 9090).into()));
    }

    #[test]
    fn debug_is_one_service_on_docker_and_its_flags_need_it() {
        let e = dev(&["./a", "./b", "--debug"]).unwrap_err();
        assert!(e.contains("one service at a time") && e.contains("gohot dev ./a --debug"), "{e}");
        let e = dev(&["-f", "m/", "--debug"]).unwrap_err();
        assert!(e.contains("gohot dev ./cmd/api -f manifests/ --debug"), "{e}");
        assert!(dev(&["./cmd/api", "-f", "m/", "--debug"]).is_ok());
        let e = dev(&["./a", "--delve", "/tmp/dlv"]).unwrap_err();
        assert!(e.contains("add --debug"), "{e}");
        assert!(dev(&["./a", "--debug", "--debug-port", "0", "--delve", "/tmp/dlv"]).is_ok());
    }

    #[test]
    fn a_flag_that_does_nothing_for_the_target_is_refused_naming_the_one_that_does() {
        let e = dev(&["./cmd/app", "--port-forward", "8080:8080"]).unwrap_err();
        assert!(e.contains("-p 8080:8080"), "{e}");
        let e = dev(&["-f", "m/", "-p", "8080:8080"]).unwrap_err();
        assert!(e.contains("--port-forward 8080:8080"), "{e}");
        let e = dev(&["-f", "m/", "--keep"]).unwrap_err();
        assert!(e.contains("gohot delete"), "{e}");
        let e = dev(&[]).unwrap_err();
        assert!(e.contains("./cmd/app") && e.contains("-f manifests/"), "{e}");
        let e = dev(&["./a", "./b", "--", "-v"]).unwrap_err();
        assert!(e.contains("several services"), "{e}");
        let e = dev(&["./a", "-p", "api=80"]).map(|_| ()).err();
        assert_eq!(e, None, "one service may still be named");
        let e = dev(&["./a", "--probe", "ftp://x"]).unwrap_err();
        assert!(e.contains("tcp:PORT"), "{e}");
    }
}
