//! Counters the engine updates and the drivers sample (progress bar, status patches, metrics),
//! kept per slice so that a restarted or resumed slice is accounted for exactly.

use super::pager::Cursor;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How many failed documents are kept as a sample.
pub const FAILURE_SAMPLE: usize = 20;

/// A failed document, for the sample in status and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureSample {
    /// The document id.
    pub id: String,
    /// HTTP status of the bulk item (0 when the document never reached the destination).
    pub status: u16,
    /// Error type and reason.
    pub reason: String,
}

/// Where a slice is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SliceState {
    /// Not started.
    #[default]
    Pending,
    /// Reading and writing.
    Running,
    /// Every document of the slice reached the destination.
    Done,
}

/// A slice's progress, persisted by the controller so that a restart skips finished slices and
/// resumes running ones from their scroll when that is safe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceCheckpoint {
    /// Slice number, `0..slices`.
    pub id: u32,
    /// Pending, running or done.
    pub state: SliceState,
    /// Documents read by this slice.
    pub read: u64,
    /// Documents written by this slice.
    pub written: u64,
    /// Documents of this slice the destination rejected.
    pub failed: u64,
    /// Version conflicts skipped in this slice.
    pub conflicts: u64,
    /// The slice's open scroll.
    pub scroll_id: Option<String>,
    /// The point in time the slice reads (PIT paging).
    pub pit_id: Option<String>,
    /// The sort values of the last document read and written (PIT paging), raw JSON.
    pub search_after: Option<String>,
    /// True when every page fetched has been written: only then can a successor continue the
    /// cursor without losing documents.
    pub resumable: bool,
    /// Documents of this slice in the source snapshot its current pass reads (the first page's
    /// exact `hits.total`), once known.
    pub total: Option<u64>,
    /// Times the slice started over from its beginning (lost scroll page, expired context,
    /// page over the memory budget).
    pub restarts: u32,
    /// Documents written again by a restart or a re-sent bulk (already there from before).
    pub rewritten: u64,
}

