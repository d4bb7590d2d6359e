//! ko's flags and conventions as a ko user types them: `-L`, `-t`,
//! `--image-refs`, no package meaning `.`, ko.local's digest tag,
//! `KO_DEFAULTPLATFORMS`, `-R` and `.json` manifests; the flags that mean
//! something else in ko (`--debug`, `--insecure-registry HOST`) refused.

use std::process::Command;

use crate::util::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The manifest digest of the only image in an OCI layout.
fn layout_digest(layout: &std::path::Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("json");
    index["manifests"][0]["digest"].as_str().expect("digest").to_string()
}

#[test]
fn flags_that_mean_something_else_in_ko_are_refused() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let out = run(sb.gohot(&app).args(["build", "--debug", "--repo", "ko.local"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("delve") && stderr_of(&out).contains("--dwarf"), "{}", stderr_of(&out));
    let out = run(sb.gohot(&app).args(["build", "--insecure-registry", "10.0.0.5:5000", "."]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("is a switch, as in ko"), "{}", stderr_of(&out));
    // The switch itself is accepted, in both spellings.
    let out = run(sb.gohot(&app).args(["build", "--insecure-registry", "--push=false", "--tarball", "t.tar"]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(sb.gohot(&app).args(["build", "--insecure-registry=false", "--push=false", "--tarball", "t.tar"]));
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// `gohot build -L -t v1,dev --image-refs FILE` with no package: `.` is
/// built, loaded as `ko.local/<name>-<md5>:<manifest digest hex>` (ko's
/// daemon.go) and tagged with each tag; the reference is recorded.
#[test]
fn local_tags_image_refs_and_the_default_package() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    // An import path of this test's own, so its ko.local repository is too
    // (tests run in parallel and remove what they load).
    let module = format!("example.com/koflags{}/hello", std::process::id());
    let gomod = std::fs::read_to_string(app.join("go.mod")).expect("go.mod");
    std::fs::write(app.join("go.mod"), gomod.replace("module example.com/hello", &format!("module {module}")))
        .expect("go.mod");
    let refs = sb.path().join("refs.txt");
    let out = ok(sb.gohot(&app).args(["build", "-L", "-t", "v1,dev", "-t", "third", "--image-refs"]).arg(&refs));
    let reference = out.trim().to_string();
    let _image = DockerImage(reference.clone());
    let (repository, tag) = reference.rsplit_once(':').expect("a tag");
    let _tags: Vec<DockerImage> =
        ["v1", "dev", "third"].iter().map(|t| DockerImage(format!("{repository}:{t}"))).collect();
    assert!(repository.starts_with("ko.local/hello-"), "{reference}");
    assert_eq!(std::fs::read_to_string(&refs).expect("image refs"), format!("{reference}\n"));

    // The digest tag is the manifest digest, as ko tags it (not the image ID).
    let layout = sb.path().join("layout");
    ok(sb.gohot(&app).args(["build", "--push=false", "--oci-layout-path"]).arg(&layout));
    assert_eq!(format!("sha256:{tag}"), layout_digest(&layout));
    let id = ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &reference]));
    for t in ["v1", "dev", "third"] {
        let other =
            ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &format!("{repository}:{t}")]));
        assert_eq!(other, id, "tag {t}");
    }
    // ko's default tag is `latest`, and only when no -t is given.
    assert!(!run(Command::new("docker").args(["image", "inspect", &format!("{repository}:latest")])).status.success());
}

