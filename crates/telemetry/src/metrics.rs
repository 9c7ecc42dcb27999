//! A Prometheus registry over HTTP: `GET /metrics` in the text exposition format.
//!
//! The controller serves its registry on its API port itself; a process without an API (an
//! invoker of a distributed deployment) registers its metrics
//! (`whirl_invoker::Invoker::register_metrics`) in a [`Registry`] and serves it with [`serve`].

use std::future::Future;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
pub use prometheus::Registry;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry's metrics in the text exposition format.
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    prometheus::TextEncoder::new().encode_to_string(&registry.gather())
}

/// The HTTP response of a scrape.
pub fn response(registry: &Registry) -> Response {
    match encode(registry) {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A router with `GET /metrics` (and `GET /` answering 200, for health checks).
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(move || async move { response(&registry) }))
        .route("/", get(|| async { "whirl metrics: GET /metrics\n" }))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(registry))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_a_registry() {
        let registry = Registry::new();
        let c = prometheus::IntCounter::new("whirl_test_total", "a test counter").unwrap();
        registry.register(Box::new(c.clone())).unwrap();
        c.inc_by(3);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, registry, async {
            let _ = rx.await;
        }));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains(CONTENT_TYPE), "{out}");
        assert!(out.contains("whirl_test_total 3"), "{out}");
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }
}
