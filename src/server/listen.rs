//! Accepting connections: TCP and the Unix socket, each connection served by
//! hyper with the limits a hostile or broken client runs into: a bounded
//! number of connections, a deadline for the request head (slowloris), and
//! a bound on its size.
use super::auth::Peer;
use super::config::Limits;
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
        let router = router.clone();
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
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}
