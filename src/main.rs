//! The `gohot` binary: parse arguments, run, turn the outcome into an exit code.
//! Everything else lives in the library so it can be tested without a process.

fn main() -> std::process::ExitCode {
    gohot::cli::main()
}