impl SliceCheckpoint {
    /// The cursor a successor may continue from (only when resumable).
    pub fn cursor(&self) -> Cursor {
        if !self.resumable {
            return Cursor::None;
        }
        match (&self.scroll_id, &self.pit_id) {
            (Some(id), _) => Cursor::Scroll(id.clone()),
            (None, Some(id)) => Cursor::Pit {
                id: id.clone(),
                after: self.search_after.clone(),
            },
            _ => Cursor::None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SliceCounters {
    read: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    conflicts: AtomicU64,
    /// Batches queued or in flight.
    outstanding: AtomicU64,
    /// A scroll request was sent whose documents are not all queued yet: continuing the scroll
    /// would skip them.
    in_hand: AtomicBool,
    epoch: AtomicU32,
    state: AtomicU8,
    cursor: Mutex<Cursor>,
    /// Exact total of the current pass (`u64::MAX`: not known yet).
    total: AtomicU64,
    restarts: AtomicU32,
    rewritten: AtomicU64,
    /// Documents earlier passes put in the destination that this pass may meet again: their
    /// 409s (create) or overwrites (index) are rewrites, not conflicts or new documents.
    rewritable: AtomicU64,
    /// Pages queued and not yet fully written, and the durable point before them.
    ledger: Mutex<Ledger>,
}

/// Pages of the current pass whose batches are not all written yet, oldest first, and the
/// cursor after the last page that is entirely in the destination. A successor in another
/// process may continue from that cursor at any time without losing a document, even while
/// later pages are in flight (see [`CopyStats::durable_checkpoint`]).
#[derive(Debug, Default)]
struct Ledger {
    next: u64,
    pages: std::collections::VecDeque<PageEntry>,
    /// (cursor after the page, documents read through it).
    durable: Option<(Cursor, u64)>,
    /// What the pages up to the durable point wrote, failed and conflicted: what a successor
    /// continuing from there has counted (the pages after it are read, and counted, again).
    settled: Tally,
}

/// Documents of some pages by outcome.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    written: u64,
    failed: u64,
    conflicts: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.written += o.written;
        self.failed += o.failed;
        self.conflicts += o.conflicts;
    }
}

#[derive(Debug)]
struct PageEntry {
    seq: u64,
    /// Batches of the page not settled yet.
    left: u64,
    cursor: Cursor,
    read: u64,
    /// Outcomes of the page's documents so far.
    tally: Tally,
}

impl Ledger {
    /// Pops the settled pages at the front, moving the durable point past them.
    fn settle_front(&mut self) {
        while self.pages.front().is_some_and(|p| p.left == 0) {
            let p = self.pages.pop_front().expect("a front page");
            self.durable = Some((p.cursor, p.read));
            self.settled.add(p.tally);
        }
    }
}

impl SliceCounters {
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Relaxed)
    }
    pub fn add_read(&self, n: u64) {
        self.read.fetch_add(n, Relaxed);
    }
    /// Counts `n` documents of page `page` (pass `epoch`) written.
    pub fn add_written(&self, epoch: u32, page: u64, n: u64) {
        if self.epoch() == epoch {
            self.written.fetch_add(n, Relaxed);
            self.tally_page(page, |t| t.written += n);
        }
    }
    /// Counts `n` documents of page `page` (pass `epoch`) that conflicted.
    pub fn add_conflicts(&self, epoch: u32, page: u64, n: u64) {
        if self.epoch() == epoch {
            self.conflicts.fetch_add(n, Relaxed);
            self.tally_page(page, |t| t.conflicts += n);
        }
    }
    /// Counts a failed document of page `page` (pass `epoch`); `None` while the page is being
    /// read (its failures then go to [`Self::page_queued`]). False for an older pass.
    pub fn add_failed(&self, epoch: u32, page: Option<u64>) -> bool {
        let current = self.epoch() == epoch;
        if current {
            self.failed.fetch_add(1, Relaxed);
            if let Some(page) = page {
                self.tally_page(page, |t| t.failed += 1);
            }
        }
        current
    }
    fn tally_page(&self, page: u64, f: impl FnOnce(&mut Tally)) {
        let mut l = self.ledger.lock().expect("stats lock");
        if let Some(p) = l.pages.iter_mut().find(|p| p.seq == page) {
            f(&mut p.tally);
        }
    }
    /// Marks that a page is being fetched (true) or fully queued (false).
    pub fn set_in_hand(&self, v: bool) {
        self.in_hand.store(v, Relaxed);
    }
    /// After a pass was abandoned (every task of it has ended): nothing of it is queued, in
    /// flight or in hand any more.
    pub fn reset_in_flight(&self) {
        self.outstanding.store(0, Relaxed);
        self.in_hand.store(false, Relaxed);
    }
    pub fn hold(&self) {
        self.outstanding.fetch_add(1, Relaxed);
    }
    pub fn release(&self) {
        self.outstanding.fetch_sub(1, Relaxed);
    }
    /// Sets the reader's state. `Done` means the reader queued its last page; whether the
    /// slice is done is for [`Self::checkpoint`] to say (the ledger). Release: a checkpoint that
    /// sees `Done` sees every page queued before it in the ledger.
    pub fn set_state(&self, s: SliceState) {
        self.state.store(s as u8, Release);
    }
    pub fn set_cursor(&self, c: Cursor) {
        *self.cursor.lock().expect("stats lock") = c;
    }
    /// Records the exact total of the current pass.
    pub fn set_total(&self, n: u64) {
        self.total.store(n, Relaxed);
    }
    pub fn total(&self) -> Option<u64> {
        let t = self.total.load(Relaxed);
        (t != u64::MAX).then_some(t)
    }
    /// Counts `n` documents the destination already had from an earlier pass or attempt.
    pub fn add_rewritten(&self, n: u64) {
        self.rewritten.fetch_add(n, Relaxed);
    }
    /// A page whose `batches` are about to be queued was read (`failed` of its documents could
    /// not be made into bulk actions); the cursor after it is `cursor`. Returns the page's
    /// sequence number, to put in its batches.
    pub fn page_queued(&self, batches: u64, failed: u64, cursor: Cursor) -> u64 {
        let mut l = self.ledger.lock().expect("stats lock");
        let seq = l.next;
        l.next += 1;
        let read = self.read.load(Relaxed);
        l.pages.push_back(PageEntry {
            seq,
            left: batches,
            cursor,
            read,
            tally: Tally {
                failed,
                ..Tally::default()
            },
        });
        l.settle_front();
        seq
    }

    /// A batch of page `seq` (pass `epoch`) is settled: written, failed or skipped.
    pub fn batch_settled(&self, epoch: u32, seq: u64) {
        if self.epoch() != epoch {
            return;
        }
        let mut l = self.ledger.lock().expect("stats lock");
        if let Some(p) = l.pages.iter_mut().find(|p| p.seq == seq) {
            p.left = p.left.saturating_sub(1);
        }
        l.settle_front();
    }

    /// Takes up to `n` from the documents earlier passes wrote; returns how many.
    pub fn take_rewritable(&self, n: u64) -> u64 {
        let mut got = 0;
        let _ = self.rewritable.fetch_update(Relaxed, Relaxed, |r| {
            got = r.min(n);
            Some(r - got)
        });
        got
    }
    /// Starts the slice over from its beginning: counts from the earlier pass are dropped and
    /// completions of its batches still in flight are ignored (they are rewritten). Returns the
    /// documents the earlier pass had read.
    pub fn restart(&self) -> u64 {
        self.epoch.fetch_add(1, Relaxed);
        {
            let mut l = self.ledger.lock().expect("stats lock");
            l.pages.clear();
            l.durable = None;
            l.settled = Tally::default();
        }
        self.restarts.fetch_add(1, Relaxed);
        self.total.store(u64::MAX, Relaxed);
        let wrote = self.written.swap(0, Relaxed);
        self.rewritable.fetch_add(wrote, Relaxed);
        self.failed.store(0, Relaxed);
        self.conflicts.store(0, Relaxed);
        self.read.swap(0, Relaxed)
    }
    fn load(&self, c: &SliceCheckpoint) {
        self.total.store(c.total.unwrap_or(u64::MAX), Relaxed);
        self.restarts.store(c.restarts, Relaxed);
        self.rewritten.store(c.rewritten, Relaxed);
        self.read.store(c.read, Relaxed);
        self.written.store(c.written, Relaxed);
        self.failed.store(c.failed, Relaxed);
        self.conflicts.store(c.conflicts, Relaxed);
        self.set_state(c.state);
        let cursor = c.cursor();
        let mut l = self.ledger.lock().expect("stats lock");
        if cursor != Cursor::None {
            l.durable = Some((cursor, c.read));
        }
        l.settled = Tally {
            written: c.written,
            failed: c.failed,
            conflicts: c.conflicts,
        };
    }
    fn checkpoint(&self, id: u32) -> SliceCheckpoint {
        let read_all = self.state.load(Acquire);
        // Done only when the reader queued its last page AND every page of the pass settled
        // successfully: the ledger that moves the durable checkpoint. A batch that failed (a
        // 413, a 5xx after every retry) never settles, so its page stays and the slice is not
        // done, however many batches are still outstanding; a page is in the ledger before its
        // batches are queued, so no moment between queueing and writing looks idle.
        let settled = self.ledger.lock().expect("stats lock").pages.is_empty();
        let idle = self.outstanding.load(Relaxed) == 0 && !self.in_hand.load(Relaxed);
        let state = match read_all {
            0 => SliceState::Pending,
            2 if settled && idle => SliceState::Done,
            _ => SliceState::Running,
        };
        let cursor = self.cursor.lock().expect("stats lock").clone();
        let (scroll_id, pit_id, search_after) = match cursor {
            Cursor::None => (None, None, None),
            Cursor::Scroll(id) => (Some(id), None, None),
            Cursor::Pit { id, after } => (None, Some(id), after),
        };
        // A finished slice keeps no cursor: nothing is open for it any more.
        let done = state == SliceState::Done;
        SliceCheckpoint {
            id,
            state,
            read: self.read.load(Relaxed),
            written: self.written.load(Relaxed),
            failed: self.failed.load(Relaxed),
            conflicts: self.conflicts.load(Relaxed),
            resumable: state == SliceState::Running
                && (scroll_id.is_some() || search_after.is_some())
                && idle,
            scroll_id: scroll_id.filter(|_| !done),
            pit_id: pit_id.filter(|_| !done),
            search_after: search_after.filter(|_| !done),
            total: self.total(),
            restarts: self.restarts.load(Relaxed),
            rewritten: self.rewritten.load(Relaxed),
        }
    }
}

