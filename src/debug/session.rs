//! One editor's debug session across reloads: a state machine with no I/O.
//! Messages in (from the editor, from delve, "delve is gone", "a new
//! delve is connected"), messages out ([`Out`]); [`super::server`] moves
//! the bytes.
//!
//! # Theory of operation
//!
//! gohot stands between the editor and the delve of the debugged replica
//! and renumbers everything that crosses: each side sees one stream of
//! `seq` numbers of its own, so gohot can send requests of its own to delve
//! (the replay) and events of its own to the editor (a breakpoint verified
//! again) without either side noticing. Source paths are mapped both ways
//! ([`PathMap`]), breakpoint ids too ([`BreakpointIds`]).
//!
//! The link to delve is in one of three states:
//!
//! | link | editor requests | delve messages |
//! | --- | --- | --- |
//! | live | recorded if they configure something ([`Configured`]), sent on | sent on, except `terminated` (the session outlives the process) |
//! | down (the process is being replaced) | breakpoints and `configurationDone` recorded and answered here (breakpoints unverified); `threads` answered empty; others refused with a message | — |
//! | replaying | queued, sent on once the replay is over | answers to the replay taken here |
//!
//! When delve goes away, requests it left unanswered are answered with an
//! error, and an editor that showed the process stopped is told it
//! continued. When the replay is over, the editor gets a `breakpoint`
//! event (`reason: changed`) for each breakpoint, under the id it knows,
//! saying whether it is set in the new process.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::paths::{Direction, PathMap};
use super::replay::{BreakpointIds, BreakpointSet, Configured};

/// A DAP message.
pub type Msg = Map<String, Value>;

/// What the session asks its I/O to do.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// Send this to the editor.
    Editor(Msg),
    /// Send this to delve.
    Delve(Msg),
    /// The replay to a new delve is over.
    Replayed(Replayed),
    /// The editor ended the session: close its connection.
    Close,
}

/// How a replay went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Breakpoints sent again.
    pub breakpoints: usize,
    /// Of those, set in the new process.
    pub verified: usize,
    /// Requests delve refused, with its message.
    pub errors: Vec<String>,
}

/// Requests the editor may send while no delve is connected are refused
/// with this, unless they are recorded.
pub const RELOADING: &str = "gohot is reloading the app: try again when it is back";

/// Editor requests queued during a replay, at most (a replay takes well
/// under a second; an editor sends a handful of requests meanwhile).
pub const MAX_QUEUED: usize = 256;

enum Link {
    Live,
    Down,
    Replaying { outstanding: usize, report: Replayed, events: Vec<Value> },
}

enum Pending {
    /// The editor's request: its own seq, the command, the breakpoint set it sets.
    Editor { seq: Value, command: String, set: Option<BreakpointSet> },
    /// A request of the replay.
    Replay { command: &'static str, set: Option<BreakpointSet> },
    /// gohot's own (handshake, farewell): the answer is dropped.
    Own,
}

/// One editor's session.
pub struct Session {
    paths: Arc<PathMap>,
    configured: Configured,
    ids: BreakpointIds,
    link: Link,
    delve_seq: i64,
    editor_seq: i64,
    pending: HashMap<i64, Pending>,
    /// Requests delve sent the editor (reverse requests): the editor's seq → delve's.
    reverse: HashMap<i64, i64>,
    /// Whether the editor was last told the process stopped.
    stopped: bool,
    queued: VecDeque<Msg>,
}

/// Commands after which the process runs (their success clears `stopped`).
const RESUMING: &[&str] = &["continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue"];

impl Session {
    /// A session with no delve connected yet.
    pub fn new(paths: Arc<PathMap>) -> Self {
        Session {
            paths,
            configured: Configured::default(),
            ids: BreakpointIds::default(),
            link: Link::Down,
            delve_seq: 0,
            editor_seq: 0,
            pending: HashMap::new(),
            reverse: HashMap::new(),
            stopped: false,
            queued: VecDeque::new(),
        }
    }

    /// A newer path map (the build's packages were listed again).
    pub fn set_paths(&mut self, paths: Arc<PathMap>) {
        self.paths = paths;
    }

    /// What the editor configured so far.
    pub fn configured(&self) -> &Configured {
        &self.configured
    }

    /// Whether a delve is connected and configured.
    pub fn is_live(&self) -> bool {
        matches!(self.link, Link::Live)
    }

