//! Object-store faults between scorer and a real S3 emulator: a small fault proxy on loopback in
//! front of moto answers chosen ranged reads with a 503, a connection closed without an answer, a
//! body cut off half-way, or an answer slower than the job's timeout, and forwards everything else.
//! Transient faults are retried with backoff (the job's `[input.storage]` retry settings) and
//! counted in the ledger; retries that run out fail the run with exit 4, publishing nothing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cloud::{
    S3_ENV, cloud_job, create_s3_bucket, project, s3_endpoint, s3_store, scores, unique, upload,
};
use crate::common::{DATE, Project, assert_ok, text};

/// What the proxy does to one ranged GET.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `503 Slow Down`, as S3 answers when throttling.
    Unavailable,
    /// The connection closed without an answer.
    Closed,
    /// The answer's headers promise the whole range; half the body comes, then the connection ends.
    Truncated,
    /// The answer comes after this long (longer than the job's request timeout).
    Slow(Duration),
}

/// A loopback HTTP/1.1 proxy to `upstream` that applies queued faults to ranged GETs (reads of
/// Parquet footers and column chunks), or `always` to every one of them. Each request gets its
/// own connection (`Connection: close`), so each can be decided alone.
struct FaultProxy {
    addr: SocketAddr,
    queue: Arc<Mutex<VecDeque<Fault>>>,
    always: Arc<Mutex<Option<Fault>>>,
    injected: Arc<AtomicU64>,
}

impl FaultProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            queue: Arc::default(),
            always: Arc::default(),
            injected: Arc::default(),
        };
        let (queue, always, injected) = (
            Arc::clone(&proxy.queue),
            Arc::clone(&proxy.always),
            Arc::clone(&proxy.injected),
        );
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (queue, always, injected) = (
                    Arc::clone(&queue),
                    Arc::clone(&always),
                    Arc::clone(&injected),
                );
                tokio::spawn(async move {
                    if let Err(e) = serve(conn, upstream, queue, always, injected).await {
                        eprintln!("proxy: {e}");
                    }
                });
            }
        });
        proxy
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (head and `Content-Length` body) from `conn`.
async fn read_request(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let length = header(&buf[..head_end], "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lowercase) in an HTTP head.
fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim().to_ascii_lowercase() == name).then(|| v.trim().to_string())
    })
}

async fn serve(
    mut conn: TcpStream,
    upstream: SocketAddr,
    queue: Arc<Mutex<VecDeque<Fault>>>,
    always: Arc<Mutex<Option<Fault>>>,
    injected: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let request = read_request(&mut conn).await?;
    let head_end = find(&request, b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    let ranged_get =
        request.starts_with(b"GET ") && header(&request[..head_end], "range").is_some();
    let fault = if ranged_get {
        let queued = queue.lock().unwrap().pop_front();
        queued.or(*always.lock().unwrap())
    } else {
        None
    };
    if fault.is_some() {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Some(Fault::Unavailable) => {
            let body = "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await?;
            return conn.shutdown().await;
        }
        Some(Fault::Closed) => return Ok(()),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Truncated) | None => {}
    }
    // Forward with `Connection: close` (not a signed header) and relay the answer.
    let first_line_end = find(&request, b"\r\n").map_or(0, |i| i + 2);
    let mut forwarded = request[..first_line_end].to_vec();
    forwarded.extend_from_slice(b"Connection: close\r\n");
    for line in request[first_line_end..head_end].split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line).to_ascii_lowercase();
        if !text.starts_with("connection:") && !line.is_empty() {
            forwarded.extend_from_slice(line);
            forwarded.push(b'\n');
        }
    }
    forwarded.extend_from_slice(&request[head_end..]);
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(&forwarded).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    if let Some(Fault::Truncated) = fault {
        let body_start = find(&answer, b"\r\n\r\n").map_or(answer.len(), |i| i + 4);
        let body = answer.len() - body_start;
        answer.truncate(body_start + body / 2);
    }
    conn.write_all(&answer).await?;
    conn.shutdown().await
}

fn moto_addr() -> SocketAddr {
    s3_endpoint().trim_start_matches("http://").parse().unwrap()
}

/// A project whose job `faulty` reads its day of input from a fresh bucket through `proxy`.
async fn faulty_project(proxy: &FaultProxy, retries: &str) -> Project {
    let bucket = unique("faults");
    create_s3_bucket(&bucket).await;
    let (p, dir) = project();
    upload(
        s3_store(&bucket).as_ref(),
        &dir,
        &format!("events/dt={DATE}"),
    )
    .await;
    let storage = format!(
        "endpoint = \"{}\"\nallow_http = true\nregion = \"us-east-1\"\n{retries}",
        proxy.endpoint()
    );
    cloud_job(
        &p,
        "faulty",
        &format!("s3://{bucket}/events/dt={{{{ ds }}}}/*.parquet"),
        "faulty_scores",
        &storage,
    );
    p
}

async fn last_run(p: &Project) -> (String, i64, i64, Option<String>) {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as(
        "SELECT status, storage_requests, storage_errors, error FROM scorer_runs \
         WHERE job = 'faulty' ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_store_faults_are_retried_with_backoff_and_counted_in_the_ledger() {
    let proxy = FaultProxy::start(moto_addr()).await;
    let p = faulty_project(
        &proxy,
        "timeout = \"1s\"\nmax_retries = 5\nretry_backoff = \"10ms\"\nretry_max_backoff = \"100ms\"",
    )
    .await;
    proxy.queue.lock().unwrap().extend([
        Fault::Unavailable,
        Fault::Closed,
        Fault::Truncated,
        Fault::Slow(Duration::from_secs(3)),
        Fault::Unavailable,
    ]);
    let out = p.scorer_env(&["run", "faulty", "--date", DATE], None, S3_ENV);
    assert_ok(&out);
    assert_eq!(
        proxy.injected.load(Ordering::SeqCst),
        5,
        "every fault was met"
    );
    // The same rows as from local files, each once.
    assert_ok(&p.run("local", None));
    let local = scores(&p, "local_scores").await;
    assert_eq!(local.len(), 6_000);
    assert_eq!(scores(&p, "faulty_scores").await, local);
    let (status, requests, errors, _) = last_run(&p).await;
    assert_eq!(status, "succeeded");
    assert_eq!(errors, 5, "one failed request per injected fault");
    assert!(requests > errors, "{requests} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fail_the_run_with_the_retryable_exit_code_and_keep_the_date() {
    let proxy = FaultProxy::start(moto_addr()).await;
    let p = faulty_project(
        &proxy,
        "max_retries = 2\nretry_backoff = \"10ms\"\nretry_max_backoff = \"20ms\"",
    )
    .await;
    assert_ok(&p.scorer_env(&["run", "faulty", "--date", DATE], None, S3_ENV));
    let before = scores(&p, "faulty_scores").await;
    assert_eq!(before.len(), 6_000);

    *proxy.always.lock().unwrap() = Some(Fault::Unavailable);
    let out = p.scorer_env(&["run", "faulty", "--date", DATE], None, S3_ENV);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let (status, _, errors, error) = last_run(&p).await;
    assert_eq!(status, "failed");
    assert!(
        errors >= 3,
        "a read tried 1 + max_retries times: {errors} errors"
    );
    let error = error.unwrap_or_default();
    assert!(
        error.contains("503") || error.contains("retries"),
        "{error}"
    );
    assert_eq!(
        scores(&p, "faulty_scores").await,
        before,
        "the date keeps its rows"
    );
}
