//! What a debug session replays to a new delve, decided with no I/O.
//!
//! [`Configured`] records what the editor set up — its `initialize` and
//! `attach` arguments, the breakpoints of each source, function,
//! instruction and exception breakpoints, whether it sent
//! `configurationDone` — already in delve's terms (the binary's paths).
//! After a reload, [`Configured::plan`] is what the new delve is sent, in
//! DAP's configuration order: `attach`, the breakpoint requests, then
//! `configurationDone`, which lets the process run.
//!
//! | the editor sent | replayed as |
//! | --- | --- |
//! | `initialize` | the same arguments (sent first, before the plan) |
//! | `attach` | `mode: remote`, without `stopOnEntry` (a reload never stops the new process at its entry) |
//! | `setBreakpoints` per source | the last list for each source; a source whose list became empty is left out |
//! | `setFunctionBreakpoints`, `setInstructionBreakpoints`, `setExceptionBreakpoints` | the last one of each |
//! | `configurationDone` | the same, last |
//!
//! [`BreakpointIds`] keeps the ids the editor knows: delve numbers
//! breakpoints afresh in every process, and the editor must keep seeing
//! the ids it was given (in `breakpoint` events, `hitBreakpointIds`).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

/// A group of breakpoints the editor sets with one request, in full each time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreakpointSet {
    /// `setBreakpoints` of one source (the binary's path).
    Source(String),
    /// `setFunctionBreakpoints`.
    Function,
    /// `setInstructionBreakpoints`.
    Instruction,
}

impl BreakpointSet {
    /// The set a request sets, if it sets one (`arguments` in delve's terms).
    pub fn of(command: &str, arguments: &Value) -> Option<BreakpointSet> {
        match command {
            "setBreakpoints" => Some(BreakpointSet::Source(arguments["source"]["path"].as_str()?.to_string())),
            "setFunctionBreakpoints" => Some(BreakpointSet::Function),
            "setInstructionBreakpoints" => Some(BreakpointSet::Instruction),
            _ => None,
        }
    }
}

/// What the editor configured, as delve must be told it again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Configured {
    /// `initialize` arguments.
    pub initialize: Option<Value>,
    /// `attach` arguments (as sent: `mode: remote`).
    pub attach: Option<Value>,
    /// Breakpoint requests' arguments, per set.
    pub breakpoints: BTreeMap<BreakpointSet, Value>,
    /// `setExceptionBreakpoints` arguments.
    pub exceptions: Option<Value>,
    /// Whether the editor ended its configuration.
    pub configuration_done: bool,
}

/// One request of a replay.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The DAP command.
    pub command: &'static str,
    /// Its arguments.
    pub arguments: Value,
    /// The breakpoint set it sets, if any.
    pub set: Option<BreakpointSet>,
}

impl Configured {
    /// Records a request the editor sent (arguments in delve's terms);
    /// requests that configure nothing are ignored.
    pub fn record(&mut self, command: &str, arguments: &Value) {
        match command {
            "initialize" => self.initialize = Some(arguments.clone()),
            "attach" => self.attach = Some(arguments.clone()),
            "setExceptionBreakpoints" => self.exceptions = Some(arguments.clone()),
            "configurationDone" => self.configuration_done = true,
            _ => {
                if let Some(set) = BreakpointSet::of(command, arguments) {
                    // All three requests carry the whole set as `breakpoints`.
                    let empty = arguments["breakpoints"].as_array().is_none_or(Vec::is_empty);
                    if empty {
                        self.breakpoints.remove(&set);
                    } else {
                        self.breakpoints.insert(set, arguments.clone());
                    }
                }
            }
        }
    }

    /// The requests that configure a new delve as the editor configured the
    /// old one, after `initialize`: empty when the editor has not attached.
    pub fn plan(&self) -> Vec<Step> {
        let Some(attach) = &self.attach else {
            return Vec::new();
        };
        let mut attach = attach.clone();
        if let Some(a) = attach.as_object_mut() {
            a.remove("stopOnEntry");
            a.insert("mode".into(), "remote".into());
        }
        let mut steps = vec![Step { command: "attach", arguments: attach, set: None }];
        for (set, arguments) in &self.breakpoints {
            let command = match set {
                BreakpointSet::Source(_) => "setBreakpoints",
                BreakpointSet::Function => "setFunctionBreakpoints",
                BreakpointSet::Instruction => "setInstructionBreakpoints",
            };
            steps.push(Step { command, arguments: arguments.clone(), set: Some(set.clone()) });
        }
        if let Some(e) = &self.exceptions {
            steps.push(Step { command: "setExceptionBreakpoints", arguments: e.clone(), set: None });
        }
        if self.configuration_done {
            steps.push(Step { command: "configurationDone", arguments: json!({}), set: None });
        }
        steps
    }

    /// How many breakpoints a replay sets again.
    pub fn breakpoint_count(&self) -> usize {
        self.breakpoints.values().map(|a| a["breakpoints"].as_array().map_or(0, Vec::len)).sum()
    }
}

