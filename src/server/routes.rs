//! The router: every route of docs/API.md, and the state they share.
use super::auth::{Auth, Caller, Peer};
use super::config::Limits;
use super::errors::ApiError;
use super::feed::Feed;
use crate::Log;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
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
    Router::new()
        .route("/v1/entries", post(post_entries).get(get_entries))
        .route("/v1/health", get(super::health::health))
        .route("/metrics", get(super::health::metrics))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {} (see docs/API.md)",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn post_entries(State(app): Shared, req: Request) -> Result<Response, ApiError> {
    let caller = app.caller(&req)?;
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
