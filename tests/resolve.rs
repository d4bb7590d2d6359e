//! `gohot resolve`: ko:// references in multi-document YAML.

use crate::util::*;

const MANIFEST: &str = r#"# Source: chart/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
      - name: app
        image: ko://example.com/hello   # built by gohot
      - name: sidecar
        image: ko://example.com/hello
---
# an untouched document, kept byte for byte
apiVersion: v1
kind: Service
metadata: {name: hello}   # flow style stays
spec:
  ports: [{port: 80}]
---
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  note: "mentions ko://example.com/hello inside a sentence"
"#;

#[test]
fn resolve_replaces_references_and_keeps_other_documents() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let dir = sb.path().join("manifests");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("app.yaml"), MANIFEST).expect("write");
    let repo = format!("{}/resolve", reg.host());
    let out = run(sb.gohot(&app).args(["resolve", "-B", "-f"]).arg(&dir).env("KO_DOCKER_REPO", &repo));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(stderr.matches("published ").count(), 1, "one build and push per distinct reference:\n{stderr}");
    let docs: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(docs.len(), 3, "{stdout}");
    let image = format!("{repo}/hello@sha256:");
    assert_eq!(docs[0].matches(&image).count(), 2, "{}", docs[0]);
    assert!(docs[0].contains("# built by gohot"), "comments kept: {}", docs[0]);
    assert!(!docs[0].contains("ko://"));
    assert_eq!(docs[1], "# an untouched document, kept byte for byte\napiVersion: v1\nkind: Service\nmetadata: {name: hello}   # flow style stays\nspec:\n  ports: [{port: 80}]\n");
    assert!(docs[2].contains("mentions ko://example.com/hello inside a sentence"), "only whole values are references");
    // The digest printed is the one in the registry.
    let digest = docs[0].split(&image).nth(1).and_then(|s| s.split_whitespace().next()).expect("digest");
    let raw = ok(std::process::Command::new(require("skopeo"))
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{repo}/hello:latest")));
    assert_eq!(raw.trim(), format!("sha256:{digest}"));
}

#[test]
fn broken_yaml_names_file_and_line() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let file = sb.path().join("bad.yaml");
    std::fs::write(&file, "a: 1\n---\nkind: Pod\nspec: [\n  - x\n").expect("write");
    let out = run(sb.gohot(&app).args(["resolve", "--repo", "ko.local", "-f"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:", file.display());
    assert!(stderr.contains(&expected) && stderr.contains("invalid YAML"), "{stderr}");
    let line: usize = stderr
        .split(&expected)
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|n| n.parse().ok())
        .expect("line number");
    assert!((4..=6).contains(&line), "line {line} should point into the second document: {stderr}");
}

#[test]
fn build_error_names_file_and_line() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let file = sb.path().join("m.yaml");
    std::fs::write(&file, "kind: Pod\nspec:\n  containers:\n  - image: ko://example.com/hello/nothere\n")
        .expect("write");
    let out = run(sb.gohot(&app).args(["resolve", "--repo", "ko.local", "-f"]).arg(&file));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:4: building ko://example.com/hello/nothere", file.display())), "{stderr}");
}

/// `resolve --dev` builds the dev image and wraps the app's containers in
/// watchexec; other containers stay as they were.
#[test]
fn resolve_dev_rewrites_app_containers() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "hello");
    let file = sb.path().join("deploy.yaml");
    std::fs::write(
        &file,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hello}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: ko://example.com/hello\n        args: [--verbose]\n      - name: proxy\n        image: nginx:1\n",
    )
    .expect("write");
    let repo = format!("{}/dev", reg.host());
    let out = ok(sb
        .gohot(&app)
        .args(["resolve", "--dev", "-B", "--watchexec"])
        .arg(crate::dev::watchexec())
        .arg("-f")
        .arg(&file)
        .env("KO_DOCKER_REPO", &repo));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).expect("yaml");
    let containers = &doc["spec"]["template"]["spec"]["containers"];
    let command: Vec<&str> =
        containers[0]["command"].as_sequence().expect("command").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(command.first(), Some(&"/var/run/ko/watchexec"));
    assert_eq!(&command[command.len() - 2..], ["--", "/ko-app/hello"]);
    assert_eq!(containers[0]["args"][0], "--verbose");
    assert!(containers[0]["image"].as_str().expect("image").starts_with(&format!("{repo}/hello@sha256:")));
    assert!(containers[1].get("command").is_none(), "other containers untouched");
    // The dev image carries watchexec in kodata and the helper, on the
    // default (static) base.
    let image = containers[0]["image"].as_str().expect("image");
    let manifest = skopeo_inspect(image, "--raw");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 4, "static base, kodata, helper, binary: {manifest}");
    assert_eq!(layers[0]["digest"], gohot::builder::staticbase::base_layer().expect("base").descriptor.digest);
    assert!(app.join("kodata/watchexec").is_file());
    assert!(std::fs::read_to_string(app.join("kodata/.gitignore"))
        .expect("gitignore")
        .lines()
        .any(|l| l == "watchexec"));
}
