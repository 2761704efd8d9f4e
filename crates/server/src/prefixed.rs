//! A TCP stream with bytes already read from it put back in front: the door reads a request
//! head to look at it, and the HTTP server then reads the same bytes as if fresh.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// `stream`, whose first bytes are `prefix[pos..]`.
#[derive(Debug)]
pub struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    stream: TcpStream,
}

impl Prefixed {
    /// `stream` with `prefix` read before anything still in it.
    pub fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            prefix,
            pos: 0,
            stream,
        }
    }

    /// The stream and what of the prefix has not been read yet.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        let mut rest = self.prefix;
        rest.drain(..self.pos);
        (self.stream, rest)
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                // Read once: do not carry the head for the connection's whole life.
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_prefix_is_read_first_then_the_stream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b" world").await.unwrap();
            let mut back = String::new();
            c.read_to_string(&mut back).await.unwrap();
            back
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut io = Prefixed::new(b"hello".to_vec(), server);
        let mut got = [0u8; 11];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        io.write_all(b"ok").await.unwrap();
        io.shutdown().await.unwrap();
        assert_eq!(client.await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn what_was_not_read_of_the_prefix_is_handed_back() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut io = Prefixed::new(b"abcdef".to_vec(), server);
        let mut two = [0u8; 2];
        io.read_exact(&mut two).await.unwrap();
        let (_, rest) = io.into_parts();
        assert_eq!(rest, b"cdef");
    }
}
