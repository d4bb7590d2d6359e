//! `gohot dev --debug`: the editor's debug session kept across reloads.
//!
//! In a debug dev image the app runs under delve (`dlv exec --headless
//! --accept-multiclient --continue`, see [`crate::devimage::delve`]); every
//! reload replaces the process and its delve. gohot listens on
//! `127.0.0.1:40000` and speaks the Debug Adapter Protocol to the editor
//! (VS Code's Go "remote attach", nvim-dap, Zed, Helix), so the editor's
//! connection is to gohot and survives: after each reload gohot connects to
//! the new delve and replays what the editor configured, mapping source
//! paths between the editor's files and the binary's `-trimpath` names.
//!
//! - [`dap`]: the wire format;
//! - [`paths`]: local files ↔ the binary's names;
//! - [`replay`]: what a new delve is told (a pure decider), breakpoint ids;
//! - [`session`]: one editor's session as a state machine with no I/O;
//! - [`server`]: the listener, the session's I/O, the JSON-RPC relay;
//! - [`Debugger`]: the one thing the dev loop calls (`live.rs`).

pub mod dap;
mod live;
pub mod paths;
pub mod replay;
pub mod server;
pub mod session;

pub use live::Debugger;
pub use paths::PathMap;
pub use server::{DebugEvent, DebugEvents, DebugServer, Dial, TcpDial, Timeouts};
pub use session::Replayed;

/// ko's port for delve, in the container and (by default) gohot's own.
pub use crate::layout::DELVE_PORT;

/// Errors of the debug listener and its sessions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebugError {
    /// The listener could not be opened.
    #[error("cannot listen for debuggers on {addr}: {source} (is another gohot or delve using it? pick another with --debug-port)")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The new delve could not be reached or configured in time.
    #[error("cannot attach the debug session to delve in {replica}: {detail}")]
    Reattach {
        /// The replica.
        replica: String,
        /// The last failure.
        detail: String,
    },
}
