//! `scorer schedule --metrics-addr`: `/metrics` over HTTP for Prometheus to scrape, until the
//! scheduler stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use super::exporter::Exporter;

/// Binds `addr` and answers `GET /metrics` with `exporter`'s metrics (404 elsewhere) until
/// `stop`. Returns the bound address (port 0 picks one) once listening.
pub async fn serve(
    addr: SocketAddr,
    exporter: Arc<Exporter>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        continue;
                    }
                },
                () = stop.cancelled() => return,
            };
            let exporter = Arc::clone(&exporter);
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let exporter = Arc::clone(&exporter);
                    async move { Ok::<_, Infallible>(answer(&req, &exporter)) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics endpoint: connection ended with an error");
                }
            });
        }
    });
    Ok(bound)
}

fn answer<B>(req: &Request<B>, exporter: &Exporter) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    if req.uri().path() == "/metrics" {
        *response.body_mut() = Full::new(Bytes::from(exporter.encode()));
        if let Ok(v) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, v);
        }
    } else {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    response
}
