//! Response compression by measurement, not by host name. Across a slow link the bytes are the
//! limit and gzip'd pages copy several times faster (the WAN bench's 100 Mbit/s row: gzip off
//! reached 0.34 of gzip on); on a fast link the source's and the copier's CPU are, and gzip
//! costs a third of the speed (loopback: 0.65–0.7 of uncompressed; docs/benchmarks.md). Before
//! the copy reads the source, one page of about 2 MiB (sized from one document) is read
//! uncompressed and timed: its bytes over the time
//! it took beyond the source's own `took` and one round trip are the link's speed, and gzip is
//! asked for when that is below [`GZIP_BELOW`]. `source.remote.compressResponses` set in the
//! spec always wins; a page too small to judge keeps the host-name default.

use crate::api::RemoteReindexSpec;
use crate::search::{SearchClient, TimedPage};
use std::time::Duration;

/// Below this link speed (bytes per second, 200 Mbit/s) gzip'd responses pay for their CPU.
pub const GZIP_BELOW: f64 = 25e6;

/// Pages smaller than this say more about fixed costs than about the link.
const MIN_SAMPLE_BYTES: u64 = 64 * 1024;

/// The timed page aims at this many bytes (held in memory once, before the copy starts).
const SAMPLE_BYTES: u64 = 2 << 20;

/// Documents in the timed page at most (and never more than the copy's own page size).
const SAMPLE_DOCS: u64 = 500;

/// Documents in the timed page for documents of `per_doc` bytes: about [`SAMPLE_BYTES`], at
/// least one, at most `max_docs`.
pub fn sample_docs(per_doc: u64, max_docs: u64) -> u32 {
    (SAMPLE_BYTES / per_doc.max(1)).clamp(1, max_docs.max(1)) as u32
}

/// The link's speed (bytes per second) from one timed page and one round trip, or `None` when
/// the page is too small to judge.
pub fn link_speed(page: TimedPage, round_trip: Duration) -> Option<f64> {
    if page.bytes < MIN_SAMPLE_BYTES {
        return None;
    }
    let transfer = page
        .elapsed
        .saturating_sub(page.server)
        .saturating_sub(round_trip)
        .max(Duration::from_millis(1));
    Some(page.bytes as f64 / transfer.as_secs_f64())
}

/// Whether gzip'd responses copy faster over a link of this speed.
pub fn gzip_pays(bytes_per_second: f64) -> bool {
    bytes_per_second < GZIP_BELOW
}

/// What the probe measured of the source (uncompressed): one round trip, the first document
/// alone, and the timed page. The slice count ([`super::slicing`]) is chosen from it too.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// `GET /`.
    pub round_trip: Duration,
    /// One document: its size bounds the timed page.
    pub one: TimedPage,
    /// About [`SAMPLE_BYTES`] of documents.
    pub page: TimedPage,
}

impl Probe {
    /// The round trip without what the source spent answering: the lesser of `GET /` and the
    /// one-document page beyond its `took` (two samples of the same path; on a busy machine
    /// either may have waited for a CPU).
    pub fn latency(&self) -> Duration {
        self.round_trip
            .min(self.one.elapsed.saturating_sub(self.one.server))
    }
}

