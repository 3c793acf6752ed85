//! Where a copy's time went: what the readers and the writers waited on, summed over every
//! slice and writer, and which side that makes the limit.
//!
//! A reader's time is its page fetches (the source answering plus the round trip), waiting
//! for the throttle (`requestsPerSecond`), waiting for room in the bounded bulk queue (the
//! writers, i.e. the destination, are behind) and its own work (parsing, cutting bulks). A
//! writer's time is its `_bulk` requests (retries and 429 back-off included) and waiting for a
//! batch (the readers are behind). Only shares are reported, so the numbers do not depend on
//! how many slices and writers ran.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The running sums, in nanoseconds, shared by the readers and writers of one copy.
#[derive(Debug, Default)]
pub struct TimeSpent {
    reading: AtomicU64,
    source: AtomicU64,
    throttle: AtomicU64,
    queue_full: AtomicU64,
    bulk: AtomicU64,
    writer_idle: AtomicU64,
}

/// One part of a reader's or writer's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A reader from its first page to its end (the whole of a reader's time).
    Reading,
    /// A reader waiting for the next page from the source.
    Source,
    /// A reader waiting for the throttle.
    Throttle,
    /// A reader waiting for room in the bulk queue.
    QueueFull,
    /// A writer in a `_bulk` request (with its resends).
    Bulk,
    /// A writer waiting for a batch.
    WriterIdle,
}

impl TimeSpent {
    /// Adds `d` to `part`.
    pub fn add(&self, part: Part, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counter(part).fetch_add(nanos, Relaxed);
    }

    fn counter(&self, part: Part) -> &AtomicU64 {
        match part {
            Part::Reading => &self.reading,
            Part::Source => &self.source,
            Part::Throttle => &self.throttle,
            Part::QueueFull => &self.queue_full,
            Part::Bulk => &self.bulk,
            Part::WriterIdle => &self.writer_idle,
        }
    }

    fn get(&self, part: Part) -> Duration {
        Duration::from_nanos(self.counter(part).load(Relaxed))
    }

    /// The shares so far; `None` before any reader and writer has measured anything (e.g. a
    /// copy the destination's own reindex made).
    pub fn split(&self) -> Option<TimeSplit> {
        TimeSplit::from_sums(
            self.get(Part::Reading),
            self.get(Part::Source),
            self.get(Part::Throttle),
            self.get(Part::QueueFull),
            self.get(Part::Bulk),
            self.get(Part::WriterIdle),
        )
    }
}

/// Where the time went, as shares of the readers' and of the writers' time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeSplit {
    /// Of the readers' time: waiting for the source's pages.
    pub source: f64,
    /// Of the readers' time: waiting for the throttle.
    pub throttle: f64,
    /// Of the readers' time: waiting for room in the bulk queue.
    pub queue_full: f64,
    /// Of the writers' time: in `_bulk` requests.
    pub bulk: f64,
}

/// A reader or writer part at or above this share of its side's time makes that side the limit.
const LIMIT_SHARE: f64 = 0.25;

/// Writers in bulk requests at least this share of their time are as busy as the destination
/// lets them be: it is the limit even when the readers rarely find the queue full.
const BUSY_WRITERS: f64 = 0.9;

/// Which side held the copy back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `requestsPerSecond`: readers waited for the throttle.
    Throttle,
    /// The destination: readers waited for room in the queue while writers were in bulks.
    Destination,
    /// The source (its answers and the round trip): writers waited for batches.
    Source,
    /// Neither side waited much on the other: the copier's own work or both clusters at once.
    Balanced,
}

impl TimeSplit {
    fn from_sums(
        reading: Duration,
        source: Duration,
        throttle: Duration,
        queue_full: Duration,
        bulk: Duration,
        writer_idle: Duration,
    ) -> Option<TimeSplit> {
        let writing = bulk + writer_idle;
        if reading.is_zero() || writing.is_zero() {
            return None;
        }
        let share = |d: Duration, of: Duration| (d.as_secs_f64() / of.as_secs_f64()).min(1.0);
        Some(TimeSplit {
            source: share(source, reading),
            throttle: share(throttle, reading),
            queue_full: share(queue_full, reading),
            bulk: share(bulk, writing),
        })
    }