/// `KO_DEFAULTPLATFORMS` is the default platform; `--image-label` (comma
/// or repeated) and `--image-user` land in the image config.
#[test]
fn ko_defaultplatforms_image_labels_and_user() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let layout = sb.path().join("layout");
    ok(sb
        .gohot(&app)
        .args([
            "build",
            "--push=false",
            "--image-label",
            "a=1,b=x=y",
            "--image-label",
            "c=",
            "--image-user",
            "1000:1000",
        ])
        .arg("--oci-layout-path")
        .arg(&layout)
        .env("KO_DEFAULTPLATFORMS", "linux/arm64"));
    let digest = layout_digest(&layout);
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob")).expect("json")
    };
    let manifest = blob(&digest);
    let config = blob(manifest["config"]["digest"].as_str().expect("config"));
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["config"]["Labels"], serde_json::json!({"a": "1", "b": "x=y", "c": ""}));
    assert_eq!(config["config"]["User"], "1000:1000");
    let out = run(sb.gohot(&app).args(["build", "--image-label", "novalue", "--push=false", "--tarball", "t.tar"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

#[test]
fn recursive_directories_and_json_manifests() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let dir = sb.path().join("manifests");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(
        dir.join("pod.json"),
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"a","image":"ko://example.com/hello"}]}}"#,
    )
    .expect("json");
    std::fs::write(dir.join("sub/deep.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n")
        .expect("yaml");
    let repo = format!("{}/r", reg.host());
    let flat = ok(sb.gohot(&app).args(["resolve", "--repo", &repo, "-f"]).arg(&dir));
    assert!(flat.contains(&format!("{repo}/hello-")) && flat.contains("@sha256:"), "{flat}");
    assert!(!flat.contains("deep"), "without -R a subdirectory is not read: {flat}");
    let deep = ok(sb.gohot(&app).args(["resolve", "-R", "--repo", &repo, "-f"]).arg(&dir));
    assert!(deep.contains("name: deep") && deep.contains("@sha256:"), "{deep}");
}

/// `gohot skaffold build --platform P` builds P when Skaffold sets no
/// $PLATFORMS; $PLATFORMS wins when set.
#[test]
fn skaffold_build_platform_flag_applies_when_platforms_is_unset() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "ctx");
    for (platforms, expected) in [(None, "arm64"), (Some("linux/amd64"), "amd64")] {
        let image = format!("{}/app:{expected}", reg.host());
        let mut cmd = sb.gohot(&app);
        cmd.args(["skaffold", "build", "--platform", "linux/arm64"])
            .env("IMAGE", &image)
            .env("PUSH_IMAGE", "true")
            .env("BUILD_CONTEXT", &app)
            .env_remove("PLATFORMS");
        if let Some(p) = platforms {
            cmd.env("PLATFORMS", p);
        }
        ok(&mut cmd);
        assert_eq!(skopeo_inspect(&image, "--config")["architecture"], expected, "PLATFORMS={platforms:?}");
    }
}

/// `--platform=all` builds every platform of the base's index (here an
/// index gohot itself pushed with two platforms), as ko does.
#[test]
fn platform_all_follows_the_base_index() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let base_repo = format!("{}/base", reg.host());
    let base = ok(sb.gohot(&app).args([
        "build",
        "--bare",
        "--base",
        "scratch",
        "--platform",
        "linux/arm64,linux/amd64",
        "--repo",
        &base_repo,
    ]));
    let layout = sb.path().join("layout");
    ok(sb
        .gohot(&app)
        .args(["build", "--platform=all", "--push=false", "--base", base.trim(), "--oci-layout-path"])
        .arg(&layout));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json")).expect("json");
    let top = index["manifests"][0]["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_string();
    let image_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(top)).expect("blob")).expect("json");
    let mut platforms: Vec<String> = image_index["manifests"]
        .as_array()
        .expect("an image index")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or(""),
                m["platform"]["architecture"].as_str().unwrap_or("")
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

