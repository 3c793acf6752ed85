//! Prometheus metrics served on `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconciliations run.
    pub reconciliations: Counter,
    /// Reconciliations that returned an error.
    pub reconcile_errors: Counter,
    /// Copies running now.
    pub copies_running: Gauge,
    /// Copies ended, by result (`succeeded`, `failed`, `interrupted`).
    pub copies_finished: Family<Vec<(String, String)>, Counter>,
    /// Documents written by all copies.
    pub documents_written: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("remote_reindex");
        let reconciliations = Counter::default();
        let reconcile_errors = Counter::default();
        let copies_running = Gauge::default();
        let copies_finished = Family::default();
        let documents_written = Counter::default();
        registry.register(
            "reconciliations",
            "Reconciliations run",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed (retried)",
            reconcile_errors.clone(),
        );
        registry.register(
            "copies_running",
            "Copies running now",
            copies_running.clone(),
        );
        registry.register(
            "copies_finished",
            "Copies ended, by result",
            copies_finished.clone(),
        );
        registry.register(
            "documents_written",
            "Documents written to destinations",
            documents_written.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            reconcile_errors,
            copies_running,
            copies_finished,
            documents_written,
        }
    }
}

impl Metrics {
    /// Counts a copy that ended with `result`.
    pub fn finished(&self, result: &str) {
        self.copies_finished
            .get_or_create(&vec![("result".to_string(), result.to_string())])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.reconciliations.inc();
        m.finished("succeeded");
        let text = m.render();
        assert!(
            text.contains("remote_reindex_reconciliations_total 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"remote_reindex_copies_finished_total{result="succeeded"} 1"#),
            "{text}"
        );
    }
}
