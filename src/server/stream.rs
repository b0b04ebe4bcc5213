//! `GET /v1/entries`: entries as NDJSON or Server-Sent Events, optionally
//! following the live feed with no gap and no duplicate.
use super::errors::ApiError;
use super::feed::Item;
use super::routes::App;
use crate::cli::Format;
use crate::log::follow::Filter;
use crate::log::reader::LogReader;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::ops::ControlFlow;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    from: Option<u64>,
    to: Option<u64>,
    job: Option<String>,
    kind: Option<String>,
    agent: Option<String>,
    #[serde(default)]
    follow: bool,
    /// `json` (default) or `text`: each line as `argusctl cat -o json` or
    /// `argusctl cat` prints it.
    format: Option<String>,
}

/// How lines are framed on the wire.
#[derive(Clone, Copy)]
enum Wire {
    Ndjson(Format),
    Sse,
}

impl Wire {
    fn format(self) -> Format {
        match self {
            Self::Ndjson(f) => f,
            Self::Sse => Format::Json,
        }
    }
    fn entry(self, seq: u64, json: &str) -> Bytes {
        match self {
            Self::Ndjson(_) => Bytes::from(format!("{json}\n")),
            Self::Sse => Bytes::from(format!("id: {seq}\nevent: entry\ndata: {json}\n\n")),
        }
    }
    fn event(self, name: &str, json: &str) -> Bytes {
        match self {
            Self::Ndjson(_) => Bytes::from(format!("{json}\n")),
            Self::Sse => Bytes::from(format!("event: {name}\ndata: {json}\n\n")),
        }
    }
}

/// Lines queued toward one client; a client that stops reading fills it,
/// and then its feed subscription lags and it is disconnected.
const CLIENT_QUEUE: usize = 256;

/// How long the final line of a stream waits for room in the client's queue.
const FINAL_LINE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn get_entries(
    app: Arc<App>,
    headers: HeaderMap,
    q: Query,
) -> Result<Response, ApiError> {
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("text") => Format::Text,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format={other:?}: expected json or text"
            )))
        }
    };
    let wire = if sse { Wire::Sse } else { Wire::Ndjson(format) };
    // An SSE client that reconnects says where it was.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| s + 1);
    let from = resume.or(q.from).unwrap_or(0);
    let to = q.to.unwrap_or(u64::MAX);
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from={from} is after to={to}"
        )));
    }
    let filter = Filter {
        job: q.job,
        kind: q.kind,
        agent: q.agent,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    // Subscribe before reading history: whatever commits while history is
    // read is then in the subscription, and seqs already sent are skipped.
    let sub = q.follow.then(|| app.feed.subscribe());
    let task_app = app.clone();
    tokio::spawn(async move {
        let followers = q.follow.then(FollowerGauge::new);
        let _ = stream(task_app, wire, filter, from, to, sub, tx).await;
        drop(followers);
    });
    let ct = match wire {
        Wire::Sse => "text/event-stream",
        Wire::Ndjson(Format::Json) => "application/x-ndjson",
        Wire::Ndjson(Format::Text) => "text/plain; charset=utf-8",
    };
    let body = lines_body(rx);
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// Counts connected followers for `/metrics` and `/v1/health`.
struct FollowerGauge;

pub static FOLLOWERS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl FollowerGauge {
    fn new() -> Self {
        FOLLOWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self
    }
}

impl Drop for FollowerGauge {
    fn drop(&mut self) {
        FOLLOWERS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A response body fed line by line from a channel; it ends when the
/// sender is dropped.
pub fn lines_body(mut rx: mpsc::Receiver<Bytes>) -> Body {
    Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, std::io::Error>))
    }))
}

/// Reads `from..=to` (matching `filter`) from the log on a blocking thread
/// and sends it; returns the next seq not yet covered (the log's sealed size
/// when the range reaches past it). `None` if the client went away.
async fn history(
    app: &Arc<App>,
    wire: Wire,
    filter: &Filter,
    from: u64,
    to: u64,
    tx: &mpsc::Sender<Bytes>,
) -> Result<Option<u64>, ApiError> {
    let dir = app.dir.clone();
    let filter = filter.clone();
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let r = LogReader::open(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        let size = r
            .latest_seal()
            .map_err(|e| ApiError::internal(e.to_string()))?
            .tree_size;
        let mut gone = false;
        r.for_each(from, to, |v| {
            if filter.matches(v) {
                let line = wire.entry(v.seq, &super::feed::line(v, wire.format()));
                if tx.blocking_send(line).is_err() {
                    gone = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(if gone { None } else { Some(size.max(from)) })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

async fn stream(
    app: Arc<App>,
    wire: Wire,
    filter: Filter,
    from: u64,
    to: u64,
    sub: Option<broadcast::Receiver<Arc<Item>>>,
    tx: mpsc::Sender<Bytes>,
) -> Option<()> {
    // The last line says why the stream ends and where to resume. A client
    // whose queue is full gets a moment to make room, not forever.
    let fail = |tx: &mpsc::Sender<Bytes>, e: ApiError| {
        let line = wire.event("error", &e.json_line());
        let tx = tx.clone();
        async move {
            let _ = tokio::time::timeout(FINAL_LINE_WAIT, tx.send(line)).await;
        }
    };
    let mut next = match history(&app, wire, &filter, from, to, &tx).await {
        Ok(n) => n?,
        Err(e) => {
            fail(&tx, e).await;
            return None;
        }
    };
    let mut sub = sub?;
    let mut shutdown = app.shutdown.clone();
    let beat = super::config::Limits::ms(app.limits.heartbeat_ms);
    while next <= to {
        let item = tokio::select! {
            r = sub.recv() => r,
            _ = tokio::time::sleep(beat) => {
                let head = *app.feed.head.borrow();
                let hb = serde_json::json!({"heartbeat": {"head_seq": head.checked_sub(1)}});
                tx.send(wire.event("heartbeat", &hb.to_string())).await.ok()?;
                continue;
            }
            _ = shutdown.changed() => {
                let e = ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "shutting_down",
                    format!("argusd is stopping; resume with from={next}"));
                fail(&tx, e).await;
                return None;
            }
        };
        let item = match item {
            Ok(i) => i,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let e = ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "lagged",
                    format!("this follower fell {n} entries behind the live feed and was disconnected; resume with from={next}"),
                );
                fail(&tx, e).await;
                return None;
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        if item.seq < next {
            continue;
        }
        if item.seq > next {
            // Entries the feed sent before we subscribed but after our
            // history snapshot: read them from the log.
            match history(&app, wire, &filter, next, item.seq - 1, &tx).await {
                Ok(n) => n?,
                Err(e) => {
                    fail(&tx, e).await;
                    return None;
                }
            };
        }
        if item.seq > to {
            break;
        }
        if item.matches(&filter) {
            tx.send(wire.entry(item.seq, item.get(wire.format())))
                .await
                .ok()?;
        }
        next = item.seq + 1;
    }
    Some(())
}