/// Called with the duration of every `_bulk` call (the whole call, its retries included), e.g. to
/// feed a latency histogram.
pub type BulkObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// Live counters of one copy. Shared with the drivers; lock-free but for the failure sample and
/// the scroll ids.
#[derive(Debug, Default)]
pub struct CopyStats {
    slices: OnceLock<Box<[SliceCounters]>>,
    retries: AtomicU64,
    bytes: AtomicU64,
    bulks: AtomicU64,
    failures: Mutex<Vec<FailureSample>>,
    notes: Mutex<Vec<String>>,
    bulk_observer: OnceLock<Observer>,
    pit_restarts: AtomicU64,
    pruned: AtomicU64,
    time: super::timing::TimeSpent,
}

/// [`BulkObserver`] with a `Debug` impl, so that [`CopyStats`] stays `Debug`.
struct Observer(BulkObserver);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BulkObserver")
    }
}

/// A point-in-time copy of [`CopyStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Documents read from the source.
    pub read: u64,
    /// Documents the destination accepted.
    pub written: u64,
    /// Documents rejected.
    pub failed: u64,
    /// Version conflicts (skipped documents).
    pub conflicts: u64,
    /// Documents written again (already in the destination from a restarted slice or a
    /// re-sent bulk); they are counted in `written` too.
    pub rewritten: u64,
    /// Slice restarts.
    pub restarts: u64,
    /// Requests or items resent.
    pub retries: u64,
    /// Bulk body bytes sent.
    pub bytes: u64,
    /// Bulk requests sent.
    pub bulks: u64,
    /// Times the point in time was lost and every slice (finished ones included) started again
    /// under a new one.
    pub pit_restarts: u64,
    /// Destination documents deleted after such a restart because the new point in time no
    /// longer holds them (deleted in the source in between; the destination started empty).
    pub pruned: u64,
}

