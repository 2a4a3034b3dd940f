//! What is systematically wrong now: the banner of the console and the alerts read the same
//! list. Pure: [`detect`] looks at a [`Snapshot`] of the inbox (built elsewhere, with SQL) and
//! at the [`AlertRules`], and sends, reads and stores nothing, so every rule is tested on data
//! written down in the test.
//!
//! Four kinds, each under a stable key (the alerts send one message when a key appears and one
//! when it goes):
//! - `credentials:<tenant>`: the tenant's newest tried deliveries all failed because HighLevel
//!   refused the token or a scope is missing. Nothing gets through until someone reconnects, so
//!   it says so, and it stands in for the failure burst of the same tenant.
//! - `failures:<tenant>`: many failures of one tenant within the window, whatever the cause.
//! - `queue`: deliveries wait too long, or too many of them.
//! - `dead-letters`: failed deliveries wait for an operator.
//!
//! Deliveries refused at the door (a bad signature, a body that is not an event) are left out:
//! a burst of forged or misaddressed traffic is the sender's problem, not a failure of the sync,
//! and it is counted on the metrics and shown on the page already.

use std::collections::BTreeMap;
use std::time::Duration;

/// What the alerts and the banner look at: the inbox now.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub now_ms: i64,
    /// Deliveries accepted and not finished (queued or waiting for a retry).
    pub queue_depth: u64,
    /// When the oldest of them was received.
    pub oldest_queued_ms: Option<i64>,
    /// Failed deliveries waiting for an operator (not replayed, not discarded): the dead letters.
    pub failed: u64,
    /// Every delivery received in the last `AlertRules::window`, oldest first, finished or retrying.
    pub recent: Vec<Recent>,
    /// Tenant id → its HighLevel location id (the empty id is the host's single location).
    pub locations: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Recent {
    pub id: i64,
    pub tenant: String,
    pub received_ms: i64,
    /// queued | retrying | synced | unchanged | skipped | failed | refused | cancelled | discarded | replayed (failed, then replayed by an operator)
    pub state: String,
    /// The last error's type with its HTTP status when it has one: "upstream:401", "upstream:503", "missing-scope", "transport", "rate-limited", "invalid-signature", …; None when the last try succeeded.
    pub error: Option<String>,
    pub kind: Option<String>,
}

/// When something counts as systematically wrong. A count or a duration of 0 turns its rule off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRules {
    /// How far back the failure burst looks (and how far back `Snapshot::recent` reaches).
    /// Default 10 minutes.
    pub window: Duration,
    /// Failures of one tenant within `window` (failed, or waiting for a retry after an error)
    /// that make a failure burst. Default 5: one unlucky call is not an incident, five in ten
    /// minutes are.
    pub failure_burst: u64,
    /// Newest tried deliveries of one tenant that must all have failed on the credential
    /// (HighLevel 401 or 403, or a missing scope) to make a credentials incident. Default 3:
    /// one 401 can be a token refreshed a moment late, three in a row are a token that is gone.
    pub credential_streak: u64,
    /// Deliveries waiting to be handled that make a queue incident. Default 500: the workers
    /// handle a few per second, so 500 is minutes behind.
    pub queue_depth: u64,
    /// How long the oldest waiting delivery may wait before the queue is an incident. Default
    /// 10 minutes: far beyond a retry's backoff (at most 5 minutes).
    pub queue_age: Duration,
    /// Dead letters (failed deliveries waiting for an operator) that make an incident. Default
    /// 1: each one is a call or a contact missing in HighLevel until someone replays it.
    pub dead_letters: u64,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            window: Duration::from_secs(600),
            failure_burst: 5,
            credential_streak: 3,
            queue_depth: 500,
            queue_age: Duration::from_secs(600),
            dead_letters: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IncidentKind {
    #[serde(rename = "credentials")]
    Credentials,
    #[serde(rename = "failures")]
    FailureBurst,
    #[serde(rename = "queue")]
    Queue,
    #[serde(rename = "dead-letters")]
    DeadLetters,
}

