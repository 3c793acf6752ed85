//! The point in time shared by all slices of a copy, renewed once when it expired.

use crate::search::{PitApi, SearchClient, SearchError};
use tokio::sync::Mutex;

/// A point in time on the source index, shared by the slices. Its keep-alive is the copy's
/// `source.scroll`, extended by every search on it.
#[derive(Debug)]
pub struct SharedPit {
    source: SearchClient,
    api: PitApi,
    index: String,
    keep_alive: String,
    /// (generation, id): the generation counts renewals, so that slices noticing the same
    /// expiry open one new point in time, not one each.
    current: Mutex<(u64, String)>,
}

impl SharedPit {
    /// Wraps an open point in time.
    pub fn new(
        source: SearchClient,
        api: PitApi,
        index: String,
        keep_alive: String,
        id: String,
    ) -> Self {
        SharedPit {
            source,
            api,
            index,
            keep_alive,
            current: Mutex::new((0, id)),
        }
    }

    /// A point in time of generation `generation` opened elsewhere (a scale-out worker reads
    /// the planner's; it never renews it).
    pub fn at_generation(mut self, generation: u64) -> Self {
        self.current.get_mut().0 = generation;
        self
    }

    /// The API the source offers.
    pub fn api(&self) -> PitApi {
        self.api
    }

    /// The current generation and id.
    pub async fn current(&self) -> (u64, String) {
        self.current.lock().await.clone()
    }

    /// After a search found generation `seen` gone: opens a new point in time unless another
    /// slice already did; returns the current one.
    pub async fn renew(&self, seen: u64) -> Result<(u64, String), SearchError> {
        let mut cur = self.current.lock().await;
        if cur.0 == seen {
            let id = self
                .source
                .open_pit(self.api, &self.index, &self.keep_alive)
                .await?;
            tracing::warn!(
                generation = seen + 1,
                "the point in time expired; opened a new one"
            );
            *cur = (seen + 1, id);
        }
        Ok(cur.clone())
    }

    /// Resuming a copy: its slices read `id` (an earlier process opened it), so this copy reads
    /// it too; the point in time opened for this run is closed. If `id` is gone, the first
    /// search says so and every slice starts again under a new one.
    pub async fn adopt(&self, id: String) {
        let mut cur = self.current.lock().await;
        if cur.1 != id {
            let fresh = std::mem::replace(&mut cur.1, id);
            if let Err(e) = self.source.close_pit(self.api, &fresh).await {
                tracing::debug!(error = %e, "could not close the unused point in time; it expires");
            }
        }
    }

    /// A new scale-out leader following slices an earlier leader planned: their Leases name
    /// the point in time (and its generation) every slice reads; it becomes this one's.
    pub async fn adopt_at(&self, generation: u64, id: String) {
        if self.current.lock().await.0 < generation {
            self.current.lock().await.0 = generation;
        }
        self.adopt(id).await;
    }

    /// Closes the current point in time (best effort: it expires anyway).
    pub async fn close(&self) {
        let id = self.current.lock().await.1.clone();
        if let Err(e) = self.source.close_pit(self.api, &id).await {
            tracing::warn!(error = %e, "could not close the point in time; it expires after its keep-alive");
        }
    }
}
