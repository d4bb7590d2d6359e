//! A small Debug Adapter Protocol client for the tests, standing in for an
//! editor (there is no DAP client crate worth adding: a message is a
//! `Content-Length` header and JSON). It does what VS Code's Go "remote
//! attach" does: `initialize`, `attach` (mode remote), `setBreakpoints`,
//! `configurationDone`, then requests as the user clicks. Every message it
//! receives is kept, so a test can also check what it was *not* sent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct DapClient {
    stream: TcpStream,
    incoming: mpsc::Receiver<Value>,
    /// Every message received, in order.
    pub seen: Vec<Value>,
    /// Messages received and not yet taken by a wait.
    backlog: Vec<Value>,
    seq: i64,
}

impl DapClient {
    pub fn connect(port: u16) -> Self {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        let reader = stream.try_clone().expect("clone");
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        length = v.trim().parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let msg: Value = serde_json::from_slice(&body).expect("a JSON message");
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
        DapClient { stream, incoming, seen: Vec::new(), backlog: Vec::new(), seq: 0 }
    }

    /// Sends a request; its seq.
    pub fn send(&mut self, command: &str, arguments: Value) -> i64 {
        self.seq += 1;
        let msg = json!({"seq": self.seq, "type": "request", "command": command, "arguments": arguments});
        let body = serde_json::to_vec(&msg).expect("json");
        self.stream.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()).expect("write");
        self.stream.write_all(&body).expect("write");
        self.seq
    }

    /// The first message (received already or later) that `pick` accepts, taken.
    pub fn wait(&mut self, what: &str, timeout: Duration, pick: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pick) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(m) => {
                    self.seen.push(m.clone());
                    if pick(&m) {
                        return m;
                    }
                    self.backlog.push(m);
                }
                Err(_) => panic!("no {what} within {timeout:?}; received: {:#?}", self.seen),
            }
        }
    }

    /// The response to request `seq`.
    pub fn response(&mut self, seq: i64, timeout: Duration) -> Value {
        self.wait(&format!("response to request {seq}"), timeout, |m| {
            m["type"] == "response" && m["request_seq"] == seq
        })
    }

    /// Sends a request and returns its successful response's body.
    pub fn call(&mut self, command: &str, arguments: Value) -> Value {
        let seq = self.send(command, arguments);
        let r = self.response(seq, Duration::from_secs(60));
        assert_eq!(r["success"], true, "{command} failed: {r}");
        r.get("body").cloned().unwrap_or(Value::Null)
    }

    /// The next event of this kind.
    pub fn event(&mut self, event: &str, timeout: Duration) -> Value {
        self.wait(&format!("a {event:?} event"), timeout, |m| m["type"] == "event" && m["event"] == event)
    }

    /// Everything received so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(m) = self.incoming.try_recv() {
            self.seen.push(m.clone());
            self.backlog.push(m);
        }
    }

    /// What VS Code's Go "remote attach" sends first: `initialize`, `attach`.
    pub fn attach(&mut self) {
        self.call(
            "initialize",
            json!({"clientID": "gohot-tests", "adapterID": "go", "pathFormat": "path", "linesStartAt1": true,
                   "columnsStartAt1": true, "supportsVariableType": true}),
        );
        self.call("attach", json!({"request": "attach", "mode": "remote", "name": "gohot"}));
    }

    /// The source's breakpoints (the whole list, as editors send it); the answer's breakpoints.
    pub fn set_breakpoints(&mut self, path: &str, lines: &[u64]) -> Vec<Value> {
        let bps: Vec<Value> = lines.iter().map(|l| json!({"line": l})).collect();
        let body =
            self.call("setBreakpoints", json!({"source": {"name": "main.go", "path": path}, "breakpoints": bps}));
        body["breakpoints"].as_array().cloned().unwrap_or_default()
    }

    /// Waits for a stop and returns (thread, top frame).
    pub fn stopped(&mut self, timeout: Duration) -> (Value, Value, Value) {
        let stop = self.event("stopped", timeout);
        let thread = stop["body"]["threadId"].clone();
        let trace = self.call("stackTrace", json!({"threadId": thread, "startFrame": 0, "levels": 5}));
        let frame = trace["stackFrames"][0].clone();
        (stop, thread, frame)
    }

    /// The value of local `name` in `frame`.
    pub fn local(&mut self, frame: &Value, name: &str) -> String {
        let scopes = self.call("scopes", json!({"frameId": frame["id"]}));
        let locals = scopes["scopes"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "Locals"))
            .unwrap_or_else(|| panic!("no Locals scope: {scopes}"))["variablesReference"]
            .clone();
        let vars = self.call("variables", json!({"variablesReference": locals}));
        vars["variables"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == name))
            .unwrap_or_else(|| panic!("no local {name}: {vars}"))["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// How many messages of this kind (events by name, responses by command) were received.
    pub fn count(&self, kind: &str, name: &str) -> usize {
        let key = if kind == "event" { "event" } else { "command" };
        self.seen.iter().filter(|m| m["type"] == kind && m[key] == name).count()
    }
}

/// The 1-based line of the first line of `path` containing `marker`.
pub fn line_of(path: &std::path::Path, marker: &str) -> u64 {
    let text = std::fs::read_to_string(path).expect("source");
    text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker} in {}", path.display())) as u64
        + 1
}