/// Measures the link to `spec`'s source and sets `source`'s response compression from it,
/// unless the spec decides; returns what was chosen and why, for the Copying message, and the
/// measurement. With the compression set by the spec the probe runs only when `measure` asks
/// (the slice count needs it), and leaves the spec's setting in force.
pub async fn choose(
    spec: &RemoteReindexSpec,
    source: &SearchClient,
    measure: bool,
) -> (Option<String>, Option<Probe>) {
    let decide = spec.source.remote.compress_responses.is_none();
    if !decide && !measure {
        return (None, None);
    }
    let default = source.compresses_responses();
    // The sample must arrive uncompressed: its bytes are what the link carries without gzip.
    if source.set_compress_responses(false).is_err() {
        return (None, None);
    }
    let max_docs = spec.source.size.map_or(SAMPLE_DOCS, |s| {
        (s.clamp(1, 10_000) as u64).min(SAMPLE_DOCS)
    });
    let (index, query) = (&spec.source.index, spec.source.query.as_ref());
    let probe = async {
        let round_trip = source.timed_round_trip().await.ok()?;
        // One document first: its size bounds the timed page to about SAMPLE_BYTES, so large
        // documents never make the sample a memory spike.
        let one = source.timed_page(index, query, 1).await.ok()?;
        let size = sample_docs(one.bytes, max_docs);
        let page = if size <= 1 {
            one
        } else {
            source.timed_page(index, query, size).await.ok()?
        };
        Some(Probe {
            round_trip,
            one,
            page,
        })
    }
    .await;
    if !decide {
        // The spec's setting stays in force.
        let _ = source.set_compress_responses(default);
        return (None, probe);
    }
    let (on, why) = match probe.map(|p| (link_speed(p.page, p.round_trip), p.page)) {
        Some((Some(speed), _)) => (
            gzip_pays(speed),
            format!("link measured at {:.1} MB/s", speed / 1e6),
        ),
        Some((None, page)) => (
            default,
            format!(
                "a {} byte sample page is too small to judge the link: the host-name default",
                page.bytes
            ),
        ),
        None => (
            default,
            "the link could not be measured: the host-name default".to_string(),
        ),
    };
    if source.set_compress_responses(on).is_err() {
        return (None, probe);
    }
    let choice = format!(
        "responses {} ({why})",
        if on { "gzip'd" } else { "uncompressed" }
    );
    tracing::info!(gzip = on, %why, "response compression chosen");
    (Some(choice), probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(bytes: u64, elapsed_ms: u64, server_ms: u64) -> TimedPage {
        TimedPage {
            bytes,
            elapsed: Duration::from_millis(elapsed_ms),
            server: Duration::from_millis(server_ms),
            docs: 1,
        }
    }

    #[test]
    fn a_fast_link_keeps_responses_uncompressed() {
        // 2 MB in 12 ms of which 5 ms the source's search and 1 ms a round trip: 333 MB/s.
        let speed = link_speed(page(2_000_000, 12, 5), Duration::from_millis(1)).unwrap();
        assert!(speed > 300e6, "{speed}");
        assert!(!gzip_pays(speed));
    }

    #[test]
    fn a_100_mbit_link_asks_for_gzip() {
        // 2 MB over 12.5 MB/s: 160 ms of transfer, plus 25 ms each way and 5 ms of search.
        let speed = link_speed(page(2_000_000, 215, 5), Duration::from_millis(50)).unwrap();
        assert!((12e6..13.5e6).contains(&speed), "{speed}");
        assert!(gzip_pays(speed));
    }

    #[test]
    fn latency_alone_is_not_a_slow_link() {
        // 50 ms each way, the bytes themselves arrive at loopback speed.
        let speed = link_speed(page(2_000_000, 108, 5), Duration::from_millis(100)).unwrap();
        assert!(!gzip_pays(speed), "{speed}");
    }

    #[test]
    fn the_sample_is_bounded_in_bytes() {
        assert_eq!(
            sample_docs(1_000, 500),
            500,
            "small documents: the document cap"
        );
        assert_eq!(sample_docs(10_000, 500), 209, "about 2 MiB");
        assert_eq!(sample_docs(1 << 20, 500), 2, "1 MiB documents: two");
        assert_eq!(sample_docs(30 << 20, 500), 1, "one huge document: just it");
        assert_eq!(
            sample_docs(1_000, 100),
            100,
            "never above the copy's page size"
        );
    }

    #[test]
    fn a_small_page_is_not_judged() {
        assert_eq!(link_speed(page(10_000, 50, 1), Duration::ZERO), None);
        // Nothing left after the search and the round trip: at most 1 ms of transfer counted.
        let speed = link_speed(page(100_000, 5, 5), Duration::from_millis(1)).unwrap();
        assert!(speed >= 100e6);
    }
}
