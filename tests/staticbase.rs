//! The built-in `static` base, gohot's default, with the real Go toolchain,
//! Docker engine, skopeo and umoci: a Go program built on it finds the CA
//! roots, time zones, its `nonroot` user and a writable `/tmp` in a real
//! container (and finds none of them on `scratch`); the image is the same
//! from any checkout; the base is chosen as ko chooses it.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::util::*;

/// Copies the probe program (tests/fixtures/baseprobe) to `rel` in the
/// sandbox, with ISRG Root X1 in its kodata for a chain verification.
fn probe_app(sb: &Sandbox, rel: &str) -> PathBuf {
    let dst = sb.path().join(rel);
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/baseprobe"), &dst);
    let isrg = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .find(|c| c.as_ref().windows(12).any(|w| w == b"ISRG Root X1"))
        .expect("ISRG Root X1 among the roots");
    let b64 = base64::engine::general_purpose::STANDARD.encode(isrg.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).expect("ascii")).collect();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
    std::fs::create_dir_all(dst.join("kodata")).expect("kodata");
    std::fs::write(dst.join("kodata/isrg-root-x1.pem"), pem).expect("pem");
    dst
}

/// An image in the local engine, untagged (`:<id>` and `:latest`) on drop.
struct LocalImage {
    reference: String,
    _tags: [DockerImage; 2],
}

/// Builds `app` into the local Docker engine; extra args go before the package.
fn build_local(sb: &Sandbox, app: &Path, repo: &str, extra: &[&str]) -> LocalImage {
    let out = ok(sb.gohot(app).args(["build", "-B"]).args(extra).arg(".").env("KO_DOCKER_REPO", repo));
    let reference = out.trim().to_string();
    let tags = [DockerImage(reference.clone()), DockerImage(format!("{repo}/baseprobe:latest"))];
    LocalImage { reference, _tags: tags }
}

/// Runs the probe image and returns its report.
fn probe(image: &str) -> Value {
    let out = ok(Command::new("docker").args(["run", "--rm", image]));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe printed no JSON ({e}): {out}"))
}

/// The static base's own layer, as this gohot builds it.
fn static_layer_digest() -> String {
    gohot::builder::staticbase::base_layer().expect("base layer").descriptor.digest
}

