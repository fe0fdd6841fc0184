//! Accepts request targets with raw `"`, `<` and `>` in the query string.
//!
//! Prometheus (Go's HTTP server) accepts `GET /api/v1/query?query=up{job="node"}`
//! sent as-is, which is what `curl -g` and Python's `urllib` send; many
//! scripts and runbooks rely on it. The `http` crate under hyper rejects those
//! three bytes in a query with a bare 400. [`LenientListener`] percent-encodes
//! them in the request line, before hyper parses it, so such requests are
//! answered as Prometheus answers them.
//!
//! Only the query part of HTTP/1 request lines is touched. The stream is
//! followed request by request (headers, then `Content-Length` body bytes,
//! which are never rewritten); anything this module does not follow — an
//! HTTP/2 preface, a `Transfer-Encoding` body, an upgrade, an oversized or
//! malformed header — switches the connection to pass-through, where hyper
//! sees the bytes unchanged, exactly as without this layer.

use axum::serve::Listener;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A [`TcpListener`] whose connections are [`LenientStream`]s.
pub(crate) struct LenientListener(pub(crate) TcpListener);

impl Listener for LenientListener {
    type Io = LenientStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = Listener::accept(&mut self.0).await;
        (LenientStream::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Header lines longer than this are not inspected; a `Content-Length` or
/// `Transfer-Encoding` line is far shorter.
const MAX_KEPT_HEADER: usize = 256;

#[derive(Debug)]
enum State {
    /// In a request line (or the blank lines allowed before one).
    RequestLine { in_query: bool, len: usize, head: [u8; 4] },
    /// In the header block; `line` keeps the start of the current line.
    Headers {
        line: Vec<u8>,
        content_length: Option<u64>,
        pass_after: bool,
    },
    /// This many body bytes remain.
    Body(u64),
    /// Bytes go through unchanged for the rest of the connection.
    Pass,
}

impl State {
    fn request_line() -> Self {
        State::RequestLine {
            in_query: false,
            len: 0,
            head: [0; 4],
        }
    }
}

/// A stream whose read side percent-encodes `"`, `<`, `>` in request-line
/// query strings (see the module docs); writes go through unchanged.
pub(crate) struct LenientStream<S> {
    inner: S,
    state: State,
    /// Rewritten bytes not yet handed to the reader, from `pending_pos`.
    pending: Vec<u8>,
    pending_pos: usize,
}

impl<S> LenientStream<S> {
    pub(crate) fn new(inner: S) -> Self {
        LenientStream {
            inner,
            state: State::request_line(),
            pending: Vec::new(),
            pending_pos: 0,
        }
    }

    /// Moves as many `pending` bytes into `buf` as fit.
    fn drain_pending(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.pending.len() - self.pending_pos);
        buf.put_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
        self.pending_pos += n;
        if self.pending_pos == self.pending.len() {
            self.pending.clear();
            self.pending_pos = 0;
        }
    }

    /// Advances the state machine over the bytes at the start of `input`
    /// that need no rewriting; returns how many were consumed. Stops before a
    /// byte that must be expanded.
    fn scan(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Pass => return input.len(),
                State::Body(n) => {
                    let take = (*n).min((input.len() - i) as u64);
                    *n -= take;
                    i += take as usize;
                    if *n == 0 {
                        self.state = State::request_line();
                    }
                }
                _ => {
                    if self.step(input[i]).is_some() {
                        return i;
                    }
                    i += 1;
                }
            }
        }
        i
    }

    /// Runs all of `input` through the state machine, appending it, rewritten,
    /// to `pending`.
    fn rewrite_into_pending(&mut self, input: &[u8]) {
        let mut i = 0;
        while i < input.len() {
            let clean = self.scan(&input[i..]);
            self.pending.extend_from_slice(&input[i..i + clean]);
            i += clean;
            if i < input.len() {
                let replacement = self.step(input[i]).unwrap_or(&[]);
                self.pending.extend_from_slice(replacement);
                i += 1;
            }
        }
    }

    /// Feeds one byte of a request line or header block; returns its
    /// replacement if it must be percent-encoded. Must be called once per
    /// byte: it advances the state.
    fn step(&mut self, b: u8) -> Option<&'static [u8]> {
        match &mut self.state {
            State::RequestLine { in_query, len, head } => {
                if b == b'\n' {
                    if *len == 0 {
                        return None; // a blank line before the request line
                    }
                    self.state = if head == b"PRI " {
                        State::Pass // HTTP/2 with prior knowledge
                    } else {
                        State::Headers {
                            line: Vec::new(),
                            content_length: None,
                            pass_after: false,
                        }
                    };
                    return None;
                }
                if b == b'\r' && *len == 0 {
                    return None;
                }
                if *len < head.len() {
                    head[*len] = b;
                }
                *len += 1;
                if b == b'?' {
                    *in_query = true;
                } else if b == b' ' {
                    *in_query = false;
                } else if *in_query {
                    return match b {
                        b'"' => Some(b"%22"),
                        b'<' => Some(b"%3C"),
                        b'>' => Some(b"%3E"),
                        _ => None,
                    };
                }
                None
            }
            State::Headers {
                line,
                content_length,
                pass_after,
            } => {
                if b != b'\n' {
                    if line.len() < MAX_KEPT_HEADER {
                        line.push(b);
                    } else if line.len() == MAX_KEPT_HEADER {
                        line.push(b);
                        // Too long to judge: hand the connection over.
                        *pass_after = true;
                    }
                    return None;
                }
                let text = line.strip_suffix(b"\r").unwrap_or(line);
                if text.is_empty() {
                    self.state = if *pass_after {
                        State::Pass
                    } else {
                        match content_length.unwrap_or(0) {
                            0 => State::request_line(),
                            n => State::Body(n),
                        }
                    };
                    return None;
                }
                match header_effect(text) {
                    HeaderEffect::None => {}
                    HeaderEffect::ContentLength(n) => {
                        if content_length.is_some_and(|old| old != n) {
                            *pass_after = true;
                        }
                        *content_length = Some(n);
                    }
                    HeaderEffect::Pass => *pass_after = true,
                }
                line.clear();
                None
            }
            State::Body(_) | State::Pass => None,
        }
    }
}

