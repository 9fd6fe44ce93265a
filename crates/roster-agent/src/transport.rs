//! The byte path between the core and the network: the UDP socket, the TCP listener, and the stream framing.
//!
//! Every datagram and every stream frame passes through [`Wire`] on its way out and in, so encryption wraps the
//! whole protocol in one place. A frame is a `u32` big-endian length and that many bytes; frames over
//! [`MAX_FRAME`] are refused before anything is allocated for them, and every read and write on a stream has a
//! deadline, so a slow or hostile peer holds a connection slot for a bounded time only.
//!
//! This module never decides anything about the protocol: it moves bytes and counts them.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::keyring::{Keyring, OpenError, Purpose};

/// Largest stream frame accepted or sent. A full-state sync of 10,000 members is well under this.
pub const MAX_FRAME: usize = 16 << 20;
/// Largest datagram read; anything the core sends is at most its MTU, far below.
pub const MAX_DATAGRAM: usize = 65_535;
/// Connecting to a peer for a stream exchange.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One whole stream exchange, from the first byte written to the reply read.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a stream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("frame of {len} bytes is over the {MAX_FRAME}-byte bound")]
    FrameTooLarge { len: usize },
    #[error("stream timed out")]
    Timeout,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Why incoming bytes were refused before reaching the core.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl WireError {
    /// A short label for the dropped-packets metric.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Empty => "empty",
            WireError::Open(e) => e.reason(),
        }
    }
}

/// The keyring of an agent that encrypts, and the file it is kept in.
#[derive(Debug)]
pub struct KeyringHandle {
    pub keyring: Mutex<Keyring>,
    /// Where a rotation is saved, so that a restarted agent keeps the keys the cluster uses.
    pub path: Option<PathBuf>,
}

impl KeyringHandle {
    pub fn lock(&self) -> MutexGuard<'_, Keyring> {
        self.keyring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The seam where every outgoing message is sealed and every incoming one opened: with a keyring, every
/// datagram and stream frame is encrypted and authenticated (see `keyring`); without one, bytes pass as they
/// are.
#[derive(Clone, Debug, Default)]
pub struct Wire {
    keys: Option<Arc<KeyringHandle>>,
}

impl Wire {
    /// A wire that seals with `keyring`, kept in `path`.
    pub fn encrypted(keyring: Keyring, path: Option<PathBuf>) -> Wire {
        Wire {
            keys: Some(Arc::new(KeyringHandle {
                keyring: Mutex::new(keyring),
                path,
            })),
        }
    }

    /// The keyring, if this wire encrypts.
    pub fn keys(&self) -> Option<&Arc<KeyringHandle>> {
        self.keys.as_ref()
    }

    /// Bytes the core produced, as they go on the network.
    pub fn seal(&self, purpose: Purpose, bytes: Vec<u8>) -> Vec<u8> {
        match &self.keys {
            Some(keys) => keys.lock().seal(purpose, &bytes),
            None => bytes,
        }
    }

    /// Bytes from the network, as the core should see them.
    pub fn open<'a>(&self, purpose: Purpose, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, WireError> {
        if bytes.is_empty() {
            return Err(WireError::Empty);
        }
        match &self.keys {
            Some(keys) => Ok(Cow::Owned(keys.lock().open(purpose, bytes)?)),
            None => Ok(Cow::Borrowed(bytes)),
        }
    }
}

/// The receive buffer the agent asks for on its UDP socket. A burst (a flood of junk, or the whole cluster
/// answering at once) waits here while the agent drains it; the default of about 208 KiB holds a few tens of
/// milliseconds of a 30,000-datagram-per-second burst. The kernel caps what it grants at `net.core.rmem_max`.
pub const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// The protocol's sockets: UDP and TCP on one address.
#[derive(Debug)]
pub struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    /// The UDP receive buffer the kernel granted, in bytes (as it reports it: Linux counts its own overhead
    /// too, and grants twice what is asked, up to twice `net.core.rmem_max`).
    pub udp_receive_buffer: usize,
}

impl Sockets {
    /// Binds UDP and TCP on `addr`. With port 0 both get the same free port, so a member is one address.
    pub async fn bind(addr: SocketAddr) -> io::Result<Sockets> {
        // With port 0 the UDP port the kernel picks may be taken for TCP; a few tries find one free for both.
        let tries = if addr.port() == 0 { 16 } else { 1 };
        let mut last = None;
        for _ in 0..tries {
            let (udp, udp_receive_buffer) = bind_udp(addr)?;
            let bound = udp.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => {
                    return Ok(Sockets {
                        udp,
                        tcp,
                        udp_receive_buffer,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
    }
}

/// A UDP socket on `addr` with the large receive buffer asked for; what the kernel granted.
fn bind_udp(addr: SocketAddr) -> io::Result<(UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Refused only where the operating system has no such option; the default buffer still works.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok((UdpSocket::from_std(socket.into())?, granted))
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    payload: &[u8],
) -> Result<(), StreamError> {
    if payload.len() > MAX_FRAME {
        return Err(StreamError::FrameTooLarge { len: payload.len() });
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame; `None` if the peer closed before sending any byte (a request that needed no reply).
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, StreamError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::from(io::ErrorKind::UnexpectedEof).into())
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(StreamError::FrameTooLarge { len });
    }
    // Grow the buffer as bytes arrive rather than trusting the length: a peer that announces 16 MiB and sends
    // nothing costs nothing.
    let mut payload = Vec::new();
    let read = r.take(len as u64).read_to_end(&mut payload).await?;
    if read != len {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(payload))
}

/// The client side of a stream exchange: connect, send `request`, read the reply frame if the peer sends one.
pub async fn request(
    wire: &Wire,
    to: SocketAddr,
    request: Vec<u8>,
) -> Result<Option<Vec<u8>>, StreamError> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to))
        .await
        .map_err(|_| StreamError::Timeout)??;
    let _ = stream.set_nodelay(true);
    let exchange = async {
        write_frame(&mut stream, &wire.seal(Purpose::Stream, request)).await?;
        match read_frame(&mut stream).await? {
            Some(reply) => Ok(Some(wire.open(Purpose::Stream, &reply)?.into_owned())),
            None => Ok(None),
        }
    };
    tokio::time::timeout(STREAM_TIMEOUT, exchange)
        .await
        .map_err(|_| StreamError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused_unread() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_frame(&mut a, b"hello").await.expect("write");
        assert_eq!(
            read_frame(&mut b).await.expect("read"),
            Some(b"hello".to_vec())
        );

        a.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes())
            .await
            .expect("write");
        assert!(matches!(
            read_frame(&mut b).await,
            Err(StreamError::FrameTooLarge { .. })
        ));

        drop(a);
        assert_eq!(read_frame(&mut b).await.expect("clean close"), None);
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&10u32.to_be_bytes()).await.expect("write");
        a.write_all(b"abc").await.expect("write");
        drop(a);
        assert!(read_frame(&mut b).await.is_err());
    }
}
