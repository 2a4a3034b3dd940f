//! The webhooks the mocks send out (HighLevel's contact webhooks, Dialpad's contact events):
//! queued in the order the changes happened and POSTed one at a time from a thread of their
//! own, each delivery recorded with the receiver's answer.
//!
//! A thread, not the request that made the change: the real services deliver asynchronously,
//! so a receiver may see the webhook before or after the API's answer reaches the client, and a
//! receiver that calls the API back (the sync reading the contact it was told about) must not
//! wait on the request that is still holding the mock's lock. One thread per mock keeps the
//! order of deliveries the order of changes, so tests stay deterministic; they wait for the
//! queue to drain (`Outbox::wait`) instead of sleeping.
//!
//! Nothing is retried: HighLevel retries only on 429 and Dialpad documents no retries, and a
//! test wants to see the first answer.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One webhook a mock sent, with the receiver's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub url: String,
    /// What it announced: `ContactCreate`, `ContactUpdate`, `ContactDelete` (HighLevel);
    /// `Created`, `Updated`, `Deleted` (Dialpad).
    pub event: String,
    /// The contact's id.
    pub contact_id: String,
    /// The body as sent: JSON, or a JWT for a Dialpad webhook with a secret.
    pub body: String,
    /// The headers sent beside `Content-Type` (a HighLevel signature).
    pub headers: Vec<(String, String)>,
    /// The receiver's status; 0 when there was none (refused connection, not an `http://` URL).
    pub status: u16,
    /// The receiver's answer, or why there was none.
    pub answer: String,
}

/// A webhook waiting to be sent.
pub(crate) struct Outgoing {
    pub(crate) url: String,
    pub(crate) event: String,
    pub(crate) contact_id: String,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

#[derive(Default)]
struct Progress {
    queued: usize,
    deliveries: Vec<WebhookDelivery>,
}

#[derive(Default)]
struct Shared {
    progress: Mutex<Progress>,
    delivered: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A mock's outgoing webhooks. The sending thread starts with the first webhook and ends once
/// the outbox is dropped and its queue is empty.
#[derive(Default)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<Outgoing>>>,
}

impl Outbox {
    /// Queues one webhook; it is sent after every webhook queued before it.
    pub(crate) fn send(&self, outgoing: Outgoing) {
        self.shared.lock().queued += 1;
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = sender.get_or_insert_with(|| {
            let (sender, queue) = mpsc::channel();
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new().name("mock-webhooks".into()).spawn(move || deliver_all(&shared, queue)).expect("spawning the webhook thread");
            sender
        });
        // The receiver lives as long as the thread, which lives as long as this sender.
        let _ = sender.send(outgoing);
    }

    /// Waits until every webhook queued so far has been delivered (or has failed to be);
    /// false if `timeout` passed first.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut progress = self.shared.lock();
        while progress.deliveries.len() < progress.queued {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            progress = self.shared.delivered.wait_timeout(progress, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Every delivery so far, in order.
    pub(crate) fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().deliveries.clone()
    }
}

fn deliver_all(shared: &Shared, queue: mpsc::Receiver<Outgoing>) {
    for outgoing in queue {
        let headers: Vec<(&str, &str)> = outgoing.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let (status, answer) = match crate::support::loopback_typed("POST", &outgoing.url, outgoing.content_type, &headers, &outgoing.body) {
            Ok((status, _, answer)) => (status, answer),
            Err(e) => (0, e.to_string()),
        };
        let delivery = WebhookDelivery {
            url: outgoing.url,
            event: outgoing.event,
            contact_id: outgoing.contact_id,
            body: String::from_utf8_lossy(&outgoing.body).into_owned(),
            headers: outgoing.headers,
            status,
            answer,
        };
        shared.lock().deliveries.push(delivery);
        shared.delivered.notify_all();
    }
}