impl IncidentKind {
    /// The name in keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Credentials => "credentials",
            IncidentKind::FailureBurst => "failures",
            IncidentKind::Queue => "queue",
            IncidentKind::DeadLetters => "dead-letters",
        }
    }
}

/// One thing systematically wrong now, in words for an operator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    /// Stable while it lasts: `credentials:<tenant>`, `failures:<tenant>`, `queue`, `dead-letters`.
    pub key: String,
    pub kind: IncidentKind,
    /// The tenant it is about (`""`: the host's single location); `None` for the whole host.
    pub tenant: Option<String>,
    /// When it started, as far as the snapshot shows.
    pub since_ms: i64,
    /// What is wrong, naming the location.
    pub title: String,
    /// What to do about it.
    pub advice: String,
    /// How many: failed deliveries, waiting ones or dead letters.
    pub count: u64,
}

/// Everything systematically wrong in `snapshot`: credentials and failure bursts by tenant
/// (in tenant order), then the queue, then the dead letters.
pub fn detect(snapshot: &Snapshot, rules: &AlertRules) -> Vec<Incident> {
    let mut by_tenant: BTreeMap<&str, Vec<&Recent>> = BTreeMap::new();
    let window_start = snapshot.now_ms.saturating_sub(millis(rules.window));
    for recent in snapshot.recent.iter().filter(|r| r.received_ms >= window_start) {
        by_tenant.entry(recent.tenant.as_str()).or_default().push(recent);
    }
    let mut incidents = Vec::new();
    for (tenant, deliveries) in &mut by_tenant {
        // Oldest first whatever order they came in: the streak is read from the newest.
        deliveries.sort_by_key(|r| (r.received_ms, r.id));
        let place = Place::of(snapshot, tenant);
        if let Some(incident) = credentials(tenant, deliveries, rules, snapshot.now_ms, &place) {
            incidents.push(incident);
        } else if let Some(incident) = failure_burst(tenant, deliveries, rules, snapshot.now_ms, &place) {
            incidents.push(incident);
        }
    }
    let too_deep = rules.queue_depth > 0 && snapshot.queue_depth >= rules.queue_depth;
    let too_old = !rules.queue_age.is_zero() && snapshot.oldest_queued_ms.is_some_and(|oldest| snapshot.now_ms - oldest > millis(rules.queue_age));
    if snapshot.queue_depth > 0 && (too_deep || too_old) {
        let since_ms = snapshot.oldest_queued_ms.unwrap_or(snapshot.now_ms);
        let oldest = snapshot.oldest_queued_ms.map(|t| format!(", the oldest since {}", clock(t, snapshot.now_ms))).unwrap_or_default();
        incidents.push(Incident {
            key: "queue".into(),
            kind: IncidentKind::Queue,
            tenant: None,
            since_ms,
            title: format!("{} waiting to be handled{oldest}", deliveries_are(snapshot.queue_depth)),
            advice: "Deliveries are accepted but not handled in time. Check the other incidents and HighLevel's status (failures and rate limits \
                     slow every retry); if HighLevel answers well, the workers are too few for the traffic: raise --workers."
                .into(),
            count: snapshot.queue_depth,
        });
    }
    if rules.dead_letters > 0 && snapshot.failed >= rules.dead_letters {
        // The first failure still in the window is the best start the snapshot knows of.
        let since_ms = snapshot.recent.iter().filter(|r| r.state == "failed").map(|r| r.received_ms).min().unwrap_or(snapshot.now_ms);
        let letters = if snapshot.failed == 1 { "1 failed delivery waits".to_string() } else { format!("{} failed deliveries wait", snapshot.failed) };
        incidents.push(Incident {
            key: "dead-letters".into(),
            kind: IncidentKind::DeadLetters,
            tenant: None,
            since_ms,
            title: format!("{letters} for an operator"),
            advice: "Open the failed deliveries in the console: fix what each says went wrong, then replay them, or discard the ones that should \
                     not be synced."
                .into(),
            count: snapshot.failed,
        });
    }
    incidents
}

