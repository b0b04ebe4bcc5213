//! The router: every route of docs/API.md, and the state they share.
use super::auth::{Auth, Caller, Peer};
use super::commands;
use super::config::Limits;
use super::errors::ApiError;
use super::feed::Feed;
use crate::Log;
use axum::body::Body;
use axum::extract::{Query, RawPathParams, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};

/// What every request handler shares.
pub struct App {
    pub dir: PathBuf,
    pub log: Arc<Log>,
    pub limits: Limits,
    pub auth: Auth,
    /// Append requests in flight (parsed or waiting for their fsync).
    pub queue: Arc<Semaphore>,
    pub feed: Feed,
    /// Becomes true when argusd starts to stop; streams end on it.
    pub shutdown: watch::Receiver<bool>,
    pub metrics: PrometheusHandle,
    pub started: std::time::Instant,
    /// The projections and decision lock that commands run against.
    pub shared: Arc<crate::cli::context::SharedState>,
    /// The token file the daemon reads (and `token` commands write).
    pub tokens_path: PathBuf,
    /// The kill switches as the log records them, enforced on agents' appends.
    pub gate: Arc<super::control::Gate>,
    pub auditor: Arc<super::auditor::AuditorStatus>,
    /// Request buckets and per-peer connection counts.
    pub fairness: Arc<super::fairness::Fairness>,
}

impl App {
    pub fn caller(&self, req: &Request) -> Result<Caller, ApiError> {
        let peer = req
            .extensions()
            .get::<Peer>()
            .cloned()
            .ok_or_else(|| ApiError::internal("connection without peer information"))?;
        let caller = self.auth.identify(req.headers(), &peer)?;
        tracing::debug!(principal = %caller.principal(), role = caller.role_label(), method = %req.method(), path = %req.uri().path(), "request");
        Ok(caller)
    }
}

type Shared = State<Arc<App>>;

pub fn router(app: Arc<App>) -> Router {
    let mut r = Router::new()
        .route("/v1/entries", post(post_entries).get(get_entries))
        .route("/v1/health", get(super::health::health))
        .route("/metrics", get(super::health::metrics))
        .route("/v1/argusctl", post(post_argv))
        .route("/v1/config", post(post_config))
        .route("/v1/auditor/progress", post(post_auditor_progress))
        // The operator page (static; its API calls carry the token).
        .route("/", get(super::ui::index))
        .route("/ui/app.js", get(super::ui::app_js))
        .route("/ui/style.css", get(super::ui::style_css));
    // A path may have a view (GET) and a decision (POST): /v1/mode, /v1/flags/{key}.
    let mut paths: std::collections::BTreeMap<&str, MethodRouter<Arc<App>>> = Default::default();
    for (path, spec) in commands::VIEWS {
        let h = move |State(app): Shared, params: RawPathParams, req: Request| {
            command(app, spec, params, req, false)
        };
        let m = paths.remove(path).unwrap_or_default();
        paths.insert(path, m.get(h));
    }
    for (path, spec) in commands::DECISIONS {
        let h = move |State(app): Shared, params: RawPathParams, req: Request| {
            command(app, spec, params, req, true)
        };
        let m = paths.remove(path).unwrap_or_default();
        paths.insert(path, m.post(h));
    }
    for (path, m) in paths {
        r = r.route(path, m);
    }
    // Every request, the fallback's too, is charged to its caller first.
    let gate = axum::middleware::from_fn_with_state(app.clone(), super::fairness::gate);
    r.fallback(not_found).layer(gate).with_state(app)
}

/// A view (query options) or decision (JSON body options) route.
async fn command(
    app: Arc<App>,
    spec: &'static commands::Spec,
    params: RawPathParams,
    req: Request,
    body_opts: bool,
) -> Result<Response, ApiError> {
    let (caller, req) = identify(&app, req).await?;
    let path: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut opts = query_map(req.uri())?;
    if body_opts {
        let (parts, body) = req.into_parts();
        let bytes = super::ingest::read_body(&app, &parts.headers, body).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            match crate::json::parse(&bytes, app.limits.body_bytes_max) {
                Ok(Value::Object(m)) => opts.extend(m),
                Ok(_) => {
                    return Err(ApiError::bad_request(
                        "the body must be a JSON object of options",
                    ))
                }
                Err(e) => return Err(ApiError::bad_request(format!("the body: {e}"))),
            }
        }
    }
    let (argv, body) = commands::argv(spec, &path, opts)?;
    let (cmd, access) = commands::parse(&app, &argv)?;
    commands::run(app, caller, cmd, access, None, body).await
}

