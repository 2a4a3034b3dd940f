//! `backfill` and `serve`'s scheduled reconciliation: Dialpad's call history through the
//! plugin (`backfill.sync-page`), page by page. After every page the paging cursor and the
//! counts are committed to SQLite, so an interrupted backfill resumes at the page it stopped
//! on; a page handled twice writes nothing twice (the plugin's records see to that). A listing
//! that stops advancing (a cursor handed out twice, or a page of calls all listed before in
//! this run) ends the run with a typed error naming the cursor ([`stuck_listing`]), so a
//! misbehaving API cannot keep a backfill paging forever.

use crate::bindings::dialpad_ghl::sync::types::{SyncError, UpstreamFailure};
use crate::bindings::exports::dialpad_ghl::sync::backfill::Window;
use crate::engine::Runtime;
use crate::report;
use crate::storage::db::{params, Db as Connection, OptionalExtension as _};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

/// How far a backfill has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: u64,
    pub fetched: u64,
    pub synced: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The start (UTC ms) of the oldest call listed so far: the listing runs newest first.
    pub oldest_started: Option<u64>,
    pub done: bool,
}

/// Backfills in progress, kept beside the plugin's records: the host's single location's in
/// `backfills`, each tenant's in `tenant_backfills` under its id.
pub struct Backfills {
    db: Mutex<Connection>,
    /// Empty for the single location.
    tenant: String,
}

impl Backfills {
    pub fn open(path: &Path) -> anyhow::Result<Backfills> {
        let db = crate::storage::sqlite::open_database(
            path,
            "backfills",
            "CREATE TABLE IF NOT EXISTS backfills (
                started_after INTEGER NOT NULL, started_before INTEGER NOT NULL,
                cursor TEXT, progress TEXT NOT NULL,
                PRIMARY KEY (started_after, started_before));
             CREATE TABLE IF NOT EXISTS tenant_backfills (
                tenant TEXT NOT NULL, started_after INTEGER NOT NULL, started_before INTEGER NOT NULL,
                cursor TEXT, progress TEXT NOT NULL,
                PRIMARY KEY (tenant, started_after, started_before))",
        )?;
        Ok(Backfills { db: Mutex::new(db), tenant: String::new() })
    }

    /// One tenant's backfills: its cursors are its own.
    pub fn for_tenant(path: &Path, tenant: &str) -> anyhow::Result<Backfills> {
        Ok(Backfills { tenant: tenant.to_string(), ..Backfills::open(path)? })
    }

    /// The unfinished run of this window: where it stopped and what it had done.
    fn resume(&self, window: &Window) -> anyhow::Result<Option<(Option<String>, Progress)>> {
        let db = self.db.lock().unwrap();
        let row: Option<(Option<String>, String)> = db
            .query_row(
                "SELECT cursor, progress FROM backfills WHERE started_after = ?1 AND started_before = ?2 AND ?3 = ''
                 UNION ALL SELECT cursor, progress FROM tenant_backfills WHERE started_after = ?1 AND started_before = ?2 AND tenant = ?3",
                params![window.started_after as i64, window.started_before.unwrap_or(0) as i64, self.tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(cursor, progress)| {
            let progress = progress_from_json(&serde_json::from_str(&progress).ok()?);
            (!progress.done).then_some((cursor, progress))
        }))
    }

    fn save(&self, window: &Window, cursor: Option<&str>, progress: &Progress) -> anyhow::Result<()> {
        let (after, before, progress) = (window.started_after as i64, window.started_before.unwrap_or(0) as i64, progress_json(progress).to_string());
        let db = self.db.lock().unwrap();
        if self.tenant.is_empty() {
            db.execute(
                "INSERT INTO backfills (started_after, started_before, cursor, progress) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (started_after, started_before) DO UPDATE SET cursor = excluded.cursor, progress = excluded.progress",
                params![after, before, cursor, progress],
            )?;
        } else {
            db.execute(
                "INSERT INTO tenant_backfills (tenant, started_after, started_before, cursor, progress) VALUES (?5, ?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, started_after, started_before) DO UPDATE SET cursor = excluded.cursor, progress = excluded.progress",
                params![after, before, cursor, progress, self.tenant],
            )?;
        }
        Ok(())
    }
}

fn progress_json(p: &Progress) -> Value {
    json!({"pages": p.pages, "fetched": p.fetched, "synced": p.synced, "unchanged": p.unchanged, "skipped": p.skipped, "failed": p.failed, "oldest_started": p.oldest_started, "done": p.done})
}

fn progress_from_json(v: &Value) -> Progress {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Progress {
        pages: n("pages"),
        fetched: n("fetched"),
        synced: n("synced"),
        unchanged: n("unchanged"),
        skipped: n("skipped"),
        failed: n("failed"),
        oldest_started: v["oldest_started"].as_u64(),
        done: v["done"].as_bool().unwrap_or(false),
    }
}

/// Sync the calls, or only plan them (a dry run: nothing written, no progress kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sync,
    DryRun,
}

