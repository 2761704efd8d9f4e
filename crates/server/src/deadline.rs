//! Deadlines for the phases of a connection after its request head: a request body must
//! arrive within a grace time plus what a minimum rate allows for its length so far, and a
//! source that sends no packet for a while is ended. Without them one half-sent body would
//! hold its connection, and its place in the server's caps, for ever.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The deadlines in force (`[admission]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Time a request body may take before the minimum rate applies (default 10 s).
    pub body_grace: Duration,
    /// Bytes a second a request body must average after the grace (default 1 024).
    pub body_min_rate: u32,
    /// Time a source may send no audio packet before it is ended (default 5 s).
    pub source_idle: Duration,
    /// How often the server pings a full WebSocket connection (someone on stage); one that
    /// sends nothing, not even a pong, for three of these is taken for dead (default 15 s).
    pub ws_ping: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            body_grace: Duration::from_secs(10),
            body_min_rate: 1024,
            source_idle: Duration::from_secs(5),
            ws_ping: Duration::from_secs(15),
        }
    }
}

impl Deadlines {
    /// How long a full WebSocket connection may send nothing before it is let go.
    pub fn ws_silent(&self) -> Duration {
        self.ws_ping * 3
    }

    /// When a body that began at `start` and has brought `received` bytes so far must have
    /// brought more (or ended).
    pub fn body_due(&self, start: Instant, received: u64) -> Instant {
        let rate = u64::from(self.body_min_rate.max(1));
        start + self.body_grace + Duration::from_millis(received.saturating_mul(1000) / rate)
    }
}

/// A request body held to its deadline: past it, the body fails, the handler answers, and
/// the middleware turns that answer into 408 and closes the connection.
pub struct DeadlineBody {
    inner: Body,
    deadlines: Deadlines,
    start: Instant,
    received: u64,
    sleep: Pin<Box<Sleep>>,
    late: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Body, deadlines: Deadlines, late: Arc<AtomicBool>) -> Self {
        let start = Instant::now();
        Self {
            inner,
            deadlines,
            start,
            received: 0,
            sleep: Box::pin(tokio::time::sleep_until(deadlines.body_due(start, 0))),
            late,
        }
    }
}

/// The error a late body fails with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTooSlow;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                this.received += data.map_or(0, |d| d.len() as u64);
                let due = this.deadlines.body_due(this.start, this.received);
                this.sleep.as_mut().reset(due);
            }
            return Poll::Ready(frame);
        }
        ready!(this.sleep.as_mut().poll(cx));
        this.late.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(BodyTooSlow))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: holds every request body to the body deadline; a request whose body came too
/// late is answered 408 and its connection closed.
pub async fn hold_bodies(
    State(deadlines): State<Deadlines>,
    request: Request,
    next: Next,
) -> Response {
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| Body::new(DeadlineBody::new(body, deadlines, late.clone())));
    let response = next.run(request).await;
    if !late.load(Ordering::Relaxed) {
        return response;
    }
    let mut response = crate::error::ApiError::TimedOut(BodyTooSlow.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_gets_its_grace_then_time_for_its_length_at_the_minimum_rate() {
        let d = Deadlines {
            body_grace: Duration::from_secs(10),
            body_min_rate: 1000,
            ..Deadlines::default()
        };
        let t0 = Instant::now();
        assert_eq!(d.body_due(t0, 0), t0 + Duration::from_secs(10));
        assert_eq!(d.body_due(t0, 500), t0 + Duration::from_millis(10_500));
        assert_eq!(d.body_due(t0, 16_000), t0 + Duration::from_secs(26));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_fails_at_its_deadline() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
                .map(|b| b.map(Ok::<_, std::convert::Infallible>))
        });
        let late = Arc::new(AtomicBool::new(false));
        let mut body = DeadlineBody::new(
            Body::from_stream(stream),
            Deadlines::default(),
            late.clone(),
        );
        async fn frame(body: &mut DeadlineBody) -> Option<Result<Frame<Bytes>, axum::Error>> {
            std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut *body), cx)).await
        }
        tx.send(Bytes::from_static(b"{")).await.unwrap();
        let first = frame(&mut body).await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "{");
        let waited = Instant::now();
        let e = frame(&mut body).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("in time"), "{e}");
        assert!(late.load(Ordering::Relaxed));
        assert!(
            waited.elapsed() >= Duration::from_millis(10_000),
            "{:?}",
            waited.elapsed()
        );
        drop(tx);
    }
}
