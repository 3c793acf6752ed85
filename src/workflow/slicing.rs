//! The slice count when the spec leaves it to the copier (`spec.source.slices` unset or
//! `auto`): enough reads in flight to hide the source's round trip. Reads within a slice are
//! serial (each page needs the previous page's cursor), so across a WAN one slice spends most of
//! its time waiting: a page that takes `t` to answer and carry arrives every `t + rtt`, and
//! `(t + rtt) / t` slices read as fast as one slice without the latency.
//!
//! The count is chosen ONCE per pass, before any slice starts, from what the compression probe
//! ([`super::compression`]) measured anyway: one round trip and one timed page, scaled to the
//! copy's page. It partitions the source, so it is never decided again for a copy that has
//! checkpoints (`status.slices`, the scale-out Leases): a resumed copy reads with the count its
//! checkpoints were written with, and a lost point in time restarts the same slices.
//!
//! What the default does:
//! - A round trip under [`LOCAL_ROUND_TRIP`] (loopback, one data centre), a page answered in
//!   about the time of a round trip or less of latency than [`SLACK`] of a slice's speed, or a
//!   copy of a page or two: today's count (1 when unset, one per primary shard for `auto`).
//! - Otherwise more slices, up to [`MAX_SLICES`], the policy's `maxSlices`, the memory bound
//!   ([`MEMORY_BUDGET`], after the README's estimate: each slice holds about one page and the
//!   bulks cut from it) and the pages there are; never fewer than today's count.
//! - Scroll (no point in time): each slice above the shard count makes every shard filter its
//!   documents by `_id` hash on the slice's first page (O(documents) per slice and shard, and
//!   as many bits of heap), and a lost scroll page restarts its whole slice; so scroll goes to
//!   at most max(shards, [`SCROLL_MAX`]) slices by measurement. Measured (docs/benchmarks.md,
//!   `bench.sh --wan --scroll-slices`): over 2 shards the source's heap in use grew from 271
//!   to 389 MiB from 1 to 16 slices at about the same CPU per document, and nothing was gained
//!   past 2 slices on that machine.
//!
//! The destination's refusals are not measured here: a 429 `cluster_block_exception` still
//! stops the copy as a stuck destination whatever the count.

use std::time::Duration;

/// The most slices a measurement chooses (also `auto`'s cap by shards, and the policy's count
/// for `auto`).
pub const MAX_SLICES: u32 = 16;

/// A round trip under this is local: nothing to hide.
pub const LOCAL_ROUND_TRIP: Duration = Duration::from_millis(2);

/// A slice is added for latency only when it costs more than this fraction of a page's time:
/// `needed` slices are rounded up only past `SLACK` (2.2 → 2, 2.3 → 3), which keeps a copy
/// whose latency costs a few percent at today's count.
pub const SLACK: f64 = 0.2;

/// Scroll: slices by measurement above the shard count go at most this far.
pub const SCROLL_MAX: u32 = 4;

/// What the slices, the bulk queue and the writers may hold together by the estimate
/// [`memory_estimate`]. The process measured up to 70 MiB above the estimate (the WAN bench:
/// 170 MiB peak with one slice of 10 MiB pages, estimated 100), and the bench and the memory
/// test hold it under 256 MiB: so 160, three slices of 10 MiB pages.
pub const MEMORY_BUDGET: u64 = 160 << 20;

/// The process's own memory besides pages and bulks (the README's constant).
const CONSTANT: u64 = 40 << 20;

/// What prepare saw of the source index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceShape {
    /// Primary shards (1 when unknown).
    pub shards: u32,
    /// Documents the copy reads (the source's `_count`, capped by `maxDocs`), when known.
    pub docs: Option<u64>,
}

/// What pre-flight measured of the source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// One round trip to the source.
    pub round_trip: Duration,
    /// One page of the copy's size answered and carried, without the round trip.
    pub page_time: Duration,
    /// Bytes of such a page (at most the copy's page budget).
    pub page_bytes: u64,
    /// Pages the copy reads in all, when known.
    pub pages: Option<u64>,
}

/// What bounds the choice besides the measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Today's count without a measurement: 1 when unset, one per primary shard (at most 16)
    /// for `auto`. The choice is never below it.
    pub floor: u32,
    /// The source index's primary shards.
    pub shards: u32,
    /// Whether the source is read by scroll (no point in time).
    pub scroll: bool,
    /// The policy's `maxSlices`, when one applies.
    pub policy_max: Option<u32>,
    /// `spec.dest.bulkBytes`.
    pub bulk_bytes: u64,
    /// `spec.dest.maxConcurrentBulk`, when set (else twice the slices, 4 to 16).
    pub max_concurrent_bulk: Option<u32>,
}