/// Query parameters as JSON options; a repeated key becomes an array.
fn query_map(uri: &axum::http::Uri) -> Result<Map<String, Value>, ApiError> {
    let Query(pairs): Query<Vec<(String, String)>> = Query::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let mut m = Map::new();
    for (k, v) in pairs {
        match m.get_mut(&k) {
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                m.insert(k, Value::String(v));
            }
        }
    }
    Ok(m)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgvBody {
    argv: Vec<String>,
    stdin: Option<String>,
}

/// `argusctl` through the daemon: its argv (without the program name).
async fn post_argv(State(app): Shared, req: Request) -> Result<Response, ApiError> {
    let (caller, req) = identify(&app, req).await?;
    let (parts, body) = req.into_parts();
    let bytes = super::ingest::read_body(&app, &parts.headers, body).await?;
    let b: ArgvBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "the body: {e} (expected {{\"argv\": [...], \"stdin\"?: \"...\"}})"
        ))
    })?;
    let (cmd, access) = commands::parse(&app, &b.argv)?;
    let body = commands::Body::Text;
    commands::run(
        app,
        caller,
        cmd,
        access,
        b.stdin.map(String::into_bytes),
        body,
    )
    .await
}

/// `argusctl config apply` through the daemon: the body is its stdin.
async fn post_config(State(app): Shared, req: Request) -> Result<Response, ApiError> {
    let (caller, req) = identify(&app, req).await?;
    let (parts, body) = req.into_parts();
    let bytes = super::ingest::read_body(&app, &parts.headers, body).await?;
    let argv = vec!["config".to_string(), "apply".into(), ".".into()];
    let (cmd, access) = commands::parse(&app, &argv)?;
    commands::run(
        app,
        caller,
        cmd,
        access,
        Some(bytes.to_vec()),
        commands::Body::Lines,
    )
    .await
}

async fn not_found(req: Request) -> ApiError {
    let e = ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {} (see docs/API.md)",
            req.method(),
            req.uri().path()
        ),
    );
    refuse(req, e).await
}

/// Answers `e` to a request whose body was not read, after reading (and
/// dropping) a bounded part of it: a client still sending its body would
/// otherwise see a reset connection instead of the answer. A body declared
/// larger than that part is not read at all: reading a hostile client's
/// megabyte to refuse it would cost more than the refusal is worth.
async fn refuse(req: Request, e: ApiError) -> ApiError {
    const DRAIN_BYTES: usize = 1 << 20;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_BYTES as u64) {
        return e;
    }
    let body = http_body_util::Limited::new(req.into_body(), DRAIN_BYTES);
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        http_body_util::BodyExt::collect(body),
    )
    .await;
    e
}

/// Who is calling, or the refusal (with the body drained, as `refuse`).
async fn identify(app: &App, req: Request) -> Result<(Caller, Request), ApiError> {
    match app.caller(&req) {
        Ok(c) => Ok((c, req)),
        Err(e) => Err(refuse(req, e).await),
    }
}

async fn post_entries(State(app): Shared, req: Request) -> Result<Response, ApiError> {
    let (caller, req) = identify(&app, req).await?;
    let (parts, body): (_, Body) = req.into_parts();
    super::ingest::post_entries(app, caller, parts.headers, body).await
}

async fn get_entries(
    State(app): Shared,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    app.caller(&req)?;
    let q: Query<super::stream::Query> = Query::try_from_uri(req.uri())
        .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    super::stream::get_entries(app.clone(), headers, q.0).await
}

/// An external auditor's progress report (`argusd --auditor-only`): the
/// next seq it has not folded. Only the auditor role may report.
async fn post_auditor_progress(State(app): Shared, req: Request) -> Result<Response, ApiError> {
    let (caller, req) = identify(&app, req).await?;
    let is_auditor = matches!(
        &caller,
        Caller::Token {
            role: crate::authority::Class::Auditor,
            ..
        } | Caller::Peer {
            role: crate::authority::Class::Auditor,
            ..
        }
    );
    if !is_auditor {
        return Err(ApiError::forbidden(
            "only the auditor role reports auditor progress",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), 4096)
        .await
        .map_err(|e| ApiError::bad_request(format!("the body: {e}")))?;
    let v: Value = crate::json::parse(&bytes, 4096)
        .map_err(|e| ApiError::bad_request(format!("the body: {e}")))?;
    let next = v.get("next_seq").and_then(Value::as_u64).ok_or_else(|| {
        ApiError::bad_request("field `next_seq`: expected a non-negative integer")
    })?;
    app.auditor.progress(next);
    app.auditor
        .alive
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let head = app.log.committed().get();
    Ok(axum::response::IntoResponse::into_response(axum::Json(
        app.auditor.health(head),
    )))
}
