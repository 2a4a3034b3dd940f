//! Alerts: each incident ([`crate::serve::incidents`]) is told once when it opens, and once more
//! when it is over, to a webhook (Slack, Teams) and by e-mail.
//!
//! The [`Alerter`] keeps what it has told in the state database (`alert_incidents`), so a
//! restart neither tells an open incident again nor forgets to say it is over. Each destination
//! is followed on its own: an incident is "told" to a destination only once a message to it
//! went through, so a failed send is tried again at the next check, and a destination that was
//! down never gets the same message twice from one that was up. A resolution goes only where
//! the opening went: nobody is told that something they never heard of is over.
//!
//! Each check is a fresh look: an incident that is gone at one check is resolved, and told anew
//! if it comes back.

mod config;
mod email;
mod message;
mod webhook;

pub use config::{webhook_host, AlertConfigError, AlertSettings, SmtpSettings, SmtpTls, DEFAULT_CHECK_EVERY};
pub use message::{Notice, State};

use crate::serve::incidents::{detect, Incident, Snapshot};
use crate::storage::db::{params, Db as Connection};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// Where messages go.
enum Destination {
    Webhook(url::Url),
    Email(Box<email::Mailer>),
}

impl Destination {
    /// How the table names it.
    fn name(&self) -> &'static str {
        match self {
            Destination::Webhook(_) => "webhook",
            Destination::Email(_) => "email",
        }
    }
}

/// Tells incidents as they open and close (see the module's documentation).
pub struct Alerter {
    db: Connection,
    settings: AlertSettings,
    destinations: Vec<Destination>,
    /// Drives the webhook's client (one check at a time, on the alerts' own thread).
    runtime: tokio::runtime::Runtime,
}

/// What one [`Alerter::check`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// What is wrong now.
    pub incidents: Vec<Incident>,
    /// Messages that went through.
    pub sent: usize,
    /// Messages that did not, to be tried at the next check.
    pub failed: usize,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS alert_incidents (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    tenant TEXT,
    location_id TEXT,
    since_ms INTEGER NOT NULL,
    -- When the alerter first saw it.
    opened_ms INTEGER NOT NULL,
    -- As first told: a resolution repeats the title its opening had.
    title TEXT NOT NULL,
    advice TEXT NOT NULL,
    count INTEGER NOT NULL,
    -- The destinations told it is open (comma-separated names), until told it is over.
    told TEXT NOT NULL DEFAULT '',
    -- When the first destination was told it is open.
    notified_ms INTEGER,
    -- When it was first seen gone; NULL while it is open.
    resolved_ms INTEGER)";

/// One row of `alert_incidents`.
struct Row {
    key: String,
    kind: String,
    tenant: Option<String>,
    location_id: Option<String>,
    since_ms: i64,
    title: String,
    advice: String,
    count: u64,
    told: BTreeSet<String>,
    resolved_ms: Option<i64>,
}

