//! Verification against the source itself, never against the copier's counters.
//!
//! [`checksum`] reads both indices again (sliced, read-only, raw `_source`) and compares an
//! order-independent digest per side: the wrapping sum of a 128-bit xxh3 hash of each
//! document's id, routing and canonical `_source` ([`canonical`]). Memory is bounded: a side is
//! 4096 bucket sums (by the id's hash), not a set of ids. When the digests differ, only the
//! differing buckets are read again, this time keeping their ids, to name the missing,
//! unexpected and differing documents.

pub mod canonical;
mod digest;
mod error;
mod scan;

pub use digest::{BUCKETS, DocKey};
pub use error::VerifyError;
pub use scan::Side;

use crate::api::{RemoteReindexSpec, Verification, Verify};
use crate::copy::Stop;
use crate::search::SearchClient;
use digest::Digest;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Compares what the copy `spec` describes read and wrote: the source (with the copy's query)
/// and the destination, document by document, each side read with `slices` slices. `None` when
/// `stop` is requested first.
pub async fn compare_copy(
    spec: &RemoteReindexSpec,
    source: &SearchClient,
    dest: &SearchClient,
    slices: u32,
    stop: &Stop,
) -> Option<Result<ChecksumReport, VerifyError>> {
    let side = |which, client: &SearchClient, index: &str, query| Side {
        which,
        client: client.clone(),
        index: index.to_string(),
        query,
        slices,
        keep_alive: spec.source.keep_alive(),
    };
    let source = side(
        "source",
        source,
        &spec.source.index,
        spec.source.query.clone(),
    );
    let dest = side("destination", dest, &spec.dest.index, None);
    stop.unless_requested(checksum(&source, &dest)).await
}

/// At most this many ids (both sides together) are held while narrowing a difference down
/// (~100 bytes each); buckets beyond it are reported as unresolved.
const NARROW_LIMIT: u64 = 200_000;

/// Ids named in a report at most.
const MAX_SAMPLE: usize = 20;

/// What a checksum comparison found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecksumReport {
    /// Documents the source holds (for the query).
    pub expected: u64,
    /// Documents the destination holds.
    pub found: u64,
    /// Source documents absent from the destination.
    pub missing: u64,
    /// Destination documents the source does not have.
    pub unexpected: u64,
    /// Documents in both whose routing or `_source` differ.
    pub differing: u64,
    /// Up to 20 ids of missing, unexpected or differing documents.
    pub sample_ids: Vec<String>,
    /// Every unexpected document found while narrowing down (all of them when
    /// `unresolved_buckets` is 0): what `catchUp.deleteMissing` deletes.
    pub unexpected_keys: Vec<DocKey>,
    /// Differing buckets too large to narrow down: the counts are then lower bounds.
    pub unresolved_buckets: u64,
    /// Whether both digests are equal.
    pub matched: bool,
    /// Wall time of the comparison.
    pub elapsed: Duration,
}

impl ChecksumReport {
    /// One line for conditions, Events and the CLI.
    pub fn message(&self) -> String {
        if self.matched {
            return format!(
                "checksum verified: source and destination hold the same {} documents (id, routing and _source; compared in {:.1}s)",
                self.found,
                self.elapsed.as_secs_f64()
            );
        }
        let mut m = format!(
            "checksum mismatch: the source holds {} documents, the destination {}; {} missing, {} unexpected, {} differing",
            self.expected, self.found, self.missing, self.unexpected, self.differing
        );
        if self.unresolved_buckets > 0 {
            m.push_str(&format!(
                " (at least: {} buckets of ids were too large to narrow down)",
                self.unresolved_buckets
            ));
        } else if self.missing + self.unexpected + self.differing == 0 {
            m.push_str(" (the digests differed, but a second read found no difference: an index changed while it was read)");
        }
        if !self.sample_ids.is_empty() {
            m.push_str(&format!("; e.g. {}", self.sample_ids.join(", ")));
        }
        m
    }

