//! Accepting connections: TCP and the Unix socket, each connection served by
//! hyper with the limits a hostile or broken client runs into: a bounded
//! number of connections (in all and per peer), a deadline for the request
//! head (slowloris), and a bound on its size.
use super::auth::Peer;
use super::config::Limits;
use super::fairness::Fairness;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(Box<dyn Io>, Peer)> {
        match self {
            Self::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), Peer::Tcp(addr)))
            }
            Self::Unix(l) => {
                let (s, _) = l.accept().await?;
                let cred = s.peer_cred()?;
                Ok((
                    Box::new(s),
                    Peer::Unix {
                        uid: cred.uid(),
                        pid: cred.pid(),
                    },
                ))
            }
        }
    }
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Serves `listener` until `stop` turns true; connections are handed to
/// `graceful`, which the caller drains.
pub async fn serve(
    listener: Listener,
    router: Router,
    limits: Limits,
    connections: Arc<Semaphore>,
    fairness: Arc<Fairness>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (io, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics::counter!("argus_requests_rejected_total", "reason" => "connections")
                .increment(1);
            tracing::warn!(?peer, "connection refused: limits.connections_max reached");
            drop(io);
            continue;
        };
        let Some(slot) = fairness.connection(&peer) else {
            metrics::counter!("argus_requests_rejected_total", "reason" => "connections_per_peer")
                .increment(1);
            tracing::debug!(
                ?peer,
                "connection refused: limits.connections_per_peer_max reached"
            );
            drop(io);
            continue;
        };
        let router = router.clone();
        let peer_of_conn = peer.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer.clone());
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Limits::ms(limits.header_timeout_ms))
            .max_buf_size(limits.header_bytes_max)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), svc);
        let conn = graceful.watch(conn);
        let delay = fairness.accept_delay(&peer_of_conn);
        let fairness = fairness.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                // A peer whose connections keep failing waits before it is
                // read, so a loop of malformed heads is slowed to its rate.
                tokio::time::sleep(delay).await;
            }
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
                if e.is_parse() || e.is_parse_too_large() || e.is_timeout() {
                    fairness.bad_connection(&peer_of_conn);
                }
            }
            drop(permit);
            drop(slot);
        });
    }
}
