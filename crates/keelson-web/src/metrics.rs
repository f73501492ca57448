//! The Prometheus registry behind `GET /metrics`, and the HTTP metrics
//! both servers share. Each site registers its own metrics beside these.
//!
//! Values that are cheap to read but costly to keep current on every write
//! (the database's size, the sync backlog, the age of the last sync) are
//! gauges refreshed by hooks that run just before each scrape.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// Labels of the HTTP request counter.
pub type HttpLabels = Vec<(String, String)>;

/// Labels of a per-vessel gauge family.
pub type Labels = Vec<(String, String)>;

/// A hook that refreshes gauges before a scrape.
type ScrapeHook = Box<dyn Fn() + Send + Sync>;

/// A site's metrics registry plus the shared HTTP metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    http_requests: Family<HttpLabels, Counter>,
    hooks: Arc<Mutex<Vec<ScrapeHook>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the `keelson_` prefix and the HTTP request counter.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("keelson");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route and status",
            http_requests.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            http_requests,
            hooks: Arc::default(),
        }
    }

    /// Registers a counter and returns it.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let c = Counter::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, c.clone());
        }
        c
    }

    /// Registers a gauge and returns it.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let g = Gauge::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, g.clone());
        }
        g
    }

    /// Registers a family of gauges told apart by labels (for example one
    /// per vessel) and returns it.
    pub fn gauge_family(&self, name: &str, help: &str) -> Family<Labels, Gauge> {
        let f = Family::<Labels, Gauge>::default();
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, f.clone());
        }
        f
    }

    /// Runs `hook` before every scrape, to refresh gauges that are read
    /// from elsewhere (the database, the file system).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut h) = self.hooks.lock() {
            h.push(Box::new(hook));
        }
    }

    /// Lets a subsystem register its own metrics (families, histograms) in
    /// the site's registry.
    pub fn register_with(&self, f: impl FnOnce(&mut Registry)) {
        if let Ok(mut r) = self.registry.lock() {
            f(&mut r);
        }
    }

    /// The registry in the text exposition format.
    pub fn render(&self) -> String {
        if let Ok(hooks) = self.hooks.lock() {
            for hook in hooks.iter() {
                hook();
            }
        }
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &r);
        }
        out
    }
}

/// `GET /metrics`. The scrape hooks may read the database, so the render
/// runs on the blocking pool rather than on an async worker.
pub async fn handler(State(m): State<Metrics>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || m.render())
        .await
        .unwrap_or_default();
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// Middleware that counts requests by matched route and status.
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    m.http_requests
        .get_or_create(&vec![
            ("route".to_owned(), route),
            ("status".to_owned(), resp.status().as_u16().to_string()),
        ])
        .inc();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics() {
        let m = Metrics::new();
        m.counter("samples_written", "Samples written").inc();
        let text = m.render();
        assert!(text.contains("keelson_samples_written_total 1"), "{text}");
    }

    #[test]
    fn scrape_hooks_refresh_gauges_and_families() {
        let m = Metrics::new();
        let g = m.gauge("database_bytes", "Database size");
        let f = m.gauge_family("vessel_last_sync_age_seconds", "Age of last sync");
        m.on_scrape(move || {
            g.set(4096);
            f.get_or_create(&vec![("vessel".to_owned(), "imo1".to_owned())])
                .set(12);
        });
        let text = m.render();
        assert!(text.contains("keelson_database_bytes 4096"), "{text}");
        assert!(
            text.contains("keelson_vessel_last_sync_age_seconds{vessel=\"imo1\"} 12"),
            "{text}"
        );
    }
}