impl Alerter {
    /// Opens the alerts' table in the state database `state_db` (the file `serve` keeps its
    /// inbox in) and checks the destinations' settings.
    pub fn open(state_db: &Path, settings: AlertSettings) -> anyhow::Result<Alerter> {
        let db = crate::storage::sqlite::open_database(state_db, "alerts", SCHEMA)?;
        let mut destinations = Vec::new();
        if let Some(url) = &settings.webhook_url {
            destinations.push(Destination::Webhook(url.clone()));
        }
        if let Some(smtp) = &settings.smtp {
            destinations.push(Destination::Email(Box::new(email::Mailer::new(smtp)?)));
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(Alerter { db, settings, destinations, runtime })
    }

    /// Looks at `snapshot`: tells each destination about incidents it has not been told of,
    /// and that the ones it was told of and which are gone are over. Errors are the database's;
    /// a failed send is logged, counted in [`Checked::failed`] and tried again next time.
    pub fn check(&mut self, snapshot: &Snapshot) -> anyhow::Result<Checked> {
        let now = snapshot.now_ms;
        let incidents = detect(snapshot, &self.settings.rules);
        self.record(snapshot, &incidents)?;
        let mut checked = Checked { incidents, ..Checked::default() };
        // A destination that failed once is not tried again in the same check: a receiver that
        // is down costs one timeout per check, not one per incident.
        let mut down: HashSet<&'static str> = HashSet::new();
        for mut row in self.rows()? {
            let state = if row.resolved_ms.is_none() { State::Open } else { State::Resolved };
            if state == State::Resolved {
                // A destination no longer configured cannot be told.
                row.told.retain(|name| self.destinations.iter().any(|d| d.name() == name));
            }
            for destination in &self.destinations {
                let name = destination.name();
                let due = match state {
                    State::Open => !row.told.contains(name),
                    State::Resolved => row.told.contains(name),
                };
                if !due || down.contains(name) {
                    continue;
                }
                let notice = self.notice(&row, state, row.resolved_ms.unwrap_or(now));
                let result = match destination {
                    Destination::Webhook(url) => webhook::post(&self.runtime, url, &notice),
                    Destination::Email(mailer) => mailer.send(&notice),
                };
                match result {
                    Ok(()) => {
                        checked.sent += 1;
                        match state {
                            State::Open => row.told.insert(name.to_string()),
                            State::Resolved => row.told.remove(name),
                        };
                        // Kept at once: a crash after this send does not send it again.
                        self.save_told(&row, now)?;
                    }
                    Err(e) => {
                        checked.failed += 1;
                        down.insert(name);
                        tracing::warn!("serve: alert {} of {} not sent by {name}, tried again at the next check: {e}", state.as_str(), row.key);
                    }
                }
            }
            if state == State::Resolved && row.told.is_empty() {
                self.db.execute("DELETE FROM alert_incidents WHERE key = ?1", [&row.key])?;
            }
        }
        Ok(checked)
    }

    /// Keeps what is open now: a new incident gets its row, one still open keeps its first
    /// title (its count is refreshed), one that came back is open again, and one that is gone
    /// is marked resolved.
    fn record(&mut self, snapshot: &Snapshot, incidents: &[Incident]) -> anyhow::Result<()> {
        let now = snapshot.now_ms;
        let tx = self.db.transaction()?;
        for incident in incidents {
            let location = incident.tenant.as_ref().and_then(|t| snapshot.locations.get(t)).filter(|l| !l.is_empty());
            tx.execute(
                "INSERT INTO alert_incidents (key, kind, tenant, location_id, since_ms, opened_ms, title, advice, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (key) DO UPDATE SET count = excluded.count, resolved_ms = NULL",
                params![
                    incident.key,
                    incident.kind.as_str(),
                    incident.tenant,
                    location,
                    incident.since_ms,
                    now,
                    incident.title,
                    incident.advice,
                    incident.count as i64
                ],
            )?;
        }
        let open: Vec<&str> = incidents.iter().map(|i| i.key.as_str()).collect();
        let gone: Vec<String> = {
            let mut query = tx.prepare("SELECT key FROM alert_incidents WHERE resolved_ms IS NULL")?;
            let keys = query.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            keys.into_iter().filter(|k| !open.contains(&k.as_str())).collect()
        };
        for key in gone {
            tx.execute("UPDATE alert_incidents SET resolved_ms = ?2 WHERE key = ?1", params![key, now])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn rows(&self) -> anyhow::Result<Vec<Row>> {
        let mut query = self
            .db
            .prepare("SELECT key, kind, tenant, location_id, since_ms, title, advice, count, told, resolved_ms FROM alert_incidents ORDER BY opened_ms, key")?;
        let rows = query.query_map([], |r| {
            Ok(Row {
                key: r.get(0)?,
                kind: r.get(1)?,
                tenant: r.get(2)?,
                location_id: r.get(3)?,
                since_ms: r.get(4)?,
                title: r.get(5)?,
                advice: r.get(6)?,
                count: r.get::<_, i64>(7)?.max(0) as u64,
                told: r.get::<_, String>(8)?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                resolved_ms: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_told(&self, row: &Row, now: i64) -> anyhow::Result<()> {
        let told = row.told.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        self.db.execute("UPDATE alert_incidents SET told = ?2, notified_ms = coalesce(notified_ms, ?3) WHERE key = ?1", params![row.key, told, now])?;
        Ok(())
    }

    fn notice(&self, row: &Row, state: State, at_ms: i64) -> Notice {
        Notice {
            state,
            key: row.key.clone(),
            kind: row.kind.clone(),
            tenant: row.tenant.clone(),
            location_id: row.location_id.clone(),
            since_ms: row.since_ms,
            title: row.title.clone(),
            advice: row.advice.clone(),
            count: row.count,
            at_ms,
            console_url: self.settings.console_url.clone(),
        }
    }
}
