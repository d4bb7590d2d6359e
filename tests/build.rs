//! `gohot build` against the real Go toolchain, registry and Docker engine.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn digest_of(reference: &str) -> &str {
    reference.rsplit_once('@').map(|x| x.1).expect("reference with digest")
}

/// Build examples/hello on a busybox base pulled from the loopback registry,
/// push it, read it back with skopeo, and check ko's layout and determinism:
/// same digest twice, and from a second checkout directory.
#[test]
fn build_pushes_a_ko_layout_image_with_a_stable_digest() {
    let reg = Registry::start();
    let base = push_busybox_base(&reg, "base/busybox");
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "checkout-a/hello");
    let repo = format!("{}/test", reg.host());

    let build = |dir: &std::path::Path| {
        let out = run(sb.gohot(dir).args(["build", "--base", &base, "."]).env("KO_DOCKER_REPO", &repo));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "build failed: {stderr}");
        (String::from_utf8(out.stdout).expect("utf8"), stderr)
    };
    let (stdout, _) = build(&app);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must hold only the reference: {stdout:?}");
    let reference = lines[0];
    assert!(reference.starts_with(&format!("{repo}/hello-")), "{reference}");
    assert!(digest_of(reference).starts_with("sha256:"));

    // Read it back with an independent tool.
    let manifest = skopeo_inspect(reference, "--raw");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3, "base + kodata + binary: {manifest}");
    let base_manifest = skopeo_inspect(&base, "--raw");
    assert_eq!(layers[0]["digest"], base_manifest["layers"][0]["digest"], "base layer reused as is");
    let config = skopeo_inspect(reference, "--config");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));
    let env: Vec<&str> = config["config"]["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"PATH=/bin:/ko-app"), "{env:?}");
    assert!(env.contains(&"KO_DATA_PATH=/var/run/ko"), "{env:?}");
    assert_eq!(config["config"]["User"], "65532", "base config kept");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().expect("diff_ids").len(), 3);
    assert_eq!(config["history"].as_array().expect("history").len(), 3);

    // Same sources → same digest, and nothing uploaded again.
    let (again, stderr) = build(&app);
    assert_eq!(again, stdout);
    assert!(stderr.contains("0 blob(s) uploaded"), "{stderr}");

    // A second checkout in another directory gives the same digest.
    let other = sb.copy_example("hello", "elsewhere/b/hello");
    let (from_other, _) = build(&other);
    assert_eq!(from_other, stdout, "digest depends on the checkout directory");
}

/// The base is pulled once: with the registry gone, a rebuild still works
/// from the on-disk cache and gives the same image.
#[test]
fn base_image_is_cached_on_disk() {
    let reg = Registry::start();
    let base = push_busybox_base(&reg, "base/cached");
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let layout = sb.path().join("layout");
    let build = || {
        ok(sb.gohot(&app).args(["build", "--push=false", "--base", &base, "--oci-layout-path"]).arg(&layout).arg("."))
    };
    let first = build();
    drop(reg);
    assert!(http_get(base.split(['/', ':']).nth(1).and_then(|p| p.parse().ok()).unwrap_or(1), "/v2/").is_none());
    let second = build();
    assert_eq!(first, second);
}

/// `ko.local`: loaded into the Docker engine, run, answering HTTP.
#[test]
fn ko_local_image_runs_in_docker_and_serves() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = ok(sb.gohot(&app).args(["build", "-B", "."]).env("KO_DOCKER_REPO", "ko.local/gohot-test-run"));
    let reference = out.trim().to_string();
    assert!(reference.starts_with("ko.local/gohot-test-run/hello:"), "{reference}");
    let _image = DockerImage(reference.clone());
    let name = format!("gohot-test-run-{}", std::process::id());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    ok(Command::new("docker").args(["run", "-d", "--name", &name, "-p", "127.0.0.1::8080", &reference]));
    let _container = Container(name.clone());
    let port_line = ok(Command::new("docker").args(["port", &name, "8080/tcp"]));
    let port: u16 =
        port_line.lines().next().and_then(|l| l.rsplit(':').next()).and_then(|p| p.trim().parse().ok()).expect("port");
    let (status, body) = wait_for("the app to answer", Duration::from_secs(30), || http_get(port, "/"));
    assert_eq!(status, 200);
    assert_eq!(body.trim(), "Hello from gohot!");
    let (status, body) = http_get(port, "/kodata/message.txt").expect("kodata");
    assert_eq!(status, 200);
    assert!(body.contains("ships in the image"), "{body}");
}

