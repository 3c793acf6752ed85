//! The destination's own reindex as a background task: `POST _reindex?wait_for_completion=false`,
//! `GET _tasks/<id>`, `POST _reindex/<id>/_rethrottle`, `POST _tasks/<id>/_cancel`, and the
//! shapes of their answers (the running status, the stored response, the stored error).

use super::client::SearchClient;
use super::error::SearchError;
use super::options::Resend;
use super::transport::Body;
use reqwest::Method;
use serde_json::Value;

/// The counters of a reindex task (`task.status` while it runs, the top level of `response`
/// once it finished).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Documents the task expects (the source's hits for the query, capped by `max_docs`; 0
    /// until the first scroll page arrived).
    pub total: u64,
    /// Documents created in the destination.
    pub created: u64,
    /// Documents overwritten in the destination.
    pub updated: u64,
    /// Documents deleted (only by scripts; always 0 here).
    pub deleted: u64,
    /// Scroll pages processed.
    pub batches: u64,
    /// Version conflicts (skipped under `conflicts: proceed`).
    pub version_conflicts: u64,
    /// Documents a script chose not to write.
    pub noops: u64,
    /// Bulk and search requests the task retried.
    pub retries: u64,
}

impl TaskCounts {
    /// Documents the task has dealt with (written, skipped or conflicting).
    pub fn processed(&self) -> u64 {
        self.created + self.updated + self.deleted + self.noops + self.version_conflicts
    }

    fn parse(v: &Value) -> TaskCounts {
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        TaskCounts {
            total: n("total"),
            created: n("created"),
            updated: n("updated"),
            deleted: n("deleted"),
            batches: n("batches"),
            version_conflicts: n("version_conflicts"),
            noops: n("noops"),
            retries: v["retries"]["bulk"].as_u64().unwrap_or(0)
                + v["retries"]["search"].as_u64().unwrap_or(0),
        }
    }
}

/// One entry of a finished reindex's `failures`: a document the destination rejected, or a
/// failed search against the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFailure {
    /// The document's `_id` (bulk failures only).
    pub id: Option<String>,
    /// HTTP status of the failure (0 when not given).
    pub status: u16,
    /// The error type, e.g. `mapper_parsing_exception`.
    pub kind: String,
    /// The error's reason (with its first cause).
    pub reason: String,
}

impl TaskFailure {
    fn parse(v: &Value) -> TaskFailure {
        // Bulk failures carry `cause`, search failures `reason` (both error objects).
        let err = if v["cause"].is_object() {
            &v["cause"]
        } else {
            &v["reason"]
        };
        let (kind, reason) = error_text(err);
        TaskFailure {
            id: v["id"].as_str().map(str::to_string),
            status: v["status"].as_u64().unwrap_or(0) as u16,
            kind,
            reason,
        }
    }

    /// A version conflict (the document exists and `conflicts` is `abort`).
    pub fn is_version_conflict(&self) -> bool {
        self.status == 409 || self.kind == "version_conflict_engine_exception"
    }
}

/// The stored result of a finished reindex task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskResponse {
    /// Final counters.
    pub counts: TaskCounts,
    /// Rejected documents and failed searches; the task stops at the first batch that has any.
    pub failures: Vec<TaskFailure>,
    /// Why the task was cancelled, if it was.
    pub canceled: Option<String>,
    /// A search or bulk request timed out.
    pub timed_out: bool,
}

/// What `GET _tasks/<id>` says about a reindex task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskState {
    /// The task finished (successfully, with failures, with an error, or cancelled).
    pub completed: bool,
    /// Counters so far (`task.status`).
    pub status: TaskCounts,
    /// The stored response, once completed without an exception.
    pub response: Option<TaskResponse>,
    /// The stored exception, `(type, reason)`, once completed with one.
    pub error: Option<(String, String)>,
}

impl TaskState {
    /// Parses a `GET _tasks/<id>` body.
    pub fn parse(v: &Value) -> TaskState {
        let response = v
            .get("response")
            .filter(|r| r.is_object())
            .map(|r| TaskResponse {
                counts: TaskCounts::parse(r),
                failures: r["failures"]
                    .as_array()
                    .map(|a| a.iter().map(TaskFailure::parse).collect())
                    .unwrap_or_default(),
                canceled: r["canceled"].as_str().map(str::to_string),
                timed_out: r["timed_out"].as_bool().unwrap_or(false),
            });
        TaskState {
            completed: v["completed"].as_bool().unwrap_or(false),
            status: TaskCounts::parse(&v["task"]["status"]),
            response,
            error: v.get("error").filter(|e| !e.is_null()).map(error_text),
        }
    }

