//! One error shape for every route: `{"error": {"status", "kind", "message",
//! "line"?, "field"?}}`, with the HTTP status saying the class. The message
//! is the one `argusctl` prints for the same fault.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Boxed, so `Result<_, ApiError>` stays small on the success path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Detail>);

impl std::ops::Deref for ApiError {
    type Target = Detail;
    fn deref(&self) -> &Detail {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut Detail {
        &mut self.0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    #[serde(skip)]
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For a refused line: why, without the "line N:" framing, so a
    /// client can phrase it as its local counterpart does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the command printed on stderr, when a command run by the
    /// daemon refused (so `argusctl` can print exactly that).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The exit code `argusctl` gives for this failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    /// The standing kill or lockdown that refused the request (423).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_seq: Option<u64>,
    /// Seconds, for 503 overloaded.
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// A payload redaction could not finish on: the request is refused and
    /// the caller raises the emergency stop before answering.
    #[serde(skip)]
    pub redaction: Option<Box<crate::cli::append::RedactionFailure>>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Detail {
            status,
            kind,
            message: message.into(),
            line: None,
            field: None,
            reason: None,
            stderr: None,
            exit: None,
            decision_seq: None,
            retry_after: None,
            redaction: None,
        }))
    }
    /// 423: a kill switch stands. Names the decision's seq and reason, and
    /// the line of the first refused entry; nothing of the request is written.
    pub fn killed(line: u64, r: &crate::projections::control::Refusal) -> Self {
        let mut e = Self::new(
            StatusCode::LOCKED,
            r.what,
            format!("line {line}: refused: {r}; nothing of this request was written; an operator releases it with `argusctl release`"),
        );
        e.line = Some(line);
        e.decision_seq = Some(r.seq);
        e.reason = Some(r.reason.clone());
        e
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// A refused entry: names its line (1-based, in the request) and the
    /// field its message starts with ("field `payload.usd`: ...").
    pub fn invalid_line(line: u64, message: String) -> Self {
        let field = message
            .strip_prefix("field `")
            .and_then(|r| r.split_once('`'))
            .map(|(f, _)| f.to_string());
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_entry",
            format!("line {line}: {message}; nothing of this request was written"),
        );
        e.line = Some(line);
        e.field = field;
        e.reason = Some(message);
        e
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
    pub fn overloaded(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the writer queue is full; retry later",
        );
        e.retry_after = Some(retry_after_s);
        e
    }
    pub fn lockdown(cause: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "lockdown", cause)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The metrics label for a refused request.
    pub fn reason(&self) -> &'static str {
        self.kind
    }

    /// The error as one JSON line (the last line of a stream that failed).
    pub fn json_line(&self) -> String {
        let mut v = serde_json::json!({ "error": &*self.0 });
        v["error"]["status"] = self.status.as_u16().into();
        v.to_string()
    }

    /// An engine error from `Log::append`: the request's entries are named
    /// by their line in the request, as `argusctl append` names stdin lines.
    pub fn from_append(e: &crate::Error, line_of: impl Fn(usize) -> u64) -> Self {
        use crate::Error as E;
        match e {
            E::InvalidEntry { entry, problem } => {
                Self::invalid_line(line_of(*entry), problem.to_string())
            }
            E::Unauthorized { entry, source } => {
                let mut err = Self::forbidden(format!(
                    "line {}: {source}; nothing of this request was written",
                    line_of(*entry)
                ));
                err.line = Some(line_of(*entry));
                err.field = Some("kind".into());
                err
            }
            E::Lockdown(_) => Self::lockdown(e.to_string()),
            E::WriterGone => Self::lockdown("the writer thread has stopped"),
            other => Self::internal(other.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("argus_requests_rejected_total", "reason" => self.reason()).increment(1);
        if matches!(self.status.as_u16(), 401 | 403) {
            // Who was refused is worth an operator's attention; the token
            // itself is never in the message.
            tracing::warn!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "request refused");
        } else if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), kind = self.kind, message = %self.message, "request refused");
        }
        let mut body = self.json_line();
        body.push('\n');
        let mut r = (self.status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}