/// Two platforms → an image index with one manifest each.
#[test]
fn multi_platform_build_publishes_an_index() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let repo = format!("{}/multi", reg.host());
    let out =
        ok(sb.gohot(&app).args(["build", "--platform", "linux/amd64,linux/arm64", "."]).env("KO_DOCKER_REPO", &repo));
    let reference = out.trim();
    let index = skopeo_inspect(reference, "--raw");
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    // Each platform's binary exists in ko's cache layout.
    for arch in ["amd64", "arm64"] {
        assert!(sb.kocache().join(format!("bin/example.com/hello/linux/{arch}/out")).is_file());
    }
}

/// OCI layout and tarball outputs satisfy umoci and skopeo.
#[test]
fn oci_layout_and_tarball_are_readable_by_umoci_and_skopeo() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let layout = sb.path().join("layout");
    let tarball = sb.path().join("hello.tar");
    ok(sb
        .gohot(&app)
        .args(["build", "-B", "--push=false", "--oci-layout-path"])
        .arg(&layout)
        .arg("--tarball")
        .arg(&tarball)
        .arg("."));
    let bundle = sb.path().join("bundle");
    ok(Command::new(require("umoci"))
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:hello", layout.display()))
        .arg(&bundle));
    let bin = bundle.join("rootfs/ko-app/hello");
    let meta = std::fs::metadata(&bin).expect("binary unpacked");
    assert!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0);
    assert!(bundle.join("rootfs/var/run/ko/message.txt").is_file());
    let inspected: serde_json::Value = serde_json::from_str(&ok(Command::new(require("skopeo"))
        .args(["inspect", "--config"])
        .arg(format!("docker-archive:{}", tarball.display()))))
    .expect("json");
    assert_eq!(inspected["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));
}

/// `.ko.yaml` flags, ldflags and env reach `go build`.
#[test]
fn ko_yaml_build_settings_are_honoured() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    // Not Go's default (v1 and v8.0), so the build info shows whether the
    // env reached the compiler.
    let (level_var, level) = if host_goarch() == "arm64" { ("GOARM64", "v8.1") } else { ("GOAMD64", "v2") };
    std::fs::write(
        app.join(".ko.yaml"),
        format!(
            "defaultLdflags: ['-X main.greeting={{{{.Env.GREETING}}}}']\nbuilds:\n- main: .\n  env: [{level_var}={level}]\n  flags: [-tags, gohottest]\n"
        ),
    )
    .expect("ko.yaml");
    std::fs::write(
        app.join("tagged.go"),
        "//go:build gohottest\n\npackage main\n\nfunc init() { greeting += \" tag-seen-by-go\" }\n",
    )
    .expect("tagged");
    ok(sb
        .gohot(&app)
        .args(["build", "--push=false", "--tarball", "out.tar", "."])
        .env("GREETING", "greeting-from-ko-yaml"));
    let bin_path = sb.kocache().join(format!("bin/example.com/hello/linux/{}/out", host_goarch()));
    let bin = std::fs::read(&bin_path).expect("binary");
    let has = |needle: &str| bin.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("greeting-from-ko-yaml"), "ldflags from .ko.yaml not applied");
    assert!(has("tag-seen-by-go"), "flags from builds[] not applied");
    // The build info Go records in the binary: `build\tGOAMD64=v2`.
    let info = ok(Command::new(go_binary()).args(["version", "-m"]).arg(&bin_path));
    let setting = format!("build\t{level_var}={level}");
    assert!(info.lines().any(|l| l.trim() == setting), "env from builds[] not applied ({setting} missing):\n{info}");
}