    /// A request of gohot's own to delve, whose answer is not the editor's.
    pub fn own_request(&mut self, command: &str, arguments: Value) -> Msg {
        let seq = self.next_delve_seq();
        self.pending.insert(seq, Pending::Own);
        request(seq, command, arguments)
    }

    fn next_delve_seq(&mut self) -> i64 {
        self.delve_seq += 1;
        self.delve_seq
    }

    /// Numbers a message for the editor and gives it local paths.
    fn for_editor(&mut self, msg: Msg) -> Out {
        let mut v = Value::Object(msg);
        self.paths.rewrite(&mut v, Direction::ToEditor);
        let Value::Object(mut msg) = v else { unreachable!("an object stays an object") };
        self.editor_seq += 1;
        msg.insert("seq".into(), self.editor_seq.into());
        Out::Editor(msg)
    }

    fn event(&mut self, event: &str, body: Value) -> Out {
        let mut m = Msg::new();
        m.insert("type".into(), "event".into());
        m.insert("event".into(), event.into());
        m.insert("body".into(), body);
        self.for_editor(m)
    }

    fn console(&mut self, text: &str) -> Out {
        self.event("output", json!({"category": "console", "output": format!("gohot: {text}\n")}))
    }

    fn answer(&mut self, seq: Value, command: &str, body: Option<Value>, error: Option<&str>) -> Out {
        let mut m = Msg::new();
        m.insert("type".into(), "response".into());
        m.insert("request_seq".into(), seq);
        m.insert("success".into(), error.is_none().into());
        m.insert("command".into(), command.into());
        if let Some(e) = error {
            m.insert("message".into(), e.into());
            m.insert("body".into(), json!({"error": {"id": 3000, "format": e, "showUser": true}}));
        } else if let Some(b) = body {
            m.insert("body".into(), b);
        }
        self.for_editor(m)
    }

    /// A message from the editor.
    pub fn from_editor(&mut self, msg: Msg) -> Vec<Out> {
        match msg.get("type").and_then(Value::as_str) {
            Some("request") => self.editor_request(msg),
            Some("response") => {
                // The editor's answer to a request delve sent it.
                let Some(delve) = msg.get("request_seq").and_then(Value::as_i64).and_then(|s| self.reverse.remove(&s))
                else {
                    return Vec::new();
                };
                if !self.is_live() {
                    return Vec::new();
                }
                let mut v = Value::Object(msg);
                self.paths.rewrite(&mut v, Direction::ToDelve);
                let Value::Object(mut msg) = v else { return Vec::new() };
                msg.insert("request_seq".into(), delve.into());
                let seq = self.next_delve_seq();
                msg.insert("seq".into(), seq.into());
                vec![Out::Delve(msg)]
            }
            _ => Vec::new(),
        }
    }

    fn editor_request(&mut self, msg: Msg) -> Vec<Out> {
        let seq = msg.get("seq").cloned().unwrap_or(Value::from(0));
        let command = msg.get("command").and_then(Value::as_str).unwrap_or_default().to_string();
        if command == "launch" {
            let e =
                "gohot runs the app under delve already: attach to it (\"request\": \"attach\", \"mode\": \"remote\")";
            return vec![self.answer(seq, &command, None, Some(e))];
        }
        match self.link {
            Link::Live => self.forward_request(msg, seq, command),
            Link::Replaying { .. } => {
                if self.queued.len() >= MAX_QUEUED {
                    return vec![self.answer(seq, &command, None, Some(RELOADING))];
                }
                self.queued.push_back(msg);
                Vec::new()
            }
            Link::Down => self.request_while_down(msg, seq, command),
        }
    }

    /// In delve's terms: the binary's paths, `attach` in remote mode,
    /// `disconnect` never ending the app.
    fn for_delve(&self, msg: Msg, command: &str) -> Msg {
        let mut v = Value::Object(msg);
        self.paths.rewrite(&mut v, Direction::ToDelve);
        let Value::Object(mut msg) = v else { unreachable!("an object stays an object") };
        let args = msg.entry("arguments").or_insert_with(|| json!({}));
        if let Some(args) = args.as_object_mut() {
            match command {
                // gohot's delve runs the app already; an editor that says
                // nothing (or "local") means this one.
                "attach" => {
                    args.insert("mode".into(), "remote".into());
                }
                // The app outlives the editor's session (and a reload restarts it anyway).
                "disconnect" => {
                    args.insert("terminateDebuggee".into(), false.into());
                }
                _ => {}
            }
        }
        msg
    }