/// The layer digests of `<layout>:baseprobe`, read by skopeo.
fn layout_layers(layout: &Path) -> Vec<String> {
    let raw = ok(Command::new(require("skopeo"))
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:baseprobe", layout.display())));
    let manifest: Value = serde_json::from_str(&raw).expect("manifest json");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

/// On the default base a Go program trusts Mozilla's roots (ISRG Root X1
/// among them, and a chain ending there verifies), loads time zones, runs as
/// nonroot (65532, named in /etc/passwd, in its home) and can write /tmp —
/// as under ko's default base. The same program on `scratch` has none of it:
/// the x509 failure users met before.
#[test]
fn default_base_gives_go_roots_zones_nonroot_and_tmp() {
    let sb = Sandbox::new();
    let app = probe_app(&sb, "probe");
    let repo = format!("ko.local/gohot-test-static-{}", std::process::id());

    let image = build_local(&sb, &app, &repo, &[]);
    let r = probe(&image.reference);
    assert!(r["roots"].as_u64().expect("roots") > 100, "{r}");
    assert_eq!(r["pool_error"], "", "{r}");
    assert_eq!(r["has_isrg_root_x1"], true, "{r}");
    assert_eq!(r["verify_error"], "", "{r}");
    assert_eq!(r["paris"], "CEST(+7200) CET(+3600)", "{r}");
    assert_eq!(r["buenos_aires"], "-03(-10800) -03(-10800)", "{r}");
    assert_eq!((r["uid"].as_u64(), r["gid"].as_u64()), (Some(65532), Some(65532)), "{r}");
    assert_eq!((&r["user"], &r["home"]), (&Value::from("nonroot"), &Value::from("/home/nonroot")), "{r}");
    assert_eq!((&r["temp_dir"], &r["tmp_error"]), (&Value::from("/tmp"), &Value::from("")), "{r}");
    assert_eq!(r["wd"], "/home/nonroot", "{r}");

    let scratch = build_local(&sb, &app, &repo, &["--base", "scratch"]);
    let r = probe(&scratch.reference);
    assert_eq!(r["roots"], 0, "{r}");
    assert!(r["verify_error"].as_str().expect("verify").contains("unknown authority"), "{r}");
    assert!(r["paris"].as_str().expect("paris").starts_with("error:"), "{r}");
    assert_eq!(r["uid"], 0, "scratch runs as root: {r}");
}

/// The default-base image is the same from two builds and from another
/// checkout directory; its base layer is gohot's static layer; skopeo reads
/// its config and umoci unpacks the files the base promises.
#[test]
fn static_base_image_is_deterministic_and_read_by_umoci_and_skopeo() {
    let sb = Sandbox::new();
    let app = probe_app(&sb, "checkout-a/probe");
    let layout = sb.path().join("layout");
    let build =
        |dir: &Path| ok(sb.gohot(dir).args(["build", "-B", "--push=false", "--oci-layout-path"]).arg(&layout).arg("."));
    let first = build(&app);
    assert!(first.trim().contains("@sha256:"), "{first}");
    assert_eq!(build(&app), first, "rebuild changed the digest");
    let other = probe_app(&sb, "elsewhere/b/probe");
    assert_eq!(build(&other), first, "digest depends on the checkout directory");

    let layers = layout_layers(&layout);
    assert_eq!(layers.len(), 3, "static base + kodata + binary: {layers:?}");
    assert_eq!(layers[0], static_layer_digest());

    let config: Value = serde_json::from_str(&ok(Command::new(require("skopeo"))
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:baseprobe", layout.display()))))
    .expect("config json");
    let c = &config["config"];
    assert_eq!(c["User"], "65532", "{config}");
    assert_eq!(c["WorkingDir"], "/home/nonroot", "{config}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/ko-app/baseprobe"]));
    let env: Vec<&str> = c["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/ko-app"), "{env:?}");
    assert!(env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"), "{env:?}");
    assert!(env.contains(&"KO_DATA_PATH=/var/run/ko"), "{env:?}");
    assert_eq!(config["history"].as_array().expect("history").len(), 3, "one history entry per layer");

    let bundle = sb.path().join("bundle");
    ok(Command::new(require("umoci"))
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:baseprobe", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).expect("bundle"),
        gohot::builder::staticbase::ca_bundle()
    );
    for zone in ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"] {
        let data = std::fs::read(rootfs.join("usr/share/zoneinfo").join(zone)).expect(zone);
        assert_eq!(&data[..4], b"TZif", "{zone}");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")), "{passwd}");
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::fs::metadata(rootfs.join("tmp")).expect("tmp");
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    assert!(rootfs.join("home/nonroot").is_dir());
    assert!(rootfs.join("ko-app/baseprobe").is_file());
}

/// Which base a build gets, as ko decides: `--base` over `baseImageOverrides`
/// (per package) over `KO_DEFAULTBASEIMAGE` over `.ko.yaml`'s
/// `defaultBaseImage` over the built-in `static`.
#[test]
fn base_selection_follows_ko_precedence() {
    let sb = Sandbox::new();
    let app = probe_app(&sb, "probe");
    let mut n = 0;
    let mut first_layer = |ko_yaml: Option<&str>, env: Option<&str>, flag: Option<&str>| -> (usize, String) {
        match ko_yaml {
            Some(text) => std::fs::write(app.join(".ko.yaml"), text).expect("ko.yaml"),
            None => {
                let _ = std::fs::remove_file(app.join(".ko.yaml"));
            }
        }
        n += 1;
        let layout = sb.path().join(format!("layout-{n}"));
        let mut cmd = sb.gohot(&app);
        cmd.args(["build", "-B", "--push=false", "--oci-layout-path"]).arg(&layout);
        if let Some(base) = flag {
            cmd.args(["--base", base]);
        }
        if let Some(base) = env {
            cmd.env("KO_DEFAULTBASEIMAGE", base);
        }
        ok(cmd.arg("."));
        let layers = layout_layers(&layout);
        (layers.len(), layers[0].clone())
    };
    let on_static = (3, static_layer_digest());
    let on_scratch = |got: (usize, String)| assert_eq!(got.0, 2, "kodata + binary on scratch");

    assert_eq!(first_layer(None, None, None), on_static, "the default");
    on_scratch(first_layer(None, Some("scratch"), None));
    on_scratch(first_layer(Some("defaultBaseImage: scratch\n"), None, None));
    assert_eq!(first_layer(Some("defaultBaseImage: scratch\n"), Some("static"), None), on_static, "env over file");
    let overrides = "defaultBaseImage: scratch\nbaseImageOverrides:\n  example.com/baseprobe: static\n";
    assert_eq!(first_layer(Some(overrides), Some("scratch"), None), on_static, "per-package override over env");
    on_scratch(first_layer(Some(overrides), Some("static"), Some("scratch")));
}