impl CopyStats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the readers' and writers' time went so far.
    pub fn time(&self) -> &super::timing::TimeSpent {
        &self.time
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot {
            retries: self.retries.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            bulks: self.bulks.load(Relaxed),
            pit_restarts: self.pit_restarts.load(Relaxed),
            pruned: self.pruned.load(Relaxed),
            ..Default::default()
        };
        for c in self.slices() {
            s.read += c.read.load(Relaxed);
            s.written += c.written.load(Relaxed);
            s.failed += c.failed.load(Relaxed);
            s.conflicts += c.conflicts.load(Relaxed);
            s.rewritten += c.rewritten.load(Relaxed);
            s.restarts += u64::from(c.restarts.load(Relaxed));
        }
        s
    }

    /// Documents expected from the source: the sum of every slice's exact total in the
    /// snapshot its current pass reads, capped by `max_docs`. `None` until every slice knows.
    pub fn expected(&self, max_docs: Option<u64>) -> Option<u64> {
        let mut sum = 0u64;
        for c in self.slices() {
            sum += c.total()?;
        }
        Some(max_docs.map_or(sum, |m| sum.min(m)))
    }

    /// Per-slice checkpoints, for persisting.
    pub fn checkpoints(&self) -> Vec<SliceCheckpoint> {
        self.slices()
            .iter()
            .enumerate()
            .map(|(i, c)| c.checkpoint(i as u32))
            .collect()
    }

    /// Slice `slice`'s checkpoint at its durable point, for a successor in another process that
    /// may take over at any moment (scale-out): the cursor after the last page whose batches are
    /// all settled, however many later pages are in flight, and the documents read through it.
    /// Scroll cursors are never durable (a continuation in flight moves the server's cursor, so
    /// a successor restarts the slice); a point in time with `search_after` is.
    pub fn durable_checkpoint(&self, slice: u32) -> SliceCheckpoint {
        let c = self.slice(slice);
        let mut cp = c.checkpoint(slice);
        if cp.state == SliceState::Done {
            return cp;
        }
        let (durable, settled) = {
            let l = c.ledger.lock().expect("stats lock");
            (l.durable.clone(), l.settled)
        };
        cp.scroll_id = None;
        match durable {
            Some((
                Cursor::Pit {
                    id,
                    after: Some(after),
                },
                read,
            )) => {
                cp.pit_id = Some(id);
                cp.search_after = Some(after);
                cp.resumable = true;
                cp.read = read;
                cp.written = settled.written;
                cp.failed = settled.failed;
                cp.conflicts = settled.conflicts;
            }
            _ => {
                cp.search_after = None;
                cp.resumable = false;
            }
        }
        cp
    }

    /// Replaces every slice's counters with `checkpoints` (the scale-out leader's view of slices
    /// that run in other processes), setting the slices up on first use.
    pub fn load_checkpoints(&self, n: usize, checkpoints: &[SliceCheckpoint]) {
        if self.slices().is_empty() {
            self.init_slices(n, &[]);
        }
        for cp in checkpoints {
            if let Some(c) = self.slices().get(cp.id as usize) {
                c.load(cp);
            }
        }
    }

    /// Installs `observer` for the durations of `_bulk` calls (before the copy starts, e.g. from
    /// [`crate::workflow::Sink::copying`]). Only the first observer is kept; returns whether
    /// this one was installed.
    pub fn observe_bulks(&self, observer: BulkObserver) -> bool {
        self.bulk_observer.set(Observer(observer)).is_ok()
    }

    /// The sample of failed documents.
    pub fn failure_sample(&self) -> Vec<FailureSample> {
        self.failures.lock().expect("stats lock").clone()
    }

    /// Things worth telling the user that did not stop the copy (e.g. a slice restarted).
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("stats lock").clone()
    }

    pub(crate) fn add_pit_restart(&self) {
        self.pit_restarts.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_pruned(&self, n: u64) {
        self.pruned.fetch_add(n, Relaxed);
    }

    pub(crate) fn note(&self, msg: String) {
        let mut n = self.notes.lock().expect("stats lock");
        if n.len() < 10 {
            n.push(msg);
        }
    }

    /// Scroll ids that are open right now (to clear them if the process dies).
    pub fn open_scrolls(&self) -> Vec<String> {
        self.slices()
            .iter()
            .filter_map(|c| match &*c.cursor.lock().expect("stats lock") {
                Cursor::Scroll(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    fn slices(&self) -> &[SliceCounters] {
        self.slices.get().map_or(&[], |b| b)
    }

    /// Sets up `n` slices, continuing from `resume` where it describes the same slicing.
    pub(crate) fn init_slices(&self, n: usize, resume: &[SliceCheckpoint]) {
        let counters: Box<[SliceCounters]> = (0..n)
            .map(|_| SliceCounters {
                total: AtomicU64::new(u64::MAX),
                ..Default::default()
            })
            .collect();
        if resume.len() == n {
            for (c, r) in counters.iter().zip(resume) {
                c.load(r);
            }
        }
        let _ = self.slices.set(counters);
    }

    pub(crate) fn slice(&self, i: u32) -> &SliceCounters {
        &self.slices()[i as usize]
    }

    pub(crate) fn add_retries(&self, n: u64) {
        self.retries.fetch_add(n, Relaxed);
    }
    pub(crate) fn add_bulk(&self, bytes: u64) {
        self.bulks.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
    pub(crate) fn bulk_took(&self, took: Duration) {
        if let Some(o) = self.bulk_observer.get() {
            (o.0)(took);
        }
    }

    /// Replaces the counters with totals someone else counted (the destination's own reindex
    /// task in `mode: Server`), kept as one slice so every reader of the stats sees them.
    pub fn set_totals(&self, totals: &StatsSnapshot, done: bool, failures: Vec<FailureSample>) {
        if self.slices().is_empty() {
            self.init_slices(1, &[]);
        }
        let c = self.slice(0);
        c.read.store(totals.read, Relaxed);
        c.written.store(totals.written, Relaxed);
        c.failed.store(totals.failed, Relaxed);
        c.conflicts.store(totals.conflicts, Relaxed);
        c.set_state(if done {
            SliceState::Done
        } else {
            SliceState::Running
        });
        self.retries.store(totals.retries, Relaxed);
        self.bulks.store(totals.bulks, Relaxed);
        let mut f = self.failures.lock().expect("stats lock");
        *f = failures;
        f.truncate(FAILURE_SAMPLE);
    }

    /// Records a failed document of `slice` (pass `epoch`, page `page`, `None` while the page
    /// is being read); returns the total failure count.
    pub(crate) fn add_failure(
        &self,
        slice: u32,
        epoch: u32,
        page: Option<u64>,
        sample: FailureSample,
    ) -> u64 {
        if !self.slice(slice).add_failed(epoch, page) {
            return self.snapshot().failed;
        }
        tracing::warn!(id = %sample.id, status = sample.status, reason = %sample.reason, "document failed");
        let mut f = self.failures.lock().expect("stats lock");
        if f.len() < FAILURE_SAMPLE {
            f.push(sample);
        }
        drop(f);
        self.snapshot().failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_resumable_only_with_nothing_in_hand() {
        let s = CopyStats::new();
        s.init_slices(2, &[]);
        let c = s.slice(0);
        c.set_state(SliceState::Running);
        c.set_cursor(Cursor::Scroll("sid".into()));
        c.hold();
        assert!(!s.checkpoints()[0].resumable);
        c.release();
        assert!(s.checkpoints()[0].resumable);
        c.set_in_hand(true);
        assert!(
            !s.checkpoints()[0].resumable,
            "a page was fetched but not queued"
        );
        c.set_in_hand(false);
        c.set_state(SliceState::Done);
        c.hold();
        assert_eq!(
            s.checkpoints()[0].state,
            SliceState::Running,
            "done only once written"
        );
        c.release();
        assert_eq!(s.checkpoints()[0].state, SliceState::Done);
        assert!(!s.checkpoints()[1].resumable);
    }

    #[test]
    fn a_slice_whose_last_batch_failed_is_never_done() {
        let s = CopyStats::new();
        s.init_slices(1, &[]);
        let c = s.slice(0);
        c.set_state(SliceState::Running);
        let p = c.page_queued(2, 0, Cursor::None);
        c.hold();
        c.hold();
        c.set_state(SliceState::Done);
        c.batch_settled(0, p);
        c.release();
        // The second batch failed: released, never settled.
        c.release();
        assert_eq!(s.checkpoints()[0].state, SliceState::Running);
        assert_ne!(s.durable_checkpoint(0).state, SliceState::Done);
        c.batch_settled(0, p);
        assert_eq!(s.checkpoints()[0].state, SliceState::Done);
    }

    #[test]
    fn the_durable_point_is_after_the_oldest_page_with_everything_written() {
        let pit = |after: &str| Cursor::Pit {
            id: "p".into(),
            after: Some(after.into()),
        };
        let s = CopyStats::new();
        s.init_slices(1, &[]);
        let c = s.slice(0);
        c.set_state(SliceState::Running);
        assert!(!s.durable_checkpoint(0).resumable, "nothing written yet");
        c.add_read(10);
        let p0 = c.page_queued(2, 0, pit("[10]"));
        c.add_read(10);
        let p1 = c.page_queued(1, 0, pit("[20]"));
        c.batch_settled(0, p1);
        assert!(
            !s.durable_checkpoint(0).resumable,
            "a later page written first moves nothing"
        );
        c.batch_settled(0, p0);
        assert!(
            !s.durable_checkpoint(0).resumable,
            "one batch of page 0 left"
        );
        c.batch_settled(0, p0);
        let cp = s.durable_checkpoint(0);
        assert!(cp.resumable);
        assert_eq!(
            (cp.search_after.as_deref(), cp.read),
            (Some("[20]"), 20),
            "both pages settled"
        );
        c.add_read(10);
        let p2 = c.page_queued(1, 0, pit("[30]"));
        assert_eq!(s.durable_checkpoint(0).read, 20, "page 2 in flight");
        c.restart();
        c.batch_settled(0, p2);
        assert!(
            !s.durable_checkpoint(0).resumable,
            "a restart forgets the durable point"
        );
        // A scroll cursor is never durable for another process.
        let q = c.page_queued(0, 0, Cursor::Scroll("sid".into()));
        let _ = q;
        assert!(!s.durable_checkpoint(0).resumable);
    }

    /// Item 5e of the no-loss issue: a successor resumes from the durable point and reads the
    /// pages after it again; their failures, conflicts and writes counted by the holder before
    /// it stopped must not be counted twice.
    #[test]
    fn a_successor_counts_what_it_reads_again_after_the_durable_point_once() {
        let pit = |after: &str| Cursor::Pit {
            id: "p".into(),
            after: Some(after.into()),
        };
        let sample = || FailureSample {
            id: "bad".into(),
            status: 400,
            reason: "mapper_parsing_exception".into(),
        };
        // The holder: page 0 (10 documents) written; page 1 (10 documents) has one failed
        // document, one conflict and 8 written, but its second batch is still in flight when
        // the holder stops.
        let holder = CopyStats::new();
        holder.init_slices(1, &[]);
        let c = holder.slice(0);
        c.set_state(SliceState::Running);
        c.add_read(10);
        let p0 = c.page_queued(1, 0, pit("[10]"));
        c.add_written(0, p0, 10);
        c.batch_settled(0, p0);
        c.add_read(10);
        let p1 = c.page_queued(2, 0, pit("[20]"));
        holder.add_failure(0, 0, Some(p1), sample());
        c.add_conflicts(0, p1, 1);
        c.add_written(0, p1, 8);
        let cp = holder.durable_checkpoint(0);
        assert!(cp.resumable);
        assert_eq!(cp.search_after.as_deref(), Some("[10]"));
        assert_eq!(
            (cp.read, cp.written, cp.failed, cp.conflicts),
            (10, 10, 0, 0),
            "the durable checkpoint counts only the pages up to its cursor"
        );
        // The successor reads page 1 again and meets the same failure and conflict.
        let successor = CopyStats::new();
        successor.init_slices(1, std::slice::from_ref(&cp));
        let c = successor.slice(0);
        c.add_read(10);
        let p1 = c.page_queued(1, 0, pit("[20]"));
        successor.add_failure(0, 0, Some(p1), sample());
        c.add_conflicts(0, p1, 1);
        c.add_written(0, p1, 8);
        c.batch_settled(0, p1);
        let s = successor.snapshot();
        assert_eq!(
            (s.read, s.written, s.failed, s.conflicts),
            (20, 18, 1, 1),
            "every document of the slice counted once"
        );
    }

    #[test]
    fn a_restart_drops_the_earlier_pass_and_ignores_its_late_writes() {
        let s = CopyStats::new();
        s.init_slices(1, &[]);
        let c = s.slice(0);
        c.add_read(10);
        c.add_written(0, 0, 7);
        assert_eq!(c.restart(), 10);
        c.add_written(0, 0, 3);
        c.add_read(10);
        c.add_written(1, 0, 10);
        assert_eq!(s.snapshot().written, 10);
        assert_eq!(s.snapshot().read, 10);
        assert_eq!(s.snapshot().restarts, 1);
    }

    #[test]
    fn resume_loads_matching_checkpoints() {
        let s = CopyStats::new();
        let done = SliceCheckpoint {
            id: 0,
            state: SliceState::Done,
            read: 5,
            written: 5,
            ..Default::default()
        };
        s.init_slices(
            2,
            &[
                done.clone(),
                SliceCheckpoint {
                    id: 1,
                    ..Default::default()
                },
            ],
        );
        assert_eq!(s.checkpoints()[0], done);
        assert_eq!(s.snapshot().written, 5);
    }
}