    /// The report as `.status.verification`.
    pub fn status(&self) -> Verification {
        Verification {
            method: Verify::Checksum,
            expected: self.expected as i64,
            found: self.found as i64,
            missing: self.missing as i64,
            unexpected: self.unexpected as i64,
            differing: self.differing as i64,
            sample_ids: self.sample_ids.clone(),
            unresolved_buckets: self.unresolved_buckets as i64,
        }
    }
}

/// Compares `source` with `dest` document by document (see the module doc).
pub async fn checksum(source: &Side, dest: &Side) -> Result<ChecksumReport, VerifyError> {
    let started = Instant::now();
    let (s, d) = tokio::try_join!(digest(source), digest(dest))?;
    let mut report = ChecksumReport {
        expected: s.count(),
        found: d.count(),
        missing: 0,
        unexpected: 0,
        differing: 0,
        sample_ids: Vec::new(),
        unexpected_keys: Vec::new(),
        unresolved_buckets: 0,
        matched: s == d,
        elapsed: Duration::ZERO,
    };
    if !report.matched {
        narrow(source, dest, &s, &d, &mut report).await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn digest(side: &Side) -> Result<Digest, VerifyError> {
    let slices = side
        .scan(Digest::default, |d, _, bucket, hash| d.add(bucket, hash))
        .await?;
    let mut all = Digest::default();
    for d in &slices {
        all.merge(d);
    }
    Ok(all)
}

/// Reads the differing buckets again, keeping their ids, and fills in the counts and samples.
async fn narrow(
    source: &Side,
    dest: &Side,
    s: &Digest,
    d: &Digest,
    report: &mut ChecksumReport,
) -> Result<(), VerifyError> {
    let mut wanted = vec![false; BUCKETS];
    let mut held = 0;
    for b in s.differing_buckets(d) {
        let n = s.count_in(b) + d.count_in(b);
        if held + n <= NARROW_LIMIT {
            wanted[b] = true;
            held += n;
        } else {
            // Only the counts are known: a bucket with equal counts differs in at least one.
            report.unresolved_buckets += 1;
            let (a, z) = (s.count_in(b), d.count_in(b));
            report.missing += a.saturating_sub(z);
            report.unexpected += z.saturating_sub(a);
            if a == z {
                report.differing += 1;
            }
        }
    }
    let (ms, md) = tokio::try_join!(ids_in(source, &wanted), ids_in(dest, &wanted))?;
    let (mut missing, mut unexpected, mut differing) = (Vec::new(), Vec::new(), Vec::new());
    for (k, h) in &ms {
        match md.get(k) {
            None => missing.push(k),
            Some(h2) if h2 != h => differing.push(k),
            Some(_) => {}
        }
    }
    unexpected.extend(md.keys().filter(|k| !ms.contains_key(*k)));
    report.missing += missing.len() as u64;
    report.unexpected += unexpected.len() as u64;
    report.differing += differing.len() as u64;
    for v in [&mut missing, &mut unexpected, &mut differing] {
        v.sort();
    }
    report.unexpected_keys = unexpected.iter().map(|k| (*k).clone()).collect();
    // Round-robin over the three kinds, so that each is represented in the sample.
    let mut iters = [
        missing.into_iter(),
        unexpected.into_iter(),
        differing.into_iter(),
    ];
    while report.sample_ids.len() < MAX_SAMPLE {
        let before = report.sample_ids.len();
        for it in &mut iters {
            if report.sample_ids.len() < MAX_SAMPLE
                && let Some(k) = it.next()
            {
                report.sample_ids.push(k.id.clone());
            }
        }
        if report.sample_ids.len() == before {
            break;
        }
    }
    Ok(())
}

/// The (key → hash) of every document in the wanted buckets.
async fn ids_in(side: &Side, wanted: &[bool]) -> Result<HashMap<DocKey, u128>, VerifyError> {
    let slices = side
        .scan(HashMap::new, |m, k, b, h| {
            if wanted[b] {
                m.insert(k, h);
            }
        })
        .await?;
    let mut all = HashMap::new();
    for m in slices {
        all.extend(m);
    }
    Ok(all)
}