    /// The most complete counters: the response's once finished, else the running status.
    pub fn counts(&self) -> &TaskCounts {
        self.response.as_ref().map_or(&self.status, |r| &r.counts)
    }
}

/// `(type, reason)` of an error object, the reason followed by its causes.
fn error_text(err: &Value) -> (String, String) {
    if let Some(s) = err.as_str() {
        return ("error".into(), s.to_string());
    }
    let kind = err["type"].as_str().unwrap_or("error").to_string();
    let mut reason = err["reason"].as_str().unwrap_or("").to_string();
    let mut cause = &err["caused_by"];
    for _ in 0..4 {
        if !cause.is_object() {
            break;
        }
        let t = cause["type"].as_str().unwrap_or("error");
        let r = cause["reason"].as_str().unwrap_or("");
        reason = format!("{reason} (caused by {t}: {r})");
        cause = &cause["caused_by"];
    }
    (kind, reason)
}

/// A running reindex task as `GET _tasks?actions=*reindex&detailed` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningTask {
    /// `<node>:<id>`.
    pub id: String,
    /// e.g. `reindex from [host=… port=… query=…][src] to [dest]`.
    pub description: String,
}

fn task_path(id: &str) -> String {
    // Task ids are `<node id>:<number>`; node ids are URL-safe base64.
    id.replace('%', "%25").replace('/', "%2F")
}

