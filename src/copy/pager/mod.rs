//! Paging through one slice of the source: a point in time with `search_after` sorted by
//! `_shard_doc` where the source offers it, a scroll otherwise. The reader drives a
//! [`SlicePager`]; it knows its cursor (the checkpoint) and whether a lost answer may simply be
//! asked again (PIT: yes; scroll: no, the slice starts over).

mod pit;
mod probe;

pub use pit::SharedPit;
pub use probe::choose;

use crate::api::PagingMode;
use crate::search::{ParsedPage, ScrollPage, SearchClient, SearchError};
use serde_json::{Value, json};
use std::sync::Arc;

/// How the source is read.
#[derive(Clone, Debug)]
pub enum Paging {
    /// Sliced scrolls: a lost or failed continuation restarts the slice from its beginning.
    Scroll,
    /// One point in time shared by all slices, pages by `search_after` on `_shard_doc`: a lost
    /// answer is asked again and returns the same page.
    Pit(Arc<SharedPit>),
}

impl Paging {
    /// The mode: [`PagingMode::Pit`] or [`PagingMode::Scroll`].
    pub fn mode(&self) -> PagingMode {
        match self {
            Paging::Scroll => PagingMode::Scroll,
            Paging::Pit(_) => PagingMode::Pit,
        }
    }

    /// `scroll` or `pit`, for status and messages.
    pub fn name(&self) -> &'static str {
        self.mode().as_str()
    }
}

/// Where a slice's reading stands: what a successor needs to continue exactly there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cursor {
    /// Nothing open.
    #[default]
    None,
    /// An open scroll.
    Scroll(String),
    /// A point in time and the sort values of the last hit read (raw JSON), none before the
    /// first page.
    Pit {
        /// The point in time.
        id: String,
        /// `search_after` for the next page.
        after: Option<String>,
    },
}

/// One slice's pager.
pub(crate) struct SlicePager {
    source: SearchClient,
    index: String,
    query: Value,
    keep_alive: String,
    slice: Option<(u32, u32)>,
    state: State,
}

enum State {
    Scroll(Option<String>),
    Pit {
        generation: u64,
        id: String,
        after: Option<String>,
    },
}

impl SlicePager {
    /// A pager for slice `slice` of `max` (no slicing when `max` is 1), continuing from
    /// `cursor` when it matches the paging mode.
    pub async fn new(
        paging: &Paging,
        source: SearchClient,
        index: String,
        query: Option<Value>,
        keep_alive: String,
        (slice, max): (u32, u32),
        cursor: Cursor,
    ) -> Self {
        let state = match (paging, cursor) {
            (Paging::Scroll, Cursor::Scroll(id)) => State::Scroll(Some(id)),
            (Paging::Scroll, _) => State::Scroll(None),
            (Paging::Pit(shared), Cursor::Pit { id, after }) => State::Pit {
                generation: shared.current().await.0,
                id,
                after,
            },
            (Paging::Pit(shared), _) => {
                let (generation, id) = shared.current().await;
                State::Pit {
                    generation,
                    id,
                    after: None,
                }
            }
        };
        SlicePager {
            source,
            index,
            query: query.unwrap_or_else(|| json!({"match_all": {}})),
            keep_alive,
            slice: (max > 1).then_some((slice, max)),
            state,
        }
    }

    /// True when a cursor was given to continue from (the next fetch is a continuation).
    pub fn has_cursor(&self) -> bool {
        match &self.state {
            State::Scroll(id) => id.is_some(),
            State::Pit { after, .. } => after.is_some(),
        }
    }

    /// Whether a failed fetch can be asked again as is (PIT) or the slice must start over.
    pub fn is_pit(&self) -> bool {
        matches!(self.state, State::Pit { .. })
    }

