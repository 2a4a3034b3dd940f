//! The operator's console's JSON API (`docs/console-api.md`): the history with filters,
//! search and paging, a call's story, the charts' counts, the incidents, and the replays and
//! discards an operator makes, one or all of a filter, each written to the audit log with who
//! made it ([`access::Actor`]).

use super::access::Actor;
use super::history::query::{self, Filter};
use super::history::story::LinkContext;
use super::history::{audit, stats, story};
use super::inbox::{now_ms, Inbox, NotReplayable};
use super::incidents::{detect, AlertRules, Snapshot};
use crate::settings::CardSettings;
use crate::storage::dead_letters::DeadLetters;
use crate::tenants::registry::Tenants;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the console needs of `serve`.
pub trait Host: Send + Sync + 'static {
    fn inbox(&self) -> &Inbox;
    fn tenants(&self) -> &Tenants;
    /// The links' templates and HighLevel's app (`highlevel_links`, `highlevel_app_url`).
    fn card(&self) -> &CardSettings;
    /// The inbox as the incidents see it: the overview's figures and the banner come from one look.
    fn snapshot(&self) -> anyhow::Result<Snapshot>;
    /// What makes an incident (the alerts tell the same ones).
    fn alert_rules(&self) -> &AlertRules;
    /// A removed tenant's letters cannot be reached through its view: the host's own.
    fn dead_letters(&self) -> &DeadLetters;
}

/// The most rows one page or one bulk action takes.
pub const MAX_PAGE: u32 = 200;
/// The most deliveries one "replay all" or "discard all" takes; the rest wait for the next.
pub const MAX_BULK: u32 = 5_000;
/// The longest discard reason kept.
pub const MAX_REASON_CHARS: usize = 500;

/// A refusal as the API answers it: `{"type", "message"}` with its status.
struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"type": self.1, "message": self.2}))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, "storage", format!("{e:#}"))
}

/// A store read or change off the async threads; a bad filter is the caller's error.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, Refusal> + Send + 'static) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "host", e.to_string()))?
}

fn from_store(e: anyhow::Error) -> Refusal {
    match e.downcast_ref::<query::BadFilter>() {
        Some(bad) => Refusal(StatusCode::BAD_REQUEST, "invalid-input", bad.to_string()),
        None => internal(e),
    }
}

