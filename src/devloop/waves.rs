//! Which services one save touched, and when the last of them is done:
//! pure bookkeeping behind [`DevEvent::ReloadedAll`].
//!
//! Every build input change is dispatched to the services it concerns
//! with a sequence number. Changes dispatched close together (an editor's
//! save-all, a `git checkout`: within [`JOIN`] of the wave's last one) form
//! one *wave*. A service reports each build's end with the highest sequence
//! number that build covered; a wave is done for a service once a report
//! covers every change the wave sent it, and done when every service it
//! touched is.
//!
//! [`DevEvent::ReloadedAll`]: super::events::DevEvent::ReloadedAll

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Changes this close to a wave's last one join it.
pub const JOIN: Duration = Duration::from_millis(500);
/// A wave not done after this long is dropped unreported (a service that
/// never reported: it stopped, or its change was not a build after all).
const FORGET: Duration = Duration::from_secs(600);

/// How one service's build ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ended {
    /// The new binary answers.
    Reloaded,
    /// The build produced the binary it already runs.
    Unchanged,
    /// A compile error, or a replica or the probe failed.
    Failed,
}

impl Ended {
    /// As `reloaded_all` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Reloaded => "reloaded",
            Ended::Unchanged => "unchanged",
            Ended::Failed => "failed",
        }
    }
}

struct Wave {
    started: Instant,
    last: Instant,
    files: Vec<String>,
    /// Service → the highest sequence number the wave sent it.
    wants: BTreeMap<usize, u64>,
    /// Service → how it ended and when.
    done: BTreeMap<usize, (Ended, Instant)>,
}

/// A finished wave that touched several services.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// The changed files, in the order they came.
    pub files: Vec<String>,
    /// First change until the last service ended.
    pub total: Duration,
    /// Each service (in session order): how it ended, and after how long.
    pub services: Vec<(usize, Ended, Duration)>,
}

/// The open waves.
#[derive(Default)]
pub struct Waves {
    next: u64,
    open: Vec<Wave>,
}

impl Waves {
    /// Records that the change of `file` goes to `service` at `now`;
    /// returns its sequence number (for the service to report back).
    pub fn dispatched(&mut self, now: Instant, service: usize, file: &str) -> u64 {
        self.next += 1;
        let seq = self.next;
        self.open.retain(|w| now.duration_since(w.started) < FORGET);
        let joinable = self.open.last_mut().filter(|w| now.duration_since(w.last) < JOIN);
        let wave = match joinable {
            Some(w) => w,
            None => {
                self.open.push(Wave {
                    started: now,
                    last: now,
                    files: Vec::new(),
                    wants: BTreeMap::new(),
                    done: BTreeMap::new(),
                });
                self.open.last_mut().expect("just pushed")
            }
        };
        wave.last = now;
        if !wave.files.iter().any(|f| f == file) {
            wave.files.push(file.to_string());
        }
        wave.wants.insert(service, seq);
        // A service that had ended for this wave has new work in it.
        wave.done.remove(&service);
        seq
    }

    /// Records that `service` ended a build covering every change up to
    /// `covered`; returns the waves this finished that touched two
    /// services or more.
    pub fn ended(&mut self, now: Instant, service: usize, covered: u64, how: Ended) -> Vec<Finished> {
        for w in &mut self.open {
            if w.wants.get(&service).is_some_and(|&want| want <= covered) {
                w.done.entry(service).or_insert((how, now));
            }
        }
        let mut finished = Vec::new();
        self.open.retain(|w| {
            if w.done.len() < w.wants.len() {
                return true;
            }
            if w.wants.len() >= 2 {
                let last = w.done.values().map(|(_, t)| *t).max().unwrap_or(now);
                finished.push(Finished {
                    files: w.files.clone(),
                    total: last.duration_since(w.started),
                    services: w.done.iter().map(|(&s, &(e, t))| (s, e, t.duration_since(w.started))).collect(),
                });
            }
            false
        });
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A shared package edit touches three services; the wave ends when the
    /// slowest is done, with each one's time; a single service's edit never
    /// makes a summary.
    #[test]
    fn a_save_touching_three_services_ends_with_the_slowest() {
        let t0 = Instant::now();
        let mut w = Waves::default();
        let seqs: Vec<u64> = (0..3).map(|s| w.dispatched(t0, s, "internal/price/p.go")).collect();
        assert!(w.ended(t0 + ms(500), 0, seqs[0], Ended::Reloaded).is_empty());
        assert!(w.ended(t0 + ms(610), 2, seqs[2], Ended::Failed).is_empty());
        let done = w.ended(t0 + ms(580), 1, seqs[1], Ended::Reloaded);
        assert_eq!(
            done,
            [Finished {
                files: vec!["internal/price/p.go".into()],
                total: ms(610),
                services: vec![
                    (0, Ended::Reloaded, ms(500)),
                    (1, Ended::Reloaded, ms(580)),
                    (2, Ended::Failed, ms(610))
                ],
            }]
        );
        let one = w.dispatched(t0 + ms(5000), 1, "cmd/worker/main.go");
        assert!(w.ended(t0 + ms(5400), 1, one, Ended::Reloaded).is_empty(), "one service: no summary");
    }

    /// A build that started before the save's last change does not finish
    /// the wave for that service: the next build must cover it.
    #[test]
    fn a_build_must_cover_the_waves_last_change() {
        let t0 = Instant::now();
        let mut w = Waves::default();
        let a = w.dispatched(t0, 0, "go.mod");
        let b = w.dispatched(t0, 1, "go.mod");
        let a2 = w.dispatched(t0 + ms(100), 0, "internal/x.go");
        assert!(w.ended(t0 + ms(300), 0, a, Ended::Reloaded).is_empty(), "a2 not covered");
        assert!(w.ended(t0 + ms(400), 1, b, Ended::Reloaded).is_empty());
        let done = w.ended(t0 + ms(700), 0, a2, Ended::Reloaded);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].files, ["go.mod", "internal/x.go"]);
        assert_eq!(done[0].total, ms(700));
    }

    /// Changes further apart than JOIN are separate saves.
    #[test]
    fn saves_apart_are_separate_waves() {
        let t0 = Instant::now();
        let mut w = Waves::default();
        let a = w.dispatched(t0, 0, "a.go");
        let b = w.dispatched(t0 + JOIN + ms(1), 1, "b.go");
        assert!(w.ended(t0 + ms(900), 0, a, Ended::Reloaded).is_empty());
        assert!(w.ended(t0 + ms(900), 1, b, Ended::Reloaded).is_empty(), "two one-service waves: no summary");
    }
}