    fn forward_request(&mut self, msg: Msg, seq: Value, command: String) -> Vec<Out> {
        let mut msg = self.for_delve(msg, &command);
        let arguments = msg.get("arguments").cloned().unwrap_or_default();
        self.configured.record(&command, &arguments);
        let set = BreakpointSet::of(&command, &arguments);
        let delve_seq = self.next_delve_seq();
        self.pending.insert(delve_seq, Pending::Editor { seq, command, set });
        msg.insert("seq".into(), delve_seq.into());
        vec![Out::Delve(msg)]
    }

    fn request_while_down(&mut self, msg: Msg, seq: Value, command: String) -> Vec<Out> {
        let msg = self.for_delve(msg, &command);
        let arguments = msg.get("arguments").cloned().unwrap_or_default();
        if let Some(set) = BreakpointSet::of(&command, &arguments) {
            self.configured.record(&command, &arguments);
            let count = arguments["breakpoints"].as_array().map_or(0, Vec::len);
            let bps = self.ids.pending(&set, count, "set when the reloaded app is up");
            return vec![self.answer(seq, &command, Some(json!({"breakpoints": bps})), None)];
        }
        match command.as_str() {
            "setExceptionBreakpoints" | "configurationDone" => {
                self.configured.record(&command, &arguments);
                vec![self.answer(seq, &command, None, None)]
            }
            "threads" => vec![self.answer(seq, &command, Some(json!({"threads": []})), None)],
            "disconnect" => vec![self.answer(seq, &command, None, None), Out::Close],
            _ => vec![self.answer(seq, &command, None, Some(RELOADING))],
        }
    }

    /// A message from delve.
    pub fn from_delve(&mut self, mut msg: Msg) -> Vec<Out> {
        match msg.get("type").and_then(Value::as_str) {
            Some("response") => {
                let pending = msg.get("request_seq").and_then(Value::as_i64).and_then(|s| self.pending.remove(&s));
                match pending {
                    Some(Pending::Editor { seq, command, set }) => self.editor_answer(msg, seq, command, set),
                    Some(Pending::Replay { command, set }) => self.replay_answer(msg, command, set),
                    Some(Pending::Own) | None => Vec::new(),
                }
            }
            Some("event") => self.delve_event(msg),
            Some("request") if self.is_live() => {
                let delve = msg.get("seq").and_then(Value::as_i64).unwrap_or_default();
                let out = self.for_editor(std::mem::take(&mut msg));
                if let Out::Editor(m) = &out {
                    if let Some(e) = m.get("seq").and_then(Value::as_i64) {
                        self.reverse.insert(e, delve);
                    }
                }
                vec![out]
            }
            _ => Vec::new(),
        }
    }

    fn editor_answer(&mut self, mut msg: Msg, seq: Value, command: String, set: Option<BreakpointSet>) -> Vec<Out> {
        let success = msg.get("success").and_then(Value::as_bool).unwrap_or(false);
        if success {
            if let Some(set) = &set {
                if let Some(bps) =
                    msg.get_mut("body").and_then(|b| b.get_mut("breakpoints")).and_then(Value::as_array_mut)
                {
                    self.ids.answered(set, bps);
                }
            }
            if RESUMING.contains(&command.as_str()) {
                self.stopped = false;
            }
        }
        msg.insert("request_seq".into(), seq);
        let mut out = vec![self.for_editor(msg)];
        if command == "disconnect" {
            out.push(Out::Close);
        }
        out
    }

    fn delve_event(&mut self, mut msg: Msg) -> Vec<Out> {
        let event = msg.get("event").and_then(Value::as_str).unwrap_or_default().to_string();
        let live = self.is_live();
        let body = msg.entry("body").or_insert_with(|| json!({}));
        match event.as_str() {
            // The session outlives delve's: only gohot ends it (Ctrl-C).
            "terminated" => return Vec::new(),
            "exited" => {
                let code = body["exitCode"].as_i64().unwrap_or_default();
                return vec![self.console(&format!("the app's process exited (code {code})"))];
            }
            // A replay's handshake is gohot's, not the editor's.
            "initialized" | "capabilities" | "output" if !live => return Vec::new(),
            "stopped" => {
                if let Some(hit) = body.get("hitBreakpointIds").and_then(Value::as_array).cloned() {
                    body["hitBreakpointIds"] = self.ids.hit(&hit).into();
                }
                self.stopped = true;
            }
            "continued" => self.stopped = false,
            "breakpoint" => {
                if let Some(id) = body["breakpoint"]["id"].as_i64() {
                    body["breakpoint"]["id"] = self.ids.editor_id(id).into();
                }
            }
            _ => {}
        }
        if matches!(self.link, Link::Down) {
            return Vec::new();
        }
        vec![self.for_editor(msg)]
    }