    /// The side that held the copy back: the throttle first (a limit someone set), then a full
    /// queue or writers always in bulk requests (the destination is behind), then idle writers
    /// (the source is behind).
    pub fn limit(&self) -> Limit {
        if self.throttle >= LIMIT_SHARE {
            Limit::Throttle
        } else if self.queue_full >= LIMIT_SHARE || self.bulk >= BUSY_WRITERS {
            Limit::Destination
        } else if 1.0 - self.bulk >= LIMIT_SHARE && self.source >= LIMIT_SHARE {
            Limit::Source
        } else {
            Limit::Balanced
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Throttle => "requestsPerSecond was the limit",
            Limit::Destination => "the destination was the limit",
            Limit::Source => "the source (its answers and the round trip) was the limit",
            Limit::Balanced => "neither cluster waited much on the other",
        })
    }
}

impl fmt::Display for TimeSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| (x * 100.0).round() as u32;
        write!(
            f,
            "readers waited on the source {}% of their time, on a full bulk queue {}%, on the throttle {}%; writers were in bulk requests {}% of theirs: {}",
            pct(self.source),
            pct(self.queue_full),
            pct(self.throttle),
            pct(self.bulk),
            self.limit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(
        reading: u64,
        source: u64,
        throttle: u64,
        queue: u64,
        bulk: u64,
        idle: u64,
    ) -> TimeSplit {
        let ms = Duration::from_millis;
        TimeSplit::from_sums(
            ms(reading),
            ms(source),
            ms(throttle),
            ms(queue),
            ms(bulk),
            ms(idle),
        )
        .expect("measured")
    }

    #[test]
    fn idle_writers_and_readers_waiting_on_pages_make_the_source_the_limit() {
        // One slice across 50 ms each way: pages arrive every 150 ms, bulks take 40.
        let s = split(10_000, 7_000, 0, 0, 2_700, 7_300);
        assert_eq!(s.limit(), Limit::Source);
        assert_eq!(
            s.to_string(),
            "readers waited on the source 70% of their time, on a full bulk queue 0%, on the throttle 0%; writers were in bulk requests 27% of theirs: the source (its answers and the round trip) was the limit"
        );
    }

    #[test]
    fn readers_blocked_on_a_full_queue_make_the_destination_the_limit() {
        let s = split(10_000, 1_000, 0, 6_000, 9_500, 500);
        assert_eq!(s.limit(), Limit::Destination);
    }

    #[test]
    fn writers_always_in_bulk_requests_make_the_destination_the_limit() {
        // Two slices across 25 ms: the queue is rarely full, but the writers never wait.
        let s = split(10_000, 7_900, 0, 1_500, 9_900, 100);
        assert_eq!(s.limit(), Limit::Destination);
    }

    #[test]
    fn the_throttle_comes_first_because_someone_set_it() {
        let s = split(10_000, 1_000, 5_000, 3_000, 4_000, 6_000);
        assert_eq!(s.limit(), Limit::Throttle);
    }

    #[test]
    fn busy_writers_and_a_source_that_keeps_up_are_balanced() {
        let s = split(10_000, 2_000, 0, 1_000, 8_000, 2_000);
        assert_eq!(s.limit(), Limit::Balanced);
    }

    #[test]
    fn nothing_measured_on_either_side_gives_no_split() {
        let t = TimeSpent::default();
        assert_eq!(t.split(), None);
        t.add(Part::Reading, Duration::from_secs(1));
        assert_eq!(t.split(), None, "no writer time yet");
        t.add(Part::WriterIdle, Duration::from_secs(1));
        t.add(Part::Source, Duration::from_secs(3));
        assert_eq!(
            t.split().unwrap().source,
            1.0,
            "a share is at most the whole"
        );
    }
}
