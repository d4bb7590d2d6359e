//! `KO_DOCKER_REPO=kind.local` against the real Docker engine, with fake KinD
//! nodes: containers labelled and named as KinD names its nodes, running a
//! Go stand-in for containerd's `ctr` (tests/fixtures/fake-ctr) that checks
//! and records the archive it is given. What is real: node discovery through
//! the engine, the Docker exec with the archive on stdin, the archive itself,
//! the `ctr` command line. What is not: containerd's import (no KinD cluster
//! can run here).

use std::process::Command;

use crate::util::{go_binary, ok, run, Container, DockerImage, Sandbox};

/// Builds the fake node image (FROM scratch + the static stand-in).
fn fake_node_image(sb: &Sandbox) -> DockerImage {
    let dir = sb.path().join("fake-node");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-ctr");
    std::fs::copy(src.join("main.go"), dir.join("main.go")).expect("copy main.go");
    std::fs::write(dir.join("go.mod"), "module example.com/fakectr\n\ngo 1.19\n").expect("go.mod");
    ok(Command::new(go_binary())
        .current_dir(&dir)
        .env("CGO_ENABLED", "0")
        .env("GOOS", "linux")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", sb.path().join("gocache"))
        .args(["build", "-trimpath", "-o", "ctr", "."]));
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY ctr /usr/local/bin/ctr\nENV PATH=/usr/local/bin\nENTRYPOINT [\"/usr/local/bin/ctr\", \"sleep\"]\n",
    )
    .expect("Dockerfile");
    let tag = format!("gohot-test-fake-kind-node:{}", std::process::id());
    ok(Command::new("docker").args(["build", "-q", "-t", &tag]).arg(&dir));
    DockerImage(tag)
}

fn start_node(image: &str, name: &str, cluster: &str) -> Container {
    let _ = Command::new("docker").args(["rm", "-f", name]).output();
    ok(Command::new("docker")
        .args(["run", "-d", "--name", name, "--label"])
        .arg(format!("io.x-k8s.kind.cluster={cluster}"))
        .arg(image));
    Container(name.to_string())
}

#[test]
fn kind_local_loads_into_every_node() {
    let sb = Sandbox::new();
    let image = fake_node_image(&sb);
    let cluster = format!("gohot-t{}", std::process::id());
    let cp = start_node(&image.0, &format!("{cluster}-control-plane"), &cluster);
    let worker = start_node(&image.0, &format!("{cluster}-worker"), &cluster);
    // A node of another cluster must be left alone.
    let other = start_node(&image.0, &format!("{cluster}x-worker"), &format!("{cluster}x"));

    let app = sb.copy_example("hello", "hello");
    let reference = ok(sb
        .gohot(&app)
        .args(["build", "-B", "."])
        .env("KO_DOCKER_REPO", "kind.local")
        .env("KIND_CLUSTER_NAME", &cluster));
    let reference = reference.trim();
    let hex = reference.strip_prefix("kind.local/hello:").expect("kind.local/hello:<digest hex>");
    assert_eq!(hex.len(), 64, "{reference}");

    for node in [&cp, &worker] {
        let listed = ok(Command::new("docker").args(["exec", &node.0, "/usr/local/bin/ctr", "images", "ls"]));
        assert!(listed.starts_with(&format!("{reference} ")), "{} imported: {listed:?}", node.0);
    }
    let listed = ok(Command::new("docker").args(["exec", &other.0, "/usr/local/bin/ctr", "images", "ls"]));
    assert!(listed.is_empty(), "another cluster's node got an image: {listed}");
}

#[test]
fn kind_local_without_a_cluster_says_how_to_make_one_or_use_a_registry() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let cluster = format!("gohot-none-{}", std::process::id());
    let out = run(sb
        .gohot(&app)
        .args(["build", "-B", "."])
        .env("KO_DOCKER_REPO", "kind.local")
        .env("KIND_CLUSTER_NAME", &cluster));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("no running KinD cluster \"{cluster}\"")), "{stderr}");
    assert!(stderr.contains(&format!("kind create cluster --name {cluster}")), "{stderr}");
    // A kind-* context whose cluster is not KinD (kind.local chosen because KO_DOCKER_REPO was unset).
    assert!(stderr.contains("for a cluster that pulls from a registry, set KO_DOCKER_REPO"), "{stderr}");
}

/// `KO_DOCKER_REPO=minikube.local`: gohot runs `minikube -p PROFILE image
/// load ARCHIVE`. `minikube` here is a stand-in script on PATH that records
/// its arguments and keeps the archive (no Minikube cluster can run here);
/// the archive is checked with the real `tar`.
#[test]
fn minikube_local_runs_minikube_image_load() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let bin = sb.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = sb.path().join("minikube.log");
    let script = bin.join("minikube");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" > {0}\ncp \"$5\" {0}.tar\n", log.display()))
        .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let app = sb.copy_example("hello", "hello");
    let reference = ok(sb
        .gohot(&app)
        .args(["build", "-B", "."])
        .env("KO_DOCKER_REPO", "minikube.local")
        .env("MINIKUBE_PROFILE", "dev")
        .env("PATH", &path));
    let reference = reference.trim();
    assert!(reference.starts_with("minikube.local/hello:"), "{reference}");
    let args = std::fs::read_to_string(&log).expect("minikube was run");
    assert!(args.starts_with("-p dev image load /"), "{args}");
    assert!(args.trim_end().ends_with(".tar"), "{args}");
    let listing = ok(Command::new("tar").arg("tf").arg(sb.path().join("minikube.log.tar")));
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
}