enum HeaderEffect {
    None,
    ContentLength(u64),
    /// A header whose body framing or protocol switch is not followed here.
    Pass,
}

fn header_effect(line: &[u8]) -> HeaderEffect {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return HeaderEffect::Pass; // malformed (or obsolete line folding)
    };
    let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
    if name.eq_ignore_ascii_case(b"content-length") {
        match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => HeaderEffect::ContentLength(n),
            None => HeaderEffect::Pass,
        }
    } else if name.eq_ignore_ascii_case(b"transfer-encoding")
        || name.eq_ignore_ascii_case(b"upgrade")
        || line.first().is_some_and(|b| b.is_ascii_whitespace())
    {
        HeaderEffect::Pass // body framing not followed here, protocol switch, or line folding
    } else {
        HeaderEffect::None
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LenientStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending_pos < this.pending.len() {
            this.drain_pending(buf);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        if matches!(this.state, State::Pass) {
            return Poll::Ready(Ok(()));
        }
        let clean = this.scan(&buf.filled()[before..]);
        let end = buf.filled().len();
        if before + clean < end {
            // A byte needs expanding: keep the clean prefix in place, rewrite
            // the rest into `pending` for the next reads.
            let rest = buf.filled()[before + clean..end].to_vec();
            buf.set_filled(before + clean);
            this.rewrite_into_pending(&rest);
            if clean == 0 {
                // Hand out some rewritten bytes now: an empty read means EOF.
                this.drain_pending(buf);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Reads `input`, delivered in pieces of `piece` bytes, through a
    /// [`LenientStream`] with a reader buffer of `read_buf` bytes.
    async fn through(input: &[u8], piece: usize, read_buf: usize) -> Vec<u8> {
        let mut reader = PieceReader {
            data: input.to_vec(),
            pos: 0,
            piece,
        };
        let mut stream = LenientStream::new(&mut reader);
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_buf];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// A reader that returns `data` in pieces of at most `piece` bytes.
    struct PieceReader {
        data: Vec<u8>,
        pos: usize,
        piece: usize,
    }

    impl AsyncRead for PieceReader {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.piece.min(buf.remaining()).min(this.data.len() - this.pos);
            buf.put_slice(&this.data[this.pos..this.pos + n]);
            this.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    async fn check(input: &[u8], expected: &[u8]) {
        for piece in [1, 2, 3, 7, 64, 4096] {
            for read_buf in [1, 2, 5, 64, 8192] {
                let got = through(input, piece, read_buf).await;
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected),
                    "piece {piece}, read buffer {read_buf}"
                );
            }
        }
    }

    #[tokio::test]
    async fn encodes_quotes_and_angle_brackets_in_query_only() {
        check(
            b"GET /a\"b?query=up{job=\"x\"}>0<1 HTTP/1.1\r\nHost: h\r\nX-Q: \"<>\"\r\n\r\n",
            b"GET /a\"b?query=up{job=%22x%22}%3E0%3C1 HTTP/1.1\r\nHost: h\r\nX-Q: \"<>\"\r\n\r\n",
        )
        .await;
    }

    #[tokio::test]
    async fn bodies_are_untouched_and_keep_alive_requests_are_followed() {
        let body = b"query=up{a=\"b\"}>1";
        let mut input = Vec::new();
        input.extend_from_slice(b"\r\nPOST /api/v1/query?x=\"1\" HTTP/1.1\r\ncontent-length:  ");
        input.extend_from_slice(body.len().to_string().as_bytes());
        input.extend_from_slice(b"\r\n\r\n");
        input.extend_from_slice(body);
        input.extend_from_slice(b"GET /q?x=\">\" HTTP/1.1\r\n\r\nGET /r?y=< HTTP/1.1\r\n\r\n");
        let mut expected = Vec::new();
        expected.extend_from_slice(b"\r\nPOST /api/v1/query?x=%221%22 HTTP/1.1\r\ncontent-length:  ");
        expected.extend_from_slice(body.len().to_string().as_bytes());
        expected.extend_from_slice(b"\r\n\r\n");
        expected.extend_from_slice(body);
        expected.extend_from_slice(b"GET /q?x=%22%3E%22 HTTP/1.1\r\n\r\nGET /r?y=%3C HTTP/1.1\r\n\r\n");
        check(&input, &expected).await;
    }

    #[tokio::test]
    async fn what_is_not_followed_passes_unchanged() {
        // Chunked body: everything after its headers passes unchanged.
        let chunked =
            b"POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\"<>\r\n0\r\n\r\nGET /q?a=\" HTTP/1.1\r\n\r\n";
        check(chunked, chunked).await;
        // HTTP/2 prior knowledge preface followed by binary frames.
        let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        h2.extend_from_slice(b"\x00\x00\x12\x04?\"<>\n\n\r\n");
        check(&h2, &h2).await;
        // A malformed Content-Length.
        let bad = b"POST /w HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /q?a=\" HTTP/1.1\r\n\r\n";
        check(bad, bad).await;
    }

    #[tokio::test]
    async fn a_real_server_answers_raw_quotes() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/echo",
            axum::routing::get(|q: axum::extract::RawQuery| async move { q.0.unwrap_or_default() }),
        );
        tokio::spawn(async move { axum::serve(LenientListener(listener), app).await });
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /echo?query=up{job=\"x\"}>0 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("query=up{job=%22x%22}%3E0"), "{response}");
    }
}