    /// The connection to delve is gone (the process is being replaced).
    pub fn delve_lost(&mut self) -> Vec<Out> {
        self.lose(Vec::new())
    }

    /// gohot lets go of delve before the process is replaced: a DAP
    /// `disconnect` that leaves the process running. delve 1.27 stopped with
    /// SIGTERM (watchexec's restart) while a DAP client runs the process
    /// waits for it forever and leaves the process behind (its halt is taken
    /// for a spurious stop and the process continued); once the client is
    /// gone it ends the process and exits at once. The first message out is
    /// the `disconnect`, whose answer the I/O waits for.
    pub fn release(&mut self) -> Vec<Out> {
        if !self.is_live() {
            return Vec::new();
        }
        let bye = Out::Delve(self.own_request("disconnect", json!({"terminateDebuggee": false})));
        self.lose(vec![bye])
    }

    fn lose(&mut self, mut out: Vec<Out>) -> Vec<Out> {
        let mut pending: Vec<(i64, Pending)> = self.pending.drain().collect();
        pending.sort_by_key(|(s, _)| *s);
        for (seq, p) in pending {
            if matches!(p, Pending::Own) {
                // The farewell just sent: its answer is awaited by the I/O.
                self.pending.insert(seq, p);
                continue;
            }
            if let Pending::Editor { seq, command, .. } = p {
                if command == "disconnect" {
                    out.push(self.answer(seq, &command, None, None));
                    out.push(Out::Close);
                } else {
                    out.push(self.answer(seq, &command, None, Some(RELOADING)));
                }
            }
        }
        self.reverse.clear();
        if let Link::Replaying { mut report, .. } = std::mem::replace(&mut self.link, Link::Down) {
            report.errors.push("delve closed the connection during the replay".into());
            out.push(Out::Replayed(report));
        } else {
            if self.stopped {
                out.push(self.event("continued", json!({"threadId": 0, "allThreadsContinued": true})));
                self.stopped = false;
            }
            out.push(self.console("the app is being reloaded; its breakpoints are set again in the new process"));
        }
        self.link = Link::Down;
        out
    }

    /// A new delve is connected (and initialized, when the editor had
    /// attached): sends it what the editor configured.
    pub fn begin_replay(&mut self) -> Vec<Out> {
        self.ids.new_delve();
        // Whatever was asked of an earlier delve (or of this one's handshake) is moot.
        self.pending.clear();
        self.reverse.clear();
        let plan = self.configured.plan();
        let report = Replayed { breakpoints: self.configured.breakpoint_count(), ..Default::default() };
        if plan.is_empty() {
            self.link = Link::Live;
            let mut out = vec![Out::Replayed(report)];
            out.extend(self.flush_queue());
            return out;
        }
        self.link = Link::Replaying { outstanding: plan.len(), report, events: Vec::new() };
        plan.into_iter()
            .map(|step| {
                let seq = self.next_delve_seq();
                self.pending.insert(seq, Pending::Replay { command: step.command, set: step.set });
                Out::Delve(request(seq, step.command, step.arguments))
            })
            .collect()
    }

    fn replay_answer(&mut self, mut msg: Msg, command: &'static str, set: Option<BreakpointSet>) -> Vec<Out> {
        let Link::Replaying { outstanding, report, events } = &mut self.link else {
            return Vec::new();
        };
        let success = msg.get("success").and_then(Value::as_bool).unwrap_or(false);
        let message = msg.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
        // delve refuses configurationDone when the process already runs: what it is for.
        let running = command == "configurationDone" && message.contains("running");
        if !success && !running {
            let detail = msg["body"]["error"]["format"].as_str().unwrap_or_default();
            report.errors.push(format!("{command}: {message} {detail}").trim_end().to_string());
        }
        if let (true, Some(set)) = (success, &set) {
            if let Some(bps) = msg.get_mut("body").and_then(|b| b.get_mut("breakpoints")).and_then(Value::as_array_mut)
            {
                report.verified += bps.iter().filter(|b| b["verified"] == true).count();
                events.extend(self.ids.replayed(set, bps));
            }
        }
        *outstanding -= 1;
        if *outstanding > 0 {
            return Vec::new();
        }
        let Link::Replaying { report, events, .. } = std::mem::replace(&mut self.link, Link::Live) else {
            return Vec::new();
        };
        let mut out: Vec<Out> = events.into_iter().map(|e| self.event("breakpoint", e)).collect();
        let text =
            format!("attached to the new process: {} of {} breakpoints set again", report.verified, report.breakpoints);
        out.push(self.console(&text));
        out.push(Out::Replayed(report));
        out.extend(self.flush_queue());
        out
    }

