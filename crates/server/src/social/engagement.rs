//! Likes and follows written in batches by one task: requests queue (bounded), the task takes
//! whatever has arrived, writes each run of one kind in one transaction, and answers every
//! request once its batch has committed. Under a burst the batches grow by themselves; alone,
//! a like is written at once.

use std::collections::VecDeque;
use stentor_social::batch::next_run;
use stentor_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// What a like or unlike did: whether it changed anything, and the post's like count after
/// (`None`: no such post).
pub type LikeOutcome = (bool, Option<u64>);

/// One request to the writer.
enum Op {
    Like(u64, u64, oneshot::Sender<Result<LikeOutcome, String>>),
    Unlike(u64, u64, oneshot::Sender<Result<LikeOutcome, String>>),
    Follow(u64, u64, oneshot::Sender<Result<bool, String>>),
    Unfollow(u64, u64, oneshot::Sender<Result<bool, String>>),
    /// A listener joined a Space of a host: nobody waits for it.
    Listen(u64, u64),
}

impl Op {
    fn kind(&self) -> u8 {
        match self {
            Op::Like(..) => 0,
            Op::Unlike(..) => 1,
            Op::Follow(..) => 2,
            Op::Unfollow(..) => 3,
            Op::Listen(..) => 4,
        }
    }
}

/// Why a like or follow was not written.
#[derive(Debug, thiserror::Error)]
pub enum EngagementError {
    /// The queue is full: the request is refused at once rather than waiting without end.
    #[error("too many likes and follows are waiting to be written")]
    Busy,
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// The handle requests go through.
#[derive(Clone)]
pub struct Engagement {
    queue: mpsc::Sender<Op>,
}

impl Engagement {
    /// Starts the writer with a queue of `bound` requests and batches of at most `batch`;
    /// new follows of accounts with fewer than `backfill_below` followers bring their latest
    /// posts into the follower's timeline.
    pub fn start(store: Store, bound: usize, batch: usize, backfill_below: u64) -> Self {
        let (queue, requests) = mpsc::channel(bound);
        tokio::spawn(write(store, requests, batch, backfill_below));
        Self { queue }
    }

    async fn ask<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Op,
    ) -> Result<T, EngagementError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .try_send(op(done))
            .map_err(|_| EngagementError::Busy)?;
        answer
            .await
            .map_err(|_| EngagementError::Store("the writer stopped".into()))?
            .map_err(EngagementError::Store)
    }

    /// `user` likes `post`.
    pub async fn like(&self, post: u64, user: u64) -> Result<LikeOutcome, EngagementError> {
        self.ask(|done| Op::Like(post, user, done)).await
    }

    /// `user` takes back its like of `post`.
    pub async fn unlike(&self, post: u64, user: u64) -> Result<LikeOutcome, EngagementError> {
        self.ask(|done| Op::Unlike(post, user, done)).await
    }

    /// `follower` follows `followee`; whether that made a new follow.
    pub async fn follow(&self, follower: u64, followee: u64) -> Result<bool, EngagementError> {
        self.ask(|done| Op::Follow(follower, followee, done)).await
    }

    /// `listener` joined a Space hosted by `host` (a hint for the order of live alerts,
    /// dropped when the queue is half full).
    pub fn listened(&self, listener: u64, host: u64) {
        // Hints take at most half the queue: likes and follows keep the rest.
        if self.queue.capacity() > self.queue.max_capacity() / 2 {
            let _ = self.queue.try_send(Op::Listen(listener, host));
        }
    }

    /// `follower` stops following `followee`; whether there was a follow to end.
    pub async fn unfollow(&self, follower: u64, followee: u64) -> Result<bool, EngagementError> {
        self.ask(|done| Op::Unfollow(follower, followee, done))
            .await
    }
}

/// The writer: takes what has arrived, writes it run by run.
async fn write(store: Store, mut requests: mpsc::Receiver<Op>, batch: usize, backfill: u64) {
    let mut arrived = Vec::with_capacity(batch);
    let mut waiting: VecDeque<Op> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            if requests.recv_many(&mut arrived, batch).await == 0 {
                return;
            }
            waiting.extend(arrived.drain(..));
        }
        let run = next_run(&mut waiting, Op::kind, batch);
        let now = crate::clock::unix_now() as i64;
        let pairs: Vec<(u64, u64)> = run
            .iter()
            .map(|op| match op {
                Op::Like(a, b, _) | Op::Unlike(a, b, _) => (*a, *b),
                Op::Follow(a, b, _) | Op::Unfollow(a, b, _) | Op::Listen(a, b) => (*a, *b),
            })
            .collect();
        match run.first().map(Op::kind) {
            Some(0) => answer_likes(run, store.apply_likes(&pairs, now).await),
            Some(1) => answer_likes(run, store.apply_unlikes(&pairs, now).await),
            Some(2) => answer_follows(run, store.apply_follows(&pairs, now, backfill).await),
            Some(3) => answer_follows(run, store.apply_unfollows(&pairs).await),
            Some(_) => {
                if let Err(e) = store.record_listens(&pairs, now).await {
                    tracing::warn!(error = %e, "cannot record listens");
                }
            }
            None => {}
        }
    }
}

fn answer_likes(run: Vec<Op>, result: Result<Vec<LikeOutcome>, StoreError>) {
    for (i, op) in run.into_iter().enumerate() {
        if let Op::Like(_, _, done) | Op::Unlike(_, _, done) = op {
            let _ = done.send(match &result {
                Ok(outcomes) => Ok(outcomes[i]),
                Err(e) => Err(e.to_string()),
            });
        }
    }
}

fn answer_follows(run: Vec<Op>, result: Result<Vec<bool>, StoreError>) {
    for (i, op) in run.into_iter().enumerate() {
        if let Op::Follow(_, _, done) | Op::Unfollow(_, _, done) = op {
            let _ = done.send(match &result {
                Ok(made) => Ok(made[i]),
                Err(e) => Err(e.to_string()),
            });
        }
    }
}