    /// The first page of the slice, with its exact total (`track_total_hits`). Any cursor is
    /// dropped: a scroll left open is cleared, a PIT slice starts from its beginning.
    pub async fn first(&mut self, size: u32) -> Result<ScrollPage, SearchError> {
        if let State::Scroll(id) = &mut self.state
            && let Some(old) = id.take()
            && let Err(e) = self.source.clear_scroll(&[old]).await
        {
            tracing::debug!(error = %e, "could not clear the abandoned scroll; it expires");
        }
        let mut body = json!({
            "size": size,
            "query": self.query,
            "track_total_hits": true,
        });
        if let Some((id, max)) = self.slice {
            body["slice"] = json!({ "id": id, "max": max });
        }
        match &mut self.state {
            State::Scroll(_) => {
                body["sort"] = json!(["_doc"]);
                match self
                    .source
                    .open_scroll(&self.index, &body, &self.keep_alive)
                    .await
                {
                    // Elasticsearch 5.x does not know `track_total_hits` (its totals are
                    // always exact): ask again without it.
                    Err(e)
                        if e.status() == Some(400)
                            && e.to_string().contains("track_total_hits") =>
                    {
                        body.as_object_mut()
                            .expect("an object")
                            .remove("track_total_hits");
                        self.source
                            .open_scroll(&self.index, &body, &self.keep_alive)
                            .await
                    }
                    other => other,
                }
            }
            State::Pit { id, after, .. } => {
                *after = None;
                body["sort"] = json!(["_shard_doc"]);
                body["pit"] = json!({ "id": id, "keep_alive": self.keep_alive });
                let raw = self.source.search_pit_raw(&body).await?;
                Ok(ScrollPage { body: raw })
            }
        }
    }

    /// The page after the cursor. A scroll continuation is never re-sent by the client; a PIT
    /// search is (it is idempotent).
    pub async fn next(&self, size: u32) -> Result<ScrollPage, SearchError> {
        match &self.state {
            State::Scroll(id) => {
                let id = id.clone().unwrap_or_default();
                self.source.scroll(&id, &self.keep_alive).await
            }
            State::Pit { id, after, .. } => {
                let mut body = json!({
                    "size": size,
                    "query": self.query,
                    "sort": ["_shard_doc"],
                    "track_total_hits": false,
                    "pit": { "id": id, "keep_alive": self.keep_alive },
                });
                if let Some((id, max)) = self.slice {
                    body["slice"] = json!({ "id": id, "max": max });
                }
                if let Some(a) = after {
                    body["search_after"] = serde_json::from_str(a).unwrap_or(Value::Null);
                }
                let raw = self.source.search_pit_raw(&body).await?;
                Ok(ScrollPage { body: raw })
            }
        }
    }

    /// Moves the cursor past `page` (call once its documents are queued).
    pub fn advance(&mut self, page: &ParsedPage<'_>) -> Result<(), String> {
        match &mut self.state {
            State::Scroll(id) => {
                if page.scroll_id.is_none() {
                    return Err("no _scroll_id in a non-empty page".into());
                }
                id.clone_from(&page.scroll_id);
            }
            State::Pit { id, after, .. } => {
                let last = page
                    .hits()
                    .last()
                    .and_then(|h| h.sort)
                    .ok_or("a PIT page hit has no sort values")?;
                *after = Some(last.get().to_string());
                if let Some(new) = &page.pit_id {
                    id.clone_from(new);
                }
            }
        }
        Ok(())
    }

    /// The generation of the shared point in time this slice reads (0 for a scroll).
    pub fn generation(&self) -> u64 {
        match &self.state {
            State::Pit { generation, .. } => *generation,
            State::Scroll(_) => 0,
        }
    }

    /// The cursor, for checkpoints.
    pub fn cursor(&self) -> Cursor {
        match &self.state {
            State::Scroll(None) => Cursor::None,
            State::Scroll(Some(id)) => Cursor::Scroll(id.clone()),
            State::Pit { id, after, .. } => Cursor::Pit {
                id: id.clone(),
                after: after.clone(),
            },
        }
    }

    /// Releases what this slice holds open (a scroll; the shared PIT is closed by the copy).
    pub async fn close(&mut self) {
        if let State::Scroll(id) = &mut self.state
            && let Some(id) = id.take()
            && let Err(e) = self.source.clear_scroll(&[id]).await
        {
            tracing::warn!(error = %e, "could not clear the scroll; it expires after its keep-alive");
        }
    }
}
