//! The bus within one process: subjects matched exactly, each subscriber a bounded queue
//! that drops what it cannot hold, requests served by the first server of a subject.

use crate::{BusError, BusStats, SUBSCRIPTION_CAPACITY};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Served = mpsc::Sender<(Bytes, oneshot::Sender<Bytes>)>;

/// Subscribers and servers by subject.
#[derive(Default)]
pub(crate) struct Local {
    subscribers: Mutex<HashMap<String, Vec<mpsc::Sender<Bytes>>>>,
    servers: Mutex<HashMap<String, Vec<Served>>>,
}

impl Local {
    pub(crate) fn publish(&self, subject: &str, payload: Bytes, stats: &BusStats) {
        let mut subscribers = self.subscribers.lock();
        let Some(list) = subscribers.get_mut(subject) else {
            return;
        };
        list.retain(|tx| !tx.is_closed());
        for tx in list.iter() {
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(payload.clone()) {
                BusStats::count(&stats.dropped);
            }
        }
    }

    pub(crate) fn subscribe(&self, subject: &str) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        self.subscribers
            .lock()
            .entry(subject.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    pub(crate) fn serve(&self, subject: &str) -> mpsc::Receiver<(Bytes, oneshot::Sender<Bytes>)> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        self.servers
            .lock()
            .entry(subject.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, BusError> {
        let server = {
            let mut servers = self.servers.lock();
            let list = servers.entry(subject.to_owned()).or_default();
            list.retain(|tx| !tx.is_closed());
            list.first().cloned()
        };
        let server = server.ok_or_else(|| BusError::NoResponders(subject.to_owned()))?;
        let (tx, rx) = oneshot::channel();
        server
            .try_send((payload, tx))
            .map_err(|_| BusError::TimedOut(subject.to_owned()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(BusError::NoResponders(subject.to_owned())),
            Err(_) => Err(BusError::TimedOut(subject.to_owned())),
        }
    }
}