/// The slice count and, when the measurement raised it, why (for the Copying message).
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub slices: u32,
    pub why: Option<String>,
}

/// The slice count for a copy measured as `m` within `b`; `dest_page` is the destination's time
/// to write one page, when known (a slower destination needs fewer reads in flight).
pub fn decide(m: &Measured, dest_page: Option<Duration>, b: &Bounds) -> Choice {
    let floor = b.floor.max(1);
    let keep = Choice {
        slices: floor,
        why: None,
    };
    if m.round_trip < LOCAL_ROUND_TRIP {
        return keep;
    }
    // The pace one slice keeps without latency: its own page, or the destination's if slower.
    let pace = m
        .page_time
        .max(dest_page.unwrap_or_default())
        .max(Duration::from_millis(1));
    let needed = (m.page_time + m.round_trip).as_secs_f64() / pace.as_secs_f64();
    let wanted = (needed - SLACK).ceil().clamp(1.0, f64::from(MAX_SLICES)) as u32;
    if wanted <= floor {
        return keep;
    }
    let mut caps = vec![(MAX_SLICES, "16 at most".to_string())];
    if let Some(p) = b.policy_max {
        caps.push((p, "the policy's maxSlices".into()));
    }
    if b.scroll {
        caps.push((
            b.shards.max(SCROLL_MAX),
            format!("scroll over {} shard(s)", b.shards),
        ));
    }
    caps.push((memory_slices(m.page_bytes, b), "the memory bound".into()));
    if let Some(pages) = m.pages {
        caps.push((
            pages.clamp(1, u64::from(MAX_SLICES)) as u32,
            format!("{pages} page(s) to read"),
        ));
    }
    let (cap, by) = caps
        .into_iter()
        .min_by_key(|(n, _)| *n)
        .expect("one cap at least");
    let slices = wanted.min(cap).max(floor);
    if slices == floor {
        return keep;
    }
    let capped = if slices < wanted {
        format!(", {wanted} wanted, capped by {by}")
    } else {
        String::new()
    };
    Choice {
        slices,
        why: Some(format!(
            "{slices} slices for a {} ms round trip (a page takes {} ms without it{capped})",
            m.round_trip.as_millis(),
            m.page_time.as_millis(),
        )),
    }
}

/// The estimated peak of `slices` slices reading pages of `page_bytes`: each holds a page and
/// the bulks cut from it (twice the page), and the queue and the writers hold a bulk each
/// (a bulk is cut from one page, so it is at most the page), plus the process's constant.
pub fn memory_estimate(slices: u32, page_bytes: u64, b: &Bounds) -> u64 {
    let writers = b
        .max_concurrent_bulk
        .unwrap_or_else(|| super::prepared::default_writers(slices))
        .max(1);
    let bulk = b.bulk_bytes.min(page_bytes).max(1);
    u64::from(slices) * 2 * page_bytes + 2 * u64::from(writers) * bulk + CONSTANT
}