    fn flush_queue(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(m) = self.queued.pop_front() {
            out.extend(self.from_editor(m));
        }
        out
    }

    /// gohot is stopping: the editor's session ends (`terminated`), and
    /// delve is left running the app.
    pub fn end(&mut self) -> Vec<Out> {
        let mut out = Vec::new();
        if self.is_live() {
            out.push(Out::Delve(self.own_request("disconnect", json!({"terminateDebuggee": false}))));
        }
        out.push(self.event("terminated", json!({})));
        self.link = Link::Down;
        out
    }
}

/// A DAP request.
pub fn request(seq: i64, command: &str, arguments: Value) -> Msg {
    let mut m = Msg::new();
    m.insert("seq".into(), seq.into());
    m.insert("type".into(), "request".into());
    m.insert("command".into(), command.into());
    m.insert("arguments".into(), arguments);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::go::{ListedModule, ListedPackage};

    const LOCAL: &str = "/home/me/m/main.go";
    const REMOTE: &str = "example.com/m/main.go";

    fn session() -> Session {
        let paths = PathMap::from_listing(&[ListedPackage {
            dir: "/home/me/m".into(),
            import_path: "example.com/m".into(),
            module: Some(ListedModule { path: "example.com/m".into(), main: true, ..Default::default() }),
            ..Default::default()
        }]);
        let mut s = Session::new(Arc::new(paths));
        assert_eq!(s.begin_replay(), vec![Out::Replayed(Replayed::default())]);
        s
    }

    fn msg(v: Value) -> Msg {
        v.as_object().cloned().expect("an object")
    }

    fn editor(s: &mut Session, seq: i64, command: &str, arguments: Value) -> Vec<Out> {
        s.from_editor(msg(json!({"seq": seq, "type": "request", "command": command, "arguments": arguments})))
    }

    /// The one message sent to delve.
    fn to_delve(out: Vec<Out>) -> Msg {
        match <[Out; 1]>::try_from(out) {
            Ok([Out::Delve(m)]) => m,
            Ok([other]) => panic!("not to delve: {other:?}"),
            Err(out) => panic!("not one message: {out:?}"),
        }
    }

    fn editor_msgs(out: &[Out]) -> Vec<&Msg> {
        out.iter().filter_map(|o| if let Out::Editor(m) = o { Some(m) } else { None }).collect()
    }

    fn answer(s: &mut Session, to: &Msg, success: bool, body: Value) -> Vec<Out> {
        s.from_delve(msg(json!({"seq": 900, "type": "response", "request_seq": to["seq"], "success": success,
            "command": to["command"], "body": body})))
    }

    fn bp_request(lines: &[u64]) -> Value {
        json!({"source": {"name": "main.go", "path": LOCAL},
               "breakpoints": lines.iter().map(|l| json!({"line": l})).collect::<Vec<_>>()})
    }

    /// The editor attaches, sets a breakpoint on line 12 and ends its configuration.
    fn configured() -> Session {
        let mut s = session();
        let init = to_delve(editor(&mut s, 1, "initialize", json!({"adapterID": "go"})));
        answer(&mut s, &init, true, json!({"supportsConfigurationDoneRequest": true}));
        let attach = to_delve(editor(&mut s, 2, "attach", json!({"request": "attach", "stopOnEntry": true})));
        assert_eq!(attach["arguments"]["mode"], "remote", "gohot's delve is attached in remote mode");
        answer(&mut s, &attach, true, json!(null));
        let set = to_delve(editor(&mut s, 3, "setBreakpoints", bp_request(&[12])));
        assert_eq!(set["arguments"]["source"]["path"], REMOTE, "delve is given the binary's path");
        let out = answer(
            &mut s,
            &set,
            true,
            json!({"breakpoints": [{"id": 1, "verified": true, "line": 12,
            "source": {"name": "main.go", "path": REMOTE}}]}),
        );
        let answered = editor_msgs(&out)[0];
        assert_eq!(answered["request_seq"], 3);
        assert_eq!(answered["body"]["breakpoints"][0]["source"]["path"], LOCAL, "the editor sees its own path");
        let done = to_delve(editor(&mut s, 4, "configurationDone", json!({})));
        answer(&mut s, &done, true, json!(null));
        s
    }

    #[test]
    fn each_side_sees_its_own_numbering() {
        let mut s = configured();
        let threads = to_delve(editor(&mut s, 77, "threads", json!({})));
        let out = answer(&mut s, &threads, true, json!({"threads": [{"id": 1, "name": "main"}]}));
        let got = editor_msgs(&out)[0];
        assert_eq!(got["request_seq"], 77);
        // Everything the editor got so far is numbered 1, 2, 3, …
        let event =
            s.from_delve(msg(json!({"seq": 5000, "type": "event", "event": "output", "body": {"output": "x"}})));
        assert_eq!(editor_msgs(&event)[0]["seq"], got["seq"].as_i64().unwrap() + 1);
    }

    #[test]
    fn a_reload_replays_the_configuration_and_keeps_the_editors_ids() {
        let mut s = configured();
        // Stopped at the breakpoint when the process goes away.
        let stop = s.from_delve(msg(json!({"seq": 10, "type": "event", "event": "stopped",
            "body": {"reason": "breakpoint", "threadId": 5, "hitBreakpointIds": [1]}})));
        assert_eq!(editor_msgs(&stop)[0]["body"]["hitBreakpointIds"], json!([1]));
        let stack = to_delve(editor(&mut s, 5, "stackTrace", json!({"threadId": 5})));
        let out = s.delve_lost();
        let lost = editor_msgs(&out);
        assert_eq!(lost[0]["request_seq"], 5, "the unanswered request is answered");
        assert_eq!(lost[0]["success"], false);
        assert_eq!(lost[1]["event"], "continued", "the editor no longer shows the old process stopped");
        assert!(!stack.is_empty());
        // The new delve: attach, the breakpoint, configurationDone, in that order.
        let replay: Vec<Msg> =
            s.begin_replay().into_iter().map(|o| if let Out::Delve(m) = o { m } else { panic!("{o:?}") }).collect();
        let commands: Vec<&str> = replay.iter().map(|m| m["command"].as_str().unwrap()).collect();
        assert_eq!(commands, ["attach", "setBreakpoints", "configurationDone"]);
        assert!(replay[0]["arguments"].get("stopOnEntry").is_none(), "a reload does not stop at the entry");
        assert_eq!(replay[1]["arguments"]["source"]["path"], REMOTE);
        // Requests meanwhile wait for the replay to end.
        assert_eq!(editor(&mut s, 6, "threads", json!({})), vec![]);
        assert_eq!(answer(&mut s, &replay[0], true, json!(null)), vec![]);
        // The new delve numbers the breakpoint 7; the editor keeps its 1.
        let bp = json!({"breakpoints": [{"id": 7, "verified": true, "line": 12, "source": {"path": REMOTE}}]});
        assert_eq!(answer(&mut s, &replay[1], true, bp), vec![]);
        let out = answer(&mut s, &replay[2], true, json!(null));
        let to_editor = editor_msgs(&out);
        assert_eq!(to_editor[0]["event"], "breakpoint");
        assert_eq!(to_editor[0]["body"]["breakpoint"]["id"], 1);
        assert_eq!(to_editor[0]["body"]["breakpoint"]["verified"], true);
        assert_eq!(to_editor[0]["body"]["breakpoint"]["source"]["path"], LOCAL);
        assert!(out.contains(&Out::Replayed(Replayed { breakpoints: 1, verified: 1, errors: vec![] })), "{out:?}");
        // The queued request goes on to the new delve.
        let Some(Out::Delve(queued)) = out.last() else { panic!("{out:?}") };
        assert_eq!(queued["command"], "threads");
        // A stop at delve's 7 is a stop at the editor's 1.
        let stop = s.from_delve(msg(json!({"seq": 11, "type": "event", "event": "stopped",
            "body": {"reason": "breakpoint", "threadId": 9, "hitBreakpointIds": [7]}})));
        assert_eq!(editor_msgs(&stop)[0]["body"]["hitBreakpointIds"], json!([1]));
    }

    #[test]
    fn while_down_breakpoints_are_recorded_and_other_requests_refused() {
        let mut s = configured();
        s.delve_lost();
        let out = editor(&mut s, 8, "setBreakpoints", bp_request(&[12, 14]));
        let got = editor_msgs(&out)[0];
        assert_eq!(got["success"], true);
        assert_eq!(got["body"]["breakpoints"].as_array().unwrap().len(), 2);
        assert_eq!(got["body"]["breakpoints"][1]["verified"], false);
        let out = editor(&mut s, 9, "evaluate", json!({"expression": "x"}));
        assert_eq!(editor_msgs(&out)[0]["message"], RELOADING);
        let out = editor(&mut s, 10, "threads", json!({}));
        assert_eq!(editor_msgs(&out)[0]["body"]["threads"], json!([]));
        // The replay carries what was set while down.
        let replay = s.begin_replay();
        let set = replay
            .iter()
            .find_map(|o| match o {
                Out::Delve(m) if m["command"] == "setBreakpoints" => Some(m),
                _ => None,
            })
            .unwrap();
        assert_eq!(set["arguments"]["breakpoints"], json!([{"line": 12}, {"line": 14}]));
    }

    #[test]
    fn the_session_outlives_delves_end_and_ends_with_gohot() {
        let mut s = configured();
        let out = s.from_delve(msg(json!({"seq": 12, "type": "event", "event": "terminated", "body": {}})));
        assert_eq!(out, vec![], "delve's terminated is not the editor's");
        let out = s.end();
        let Out::Delve(farewell) = &out[0] else { panic!("{out:?}") };
        assert_eq!(farewell["command"], "disconnect");
        assert_eq!(farewell["arguments"]["terminateDebuggee"], false);
        assert_eq!(editor_msgs(&out)[0]["event"], "terminated");
    }

    #[test]
    fn gohot_lets_go_of_delve_before_a_restart() {
        let mut s = configured();
        let pending = to_delve(editor(&mut s, 30, "threads", json!({})));
        let out = s.release();
        let Out::Delve(bye) = &out[0] else { panic!("{out:?}") };
        assert_eq!(bye["command"], "disconnect");
        assert_eq!(bye["arguments"]["terminateDebuggee"], false, "the app runs on until the restart ends it");
        let to_editor = editor_msgs(&out);
        assert_eq!(to_editor[0]["request_seq"], 30, "what delve will not answer is answered");
        assert!(!s.is_live());
        assert!(!pending.is_empty());
        assert_eq!(s.release(), vec![], "once");
        assert!(matches!(s.begin_replay()[0], Out::Delve(ref m) if m["command"] == "attach"));
    }

    #[test]
    fn the_editor_cannot_end_or_replace_the_app() {
        let mut s = configured();
        let out = editor(&mut s, 20, "launch", json!({"program": "."}));
        assert_eq!(editor_msgs(&out)[0]["success"], false);
        let bye = to_delve(editor(&mut s, 21, "disconnect", json!({"terminateDebuggee": true})));
        assert_eq!(bye["arguments"]["terminateDebuggee"], false);
        let out = answer(&mut s, &bye, true, json!(null));
        assert_eq!(out.last(), Some(&Out::Close));
    }

    #[test]
    fn a_replay_refused_by_delve_is_reported() {
        let mut s = configured();
        s.delve_lost();
        let replay = s.begin_replay();
        let msgs: Vec<Msg> =
            replay.into_iter().filter_map(|o| if let Out::Delve(m) = o { Some(m) } else { None }).collect();
        answer(&mut s, &msgs[0], true, json!(null));
        s.from_delve(msg(json!({"seq": 1, "type": "response", "request_seq": msgs[1]["seq"], "success": false,
            "command": "setBreakpoints", "message": "Unable to set or clear breakpoints",
            "body": {"error": {"format": "no such file"}}})));
        let out = s.from_delve(msg(json!({"seq": 2, "type": "response", "request_seq": msgs[2]["seq"],
            "success": false, "command": "configurationDone", "message": "Unable to process `configurationDone`: debuggee is running"})));
        let report = out.iter().find_map(|o| if let Out::Replayed(r) = o { Some(r.clone()) } else { None }).unwrap();
        assert_eq!(report.errors, vec!["setBreakpoints: Unable to set or clear breakpoints no such file".to_string()]);
    }
}
