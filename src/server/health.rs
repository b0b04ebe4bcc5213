//! `/v1/health` for load balancers and operators, `/metrics` for Prometheus.
use super::routes::App;
use super::stream::FOLLOWERS;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub async fn health(State(app): State<Arc<App>>) -> Response {
    let lockdown = app.log.committed().lockdown();
    let size = app.log.committed().get();
    let auditor_lost = app.auditor.lost.load(Ordering::Relaxed);
    let control = app.gate.snapshot();
    let status_word = match (&lockdown, auditor_lost) {
        (Some(_), _) => "lockdown",
        (None, true) => "auditor_lost",
        (None, false) => "ok",
    };
    let body = serde_json::json!({
        "status": status_word,
        "lockdown": lockdown,
        "auditor": app.auditor.health(size),
        "kill_switch": {
            "hard_kill": control.hard_kill.as_ref().map(|s| s.seq),
            "lockdown": control.lockdown.as_ref().map(|s| s.seq),
            "soft_kills": control.soft_kills.len(),
        },
        "head_seq": size.checked_sub(1),
        "entries": size,
        "feed_seq": app.feed.head.borrow().checked_sub(1),
        "followers": FOLLOWERS.load(Ordering::Relaxed),
        "projection_lag": app.shared.lag().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "queue_depth": queue_depth(&app),
        "uptime_s": app.started.elapsed().as_secs(),
    });
    let status = if lockdown.is_some() || auditor_lost {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut r = (status, format!("{body}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn queue_depth(app: &App) -> usize {
    app.limits
        .queue_requests_max
        .saturating_sub(app.queue.available_permits())
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    metrics::gauge!("argus_queue_depth").set(queue_depth(&app) as f64);
    metrics::gauge!("argus_followers").set(FOLLOWERS.load(Ordering::Relaxed) as f64);
    metrics::gauge!("argus_entries").set(app.log.committed().get() as f64);
    metrics::gauge!("argus_lockdown").set(if app.log.committed().lockdown().is_some() {
        1.0
    } else {
        0.0
    });
    let mut r = app.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}