impl SearchClient {
    /// Starts `POST _reindex?wait_for_completion=false` with `body` and `params` (e.g.
    /// `scroll=5m`, `requests_per_second=100`); returns the task id. Sent once: a retried
    /// start could leave two tasks copying.
    pub async fn start_reindex(
        &self,
        body: &Value,
        params: &[(&str, String)],
    ) -> Result<String, SearchError> {
        let mut path = "_reindex?wait_for_completion=false".to_string();
        for (k, v) in params {
            path.push_str(&format!("&{k}={v}"));
        }
        let r = self
            .request_once(Method::POST, &path, Some(&Body::json(body)), &[])
            .await?;
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("POST", "_reindex", e.to_string()))?;
        v["task"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.decode_error("POST", "_reindex", "no `task` in the answer"))
    }

    /// The task's state; `None` when the cluster knows nothing of it (404: its node restarted
    /// before it finished, so no result was stored).
    pub async fn task(&self, id: &str) -> Result<Option<TaskState>, SearchError> {
        let path = format!("_tasks/{}", task_path(id));
        let r = self
            .request(Method::GET, &path, None, &[404], Resend::Safe)
            .await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|e| self.decode_error("GET", "_tasks", e.to_string()))?;
        Ok(Some(TaskState::parse(&v)))
    }

    /// Changes a running reindex's rate (`None`: unlimited).
    pub async fn rethrottle_reindex(&self, id: &str, rate: Option<f64>) -> Result<(), SearchError> {
        let rps = rate.map_or_else(|| "-1".to_string(), |r| r.to_string());
        let path = format!(
            "_reindex/{}/_rethrottle?requests_per_second={rps}",
            task_path(id)
        );
        self.request(Method::POST, &path, None, &[], Resend::Safe)
            .await?;
        Ok(())
    }

    /// Cancels a task; one that already finished or is unknown is fine.
    pub async fn cancel_task(&self, id: &str) -> Result<(), SearchError> {
        let path = format!("_tasks/{}/_cancel", task_path(id));
        self.request(Method::POST, &path, None, &[404], Resend::Safe)
            .await?;
        Ok(())
    }

    /// Reindex tasks running now, with their descriptions.
    pub async fn running_reindex_tasks(&self) -> Result<Vec<RunningTask>, SearchError> {
        let v = self
            .get_json("_tasks?actions=*reindex&detailed=true&group_by=none")
            .await?;
        Ok(v["tasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|t| t["parent_task_id"].is_null())
                    .filter_map(|t| {
                        Some(RunningTask {
                            id: format!("{}:{}", t["node"].as_str()?, t["id"].as_u64()?),
                            description: t["description"].as_str().unwrap_or("").to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A running task, as Elasticsearch 7.17 and OpenSearch 2.x answer `GET _tasks/<id>`.
    #[test]
    fn parses_a_running_reindex() {
        let v = json!({
          "completed": false,
          "task": {
            "node": "r1A2WoRbTwKZ516z6NEs5A", "id": 36619, "type": "transport",
            "action": "indices:data/write/reindex",
            "status": {
              "total": 6154, "updated": 3500, "created": 0, "deleted": 0, "batches": 4,
              "version_conflicts": 0, "noops": 0, "retries": {"bulk": 0, "search": 1},
              "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0
            },
            "description": "reindex from [host=127.0.0.1 port=9201 query={\n  \"match_all\" : { }\n}][src] to [dst][_doc]",
            "start_time_in_millis": 1535499597651_u64, "running_time_in_nanos": 15456_u64,
            "cancellable": true, "headers": {}
          }
        });
        let s = TaskState::parse(&v);
        assert!(!s.completed);
        assert_eq!(s.status.total, 6154);
        assert_eq!(s.status.updated, 3500);
        assert_eq!(s.status.batches, 4);
        assert_eq!(s.status.retries, 1);
        assert_eq!(s.status.processed(), 3500);
        assert!(s.response.is_none() && s.error.is_none());
        assert_eq!(s.counts(), &s.status);
    }

    /// A finished task with a rejected document and a version conflict (the reindex response
    /// stored in `.tasks`).
    #[test]
    fn parses_a_finished_reindex_with_failures() {
        let v = json!({
          "completed": true,
          "task": {"node": "n1", "id": 7, "action": "indices:data/write/reindex",
            "status": {"total": 10, "updated": 0, "created": 4, "deleted": 0, "batches": 1,
              "version_conflicts": 0, "noops": 0, "retries": {"bulk": 0, "search": 0}}},
          "response": {
            "took": 120, "timed_out": false, "total": 10, "updated": 0, "created": 4,
            "deleted": 0, "batches": 1, "version_conflicts": 1, "noops": 0,
            "retries": {"bulk": 2, "search": 0}, "throttled": "0s", "throttled_millis": 0,
            "requests_per_second": -1.0, "throttled_until": "0s", "throttled_until_millis": 0,
            "failures": [
              {"index": "dst", "type": "_doc", "id": "7", "status": 400,
               "cause": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n] of type [long]",
                         "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"x\""}}},
              {"index": "dst", "id": "3", "status": 409,
               "cause": {"type": "version_conflict_engine_exception", "reason": "[3]: version conflict, document already exists"}}
            ]
          }
        });
        let s = TaskState::parse(&v);
        assert!(s.completed);
        let r = s.response.as_ref().unwrap();
        assert_eq!(r.counts.created, 4);
        assert_eq!(r.counts.version_conflicts, 1);
        assert_eq!(r.counts.retries, 2);
        assert_eq!(r.failures.len(), 2);
        assert_eq!(r.failures[0].id.as_deref(), Some("7"));
        assert_eq!(r.failures[0].status, 400);
        assert_eq!(r.failures[0].kind, "mapper_parsing_exception");
        assert!(r.failures[0].reason.contains("For input string"));
        assert!(!r.failures[0].is_version_conflict());
        assert!(r.failures[1].is_version_conflict());
        assert_eq!(s.counts().version_conflicts, 1);
    }

    /// A task that ended with an exception (e.g. the remote batch too large for the buffer), and
    /// a cancelled one.
    #[test]
    fn parses_errors_search_failures_and_cancellation() {
        let v = json!({
          "completed": true,
          "task": {"node": "n1", "id": 9, "status": {"total": 0, "created": 0}},
          "error": {"type": "illegal_argument_exception",
            "reason": "Remote responded with a chunk that was too large. Use a smaller batch size.",
            "caused_by": {"type": "content_too_long_exception", "reason": "entity content is too long [104857601] for the configured buffer limit [104857600]"}}
        });
        let s = TaskState::parse(&v);
        let (kind, reason) = s.error.unwrap();
        assert_eq!(kind, "illegal_argument_exception");
        assert!(reason.contains("chunk that was too large") && reason.contains("buffer limit"));

        let v = json!({"completed": true, "task": {"status": {}},
          "response": {"total": 5, "created": 2, "failures": [
            {"index": null, "shard": -1, "node": null, "status": 503,
             "reason": {"type": "es_rejected_execution_exception", "reason": "rejected"}}],
           "canceled": "by user request"}});
        let s = TaskState::parse(&v);
        let r = s.response.unwrap();
        assert_eq!(r.canceled.as_deref(), Some("by user request"));
        assert_eq!(r.failures[0].id, None);
        assert_eq!(r.failures[0].kind, "es_rejected_execution_exception");
    }
}