/// The most slices whose [`memory_estimate`] stays within [`MEMORY_BUDGET`] (at least 1).
fn memory_slices(page_bytes: u64, b: &Bounds) -> u32 {
    (1..=MAX_SLICES)
        .rev()
        .find(|&s| memory_estimate(s, page_bytes, b) <= MEMORY_BUDGET)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn measured(rtt: u64, page: u64, page_bytes: u64) -> Measured {
        Measured {
            round_trip: ms(rtt),
            page_time: ms(page),
            page_bytes,
            pages: None,
        }
    }

    fn unset() -> Bounds {
        Bounds {
            floor: 1,
            shards: 2,
            scroll: false,
            policy_max: None,
            bulk_bytes: 5 * MIB,
            max_concurrent_bulk: None,
        }
    }

    #[test]
    fn loopback_keeps_todays_count() {
        let c = decide(&measured(0, 5, MIB), None, &unset());
        assert_eq!(
            c,
            Choice {
                slices: 1,
                why: None
            }
        );
        // A busy loopback (1.5 ms) against a fast page is still local.
        assert_eq!(decide(&measured(1, 2, MIB), None, &unset()).slices, 1);
        let auto = Bounds {
            floor: 2,
            ..unset()
        };
        assert_eq!(decide(&measured(0, 5, MIB), None, &auto).slices, 2);
    }

    #[test]
    fn enough_reads_in_flight_to_cover_the_round_trip() {
        // 25 ms each way, a page of 40 ms: (40 + 50) / 40 = 2.25 → 3.
        let c = decide(&measured(50, 40, 4 * MIB), None, &unset());
        assert_eq!(c.slices, 3);
        assert_eq!(
            c.why.as_deref(),
            Some("3 slices for a 50 ms round trip (a page takes 40 ms without it)")
        );
        // 50 ms each way: (40 + 100) / 40 = 3.5 → 4.
        assert_eq!(
            decide(&measured(100, 40, 4 * MIB), None, &unset()).slices,
            4
        );
    }

    #[test]
    fn latency_worth_less_than_the_slack_keeps_one_slice() {
        // 5 ms against a page of 100 ms: 1.05 slices needed.
        assert_eq!(decide(&measured(5, 100, 4 * MIB), None, &unset()).slices, 1);
        // 2.15 needed: two slices hide 93% of it.
        assert_eq!(decide(&measured(23, 20, MIB), None, &unset()).slices, 2);
    }

    #[test]
    fn a_slow_destination_needs_fewer_reads_in_flight() {
        // Reading a page takes 20 ms but writing it 120: the destination sets the pace.
        assert_eq!(decide(&measured(100, 20, MIB), None, &unset()).slices, 6);
        assert_eq!(
            decide(&measured(100, 20, MIB), Some(ms(120)), &unset()).slices,
            1
        );
    }

    #[test]
    fn at_most_16_and_the_policys_max() {
        assert_eq!(
            decide(&measured(200, 2, 100_000), None, &unset()).slices,
            16
        );
        let policy = Bounds {
            policy_max: Some(3),
            ..unset()
        };
        let c = decide(&measured(200, 2, 100_000), None, &policy);
        assert_eq!(c.slices, 3);
        assert!(
            c.why.unwrap().contains("capped by the policy's maxSlices"),
            "the message says what held it back"
        );
    }

    #[test]
    fn never_below_autos_one_per_shard() {
        let auto = Bounds {
            floor: 8,
            shards: 8,
            ..unset()
        };
        // The latency asks for 3: auto's 8 stay.
        assert_eq!(
            decide(&measured(50, 40, MIB), None, &auto),
            Choice {
                slices: 8,
                why: None
            }
        );
        // Large pages: the memory bound is below 8, and still 8 (today's auto).
        assert_eq!(decide(&measured(400, 20, 10 * MIB), None, &auto).slices, 8);
    }

    #[test]
    fn scroll_stays_near_the_shard_count() {
        let scroll = Bounds {
            scroll: true,
            ..unset()
        };
        let c = decide(&measured(200, 10, MIB), None, &scroll);
        assert_eq!(c.slices, SCROLL_MAX);
        assert!(c.why.unwrap().contains("scroll over 2 shard(s)"));
        let many = Bounds {
            shards: 12,
            ..scroll
        };
        assert_eq!(decide(&measured(200, 10, MIB), None, &many).slices, 12);
    }

    #[test]
    fn the_memory_bound_holds_large_pages_back() {
        // Pages at the 10 MiB budget (1 MB documents): 3 slices estimate 160 MiB, 4 would 200.
        let b = unset();
        assert_eq!(memory_estimate(3, 10 * MIB, &b), 160 * MIB);
        assert_eq!(memory_estimate(4, 10 * MIB, &b), 200 * MIB);
        assert_eq!(memory_slices(10 * MIB, &b), 3);
        let c = decide(&measured(100, 20, 10 * MIB), None, &b);
        assert_eq!(c.slices, 3);
        assert!(c.why.unwrap().contains("capped by the memory bound"));
        // Every choice stays within the budget the memory test's 256 MiB leaves room for.
        for page in [MIB / 10, MIB, 4 * MIB, 10 * MIB, 20 * MIB] {
            let s = decide(&measured(400, 5, page), None, &b).slices;
            assert!(
                s == 1 || memory_estimate(s, page, &b) <= MEMORY_BUDGET,
                "{s} slices of {page} byte pages"
            );
        }
    }

    #[test]
    fn a_copy_of_a_few_pages_gets_no_more_slices_than_pages() {
        let few = Measured {
            pages: Some(2),
            ..measured(100, 10, MIB)
        };
        assert_eq!(decide(&few, None, &unset()).slices, 2);
        let one = Measured {
            pages: Some(1),
            ..few
        };
        assert_eq!(decide(&one, None, &unset()).slices, 1);
    }
}