fn not_operable(id: i64, why: NotReplayable) -> Refusal {
    let status = if why == NotReplayable::NotFound { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
    Refusal(status, if status == StatusCode::NOT_FOUND { "not-found" } else { "conflict" }, format!("delivery #{id}: {why}"))
}

pub fn routes<S: Host>() -> Router<Arc<S>> {
    Router::new()
        .route("/api/overview", get(overview::<S>))
        .route("/api/deliveries", get(deliveries::<S>))
        .route("/api/deliveries/{id}", get(delivery::<S>))
        .route("/api/deliveries/{id}/replay", post(replay_one::<S>))
        .route("/api/deliveries/{id}/discard", post(discard_one::<S>))
        .route("/api/deliveries/replay", post(replay_all::<S>))
        .route("/api/deliveries/discard", post(discard_all::<S>))
        .route("/api/calls/{call_id}", get(call_story::<S>))
        .route("/api/stats", get(chart_counts::<S>))
        .route("/api/audit", get(audit_log::<S>))
}

async fn overview<S: Host>(State(s): State<Arc<S>>) -> Result<Json<Value>, Refusal> {
    blocking(move || {
        let snapshot = s.snapshot().map_err(internal)?;
        let kinds = s.inbox().with_db(query::kinds).map_err(internal)?;
        let single = s.tenants().serves_single().then(|| s.tenants().single().clone());
        let tenants: Vec<Value> = single
            .into_iter()
            .chain(s.tenants().all())
            .map(|live| {
                // The filter's value for it: the host's own location is stored as the empty id.
                let filter = if live.tenant.id.is_empty() { query::OWN_LOCATION } else { live.tenant.id.as_str() };
                json!({"id": live.tenant.id, "filter": filter, "location_id": live.tenant.location_id, "name": live.tenant.name})
            })
            .collect();
        Ok(Json(json!({
            "now_ms": snapshot.now_ms,
            "queue_depth": snapshot.queue_depth,
            "failed": snapshot.failed,
            "tenants": tenants,
            "kinds": kinds,
            "states": query::STATES,
            "incidents": serde_json::to_value(detect(&snapshot, s.alert_rules())).map_err(internal)?,
        })))
    })
    .await
}

/// A page's query string, as the page's form sends it (an empty field is no filter).
#[derive(serde::Deserialize)]
struct PageQuery {
    tenant: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// A number from the query string; empty is none.
fn number<T: std::str::FromStr>(name: &str, given: Option<&str>) -> Result<Option<T>, Refusal> {
    match given.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => {
            text.parse().map(Some).map_err(|_| Refusal(StatusCode::BAD_REQUEST, "invalid-input", format!("{name} must be a whole number, not {text:?}")))
        }
    }
}

async fn deliveries<S: Host>(State(s): State<Arc<S>>, Query(q): Query<PageQuery>) -> Result<Json<Value>, Refusal> {
    let filter =
        Filter { tenant: q.tenant, state: q.state, kind: q.kind, from: number("from", q.from.as_deref())?, to: number("to", q.to.as_deref())?, q: q.q };
    let before = number("before", q.before.as_deref())?;
    let limit = number::<u32>("limit", q.limit.as_deref())?.unwrap_or(50).clamp(1, MAX_PAGE);
    blocking(move || {
        let page = s.inbox().with_db(|db| query::page(db, &filter, before, limit)).map_err(from_store)?;
        Ok(Json(json!({"deliveries": page.rows, "next_before": page.next_before})))
    })
    .await
}

async fn delivery<S: Host>(State(s): State<Arc<S>>, UrlPath(id): UrlPath<i64>) -> Result<Json<Value>, Refusal> {
    blocking(move || match s.inbox().get(id).map_err(internal)? {
        Some(row) => Ok(Json(row)),
        None => Err(Refusal(StatusCode::NOT_FOUND, "not-found", format!("no delivery #{id} (it may have been pruned)"))),
    })
    .await
}

#[derive(serde::Deserialize)]
struct StoryQuery {
    tenant: Option<String>,
}

async fn call_story<S: Host>(State(s): State<Arc<S>>, UrlPath(call_id): UrlPath<String>, Query(q): Query<StoryQuery>) -> Result<Json<Value>, Refusal> {
    blocking(move || {
        let tenant = q.tenant.unwrap_or_default();
        let location_id = s.tenants().get(&tenant).map(|live| live.tenant.location_id.clone()).unwrap_or_default();
        let card = s.card();
        let links = LinkContext { templates: &card.links, app_url: &card.app_url, location_id: &location_id };
        match s.inbox().with_db(|db| story::story(db, &tenant, &call_id, &links)).map_err(internal)? {
            Some(story) => Ok(Json(story)),
            None => Err(Refusal(StatusCode::NOT_FOUND, "not-found", format!("no delivery of call {call_id} is kept for this tenant"))),
        }
    })
    .await
}

#[derive(serde::Deserialize)]
struct StatsQuery {
    tenant: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    buckets: Option<i64>,
}

async fn chart_counts<S: Host>(State(s): State<Arc<S>>, Query(q): Query<StatsQuery>) -> Result<Json<Value>, Refusal> {
    blocking(move || {
        let to = q.to.unwrap_or_else(|| now_ms() + 1);
        // The last day unless told otherwise.
        let from = q.from.unwrap_or(to - 24 * 3600 * 1000);
        if from >= to {
            return Err(Refusal(StatusCode::BAD_REQUEST, "invalid-input", "the range ends before it starts".into()));
        }
        let tenant = q.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(query::stored_tenant);
        s.inbox().with_db(|db| stats::stats(db, tenant, from, to, q.buckets.unwrap_or(48))).map(Json).map_err(internal)
    })
    .await
}

#[derive(serde::Deserialize)]
struct AuditQuery {
    limit: Option<u32>,
}

async fn audit_log<S: Host>(State(s): State<Arc<S>>, Query(q): Query<AuditQuery>) -> Result<Json<Value>, Refusal> {
    blocking(move || {
        let entries = s.inbox().with_db(|db| audit::list(db, q.limit.unwrap_or(50).clamp(1, MAX_PAGE))).map_err(internal)?;
        Ok(Json(json!({"entries": entries})))
    })
    .await
}

/// Writes one audit entry; a change that cannot be logged is reported, not hidden.
fn log(s: &impl Host, entry: audit::Entry<'_>) -> Result<(), Refusal> {
    s.inbox().with_db(|db| Ok(audit::record(db, now_ms(), &entry)?)).map(|_| ()).map_err(internal)
}

async fn replay_one<S: Host>(State(s): State<Arc<S>>, Extension(actor): Extension<Actor>, UrlPath(id): UrlPath<i64>) -> Result<Response, Refusal> {
    blocking(move || {
        let queued = s.inbox().replay(id).map_err(internal)?.map_err(|why| not_operable(id, why))?;
        log(&*s, audit::Entry { actor: &actor.0, action: "replay", deliveries: &[id], reason: None, detail: json!({"queued": [{"from": id, "to": queued}]}) })?;
        Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued}))).into_response())
    })
    .await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscardBody {
    reason: String,
}

