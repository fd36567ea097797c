//! The TCP accept loop of the station console and the reference KLMS: every
//! connection in a task of its own, and at most a fixed number at once.
//!
//! ```text
//! listener.accept() ──▶ permit free? ──no──▶ closed at once (on_refused)
//!       │ stop                └──yes──▶ task: serve(tcp, peer), holding the permit
//!       ▼
//! every connection task aborted and awaited
//! ```
//!
//! A connection over the cap is closed before any work (TLS, HTTP) is done
//! for it. A failed accept (e.g. out of file descriptors) is logged and
//! retried after a pause instead of ending the server.
//!
//! Depends on tokio alone; knows nothing of TLS, HTTP or what a connection serves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Pause after a failed accept before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` until `stop`
/// changes and runs `serve(tcp, peer)` for each in its own task, at most
/// `max_connections` at once; one over the cap is dropped after
/// `on_refused(peer)`. `server` names the server in the log. Returns once
/// every connection task has ended.
pub async fn accept_capped<S, F>(
    server: &'static str,
    listener: TcpListener,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    mut on_refused: impl FnMut(SocketAddr),
    mut serve: S,
) where
    S: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(server, error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            on_refused(peer);
            drop(tcp);
            continue;
        };
        let connection = serve(tcp, peer);
        connections.spawn(async move {
            connection.await;
            drop(permit);
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_up_to_the_cap_and_closes_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(accept_capped(
            "test",
            listener,
            1,
            stop,
            move |peer| refused_tx.send(peer).unwrap(),
            |mut tcp: TcpStream, _| async move {
                // Holds its permit until the client closes.
                tcp.write_all(b"hi").await.unwrap();
                let mut rest = Vec::new();
                let _ = tcp.read_to_end(&mut rest).await;
            },
        ));
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut greeting = [0u8; 2];
        first.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"hi");
        let mut second = TcpStream::connect(addr).await.unwrap();
        let refused_peer = refused.recv().await.unwrap();
        assert_eq!(refused_peer, second.local_addr().unwrap());
        let mut nothing = Vec::new();
        second.read_to_end(&mut nothing).await.unwrap();
        assert!(nothing.is_empty());
        // Stopping ends the open connection's task too.
        stop_tx.send(true).unwrap();
        server.await.unwrap();
        let mut after = Vec::new();
        first.read_to_end(&mut after).await.unwrap();
        assert!(after.is_empty());
    }
}
