//! OAuth 2.0 location tokens, kept by the host: refreshed before expiry, the rotated refresh
//! token stored at once, and a 401 answered with one refresh and one retry.

use e2e_tests::oauth::{harness, CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH_TOKEN};
use e2e_tests::*;
use host_test::ghl_mock::MockServer;
use std::time::Duration;

fn statuses(mock: &MockServer) -> Vec<u16> {
    mock.requests().iter().filter(|r| !r.path_and_query.starts_with("/oauth")).map(|r| r.status).collect()
}

#[test]
fn the_first_request_gets_a_token_and_the_rotated_refresh_token_is_stored() {
    let h = harness(Duration::from_secs(86_399), Duration::from_secs(300));
    for name in ["call_inbound_missed.json", "sms_inbound.json"] {
        h.runtime.handle_webhook(&fixture(name)).unwrap().unwrap();
    }
    assert_eq!(h.tokens.refresh_count(), 1, "one refresh serves every request while the token lives");
    assert_eq!(h.mock.oauth_refresh_count(), 1);
    assert!(statuses(&h.mock).iter().all(|s| *s < 300), "{:?}", statuses(&h.mock));
    // The new refresh token was stored before use; the first one is used up.
    assert_eq!(h.stored.lock().unwrap().as_slice(), [h.mock.current_refresh_token().unwrap()]);
    assert_ne!(h.stored.lock().unwrap()[0], FIRST_REFRESH_TOKEN);
}

#[test]
fn a_401_is_answered_with_one_refresh_and_one_retry() {
    let h = harness(Duration::from_secs(86_399), Duration::from_secs(300));
    h.runtime.handle_webhook(&fixture("call_inbound_missed.json")).unwrap().unwrap();
    // The API stops accepting the token before its time (revoked, say).
    h.mock.expire_access_tokens();
    let report = h.runtime.handle_webhook(&fixture("sms_inbound.json")).unwrap().unwrap();
    assert!(matches!(report.outcome, Outcome::Synced));
    assert_eq!(h.tokens.refresh_count(), 2);
    let statuses = statuses(&h.mock);
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 1, "one refused request, then its retry: {statuses:?}");
    assert_eq!(h.stored.lock().unwrap().len(), 2);
    assert_eq!(h.stored.lock().unwrap().last().cloned(), h.mock.current_refresh_token());
}

#[test]
fn a_token_about_to_expire_is_refreshed_before_use() {
    // Tokens live 60 s and the margin is 120 s: every token is "about to expire" when issued,
    // so each request refreshes first and none is refused.
    let h = harness(Duration::from_secs(60), Duration::from_secs(120));
    h.runtime.handle_webhook(&fixture("call_inbound_missed.json")).unwrap().unwrap();
    let statuses = statuses(&h.mock);
    assert!(statuses.iter().all(|s| *s < 300), "{statuses:?}");
    assert_eq!(h.tokens.refresh_count(), statuses.len(), "a refresh before each request");
}

#[test]
fn a_refused_refresh_is_a_typed_error_and_nothing_is_written() {
    let h = harness(Duration::from_secs(86_399), Duration::from_secs(300));
    // Someone else used the refresh token: HighLevel refuses it.
    let status = refresh_elsewhere(&h.mock, FIRST_REFRESH_TOKEN);
    assert_eq!(status, 200);
    let err = h.runtime.handle_webhook(&fixture("call_inbound_missed.json")).unwrap().unwrap_err();
    assert!(matches!(err, SyncError::Transport(ref m) if m.contains("OAuth") || m.contains("host error")), "{err:?}");
    assert!(statuses(&h.mock).is_empty(), "no API request went out without a token");
}

/// Uses a refresh token directly at the mock's token endpoint (as another process would).
fn refresh_elsewhere(mock: &MockServer, refresh_token: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = mock.base_url().trim_start_matches("http://").to_string();
    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&user_type=Location");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(stream, "POST /oauth/token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