/// How a tenant is named in a title.
struct Place(String);

impl Place {
    fn of(snapshot: &Snapshot, tenant: &str) -> Place {
        let location = snapshot.locations.get(tenant).filter(|l| !l.is_empty());
        Place(match (location, tenant.is_empty()) {
            (Some(location), true) => format!("location {location}"),
            (Some(location), false) => format!("location {location} (tenant {tenant})"),
            (None, false) => format!("tenant {tenant}"),
            (None, true) => "this host's location".into(),
        })
    }
}

/// A credential failure: HighLevel refused the token (401) or the request (403), or the plugin
/// knew a scope was missing before asking.
fn credential_error(error: &str) -> Option<Credential> {
    match error {
        "upstream:401" => Some(Credential::Refused),
        "upstream:403" => Some(Credential::Forbidden),
        "missing-scope" => Some(Credential::MissingScope),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    Refused,
    Forbidden,
    MissingScope,
}

/// A delivery the plugin has tried: its state says how the last try went. Queued ones have not
/// been tried, refused ones never reached the plugin's sync, cancelled ones belong to a removed
/// tenant, and discarded ones an operator has dealt with.
fn tried(recent: &Recent) -> bool {
    matches!(recent.state.as_str(), "synced" | "unchanged" | "skipped" | "failed" | "retrying")
}

fn failure(recent: &Recent) -> bool {
    recent.state == "failed" || (recent.state == "retrying" && recent.error.is_some())
}

fn credentials(tenant: &str, deliveries: &[&Recent], rules: &AlertRules, now_ms: i64, place: &Place) -> Option<Incident> {
    if rules.credential_streak == 0 {
        return None;
    }
    let streak: Vec<(&Recent, Credential)> =
        deliveries.iter().rev().filter(|r| tried(r)).map_while(|r| Some((*r, r.error.as_deref().filter(|_| failure(r)).and_then(credential_error)?))).collect();
    if (streak.len() as u64) < rules.credential_streak {
        return None;
    }
    let (first, _) = streak.last()?;
    let (_, newest) = streak[0];
    let mut causes: Vec<&str> = Vec::new();
    for (_, credential) in streak.iter().rev() {
        let cause = match credential {
            Credential::Refused => "HighLevel 401",
            Credential::Forbidden => "HighLevel 403",
            Credential::MissingScope => "a missing HighLevel scope",
        };
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    }
    let title = format!("Every delivery for {} has failed with {} since {}", place.0, causes.join(" and "), clock(first.received_ms, now_ms));
    let advice = match newest {
        Credential::Refused => "Reconnect HighLevel for this location (its token was refused), then replay the failed deliveries.",
        Credential::Forbidden => {
            "Reconnect HighLevel for this location and check that the app still has its scopes and access to the location (HighLevel \
             forbade the requests), then replay the failed deliveries."
        }
        Credential::MissingScope => {
            "Grant the missing scope: reinstall or reconnect the HighLevel app with it (or add it to the private token), then replay the \
             failed deliveries."
        }
    };
    Some(Incident {
        key: format!("credentials:{tenant}"),
        kind: IncidentKind::Credentials,
        tenant: Some(tenant.to_string()),
        since_ms: first.received_ms,
        title,
        advice: advice.into(),
        count: streak.len() as u64,
    })
}

fn failure_burst(tenant: &str, deliveries: &[&Recent], rules: &AlertRules, now_ms: i64, place: &Place) -> Option<Incident> {
    let failures: Vec<&Recent> = deliveries.iter().copied().filter(|r| failure(r)).collect();
    if rules.failure_burst == 0 || (failures.len() as u64) < rules.failure_burst {
        return None;
    }
    let first = failures[0];
    // What most of them failed with says what to do; a tie goes to the cause seen last.
    let mut causes: Vec<(Cause, usize)> = Vec::new();
    for recent in &failures {
        let cause = Cause::of(recent.error.as_deref());
        match causes.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => causes.push((cause, 1)),
        }
    }
    let (cause, _) = causes.iter().max_by_key(|(_, n)| *n).copied()?;
    Some(Incident {
        key: format!("failures:{tenant}"),
        kind: IncidentKind::FailureBurst,
        tenant: Some(tenant.to_string()),
        since_ms: first.received_ms,
        title: format!("{} deliveries for {} have failed since {}", failures.len(), place.0, clock(first.received_ms, now_ms)),
        advice: cause.advice().into(),
        count: failures.len() as u64,
    })
}

