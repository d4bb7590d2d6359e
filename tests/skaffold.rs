//! gohot as Skaffold sees it: the custom-build contract run the way Skaffold
//! runs it (`sh -c` in the context with IMAGE, PUSH_IMAGE, BUILD_CONTEXT,
//! PLATFORMS) against the real registry and Docker engine; the dependency
//! list; the inferred sync map; and gohot.yaml's sync rules.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// `sh -c "<script>"` in `dir` with the sandbox's clean environment and the
/// gohot under test first on PATH — how Skaffold runs `custom.buildCommand`.
fn skaffold_sh(sb: &Sandbox, dir: &Path, script: &str) -> Command {
    let template = sb.gohot(dir);
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).current_dir(dir);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    for k in ["IMAGE", "PUSH_IMAGE", "BUILD_CONTEXT", "PLATFORMS"] {
        c.env_remove(k);
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_gohot")).parent().expect("bin dir").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir];
    paths.extend(std::env::split_paths(&path));
    c.env("PATH", std::env::join_paths(paths).expect("PATH"));
    c
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn build_contract_pushes_exactly_image() {
    let reg = Registry::start();
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "ctx");
    let image = format!("{}/app:v1-abc", reg.host());
    let out = run(skaffold_sh(&sb, &app, "gohot skaffold build")
        .env("IMAGE", &image)
        .env("PUSH_IMAGE", "true")
        .env("BUILD_CONTEXT", &app)
        .env("PLATFORMS", "linux/amd64"));
    assert!(out.status.success(), "skaffold build failed: {}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim().starts_with(&format!("{}/app@sha256:", reg.host())), "{stdout}");

    // Exactly $IMAGE, read back by an independent tool, with ko's layout.
    let manifest = skopeo_inspect(&image, "--raw");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 3, "static base + kodata + binary: {manifest}");
    assert_eq!(layers[0]["digest"], gohot::builder::staticbase::base_layer().expect("base").descriptor.digest);
    let config = skopeo_inspect(&image, "--config");
    assert_eq!(config["config"]["User"], "65532", "the default base runs as nonroot");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));
    let env: Vec<&str> = config["config"]["Env"].as_array().expect("env").iter().filter_map(|v| v.as_str()).collect();
    assert!(env.contains(&"KO_DATA_PATH=/var/run/ko"), "{env:?}");
    // Nothing pushed under ko's own names.
    let catalog = http_get(reg.port, "/v2/_catalog").expect("catalog").1;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&catalog).expect("json")["repositories"],
        serde_json::json!(["app"])
    );
}