/// Runs the backfill of `window`, resuming an unfinished run of the same window from `kept`.
/// `on_page` gets the progress and one JSON line per call (its report, error or plan). The
/// inner error is the page that could not be fetched: the progress up to it is kept, and the
/// next run of the same window starts there.
pub fn run(
    runtime: &Runtime,
    kept: Option<&Backfills>,
    window: Window,
    mode: Mode,
    mut on_page: impl FnMut(&Progress, &[Value]),
) -> anyhow::Result<Result<Progress, (Progress, SyncError)>> {
    let kept = if mode == Mode::Sync { kept } else { None };
    let (mut cursor, mut progress) = match kept {
        Some(backfills) => backfills.resume(&window)?.unwrap_or_default(),
        None => Default::default(),
    };
    // What this run has seen: a listing that hands out a cursor again, or a page of calls
    // listed already, is going round in circles.
    let mut cursors_seen: HashSet<String> = cursor.iter().cloned().collect();
    let mut calls_seen: HashSet<String> = HashSet::new();
    let pages_before = progress.pages;
    loop {
        let (lines, next, call_ids) = match mode {
            Mode::Sync => match runtime.backfill_page(window, cursor.as_deref())? {
                Ok(page) => {
                    let lines: Vec<Value> = page
                        .calls
                        .iter()
                        .map(|call| {
                            match &call.handled {
                                Ok(r) => match report::outcome_name(&r.outcome).0 {
                                    "synced" => progress.synced += 1,
                                    "unchanged" => progress.unchanged += 1,
                                    _ => progress.skipped += 1,
                                },
                                Err(_) => progress.failed += 1,
                            }
                            report::report_line(&format!("call {}", call.call_id), &call.handled)
                        })
                        .collect();
                    progress.oldest_started = page.oldest_started.or(progress.oldest_started);
                    (lines, page.next_cursor, page.calls.iter().map(|c| c.call_id.clone()).collect::<Vec<_>>())
                }
                Err(error) => return Ok(Err((progress, error))),
            },
            Mode::DryRun => match runtime.backfill_plan_page(window, cursor.as_deref())? {
                Ok(page) => {
                    progress.oldest_started = page.oldest_started.or(progress.oldest_started);
                    let lines = page.calls.iter().map(|call| report::plan_line(&format!("call {}", call.call_id), &call.plan)).collect();
                    (lines, page.next_cursor, page.calls.iter().map(|c| c.call_id.clone()).collect())
                }
                Err(error) => return Ok(Err((progress, error))),
            },
        };
        progress.pages += 1;
        progress.fetched += lines.len() as u64;
        progress.done = next.is_none();
        let new_calls = call_ids.iter().filter(|id| calls_seen.insert((*id).clone())).count();
        let stuck = match &next {
            Some(next) if !cursors_seen.insert(next.clone()) => Some(format!("Dialpad repeated the cursor {next:?}")),
            Some(next) if !call_ids.is_empty() && new_calls == 0 => {
                Some(format!("Dialpad's page after the cursor {:?} listed only calls listed before (next cursor {next:?})", cursor.as_deref().unwrap_or("")))
            }
            _ => None,
        };
        cursor = next;
        if let Some(backfills) = kept {
            backfills.save(&window, cursor.as_deref(), &progress)?;
        }
        on_page(&progress, &lines);
        if progress.done {
            return Ok(Ok(progress));
        }
        if let Some(what) = stuck {
            let message = format!("{what}: stopped after {} pages (the listing does not advance)", progress.pages - pages_before);
            return Ok(Err((progress, stuck_error(&window, cursor.as_deref(), message))));
        }
    }
}

/// The operation id of the error that ends a listing going round in circles.
const STUCK_OPERATION: &str = "dialpad-list-calls";
/// How [`stuck_listing`] knows the error: its message ends so.
const STUCK_MARK: &str = "(the listing does not advance)";

fn stuck_error(window: &Window, cursor: Option<&str>, message: String) -> SyncError {
    let mut path = format!("/api/v2/call?started_after={}", window.started_after);
    if let Some(before) = window.started_before {
        path.push_str(&format!("&started_before={before}"));
    }
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    // Dialpad answered 200: its listing, not its status, is wrong.
    SyncError::Upstream(UpstreamFailure { operation_id: STUCK_OPERATION.into(), method: "GET".into(), path, status: 200, message, body: String::new() })
}

/// Whether `error` ended a backfill whose listing stopped advancing (a repeated cursor, or a
/// page of calls listed before): running it again would go round the same circle.
pub fn stuck_listing(error: &SyncError) -> bool {
    matches!(error, SyncError::Upstream(u) if u.operation_id == STUCK_OPERATION && u.status == 200 && u.message.ends_with(STUCK_MARK))
}

/// A date or time for `--since` / `--until`: `2026-03-01`, or RFC 3339 (`2026-03-01T09:00:00Z`).
pub fn parse_instant_ms(text: &str) -> anyhow::Result<u64> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    let time = humantime::parse_rfc3339_weak(&full).map_err(|e| anyhow::anyhow!("{text:?} is not a date (2026-03-01) or an RFC 3339 time: {e}"))?;
    Ok(time.duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_utc_milliseconds() {
        assert_eq!(parse_instant_ms("2026-03-10").unwrap(), 1_773_100_800_000);
        assert_eq!(parse_instant_ms("2026-03-10T15:04:05Z").unwrap(), 1_773_155_045_000);
        assert!(parse_instant_ms("March").is_err());
    }

    #[test]
    fn an_unfinished_run_is_resumed_and_a_finished_one_starts_over() {
        let backfills = Backfills::open(&tempfile::tempdir().unwrap().keep().join("state.db")).unwrap();
        let window = Window { started_after: 1, started_before: Some(2) };
        let mut progress = Progress { pages: 1, fetched: 25, synced: 25, ..Progress::default() };
        backfills.save(&window, Some("c2"), &progress).unwrap();
        assert_eq!(backfills.resume(&window).unwrap(), Some((Some("c2".to_string()), progress.clone())));
        assert_eq!(backfills.resume(&Window { started_after: 1, started_before: None }).unwrap(), None);
        progress.done = true;
        backfills.save(&window, None, &progress).unwrap();
        assert_eq!(backfills.resume(&window).unwrap(), None);
    }
}