/// `--sbom=spdx` (the default, as in ko): an SPDX 2.3 document from the
/// binary's build information beside the image, under cosign's tag, read
/// back with skopeo, and the same document in `--sbom-dir`; `--sbom=none`
/// pushes none.
#[test]
fn sbom_beside_the_image_as_ko_and_cosign_place_it() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let repo = format!("{}/sbom", reg.host());
    let sbom_dir = sb.path().join("sboms");
    let reference = ok(sb.gohot(&app).args(["build", "-B", "--repo", &repo, "--sbom-dir"]).arg(&sbom_dir));
    let digest = reference.trim().rsplit_once('@').expect("digest").1.to_string();
    let tag = format!("{repo}/hello:{}.sbom", digest.replace(':', "-"));
    let manifest = skopeo_inspect(&tag, "--raw");
    let layer = &manifest["layers"][0];
    assert_eq!(layer["mediaType"], "text/spdx+json", "{manifest}");
    let path = format!("/v2/sbom/hello/blobs/{}", layer["digest"].as_str().expect("digest"));
    let (status, body) = http_get(reg.port, &path).expect("blob");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("SPDX JSON");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["packages"][0]["name"], digest.as_str(), "the image is the described package");
    let names: Vec<&str> =
        doc["packages"].as_array().expect("packages").iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"example.com/hello"), "{names:?}");
    assert!(doc["creationInfo"]["comment"].as_str().is_some_and(|c| c.starts_with("go1.")), "{doc}");
    let written = std::fs::read_to_string(sbom_dir.join("hello.spdx.json")).expect("--sbom-dir wrote hello.spdx.json");
    assert_eq!(written, body, "--sbom-dir holds the pushed document");

    let none = format!("{}/nosbom", reg.host());
    let reference = ok(sb.gohot(&app).args(["build", "-B", "--sbom=none", "--repo", &none]));
    let digest = reference.trim().rsplit_once('@').expect("digest").1.replace(':', "-");
    let out = run(Command::new(require("skopeo"))
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{none}/hello:{digest}.sbom")));
    assert!(!out.status.success(), "--sbom=none pushed an SBOM");
}

/// `--sbom-dir` without a registry (an OCI layout): one SBOM per platform,
/// each describing that platform's image in the layout.
#[test]
fn sbom_dir_writes_one_document_per_platform_whatever_the_destination() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let layout = sb.path().join("layout");
    let sbom_dir = sb.path().join("out/sboms");
    ok(sb
        .gohot(&app)
        .args(["build", "--base", "scratch", "--platform", "linux/amd64,linux/arm64", "--push=false"])
        .arg("--oci-layout-path")
        .arg(&layout)
        .arg("--sbom-dir")
        .arg(&sbom_dir));
    let mut names: Vec<String> = std::fs::read_dir(&sbom_dir)
        .expect("sbom dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hello-linux-amd64.spdx.json", "hello-linux-arm64.spdx.json"], "no temporary file left");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sbom_dir.join(&names[0])).expect("sbom").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "readable by all, as ko writes it");
    let top = layout_digest(&layout);
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(top.trim_start_matches("sha256:"))).expect("index blob"),
    )
    .expect("json");
    for m in index["manifests"].as_array().expect("an image index") {
        let arch = m["platform"]["architecture"].as_str().expect("arch");
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(sbom_dir.join(format!("hello-linux-{arch}.spdx.json"))).expect("sbom"),
        )
        .expect("SPDX JSON");
        assert_eq!(doc["packages"][0]["name"], m["digest"], "{arch}: the document describes its own image");
    }
}

/// ko's `--debug` for `resolve --dev` (issue 23): the ko:// container runs
/// the app under delve on ko's port; without `--dev` it is refused naming it.
#[test]
fn resolve_dev_debug_runs_the_app_under_delve() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let dir = sb.path().join("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      image: ko://example.com/hello\n",
    )
    .expect("yaml");
    let repo = format!("{}/r", reg.host());
    let delve = crate::debug::delve();
    let watchexec = crate::dev::watchexec();
    let refused = run(sb.gohot(&app).args(["resolve", "--debug", "--repo", &repo, "-f"]).arg(&dir));
    assert_eq!(refused.status.code(), Some(1), "{}", stderr_of(&refused));
    assert!(stderr_of(&refused).contains("add --dev"), "{}", stderr_of(&refused));
    let yaml = ok(sb
        .gohot(&app)
        .args(["resolve", "--dev", "--debug", "--repo", &repo, "--delve"])
        .arg(&delve)
        .arg("--watchexec")
        .arg(&watchexec)
        .arg("-f")
        .arg(&dir));
    assert!(yaml.contains("/var/run/gohot/dlv") && yaml.contains("--listen=:40000"), "{yaml}");
    assert!(yaml.contains("/ko-app/hello"), "{yaml}");
}
