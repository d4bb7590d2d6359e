//! Claims in the docs that the code can check: what the docs say gohot
//! needs or does, read against the source.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every source file under `dir`, concatenated.
fn sources(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            all += &sources(&p);
        } else if p.extension().is_some_and(|e| e == "rs") {
            all += &std::fs::read_to_string(&p).expect("read");
        }
    }
    all
}

/// docs/kubernetes.md's permission list, and the Role in manifests/, name
/// every pod subresource the Kubernetes code calls.
#[test]
fn kubernetes_permissions_cover_the_subresources_gohot_uses() {
    let code = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let doc = read("docs/kubernetes.md");
    let section = doc.split("## Permissions").nth(1).expect("a Permissions section");
    let role = read("manifests/gohot-developer.yaml");
    let section = section.split("\n## ").next().unwrap_or(section).replace('\n', " ");
    for (call, subresource) in
        [(".exec(pod", "pods/exec"), (".log_stream(", "pods/log"), (".portforward(", "pods/portforward")]
    {
        assert!(code.contains(call), "the code no longer calls {call}: update this test and the doc");
        assert!(section.contains(subresource), "docs/kubernetes.md's Permissions omit {subresource}");
        assert!(role.contains(&format!("[\"{subresource}\"]")), "manifests/gohot-developer.yaml omits {subresource}");
    }
}

/// docs/ko.md documents every setting that chooses the Docker engine.
#[test]
fn docker_engine_settings_are_documented() {
    let readme = read("docs/ko.md");
    for var in
        ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "currentContext", "--docker-host"]
    {
        assert!(readme.contains(var), "docs/ko.md does not mention {var}");
    }
}

/// `gohot --help` lists every environment variable the source reads (test
/// hooks and Go's own aside).
#[test]
fn help_lists_every_environment_variable_gohot_reads() {
    let code = sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let help = crate::util::ok(std::process::Command::new(env!("CARGO_BIN_EXE_gohot")).arg("--help"));
    let mut read = std::collections::BTreeSet::new();
    for pattern in ["env::var(\"", "env::var_os(\"", "env = \"", "lookup(\"", " env(\""] {
        for piece in code.split(pattern).skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            if !name.is_empty() {
                read.insert(name);
            }
        }
    }
    let not_for_users =
        ["GOHOT_TEST_WATCHEXEC", "GOHOT_TEST_WATCHEXEC_WAIT_SECS", "GOLDEN_BLESS", "CI", "USER", "GOWORK"];
    for name in read.iter().filter(|n| !not_for_users.contains(&n.as_str())) {
        assert!(help.contains(name.as_str()), "gohot --help does not list {name}, which the source reads");
    }
    assert!(read.contains("DOCKER_HOST") && read.contains("KO_DOCKER_REPO"), "the scan found {read:?}");
}

/// `gohot completion bash|zsh|fish` prints a script the shell accepts.
#[test]
fn completion_scripts_parse() {
    let script = crate::util::ok(std::process::Command::new(env!("CARGO_BIN_EXE_gohot")).args(["completion", "bash"]));
    assert!(script.contains("_gohot") && script.contains("--docker-host"), "{script}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gohot.bash");
    std::fs::write(&file, &script).expect("write");
    crate::util::ok(std::process::Command::new("bash").arg("-n").arg(&file));
    for shell in ["zsh", "fish"] {
        let script =
            crate::util::ok(std::process::Command::new(env!("CARGO_BIN_EXE_gohot")).args(["completion", shell]));
        assert!(script.contains("gohot") && script.contains("docker-host"), "{shell}: {script}");
    }
}

/// scripts/demo is never silent for long (issue 21): before the quiet
/// `cargo build` it says what it builds and how long that takes the first
/// time, and once the app answers it says where (the URL) and what to edit.
#[test]
fn demo_says_what_it_builds_and_where_the_app_is() {
    let demo = read("scripts/demo");
    let build = demo.find("\ncargo build").expect("scripts/demo builds gohot");
    let said = demo[..build].rfind("echo \"demo: building gohot").expect("a line before cargo build");
    assert!(demo[said..build].contains("minutes") && demo[said..build].contains("first time"), "{demo}");
    let ready = demo.find("demo: the app answers at $url").expect("a line once the app answers");
    assert!(demo[..ready].contains("url=http://127.0.0.1:8080") && demo[..ready].contains("curl"), "{demo}");
    assert!(demo[ready..].contains("examples/hello/main.go"), "{demo}");
}

/// The `sh` blocks of the README and docs/ that walk through this
/// repository's examples (they name `examples/`) run as written from the
/// repository root (issue 21): following their `cd`s, every gohot command
/// that builds runs inside a Go module (`examples/hello` is its own: from
/// the root, `go: cannot find main module`), and every path it is given
/// (`-f`, packages) exists there.
#[test]
fn example_commands_in_the_docs_run_from_where_they_say() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .expect("docs/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("read");
        let name = page.strip_prefix(root).expect("in the checkout").display().to_string();
        for block in text.split("```sh\n").skip(1).filter_map(|b| b.split("```").next()) {
            if !block.contains("examples/") {
                continue;
            }
            let mut cwd = root.to_path_buf();
            for line in block.lines() {
                let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
                match words.as_slice() {
                    ["cd", dir] => cwd = cwd.join(dir),
                    ["gohot", sub, args @ ..] => {
                        checked += 1;
                        let builds = ["apply", "dev", "resolve", "build"].contains(sub);
                        if builds
                            && !cwd.ancestors().take_while(|d| d.starts_with(root)).any(|d| d.join("go.mod").is_file())
                        {
                            wrong.push(format!("{name}: `{line}` runs in {} (no Go module)", cwd.display()));
                        }
                        let mut paths = Vec::new();
                        let mut it = args.iter().take_while(|a| **a != "--").peekable();
                        while let Some(a) = it.next() {
                            if (*a == "-f" || *a == "--filename") && it.peek().is_some() {
                                paths.extend(it.next());
                            } else if a.starts_with('.') || a.starts_with('/') {
                                paths.push(a);
                            }
                        }
                        for p in paths {
                            if !cwd.join(p).exists() {
                                wrong.push(format!("{name}: `{line}`: {p} does not exist in {}", cwd.display()));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(checked >= 5, "found only {checked} example commands: has the docs' layout changed?");
    assert!(wrong.is_empty(), "commands that fail as written:\n{}", wrong.join("\n"));
}
