//! The TCP side of the byte path: accepting stream connections and running this node's own stream exchanges
//! (joins, full-state syncs, the fallback probe), each in its own task.
//!
//! Both directions share one bound on open connections, and every exchange has a deadline (see `transport`),
//! so a flood of connections or a peer that stalls costs a bounded number of tasks and buffers. The core is
//! only reached through the driver's channel: these tasks never touch it.

use std::sync::Arc;
use std::time::Duration;

use roster_core::Transmit;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::driver::{Inbound, Shared};
use crate::keyring::Purpose;
use crate::keys;
use crate::metrics::{self, ConnectionDrop, PacketDrop};
use crate::transport::{self, StreamError, Wire};

/// Runs one outgoing exchange for `t`: the reply, if any, goes back to the driver as coming from `t.to`.
pub(crate) fn spawn_request(
    streams: &Arc<Semaphore>,
    wire: &Wire,
    shared: &Arc<Shared>,
    tx: &mpsc::Sender<Inbound>,
    t: Transmit,
) {
    let Ok(permit) = streams.clone().try_acquire_owned() else {
        shared.metrics.dropped_connection(ConnectionDrop::Limit);
        return;
    };
    let (wire, tx, shared) = (wire.clone(), tx.clone(), shared.clone());
    tokio::spawn(async move {
        let _permit = permit;
        let len = t.bytes.len();
        match transport::request(&wire, t.to, t.bytes).await {
            Ok(reply) => {
                shared.metrics.sent(metrics::Transport::Tcp, len);
                if let Some(bytes) = reply {
                    shared
                        .metrics
                        .received(metrics::Transport::Tcp, bytes.len());
                    let _ = tx.send(Inbound::Reply { to: t.to, bytes }).await;
                }
            }
            Err(e) => {
                tracing::debug!(to = %t.to, error = %e, "stream exchange failed");
                record_stream_failure(&shared, t.to, &e);
            }
        }
    });
}

/// A failed exchange drops its connection; a frame that did not open is a dropped packet too.
fn record_stream_failure(shared: &Shared, peer: std::net::SocketAddr, e: &StreamError) {
    match e {
        StreamError::FrameTooLarge { .. } => shared
            .metrics
            .dropped_connection(ConnectionDrop::FrameTooLarge),
        StreamError::Wire(e) => match crate::diagnose::Mismatch::of_wire(e, &[]) {
            Some(mismatch) => {
                shared.diagnose(mismatch, peer, e);
                shared.metrics.dropped(PacketDrop::Mismatch(mismatch));
            }
            None => shared.metrics.dropped(PacketDrop::Wire(e.reason())),
        },
        StreamError::Timeout | StreamError::Io(_) => {
            shared.metrics.dropped_connection(ConnectionDrop::Stream)
        }
    }
}

/// Accepts stream connections, one task each, up to the connection bound.
pub(crate) async fn accept_loop(
    tcp: TcpListener,
    wire: Wire,
    tx: mpsc::Sender<Inbound>,
    streams: Arc<Semaphore>,
    shared: Arc<Shared>,
) {
    loop {
        let (mut stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: pause rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = streams.clone().try_acquire_owned() else {
            shared.metrics.dropped_connection(ConnectionDrop::Limit);
            continue;
        };
        let (wire, tx, shared) = (wire.clone(), tx.clone(), shared.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let exchange = async {
                let Some(frame) = transport::read_frame(&mut stream).await? else {
                    return Ok(());
                };
                shared
                    .metrics
                    .received(metrics::Transport::Tcp, frame.len());
                let bytes = wire.open(Purpose::Stream, &frame)?.into_owned();
                if keys::is_control(&bytes) {
                    // A key rotation step from another member's `roster keys`: answered here, not by the core.
                    let reply = keys::answer(&wire, &bytes);
                    let sealed = wire.seal(Purpose::Stream, reply);
                    transport::write_frame(&mut stream, &sealed).await?;
                    shared.metrics.sent(metrics::Transport::Tcp, sealed.len());
                    return Ok(());
                }
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx
                    .send(Inbound::Request {
                        peer,
                        bytes,
                        reply: reply_tx,
                    })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                if let Ok(Some(reply)) = reply_rx.await {
                    let sealed = wire.seal(Purpose::Stream, reply);
                    transport::write_frame(&mut stream, &sealed).await?;
                    shared.metrics.sent(metrics::Transport::Tcp, sealed.len());
                }
                Ok::<(), StreamError>(())
            };
            match tokio::time::timeout(transport::STREAM_TIMEOUT, exchange).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "incoming stream failed");
                    record_stream_failure(&shared, peer, &e);
                }
                Err(_) => {
                    tracing::debug!(%peer, "incoming stream timed out");
                    shared.metrics.dropped_connection(ConnectionDrop::Stream);
                }
            }
        });
    }
}