/// A discard's reason: required, so the log says why.
fn reason(given: &str) -> Result<String, Refusal> {
    let reason = given.trim();
    if reason.is_empty() {
        return Err(Refusal(StatusCode::BAD_REQUEST, "invalid-input", "say why it is discarded (reason)".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Refusal(StatusCode::BAD_REQUEST, "invalid-input", format!("the reason is longer than {MAX_REASON_CHARS} characters")));
    }
    Ok(reason.to_string())
}

/// Marks one delivery discarded and forgets its dead letter.
fn discard(s: &impl Host, id: i64, reason: &str, actor: &str) -> Result<Result<(), NotReplayable>, Refusal> {
    let (tenant, body) = match s.inbox().discard(id, reason, actor).map_err(internal)? {
        Ok(discarded) => discarded,
        Err(why) => return Ok(Err(why)),
    };
    s.dead_letters().for_tenant(&tenant).remove_body(&body).map_err(internal)?;
    Ok(Ok(()))
}

async fn discard_one<S: Host>(
    State(s): State<Arc<S>>,
    Extension(actor): Extension<Actor>,
    UrlPath(id): UrlPath<i64>,
    body: Result<Json<DiscardBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Refusal> {
    let Json(body) = body.map_err(|e| Refusal(StatusCode::BAD_REQUEST, "invalid-input", e.body_text()))?;
    let reason = reason(&body.reason)?;
    blocking(move || {
        discard(&*s, id, &reason, &actor.0)?.map_err(|why| not_operable(id, why))?;
        log(&*s, audit::Entry { actor: &actor.0, action: "discard", deliveries: &[id], reason: Some(&reason), detail: Value::Null })?;
        Ok(Json(json!({"discarded": id})))
    })
    .await
}

#[derive(serde::Deserialize)]
struct BulkBody {
    #[serde(flatten)]
    filter: Filter,
    reason: Option<String>,
}

fn bulk_body(body: Result<Json<BulkBody>, axum::extract::rejection::JsonRejection>) -> Result<BulkBody, Refusal> {
    let Json(body) = body.map_err(|e| Refusal(StatusCode::BAD_REQUEST, "invalid-input", e.body_text()))?;
    // Bulk actions take failed deliveries only: another state in the filter is a mistake.
    if body.filter.states().map_err(|e| Refusal(StatusCode::BAD_REQUEST, "invalid-input", e.to_string()))?.iter().any(|s| s != "failed") {
        return Err(Refusal(StatusCode::BAD_REQUEST, "invalid-input", "a bulk action takes failed deliveries only: leave state empty or failed".into()));
    }
    Ok(body)
}

async fn replay_all<S: Host>(
    State(s): State<Arc<S>>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<BulkBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Refusal> {
    let body = bulk_body(body)?;
    blocking(move || {
        let ids = s.inbox().with_db(|db| query::open_failures(db, &body.filter, MAX_BULK)).map_err(from_store)?;
        let (mut queued, mut skipped) = (Vec::new(), 0);
        for id in &ids {
            match s.inbox().replay(*id).map_err(internal)? {
                Ok(to) => queued.push(json!({"from": id, "to": to})),
                // Replayed by someone else meanwhile.
                Err(_) => skipped += 1,
            }
        }
        let done: Vec<i64> = queued.iter().filter_map(|q| q["from"].as_i64()).collect();
        let detail = json!({"filter": filter_json(&body.filter), "queued": queued});
        log(&*s, audit::Entry { actor: &actor.0, action: "replay-all", deliveries: &done, reason: None, detail })?;
        Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued, "skipped": skipped}))).into_response())
    })
    .await
}

async fn discard_all<S: Host>(
    State(s): State<Arc<S>>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<BulkBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, Refusal> {
    let body = bulk_body(body)?;
    let reason = reason(body.reason.as_deref().unwrap_or_default())?;
    blocking(move || {
        let ids = s.inbox().with_db(|db| query::open_failures(db, &body.filter, MAX_BULK)).map_err(from_store)?;
        let mut discarded = Vec::new();
        for id in ids {
            if discard(&*s, id, &reason, &actor.0)?.is_ok() {
                discarded.push(id);
            }
        }
        let detail = json!({"filter": filter_json(&body.filter)});
        log(&*s, audit::Entry { actor: &actor.0, action: "discard-all", deliveries: &discarded, reason: Some(&reason), detail })?;
        Ok(Json(json!({"discarded": discarded})))
    })
    .await
}

fn filter_json(filter: &Filter) -> Value {
    json!({"tenant": filter.tenant, "state": filter.state, "kind": filter.kind, "from": filter.from, "to": filter.to, "q": filter.q})
}
