//! The command line on top of the library: [`args`] (clap definitions,
//! normalised once), [`cmd`] (one handler per command: wiring only), and
//! here the process-level parts — logging, signals, rendering errors for
//! people, exit codes.
//!
//! Exit codes: 0 success; 1 the command failed (build, publish, resolve…);
//! 2 usage error (bad flags or arguments); 130 interrupted (Ctrl-C, SIGINT);
//! 143 terminated (SIGTERM). `gohot dev` cleans up before exiting 130/143.

pub mod args;
pub mod cmd;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::builder::go::GoError;
use crate::builder::BuildError;
pub use args::{Cli, Command};

/// The signal that stopped gohot (0: none yet), for the exit code.
static STOPPED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so long-running commands can
/// clean up, and records which one for the exit code (130 or 143). The
/// handlers are installed when this is called, not when it is first awaited.
pub(crate) fn interrupted() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let record = |sig: i32| STOPPED_BY.store(sig, std::sync::atomic::Ordering::SeqCst);
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => record(2),
                _ = term.recv() => record(15),
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                record(2);
            }
        }
    }
}

/// The exit code for a command stopped by a signal: 128 + its number.
fn signal_exit_code() -> Option<ExitCode> {
    match STOPPED_BY.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(ExitCode::from(128 + sig as u8)),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "gohot=info",
        1 => "gohot=debug",
        _ => "gohot=trace,oci_client=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GOHOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Prints an error for people: compiler output verbatim first, then the
/// error and its causes.
pub fn report(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    if let Some(out) = compiler_output(err) {
        let _ = stderr.write_all(out.as_bytes());
    }
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !err.to_string().contains(&text) {
            let _ = writeln!(stderr, "  caused by: {text}");
        }
    }
}

/// The compiler's own output, if the error is a failed `go build` (however
/// deep: `gohot build`, `gohot dev` start-up, `resolve`).
pub fn compiler_output(err: &anyhow::Error) -> Option<&str> {
    err.chain().find_map(|cause| {
        if let Some(GoError::Build { stderr, .. }) = cause.downcast_ref::<GoError>() {
            return Some(stderr.as_str());
        }
        if let Some(b) = cause.downcast_ref::<BuildError>() {
            return b.compiler_output();
        }
        if let Some(d) = cause.downcast_ref::<crate::devloop::docker::DockerDevError>() {
            return d.compiler_output();
        }
        if let Some(d) = cause.downcast_ref::<crate::devloop::kube::KubeDevError>() {
            return d.compiler_output();
        }
        match cause.downcast_ref::<crate::devloop::DevError>() {
            Some(crate::devloop::DevError::Build(b)) => b.compiler_output(),
            _ => None,
        }
    })
}

/// Keeps `gohot dev`'s memory to what it uses. Each reload allocates a few
/// binaries' worth (the binary, its payload) on whichever thread encodes
/// it; glibc's defaults give every thread an arena of its own and raise the
/// mmap threshold past the size of a freed binary, so that memory stays
/// resident after it is freed: measured 85 MB after six reloads of a 6 MB
/// binary, 22 MB with these settings (large buffers mapped and unmapped,
/// two arenas). Called before any thread starts.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_logging(cli.verbose);
    if let Some(host) = &cli.docker_host {
        crate::docker::set_host_flag(host.clone());
    }
    tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `dev` handles Ctrl-C itself (it cleans up first); other commands just stop.
    let handles_interrupt = matches!(cli.command, Command::Dev(_));
    let result = runtime.block_on(async {
        if handles_interrupt {
            return run(cli.command).await;
        }
        let stop = interrupted();
        // On a task of its own, so a command blocked in a read (`resolve -f -`
        // waiting on stdin) cannot keep the signal from being seen.
        let command = tokio::spawn(run(cli.command));
        tokio::select! {
            r = command => r.unwrap_or_else(|e| Err(anyhow::anyhow!("internal error: {e}"))),
            _ = stop => Ok(()),
        }
    });
    // Interrupted (Ctrl-C: 130, SIGTERM: 143) wins over how the command ended.
    if let Some(code) = signal_exit_code() {
        eprintln!("interrupted");
        // A command may still be blocked in a read: do not wait for it.
        runtime.shutdown_background();
        return code;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Build(c) => cmd::build::run_build(c).await,
        Command::Resolve(c) => cmd::build::run_resolve(c).await,
        Command::Dev(c) => cmd::dev::run_dev(*c).await,
        Command::Syncback(c) => cmd::syncback::run_syncback(c).await,
        Command::Skaffold(c) => cmd::skaffold::run_skaffold(c).await,
        Command::Syncmap(c) => cmd::skaffold::run_syncmap(c).await,
        Command::Apply(c) => cmd::apply::run_apply(c).await,
        Command::Delete(c) => cmd::apply::run_delete(c).await,
        Command::Completion(c) => cmd::completion(c),
    }
}