/// The breakpoint ids the editor knows, kept across delves.
#[derive(Clone, Debug, Default)]
pub struct BreakpointIds {
    last: i64,
    /// Per set, the editor's id of each breakpoint by position, as the
    /// editor was last told (`None`: delve gave it none).
    editor: HashMap<BreakpointSet, Vec<Option<i64>>>,
    /// The delve connected now: its id → the editor's.
    from_delve: HashMap<i64, i64>,
}

impl BreakpointIds {
    fn fresh(&mut self) -> i64 {
        self.last += 1;
        self.last
    }

    /// A new delve: its ids mean nothing yet.
    pub fn new_delve(&mut self) {
        self.from_delve.clear();
    }

    /// The editor's id for one of delve's (a new one for a breakpoint the
    /// editor was never told about).
    pub fn editor_id(&mut self, delve: i64) -> i64 {
        if let Some(e) = self.from_delve.get(&delve) {
            return *e;
        }
        let e = self.fresh();
        self.from_delve.insert(delve, e);
        e
    }

    /// delve answered a request of the editor's: each breakpoint gets the
    /// editor's id (the same one as long as delve keeps its own), and the
    /// positions are remembered for the next replay.
    pub fn answered(&mut self, set: &BreakpointSet, breakpoints: &mut [Value]) {
        let ids = breakpoints
            .iter_mut()
            .map(|bp| {
                let delve = bp["id"].as_i64()?;
                let e = self.editor_id(delve);
                bp["id"] = e.into();
                Some(e)
            })
            .collect();
        self.editor.insert(set.clone(), ids);
    }

    /// Breakpoints answered locally while no delve is connected: unverified,
    /// with ids of their own that the replay will keep.
    pub fn pending(&mut self, set: &BreakpointSet, count: usize, message: &str) -> Vec<Value> {
        let ids: Vec<i64> = (0..count).map(|_| self.fresh()).collect();
        self.editor.insert(set.clone(), ids.iter().copied().map(Some).collect());
        ids.into_iter().map(|id| json!({"id": id, "verified": false, "message": message})).collect()
    }

    /// A new delve answered a replayed request: its breakpoints take the
    /// editor's ids by position. Returns the bodies of the `breakpoint`
    /// events (`reason: changed`) that tell the editor how each one stands
    /// in the new process.
    pub fn replayed(&mut self, set: &BreakpointSet, breakpoints: &mut [Value]) -> Vec<Value> {
        let known = self.editor.get(set).cloned().unwrap_or_default();
        let mut ids = Vec::with_capacity(breakpoints.len());
        let mut events = Vec::new();
        for (i, bp) in breakpoints.iter_mut().enumerate() {
            let editor = known.get(i).copied().flatten();
            match (bp["id"].as_i64(), editor) {
                (Some(delve), Some(e)) => {
                    self.from_delve.insert(delve, e);
                    bp["id"] = e.into();
                    ids.push(Some(e));
                    events.push(json!({"reason": "changed", "breakpoint": bp.clone()}));
                }
                (Some(delve), None) => ids.push(Some(self.editor_id(delve))),
                (None, Some(e)) => {
                    // Not set in the new process (its line changed, say): the editor's stays, unverified.
                    let mut shown = bp.clone();
                    shown["id"] = e.into();
                    shown["verified"] = false.into();
                    ids.push(Some(e));
                    events.push(json!({"reason": "changed", "breakpoint": shown}));
                }
                (None, None) => ids.push(None),
            }
        }
        self.editor.insert(set.clone(), ids);
        events
    }