/// What a burst mostly failed with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cause {
    Unreachable,
    RateLimited,
    ServerErrors,
    Refused,
    Credentials,
    Other,
}

impl Cause {
    fn of(error: Option<&str>) -> Cause {
        let Some(error) = error else { return Cause::Other };
        if credential_error(error).is_some() {
            return Cause::Credentials;
        }
        match error.split_once(':') {
            _ if error == "transport" => Cause::Unreachable,
            _ if error == "rate-limited" || error == "upstream:429" => Cause::RateLimited,
            Some(("upstream", status)) if status.starts_with('5') => Cause::ServerErrors,
            Some(("upstream", status)) if status.starts_with('4') => Cause::Refused,
            _ => Cause::Other,
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Cause::Unreachable => {
                "Most could not reach HighLevel (no answer): check HighLevel's status and this host's network. Deliveries are retried; replay \
                 the failed ones once HighLevel answers."
            }
            Cause::RateLimited => "Most were turned away by HighLevel's rate limit (429): lower the traffic or rate_limit, then replay the failed deliveries.",
            Cause::ServerErrors => {
                "Most got server errors from HighLevel (5xx), which usually pass on their own: replay the failed deliveries once HighLevel \
                 answers."
            }
            Cause::Refused => {
                "HighLevel refused most of the requests (4xx): open one failed delivery in the console to see what was sent and why it was refused."
            }
            Cause::Credentials => {
                "Most failed on the credential (HighLevel 401 or 403, or a missing scope): reconnect HighLevel for this location, then replay them."
            }
            Cause::Other => "Open one failed delivery in the console to see what went wrong, fix the cause, then replay the failed deliveries.",
        }
    }
}

/// "1 delivery is" / "3 deliveries are".
fn deliveries_are(n: u64) -> String {
    if n == 1 {
        "1 delivery is".into()
    } else {
        format!("{n} deliveries are")
    }
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis().min(i64::MAX as u128) as i64
}

/// A time for a title: `12:13 UTC`, with the date when it is not `now_ms`'s day.
pub fn clock(ms: i64, now_ms: i64) -> String {
    let (date, time) = utc(ms);
    if date == utc(now_ms).0 {
        format!("{time} UTC")
    } else {
        format!("{date} {time} UTC")
    }
}

