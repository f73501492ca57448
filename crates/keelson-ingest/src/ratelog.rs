//! Rate-limited warnings for bad input.
//!
//! A device that sends garbage usually keeps sending it every poll. Each
//! distinct `(source, tag, reason)` is logged at most once per
//! [`LOG_EVERY`]; the next line says how many were suppressed meanwhile.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// The shortest time between two log lines for the same problem.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Remembers when each problem was last logged.
#[derive(Debug, Default)]
pub struct RateLimitedLog {
    last: HashMap<(String, String), (Instant, u64)>,
}

impl RateLimitedLog {
    /// Logs a decoding failure of `tag` at `source`, unless the same tag and
    /// reason were logged within [`LOG_EVERY`]. Returns whether it logged.
    pub fn decode_failed(&mut self, source: &str, tag: &str, reason: &str) -> bool {
        self.log(
            source,
            tag,
            reason,
            "cannot decode value; marking the sample bad",
        )
    }

    /// Logs that the device itself reported `tag` at `source` as bad (an
    /// OPC-UA bad status code), with the same limit as
    /// [`RateLimitedLog::decode_failed`]. Returns whether it logged.
    pub fn bad_status(&mut self, source: &str, tag: &str, reason: &str) -> bool {
        self.log(
            source,
            tag,
            reason,
            "device reports a bad value; marking the sample bad",
        )
    }

    fn log(&mut self, source: &str, tag: &str, reason: &str, text: &'static str) -> bool {
        // Keep the map bounded: a flood of distinct reasons (random payloads)
        // must not grow memory without limit.
        if self.last.len() > 10_000 {
            self.last.retain(|_, (at, _)| at.elapsed() < LOG_EVERY);
        }
        let key = (tag.to_owned(), reason.to_owned());
        let now = Instant::now();
        match self.last.get_mut(&key) {
            Some((at, suppressed)) if now.duration_since(*at) < LOG_EVERY => {
                *suppressed += 1;
                false
            }
            entry => {
                let suppressed = entry.map_or(0, |(_, s)| *s);
                tracing::warn!(
                    source = %source,
                    tag = %tag,
                    reason = %reason,
                    suppressed,
                    "{text}"
                );
                self.last.insert(key, (now, 0));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_suppressed() {
        let mut log = RateLimitedLog::default();
        assert!(log.decode_failed("d", "t", "too short"));
        assert!(!log.decode_failed("d", "t", "too short"));
        assert!(log.decode_failed("d", "t", "not a number"));
        assert!(log.decode_failed("d", "u", "too short"));
    }
}