#[test]
fn build_contract_loads_into_the_engine() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "ctx");
    let tag = format!("127.0.0.1:5999/gohot-skaffold-test:t{}", std::process::id());
    let _cleanup = DockerImage(tag.clone());
    // Two platforms: the engine keeps the host's.
    let host = match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    };
    let out = run(skaffold_sh(&sb, &app, "gohot skaffold build")
        .env("IMAGE", &tag)
        .env("PUSH_IMAGE", "false")
        .env("BUILD_CONTEXT", &app)
        .env("PLATFORMS", format!("linux/s390x,{host}")));
    assert!(out.status.success(), "skaffold build failed: {}", stderr_of(&out));
    let inspect = ok(Command::new("docker").args(["image", "inspect", &tag]));
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("json");
    assert_eq!(inspect[0]["Config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));
    assert_eq!(inspect[0]["Architecture"], host.trim_start_matches("linux/"));
}

#[test]
fn build_contract_errors_name_the_variable() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "ctx");
    let out = run(skaffold_sh(&sb, &app, "gohot skaffold build").env("PUSH_IMAGE", "true"));
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("$IMAGE is not set"), "{}", stderr_of(&out));

    let out = run(skaffold_sh(&sb, &app, "gohot skaffold build").env("IMAGE", "x:y").env("PUSH_IMAGE", "maybe"));
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("$PUSH_IMAGE=\"maybe\""), "{}", stderr_of(&out));

    let out = run(skaffold_sh(&sb, &app, "gohot skaffold build")
        .env("IMAGE", "x:y")
        .env("PUSH_IMAGE", "false")
        .env("PLATFORMS", "linux/s390x,linux/ppc64le"));
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("$PLATFORMS=linux/s390x,linux/ppc64le with $PUSH_IMAGE=false"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn deps_lists_sources_gomod_and_kodata() {
    let sb = Sandbox::new();
    let app = sb.copy_example("hello", "ctx");
    let stdout = ok(sb.gohot(&app).args(["skaffold", "deps"]));
    let deps: Vec<String> = serde_json::from_str(&stdout).expect("a JSON array of strings");
    assert_eq!(deps, ["go.mod", "kodata/message.txt", "main.go"], "{stdout}");

    // As Skaffold runs it: from the skaffold.yaml directory, naming the
    // context; paths stay relative to the context (Skaffold joins them to it).
    let elsewhere = sb.path().join("skaffold-dir");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let stdout = ok(sb.gohot(&elsewhere).args(["skaffold", "deps", "--context", "../ctx"]));
    let deps: Vec<String> = serde_json::from_str(&stdout).expect("json");
    assert_eq!(deps, ["go.mod", "kodata/message.txt", "main.go"]);
    // A package below the context, importing a local package: its files
    // count too; the standard library never does.
    let mono = sb.path().join("mono");
    let cmd_dir = sb.copy_example("hello", "mono/cmd/hello");
    std::fs::rename(cmd_dir.join("go.mod"), mono.join("go.mod")).expect("move go.mod");
    std::fs::create_dir_all(mono.join("greet")).expect("mkdir");
    std::fs::write(mono.join("greet/greet.go"), "package greet\n\n// Hi greets.\nconst Hi = \"hi\"\n").expect("write");
    let main = std::fs::read_to_string(cmd_dir.join("main.go")).expect("read");
    let main = main.replacen("import (", "import (\n\t\"example.com/hello/greet\"", 1).replacen(
        "func main() {",
        "func main() {\n\t_ = greet.Hi",
        1,
    );
    std::fs::write(cmd_dir.join("main.go"), main).expect("write");
    let stdout = ok(sb.gohot(&mono).args(["skaffold", "deps", "--package", "./cmd/hello"]));
    let deps: Vec<String> = serde_json::from_str(&stdout).expect("json");
    assert_eq!(deps, ["cmd/hello/kodata/message.txt", "cmd/hello/main.go", "go.mod", "greet/greet.go"]);
}

/// The design proposal's own example is the oracle.
#[test]
fn syncmap_matches_the_proposal_and_honours_dockerignore() {
    let sb = Sandbox::new();
    let ctx = sb.path().join("ctx");
    for (f, body) in [
        ("Dockerfile", "FROM nginx\nWORKDIR /var\nCOPY static *.html www/\nADD nginx.conf .\nADD nginx.conf /etc/\n"),
        ("static/page1.html", "p1"),
        ("static/assets/style.css", "css"),
        ("index.html", "i"),
        ("nginx.conf", "conf"),
        (".git/HEAD", "ref: refs/heads/main"),
    ] {
        let p = ctx.join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    let map = |cwd: &Path, args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&ok(sb.gohot(cwd).arg("syncmap").args(args))).expect("json object")
    };
    let expected = serde_json::json!({
        "static/page1.html": ["/var/www/page1.html"],
        "static/assets/style.css": ["/var/www/assets/style.css"],
        "index.html": ["/var/www/index.html"],
        "nginx.conf": ["/etc/nginx.conf", "/var/nginx.conf"],
    });
    assert_eq!(map(&ctx, &["--dockerfile", "Dockerfile"]), expected);
    assert_eq!(map(sb.path(), &["--dockerfile", "ctx/Dockerfile", "--context", "ctx"]), expected);

    std::fs::write(ctx.join(".dockerignore"), "static/assets\n").expect("write");
    let mut without = expected.clone();
    without.as_object_mut().expect("object").remove("static/assets/style.css");
    assert_eq!(map(&ctx, &["--dockerfile", "Dockerfile"]), without);

    // A bad Dockerfile: non-zero, the line named.
    std::fs::write(ctx.join("Dockerfile"), "FROM x\nCOPY missing.txt /\n").expect("write");
    let out = run(sb.gohot(&ctx).args(["syncmap", "--dockerfile", "Dockerfile"]));
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("line 2"), "{}", stderr_of(&out));
}

#[test]
fn syncmap_build_args() {
    let sb = Sandbox::new();
    let ctx = sb.path();
    std::fs::write(ctx.join("Dockerfile"), "FROM x\nARG DIR=/default\nCOPY a.txt $DIR/\n").expect("write");
    std::fs::write(ctx.join("a.txt"), "a").expect("write");
    let out = ok(sb.gohot(ctx).args(["syncmap", "--dockerfile", "Dockerfile", "--build-arg", "DIR=/srv"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v, serde_json::json!({"a.txt": ["/srv/a.txt"]}));
}

#[test]
fn gohot_yaml_bad_strip_names_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("gohot.yaml"),
        "sync:\n  manual:\n  - src: 'kodata/**'\n    dest: /var/run/ko\n    strip: kodata/\n  - src: 'web/*.html'\n    dest: /srv\n    strip: static/\n",
    )
    .expect("write");
    let err = gohot::config::gohot::GohotConfig::load(dir.path()).expect_err("bad strip").to_string();
    assert!(err.contains("gohot.yaml"), "{err}");
    assert!(err.contains("sync.manual[1]") && err.contains("web/*.html") && err.contains("strip `static/`"), "{err}");

    std::fs::write(
        dir.path().join("gohot.yaml"),
        "sync:\n  manual:\n  - src: 'kodata/**'\n    dest: /var/run/ko\n    strip: kodata/\n",
    )
    .expect("write");
    let cfg = gohot::config::gohot::GohotConfig::load(dir.path()).expect("valid");
    assert_eq!(cfg.rules.manual.destinations("kodata/a/b.txt", "/").expect("dest"), ["/var/run/ko/a/b.txt"]);
}