    /// The editor's ids of breakpoints delve names in a `stopped` event.
    pub fn hit(&mut self, delve_ids: &[Value]) -> Vec<Value> {
        delve_ids.iter().filter_map(Value::as_i64).map(|d| self.editor_id(d).into()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bps(path: &str, lines: &[u64]) -> Value {
        json!({"source": {"name": "main.go", "path": path},
               "breakpoints": lines.iter().map(|l| json!({"line": l})).collect::<Vec<_>>()})
    }

    #[test]
    fn nothing_is_replayed_before_the_editor_attached() {
        let mut c = Configured::default();
        c.record("initialize", &json!({"adapterID": "go"}));
        c.record("setBreakpoints", &bps("example.com/m/main.go", &[3]));
        assert_eq!(c.plan(), vec![]);
    }

    #[test]
    fn the_plan_is_the_configuration_sequence_with_the_last_of_each() {
        let mut c = Configured::default();
        c.record("initialize", &json!({"adapterID": "go", "linesStartAt1": true}));
        c.record("attach", &json!({"request": "attach", "mode": "remote", "stopOnEntry": true, "showLog": true}));
        c.record("setBreakpoints", &bps("example.com/m/main.go", &[3]));
        c.record("setBreakpoints", &bps("example.com/m/lib.go", &[7]));
        c.record("setBreakpoints", &bps("example.com/m/main.go", &[3, 9]));
        c.record("setBreakpoints", &bps("example.com/m/lib.go", &[]));
        c.record("setFunctionBreakpoints", &json!({"breakpoints": [{"name": "main.handler"}]}));
        c.record("setExceptionBreakpoints", &json!({"filters": []}));
        c.record("setExceptionBreakpoints", &json!({"filters": ["unrecovered-panic"]}));
        c.record("threads", &json!({}));
        c.record("configurationDone", &json!({}));
        let plan: Vec<(&str, Value)> = c.plan().into_iter().map(|s| (s.command, s.arguments)).collect();
        assert_eq!(
            plan,
            vec![
                ("attach", json!({"request": "attach", "mode": "remote", "showLog": true})),
                ("setBreakpoints", bps("example.com/m/main.go", &[3, 9])),
                ("setFunctionBreakpoints", json!({"breakpoints": [{"name": "main.handler"}]})),
                ("setExceptionBreakpoints", json!({"filters": ["unrecovered-panic"]})),
                ("configurationDone", json!({})),
            ]
        );
        assert_eq!(c.breakpoint_count(), 3);
        assert_eq!(c.initialize, Some(json!({"adapterID": "go", "linesStartAt1": true})));
    }

    #[test]
    fn an_attach_without_mode_is_replayed_as_remote_and_configuration_done_only_once_sent() {
        let mut c = Configured::default();
        c.record("attach", &json!({"request": "attach"}));
        c.record("setBreakpoints", &bps("example.com/m/main.go", &[3]));
        let plan = c.plan();
        assert_eq!(plan[0].arguments, json!({"request": "attach", "mode": "remote"}));
        assert_eq!(plan.last().unwrap().command, "setBreakpoints", "no configurationDone the editor did not send");
    }

    #[test]
    fn the_editor_keeps_its_ids_across_delves() {
        let main = BreakpointSet::Source("example.com/m/main.go".into());
        let lib = BreakpointSet::Source("example.com/m/lib.go".into());
        let mut ids = BreakpointIds::default();
        // First delve: ids 1, 2 in main.go, 3 in lib.go.
        let mut a = vec![json!({"id": 1, "verified": true, "line": 3}), json!({"id": 2, "verified": true, "line": 9})];
        ids.answered(&main, &mut a);
        let mut b = vec![json!({"id": 3, "verified": true, "line": 7})];
        ids.answered(&lib, &mut b);
        let editor: Vec<i64> = a.iter().chain(&b).map(|v| v["id"].as_i64().unwrap()).collect();
        assert_eq!(editor, [1, 2, 3]);
        // A new delve numbers them in the replay's order: lib.go first.
        ids.new_delve();
        let mut b2 = vec![json!({"id": 1, "verified": true, "line": 7})];
        let ev_b = ids.replayed(&lib, &mut b2);
        let mut a2 = vec![
            json!({"id": 2, "verified": true, "line": 3}),
            json!({"verified": false, "message": "could not find statement"}),
        ];
        let ev_a = ids.replayed(&main, &mut a2);
        assert_eq!(b2[0]["id"], 3);
        assert_eq!(a2[0]["id"], 1);
        let events: Vec<(i64, bool)> = ev_b
            .iter()
            .chain(&ev_a)
            .map(|e| (e["breakpoint"]["id"].as_i64().unwrap(), e["breakpoint"]["verified"].as_bool().unwrap()))
            .collect();
        assert_eq!(events, [(3, true), (1, true), (2, false)], "every breakpoint is reported, by the editor's id");
        // A stop at delve's new id 2 is a stop at the editor's 1.
        assert_eq!(ids.hit(&[json!(2)]), vec![json!(1)]);
        // A breakpoint the editor never saw (set by another client) gets an id of its own.
        let other = ids.editor_id(40);
        assert!(![1, 2, 3].contains(&other));
        // A later live answer keeps the ids delve keeps.
        let mut a3 =
            vec![json!({"id": 2, "verified": true, "line": 3}), json!({"id": 5, "verified": true, "line": 11})];
        ids.answered(&main, &mut a3);
        assert_eq!(a3[0]["id"], 1);
        assert!(![1, 2, 3, other].contains(&a3[1]["id"].as_i64().unwrap()));
    }

    #[test]
    fn breakpoints_set_while_no_delve_is_connected_keep_their_ids_in_the_replay() {
        let main = BreakpointSet::Source("example.com/m/main.go".into());
        let mut ids = BreakpointIds::default();
        let pending = ids.pending(&main, 2, "pending");
        assert!(pending.iter().all(|b| b["verified"] == false));
        ids.new_delve();
        let mut answer = vec![json!({"id": 1, "verified": true}), json!({"id": 2, "verified": true})];
        let events = ids.replayed(&main, &mut answer);
        let got: Vec<&Value> = events.iter().map(|e| &e["breakpoint"]["id"]).collect();
        assert_eq!(got, vec![&pending[0]["id"], &pending[1]["id"]]);
    }
}