/// `("2026-03-02", "12:13")`.
fn utc(ms: i64) -> (String, String) {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    // `2026-03-02T12:13:00Z`.
    let text = humantime::format_rfc3339_seconds(at).to_string();
    (text[..10].to_string(), text[11..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-02 12:13:00 UTC.
    const T0: i64 = 1_772_453_580_000;
    const MIN: i64 = 60_000;

    fn recent(id: i64, tenant: &str, minute: i64, state: &str, error: Option<&str>) -> Recent {
        Recent { id, tenant: tenant.into(), received_ms: T0 + minute * MIN, state: state.into(), error: error.map(str::to_string), kind: Some("call".into()) }
    }

    fn snapshot(now_minute: i64, recent: Vec<Recent>) -> Snapshot {
        let locations = [("".to_string(), "loc123".to_string()), ("north".to_string(), "locNorth".to_string())].into_iter().collect();
        Snapshot { now_ms: T0 + now_minute * MIN, recent, locations, ..Snapshot::default() }
    }

    #[test]
    fn the_clock_names_the_day_only_when_it_is_another() {
        assert_eq!(clock(T0, T0 + 5 * MIN), "12:13 UTC");
        assert_eq!(clock(T0, T0 + 12 * 60 * MIN), "2026-03-02 12:13 UTC");
    }

    #[test]
    fn three_401s_in_a_row_are_a_credentials_incident_from_the_first_of_them() {
        let s = snapshot(
            9,
            vec![
                recent(1, "", 0, "synced", None),
                recent(2, "", 1, "failed", Some("upstream:401")),
                recent(3, "", 2, "queued", None),
                recent(4, "", 3, "failed", Some("upstream:401")),
                recent(5, "", 4, "refused", Some("invalid-signature")),
                recent(6, "", 5, "failed", Some("upstream:401")),
            ],
        );
        let found = detect(&s, &AlertRules::default());
        assert_eq!(
            found,
            [Incident {
                key: "credentials:".into(),
                kind: IncidentKind::Credentials,
                tenant: Some("".into()),
                since_ms: T0 + MIN,
                title: "Every delivery for location loc123 has failed with HighLevel 401 since 12:14 UTC".into(),
                advice: "Reconnect HighLevel for this location (its token was refused), then replay the failed deliveries.".into(),
                count: 3,
            }]
        );
        assert_eq!(serde_json::to_value(&found[0]).unwrap()["kind"], "credentials");
    }

    #[test]
    fn a_success_after_the_401s_ends_the_streak_and_two_are_not_enough() {
        let rules = AlertRules::default();
        let mut deliveries = vec![
            recent(1, "north", 0, "failed", Some("upstream:401")),
            recent(2, "north", 1, "failed", Some("upstream:401")),
            recent(3, "north", 2, "failed", Some("upstream:401")),
            recent(4, "north", 3, "synced", None),
        ];
        assert_eq!(detect(&snapshot(5, deliveries.clone()), &rules), []);
        deliveries.push(recent(5, "north", 4, "failed", Some("upstream:401")));
        deliveries.push(recent(6, "north", 5, "failed", Some("upstream:401")));
        // Two in a row are no streak yet, but five failures in the window are a burst, whose
        // advice names the credential.
        let burst = detect(&snapshot(6, deliveries.clone()), &rules);
        assert_eq!(
            burst.iter().map(|i| (i.key.as_str(), i.count, i.advice.as_str())).collect::<Vec<_>>(),
            [("failures:north", 5, Cause::Credentials.advice())]
        );
        // A third one makes the streak, since the fifth delivery; the older three are not part of it.
        deliveries.push(recent(7, "north", 6, "failed", Some("upstream:401")));
        let found = detect(&snapshot(7, deliveries), &rules);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].key.as_str(), found[0].since_ms, found[0].count), ("credentials:north", T0 + 4 * MIN, 3));
        assert_eq!(found[0].title, "Every delivery for location locNorth (tenant north) has failed with HighLevel 401 since 12:17 UTC");
    }

    #[test]
    fn a_credentials_incident_stands_in_for_the_failure_burst_of_its_tenant() {
        let deliveries = (0..6).map(|i| recent(i, "north", i, "failed", Some(if i < 3 { "upstream:403" } else { "missing-scope" }))).collect();
        let found = detect(&snapshot(8, deliveries), &AlertRules::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].key.as_str(), found[0].count, found[0].since_ms, found[0].title.as_str()),
            (
                "credentials:north",
                6,
                T0,
                "Every delivery for location locNorth (tenant north) has failed with HighLevel 403 and a missing HighLevel scope since 12:13 UTC"
            )
        );
        assert!(found[0].advice.starts_with("Grant the missing scope"), "the newest failure decides: {}", found[0].advice);
        let scopes = (0..3).map(|i| recent(i, "east", i, "failed", Some("missing-scope"))).collect();
        let found = detect(&snapshot(4, scopes), &AlertRules::default());
        assert_eq!(found[0].title, "Every delivery for tenant east has failed with a missing HighLevel scope since 12:13 UTC");
    }

    #[test]
    fn five_failures_of_one_tenant_in_the_window_are_a_burst_and_older_ones_do_not_count() {
        let rules = AlertRules::default();
        let mut deliveries = vec![recent(1, "north", -30, "failed", Some("transport"))];
        deliveries.extend((2..6).map(|i| recent(i, "north", i, "failed", Some("transport"))));
        deliveries.push(recent(6, "north", 6, "synced", None));
        // Another tenant's failures are its own.
        deliveries.push(recent(7, "", 7, "failed", Some("transport")));
        assert_eq!(detect(&snapshot(8, deliveries.clone()), &rules), []);
        deliveries.push(recent(8, "north", 8, "retrying", Some("upstream:503")));
        // Waiting for a retry without an error yet (a first try not made) is no failure.
        deliveries.push(recent(9, "north", 8, "retrying", None));
        let found = detect(&snapshot(9, deliveries), &rules);
        assert_eq!(
            found,
            [Incident {
                key: "failures:north".into(),
                kind: IncidentKind::FailureBurst,
                tenant: Some("north".into()),
                since_ms: T0 + 2 * MIN,
                title: "5 deliveries for location locNorth (tenant north) have failed since 12:15 UTC".into(),
                advice: Cause::Unreachable.advice().into(),
                count: 5,
            }]
        );
    }

    #[test]
    fn refusals_at_the_door_and_discarded_deliveries_make_no_incident() {
        let mut deliveries: Vec<Recent> = (0..10).map(|i| recent(i, "", i, "refused", Some("invalid-signature"))).collect();
        deliveries.extend((10..16).map(|i| recent(i, "", i - 10, "discarded", Some("upstream:401"))));
        assert_eq!(detect(&snapshot(10, deliveries), &AlertRules::default()), []);
    }

    #[test]
    fn the_queue_is_an_incident_when_deep_or_old_and_dead_letters_from_the_first() {
        let rules = AlertRules::default();
        let mut s = snapshot(0, vec![]);
        s.queue_depth = 499;
        s.oldest_queued_ms = Some(T0 - 9 * MIN);
        assert_eq!(detect(&s, &rules), []);
        s.queue_depth = 500;
        let deep = detect(&s, &rules);
        assert_eq!((deep[0].key.as_str(), deep[0].since_ms, deep[0].count), ("queue", T0 - 9 * MIN, 500));
        assert_eq!(deep[0].title, "500 deliveries are waiting to be handled, the oldest since 12:04 UTC");
        s.queue_depth = 1;
        s.oldest_queued_ms = Some(T0 - 11 * MIN);
        assert_eq!(detect(&s, &rules)[0].title, "1 delivery is waiting to be handled, the oldest since 12:02 UTC");

        let mut s = snapshot(3, vec![recent(1, "north", 1, "failed", Some("upstream:422"))]);
        s.failed = 1;
        let found = detect(&s, &rules);
        assert_eq!(
            (found[0].key.as_str(), found[0].kind, found[0].tenant.as_deref(), found[0].since_ms, found[0].title.as_str(), found[0].count),
            ("dead-letters", IncidentKind::DeadLetters, None, T0 + MIN, "1 failed delivery waits for an operator", 1)
        );
        s.failed = 3;
        assert_eq!(detect(&s, &rules)[0].title, "3 failed deliveries wait for an operator");
        let off = AlertRules { dead_letters: 0, ..rules };
        assert_eq!(detect(&s, &off), []);
    }

    #[test]
    fn incidents_come_in_a_fixed_order() {
        let mut deliveries: Vec<Recent> = (0..5).map(|i| recent(i, "west", i, "failed", Some("upstream:500"))).collect();
        deliveries.extend((5..8).map(|i| recent(i, "east", i, "failed", Some("upstream:401"))));
        let mut s = snapshot(9, deliveries);
        s.failed = 8;
        s.queue_depth = 600;
        let keys: Vec<String> = detect(&s, &AlertRules::default()).into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["credentials:east", "failures:west", "queue", "dead-letters"]);
    }
}