pub fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// kodata symlinks as ko treats them (ko#1619, ko#1699): a link into the
/// module ships the file; one leading out of it (a file such as
/// `~/.aws/credentials`, a directory such as `/etc`) is refused naming the
/// link and its target, and so is a dangling one, with nothing written;
/// KO_DATA_PATH_ALLOWED_ROOT widens the bounds.
#[test]
fn kodata_symlinks_stay_within_the_module() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let outside = sb.path().join("home/.aws");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("credentials"), "aws_secret_access_key=SECRET\n").expect("secret");
    std::fs::write(app.join("LICENSE"), "the module's license\n").expect("license");
    let kodata = app.join("kodata");
    std::os::unix::fs::symlink("../LICENSE", kodata.join("LICENSE")).expect("link");
    let layout = sb.path().join("layout");
    let build = |extra: &[(&str, &std::path::Path)]| {
        let mut cmd = sb.gohot(&app);
        cmd.args(["build", "-B", "--push=false", "--oci-layout-path"]).arg(&layout).arg(".");
        cmd.env_remove("KO_DATA_PATH_ALLOWED_ROOT");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let unpacked = |name: &str| {
        let bundle = sb.path().join(name);
        ok(Command::new(require("umoci"))
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:hello", layout.display()))
            .arg(&bundle));
        bundle.join("rootfs/var/run/ko")
    };

    let out = build(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ko = unpacked("b1");
    assert_eq!(std::fs::read_to_string(ko.join("LICENSE")).expect("LICENSE shipped"), "the module's license\n");
    std::fs::remove_dir_all(&layout).expect("rm layout");

    let leak = kodata.join("leak.txt");
    let refused: [(&str, std::path::PathBuf, &str); 3] = [
        ("leak.txt", outside.join("credentials"), "outside the module"),
        ("etc", "/etc".into(), "outside the module"),
        ("gone", sb.path().join("nowhere"), "dangling"),
    ];
    for (name, target, why) in refused {
        let at = kodata.join(name);
        std::os::unix::fs::symlink(&target, &at).expect("link");
        let out = build(&[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&at.display().to_string()), "names the link: {stderr}");
        assert!(stderr.contains(&target.display().to_string()) && stderr.contains(why), "{stderr}");
        assert!(!layout.exists(), "{name}: nothing is written");
        std::fs::remove_file(&at).expect("rm link");
    }

    std::os::unix::fs::symlink(outside.join("credentials"), &leak).expect("link");
    let out = build(&[("KO_DATA_PATH_ALLOWED_ROOT", &sb.path().join("home"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(unpacked("b2").join("leak.txt")).expect("allowed").contains("SECRET"));
}

/// Two services' dev builds put one watchexec on disk: each kodata/watchexec
/// is a hard link to the one in gohot's cache (the same filesystem here),
/// not an 18 MB copy per package (issue 21).
#[test]
fn dev_builds_of_two_services_share_one_watchexec_inode() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::new();
    let shop = sb.copy_example("shop", "shop");
    let tar = sb.path().join("out.tar");
    let build = || {
        ok(sb
            .gohot(&shop)
            .args(["build", "--dev", "--push=false", "--tarball"])
            .arg(&tar)
            .arg("--watchexec")
            .arg(crate::dev::watchexec())
            .args(["./cmd/api", "./cmd/worker"]))
    };
    build();
    let inode =
        |cmd: &str| std::fs::metadata(shop.join("cmd").join(cmd).join("kodata/watchexec")).expect("watchexec").ino();
    assert_eq!(inode("api"), inode("worker"), "two copies of watchexec");
    // Its kodata record still vouches for it: a second build copies nothing and keeps the link.
    build();
    assert_eq!(inode("api"), inode("worker"), "two copies of watchexec after a second build");
}
