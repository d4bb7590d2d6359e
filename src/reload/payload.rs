//! Which compression a delta gets: the gzip level whose encoding time plus
//! transfer time to the replicas is least, per reload, from what the last
//! reloads measured.
//!
//! The delta's records hold only what moved blocks changed and new code:
//! measured on the hello app's 5.9 MB binary, 31 kB of records after a
//! string edit (level 1: 13.1 kB in 0.4 ms; 9: 11.7 kB in 1.6 ms) and 347 kB
//! after a new handler (level 1: 113 kB in 1.5 ms; 2: 99 kB in 2.6 ms; 6:
//! 86 kB in 13 ms; 9: 85 kB in 39 ms). On loopback or a local cluster a
//! kilobyte costs microseconds, so level 1 wins; over an uplink of a few
//! Mbit/s shared by several replicas each kilobyte costs milliseconds and a
//! stronger level wins.
//!
//! The link is measured by the helper: in a session it reports how long
//! each payload took to arrive ([`crate::wayin::PutStatus::Written`]'s
//! `recv_us`). Replicas receive in parallel over one uplink, so the slowest
//! replica's rate is what the next reload's transfer time is computed with.
//! Level 1 is always encoded first (it is nearly free, and its size anchors
//! the estimate of the others'); a stronger level only when the estimate
//! says it saves more time than it costs.

use std::time::{Duration, Instant};

/// The levels tried beyond 1, with a first guess of their size against
/// level 1's and of their time per MB of records, until measured.
const CANDIDATES: [(u32, f64, f64); 3] = [(2, 0.9, 0.0075), (6, 0.8, 0.037), (9, 0.78, 0.11)];

/// The smallest payload whose arrival measures the link's rate.
const MIN_RATE_BYTES: u64 = 8 << 10;

/// What the last reloads measured; see the module doc.
#[derive(Clone, Debug)]
pub(super) struct Chooser {
    /// Bytes per second the slowest replica received its last payload at
    /// (None: not measured yet, e.g. no session).
    rate: Option<f64>,
    /// Per candidate: size against level 1's, seconds per byte of records.
    seen: [(u32, f64, f64); 3],
}

impl Default for Chooser {
    fn default() -> Self {
        let seen = CANDIDATES.map(|(level, ratio, per_mb)| (level, ratio, per_mb / 1e6));
        Chooser { rate: None, seen }
    }
}

/// How one delta was encoded.
#[derive(Clone, Debug)]
pub(super) struct Encoded {
    pub(super) level: u32,
    /// A stronger level's size against level 1's and its time, when one was encoded.
    pub(super) measured: Option<(u32, f64, Duration)>,
    pub(super) records_len: usize,
}

impl Chooser {
    /// The level to use, level 1's payload being `size1` bytes, for
    /// `records_len` bytes of records; with its expected time (s).
    fn choose(&self, size1: usize, records_len: usize) -> (u32, f64) {
        let Some(rate) = self.rate else { return (1, 0.0) };
        let mut best = (1, size1 as f64 / rate);
        for &(level, ratio, per_byte) in &self.seen {
            let cost = per_byte * records_len as f64 + size1 as f64 * ratio / rate;
            if cost < best.1 {
                best = (level, cost);
            }
        }
        best
    }

    /// Encodes with level 1, then with the level [`Chooser::choose`] picks:
    /// the payload, and how.
    pub(super) fn encode(&self, records: &crate::wayin::DeltaRecords) -> (Vec<u8>, Encoded) {
        let one = records.payload(1);
        let (level, _) = self.choose(one.len(), records.len());
        if level == 1 {
            return (one, Encoded { level, measured: None, records_len: records.len() });
        }
        let start = Instant::now();
        let strong = records.payload(level);
        let measured = Some((level, strong.len() as f64 / one.len().max(1) as f64, start.elapsed()));
        // Never send more than level 1 would have.
        let (payload, level) = if strong.len() < one.len() { (strong, level) } else { (one, 1) };
        (payload, Encoded { level, measured, records_len: records.len() })
    }

    /// Takes what an encoding measured.
    pub(super) fn encoded(&mut self, e: &Encoded) {
        if let Some((level, ratio, took)) = e.measured {
            if let Some(seen) = self.seen.iter_mut().find(|s| s.0 == level) {
                seen.1 = ratio;
                seen.2 = took.as_secs_f64() / e.records_len.max(1) as f64;
            }
        }
    }

    /// Takes the receive rates of one reload's payloads: `(bytes, took)` per
    /// replica that measured one.
    pub(super) fn received(&mut self, arrivals: &[(u64, Duration)]) {
        // A payload of a few packets arrives as fast as the path's latency
        // lets it, whatever the bandwidth: it gives no rate (a string edit's
        // delta is a few hundred bytes).
        let slowest = arrivals
            .iter()
            .filter(|(bytes, _)| *bytes >= MIN_RATE_BYTES)
            .map(|(bytes, took)| *bytes as f64 / took.as_secs_f64().max(1e-6))
            .min_by(|a, b| a.total_cmp(b));
        if slowest.is_some() {
            self.rate = slowest;
        }
    }

    /// The last measured rate, bytes per second.
    pub(super) fn rate(&self) -> Option<f64> {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unmeasured, or fast: level 1. Over a slow link: a stronger level,
    /// the strongest only when its bytes save more than its time.
    #[test]
    fn the_level_follows_the_link() {
        let mut c = Chooser::default();
        // A string edit: 31 kB of records, 13 kB at level 1.
        assert_eq!(c.choose(13_000, 31_000).0, 1, "nothing measured yet");
        c.received(&[(26_000, Duration::from_micros(200))]);
        assert_eq!(c.choose(13_000, 31_000).0, 1, "loopback: 130 MB/s");
        // 10 Mbit/s shared by two replicas: 13 kB take 21 ms at level 1;
        // level 6 saves 3.4 ms of it for 1.1 ms (level 9: 3.7 for 3.4).
        c.received(&[(26_000, Duration::from_millis(42)), (26_000, Duration::from_millis(40))]);
        assert_eq!(c.choose(13_000, 31_000).0, 6);
        // A payload of a packet or two measures latency, not the rate.
        c.received(&[(600, Duration::from_micros(50))]);
        assert_eq!(c.choose(13_000, 31_000).0, 6, "the rate stands");
        // A handler edit (347 kB of records, 113 kB at level 1) at 2 Mbit/s
        // shared by four: level 9's 25 kB less save 0.4 s for 38 ms.
        c.received(&[(113_000, Duration::from_millis(1808))]);
        assert_eq!(c.choose(113_000, 347_000).0, 9);
    }

    /// What an encoding measured replaces the guess for its level; a
    /// stronger level that came out larger is not sent.
    #[test]
    fn measurements_replace_guesses() {
        let mut c = Chooser::default();
        let e = Encoded { level: 6, measured: Some((6, 0.9, Duration::from_millis(59))), records_len: 5_900_000 };
        c.encoded(&e);
        let six = c.seen.iter().find(|s| s.0 == 6).copied().unwrap();
        assert_eq!(six.1, 0.9);
        assert!((six.2 - 1e-8).abs() < 1e-12, "{six:?}");
        c.received(&[]);
        assert_eq!(c.rate(), None, "no arrival, no rate");
    }
}
