//! Counts what a run's object-store clients see on the wire: requests sent and requests that
//! failed (a transport error, a timeout, a connection reset, a 5xx or 429 answer, or a body cut
//! off mid-read). object_store retries each failure with backoff until the job's `max_retries` or
//! `retry_timeout`; these counts go into the ledger (`storage_requests`, `storage_errors`), so a
//! run that succeeded only after retries says so, and one whose retries ran out shows how many.
//!
//! The counting sits in object_store's own extension point, an [`HttpConnector`] wrapping its
//! reqwest client, so the retry logic stays object_store's.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
    ReqwestConnector,
};

/// Request counts of the stores one location built; shared with their clients.
#[derive(Debug, Default)]
pub struct StoreCounters {
    requests: AtomicU64,
    errors: AtomicU64,
}

impl StoreCounters {
    /// HTTP requests sent (each retry is one more).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that failed; each was retried unless the retries ran out.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Builds object_store's usual reqwest client, wrapped to count into `counters`.
#[derive(Debug)]
pub struct CountingConnector {
    pub counters: Arc<StoreCounters>,
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CountingService {
            inner,
            counters: Arc::clone(&self.counters),
        }))
    }
}

#[derive(Debug)]
struct CountingService {
    inner: HttpClient,
    counters: Arc<StoreCounters>,
}

#[async_trait]
impl HttpService for CountingService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.inner.execute(req).await.inspect_err(|_| {
            self.counters.error();
        })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            self.counters.error();
        }
        let (parts, body) = response.into_parts();
        let body = HttpResponseBody::new(CountingBody {
            inner: body,
            counters: Arc::clone(&self.counters),
        });
        Ok(HttpResponse::from_parts(parts, body))
    }
}

/// A response body that counts a read failing part-way (a truncated or reset transfer).
#[derive(Debug)]
struct CountingBody {
    inner: HttpResponseBody,
    counters: Arc<StoreCounters>,
}

impl Body for CountingBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.counters.error();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
