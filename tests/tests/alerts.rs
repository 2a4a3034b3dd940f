//! Alerts: each incident told once when it opens and once when it is over, to a loopback
//! webhook receiver (`Catcher`) and a loopback SMTP server written here. The [`Alerter`] is
//! driven with scripted snapshots (no sleeping); the last test runs a real `serve` whose dead
//! letter is told, then told over once it is replayed.

use dialpad_ghl_host::serve::alerts::{AlertSettings, Alerter, Checked, SmtpSettings, SmtpTls};
use dialpad_ghl_host::serve::incidents::{Recent, Snapshot};
use e2e_tests::serve::{alerts_told, get_json, in_process, json_fixture, loopback_options, mock};
use host_test::ghl_mock::{FaultKind, Faults};
use host_test::support::{loopback_request, scratch_dir, Catcher};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 2026-03-02 12:13:00 UTC.
const T0: i64 = 1_772_453_580_000;
const MIN: i64 = 60_000;
const CONSOLE: &str = "https://admin.example.com";
const TITLE_401: &str = "Every delivery for location locNorth (tenant north) has failed with HighLevel 401 since 12:14 UTC";
const ADVICE_401: &str = "Reconnect HighLevel for this location (its token was refused), then replay the failed deliveries.";

fn recent(id: i64, minute: i64, state: &str, error: Option<&str>) -> Recent {
    Recent { id, tenant: "north".into(), received_ms: T0 + minute * MIN, state: state.into(), error: error.map(str::to_string), kind: Some("call".into()) }
}

fn at(minute: i64, recent: Vec<Recent>) -> Snapshot {
    let locations = [("north".to_string(), "locNorth".to_string())].into_iter().collect();
    Snapshot { now_ms: T0 + minute * MIN, recent, locations, ..Snapshot::default() }
}

/// North's token refused three times in a row from 12:14: a credentials incident.
fn refused(now_minute: i64) -> Snapshot {
    at(
        now_minute,
        vec![
            recent(1, 0, "synced", None),
            recent(2, 1, "failed", Some("upstream:401")),
            recent(3, 2, "failed", Some("upstream:401")),
            recent(4, 3, "failed", Some("upstream:401")),
        ],
    )
}

/// North reconnected: the newest delivery got through.
fn healthy(now_minute: i64) -> Snapshot {
    let mut snapshot = refused(now_minute);
    snapshot.recent.push(recent(5, now_minute - 1, "synced", None));
    snapshot
}

fn webhook_settings(catcher: &Catcher) -> AlertSettings {
    AlertSettings { webhook_url: Some(catcher.url().parse().unwrap()), console_url: Some(CONSOLE.into()), ..AlertSettings::default() }
}

fn pair(state: &str, key: &str) -> (String, String) {
    (state.to_string(), key.to_string())
}

fn checked(sent: usize, failed: usize) -> (usize, usize) {
    (sent, failed)
}

fn counts(checked: &Checked) -> (usize, usize) {
    (checked.sent, checked.failed)
}

#[test]
fn each_incident_is_told_once_when_it_opens_and_once_when_it_is_over() {
    let catcher = Catcher::start().unwrap();
    let db = scratch_dir("alerts-once").join("state.db");
    let mut alerter = Alerter::open(&db, webhook_settings(&catcher)).unwrap();

    let opened = alerter.check(&refused(5)).unwrap();
    assert_eq!(opened.incidents.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["credentials:north"]);
    assert_eq!(counts(&opened), checked(1, 0));
    assert_eq!(counts(&alerter.check(&refused(6)).unwrap()), checked(0, 0), "still open: nothing more");
    assert_eq!(counts(&alerter.check(&healthy(8)).unwrap()), checked(1, 0));
    assert_eq!(counts(&alerter.check(&healthy(9)).unwrap()), checked(0, 0), "over, and said so once");
    // It comes back, with dead letters this time: two new incidents, each told once.
    let mut again = healthy(8);
    again.now_ms = T0 + 12 * MIN;
    again.recent.extend([
        recent(6, 9, "failed", Some("upstream:401")),
        recent(7, 10, "failed", Some("upstream:401")),
        recent(8, 11, "failed", Some("upstream:401")),
    ]);
    again.failed = 2;
    assert_eq!(counts(&alerter.check(&again).unwrap()), checked(2, 0));
    assert_eq!(counts(&alerter.check(&again).unwrap()), checked(0, 0));

    assert_eq!(
        alerts_told(&catcher),
        [pair("open", "credentials:north"), pair("resolved", "credentials:north"), pair("open", "credentials:north"), pair("open", "dead-letters")]
    );
    let caught = catcher.caught();
    assert_eq!((caught[0].method.as_str(), caught[0].path.as_str(), caught[0].header("content-type")), ("POST", "/hook", Some("application/json")));
    let incident = json!({
        "key": "credentials:north", "kind": "credentials", "tenant": "north", "location_id": "locNorth", "state": "open",
        "since_ms": T0 + MIN, "title": TITLE_401, "advice": ADVICE_401, "count": 3,
    });
    assert_eq!(
        serde_json::from_slice::<Value>(&caught[0].body).unwrap(),
        json!({"text": format!("Problem: {TITLE_401}.\n{ADVICE_401} Console: {CONSOLE}"), "incident": incident})
    );
    let resolved: Value = serde_json::from_slice(&caught[1].body).unwrap();
    assert_eq!(resolved["text"], format!("Resolved: {TITLE_401}.\nOver at 12:21 UTC, after 7 min. Console: {CONSOLE}"));
    assert_eq!((&resolved["incident"]["title"], &resolved["incident"]["since_ms"]), (&json!(TITLE_401), &json!(T0 + MIN)));
    // Reopened: its own start, from the new streak.
    let reopened: Value = serde_json::from_slice(&caught[2].body).unwrap();
    assert_eq!(reopened["incident"]["since_ms"], T0 + 9 * MIN);
    let letters: Value = serde_json::from_slice(&caught[3].body).unwrap();
    assert_eq!(letters["incident"]["title"], "2 failed deliveries wait for an operator");
    assert_eq!((&letters["incident"]["tenant"], &letters["incident"]["location_id"]), (&Value::Null, &Value::Null));
}

#[test]
fn a_restart_neither_tells_an_open_incident_again_nor_forgets_its_resolution() {
    let catcher = Catcher::start().unwrap();
    let db = scratch_dir("alerts-restart").join("state.db");
    let mut before = Alerter::open(&db, webhook_settings(&catcher)).unwrap();
    assert_eq!(counts(&before.check(&refused(5)).unwrap()), checked(1, 0));
    drop(before);

    let mut after = Alerter::open(&db, webhook_settings(&catcher)).unwrap();
    assert_eq!(counts(&after.check(&refused(7)).unwrap()), checked(0, 0), "told before the restart");
    drop(after);
    let mut after = Alerter::open(&db, webhook_settings(&catcher)).unwrap();
    assert_eq!(counts(&after.check(&healthy(9)).unwrap()), checked(1, 0));
    drop(after);
    let mut after = Alerter::open(&db, webhook_settings(&catcher)).unwrap();
    assert_eq!(counts(&after.check(&healthy(10)).unwrap()), checked(0, 0), "its resolution was told");

    assert_eq!(alerts_told(&catcher), [pair("open", "credentials:north"), pair("resolved", "credentials:north")]);
    let resolved: Value = serde_json::from_slice(&catcher.caught()[1].body).unwrap();
    assert_eq!(resolved["text"], format!("Resolved: {TITLE_401}.\nOver at 12:22 UTC, after 8 min. Console: {CONSOLE}"));
}

#[test]
fn a_failed_send_is_tried_again_at_the_next_check_and_only_where_it_failed() {
    let catcher = Catcher::start().unwrap();
    let smtp = SmtpReceiver::start();
    catcher.answer_with(503);
    let db = scratch_dir("alerts-retry").join("state.db");
    let settings = AlertSettings { smtp: Some(smtp.settings()), ..webhook_settings(&catcher) };
    let mut alerter = Alerter::open(&db, settings).unwrap();

    assert_eq!(counts(&alerter.check(&refused(5)).unwrap()), checked(1, 1), "the mail went, the webhook did not");
    assert_eq!(counts(&alerter.check(&refused(6)).unwrap()), checked(0, 1), "the webhook is tried again, the mail is not sent again");
    catcher.answer_with(200);
    assert_eq!(counts(&alerter.check(&refused(7)).unwrap()), checked(1, 0));
    assert_eq!(counts(&alerter.check(&refused(8)).unwrap()), checked(0, 0));
    assert_eq!(counts(&alerter.check(&healthy(9)).unwrap()), checked(2, 0), "both are told it is over");

    assert_eq!(
        alerts_told(&catcher),
        [pair("open", "credentials:north"), pair("open", "credentials:north"), pair("open", "credentials:north"), pair("resolved", "credentials:north")]
    );
    let subjects: Vec<String> = smtp.mails().iter().map(|m| m.header("subject")).collect();
    assert_eq!(subjects, [format!("Problem: {TITLE_401}"), format!("Resolved: {TITLE_401}")]);

    // A mail server that refuses is tried again too, and the webhook is not told twice.
    smtp.refuse(true);
    let mut letters = healthy(10);
    letters.failed = 1;
    assert_eq!(counts(&alerter.check(&letters).unwrap()), checked(1, 1));
    smtp.refuse(false);
    assert_eq!(counts(&alerter.check(&letters).unwrap()), checked(1, 0));
    assert_eq!(alerts_told(&catcher).len(), 5);
    assert_eq!(smtp.mails().last().unwrap().header("subject"), "Problem: 1 failed delivery waits for an operator");
}

#[test]
fn an_incident_over_before_anyone_was_told_of_it_ends_silently() {
    let catcher = Catcher::start().unwrap();
    catcher.answer_with(500);
    let db = scratch_dir("alerts-silent").join("state.db");
    let mut alerter = Alerter::open(&db, webhook_settings(&catcher)).unwrap();
    assert_eq!(counts(&alerter.check(&refused(5)).unwrap()), checked(0, 1));
    catcher.answer_with(200);
    assert_eq!(counts(&alerter.check(&healthy(6)).unwrap()), checked(0, 0), "nobody heard of it: no resolution");
    assert_eq!(counts(&alerter.check(&refused(7)).unwrap()), checked(1, 0), "back again: told as new");
    assert_eq!(alerts_told(&catcher), [pair("open", "credentials:north"), pair("open", "credentials:north")]);
}

#[test]
fn mails_go_through_smtp_with_the_login_the_subject_and_the_advice() {
    let smtp = SmtpReceiver::start();
    let db = scratch_dir("alerts-mail").join("state.db");
    let settings = AlertSettings { smtp: Some(smtp.settings()), console_url: Some(CONSOLE.into()), ..AlertSettings::default() };
    let mut alerter = Alerter::open(&db, settings).unwrap();
    assert_eq!(counts(&alerter.check(&refused(5)).unwrap()), checked(1, 0));
    assert_eq!(counts(&alerter.check(&refused(6)).unwrap()), checked(0, 0));
    assert_eq!(counts(&alerter.check(&healthy(8)).unwrap()), checked(1, 0));
    assert_eq!(counts(&alerter.check(&healthy(9)).unwrap()), checked(0, 0));

    let mails = smtp.mails();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail.login, Some(("alerts".to_string(), "smtp-pass-1".to_string())));
        assert_eq!(mail.from, "<alerts@example.com>");
        assert_eq!(mail.to, ["<ops@example.com>", "<oncall@example.com>"]);
        assert_eq!(mail.header("from"), "\"Sync alerts\" <alerts@example.com>");
        assert_eq!(mail.header("to"), "ops@example.com, oncall@example.com");
    }
    assert_eq!(mails[0].header("subject"), format!("Problem: {TITLE_401}"));
    assert_eq!(
        mails[0].text(),
        format!(
            "Problem: {TITLE_401}.\n{ADVICE_401} Console: {CONSOLE}\n\nIncident: credentials:north (credentials), since 12:14 UTC, location locNorth, count 3.\n"
        )
    );
    assert_eq!(mails[1].header("subject"), format!("Resolved: {TITLE_401}"));
    assert_eq!(
        mails[1].text(),
        format!(
            "Resolved: {TITLE_401}.\nOver at 12:21 UTC, after 7 min. Console: {CONSOLE}\n\nIncident: credentials:north (credentials), since 12:14 UTC, \
             location locNorth, count 3.\nWhat was advised: {ADVICE_401}\n"
        )
    );
}

/// A real `serve`: a delivery that fails becomes a dead letter, which is told; replayed, it is
/// told over; nothing is told twice while the checks go on.
#[test]
fn serve_tells_a_dead_letter_and_that_it_is_over_once_replayed() {
    let mock = mock();
    let catcher = Catcher::start().unwrap();
    let alerts = AlertSettings { check_every: Duration::from_millis(50), ..webhook_settings(&catcher) };
    let server = in_process(&mock, None, dialpad_ghl_host::serve::ServeOptions { max_attempts: 1, alerts, ..loopback_options() }, "alerts-serve");
    mock.set_faults(Some(Faults { rate: 1.0, seed: 1, kinds: vec![FaultKind::ServerError(500)] }));
    let body = json_fixture("call_inbound_hangup_completed.json").to_string();
    let (status, _) = loopback_request("POST", &format!("{}/webhooks/dialpad", server.webhook_url()), body.as_bytes()).unwrap();
    assert_eq!(status, 200);
    assert!(server.wait_idle(Duration::from_secs(20)));
    wait_for(|| alerts_told(&catcher).len() == 1);
    assert_eq!(alerts_told(&catcher), [pair("open", "dead-letters")]);
    let incidents = server.incidents().unwrap();
    assert_eq!(
        incidents.iter().map(|i| (i.key.as_str(), i.count, i.title.as_str())).collect::<Vec<_>>(),
        [("dead-letters", 1, "1 failed delivery waits for an operator")]
    );

    mock.set_faults(None);
    let letters = get_json(&format!("{}/api/events", server.admin_url()))["dead_letters"].clone();
    let (status, answer) = loopback_request("POST", &format!("{}/api/dead-letters/{}/replay", server.admin_url(), letters[0]["id"]), b"").unwrap();
    assert_eq!(status, 202, "{answer}");
    assert!(server.wait_idle(Duration::from_secs(20)));
    wait_for(|| alerts_told(&catcher).len() == 2);
    assert!(server.incidents().unwrap().is_empty());
    // Several more checks: nothing more to tell.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(alerts_told(&catcher), [pair("open", "dead-letters"), pair("resolved", "dead-letters")]);
    server.shutdown();
}

/// Waits up to 10 s for `done`.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One mail a [`SmtpReceiver`] took.
#[derive(Clone, Debug, Default)]
struct Mail {
    /// The AUTH PLAIN login, when one was given.
    login: Option<(String, String)>,
    /// `MAIL FROM` and `RCPT TO`, as sent (`<a@example.com>`).
    from: String,
    to: Vec<String>,
    /// The message as sent after DATA (dot-unstuffed, CRLF line ends).
    data: String,
}

impl Mail {
    /// A header, unfolded.
    fn header(&self, name: &str) -> String {
        let head = self.data.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ").replace("\r\n\t", " ");
        head.lines().find_map(|l| l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string())).unwrap_or_default()
    }

    /// The body as text, decoded from quoted-printable when it was sent so (lines over 76
    /// characters are), with LF line ends.
    fn text(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").unwrap().1;
        let body = if self.header("content-transfer-encoding").eq_ignore_ascii_case("quoted-printable") {
            let joined = body.replace("=\r\n", "");
            let mut out = Vec::new();
            let bytes = joined.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        } else {
            body.to_string()
        };
        body.replace("\r\n", "\n")
    }
}

/// A loopback SMTP server for the tests: offers AUTH PLAIN, takes every mail, or refuses every
/// connection (421) while told to. Serves from a thread of its own until dropped.
struct SmtpReceiver {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    refusing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl SmtpReceiver {
    fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mails, refusing, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (into, refuse, stopped) = (mails.clone(), refusing.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A client that breaks off is its own problem; the next one is served.
                    let _ = converse(stream, &into, refuse.load(Ordering::SeqCst));
                }
            }
        });
        SmtpReceiver { port, mails, refusing, stop }
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            server: "127.0.0.1".into(),
            port: self.port,
            tls: SmtpTls::None,
            username: Some("alerts".into()),
            password: Some(dialpad_ghl_host::capability::secret::Secret::new("smtp-pass-1")),
            from: "Sync alerts <alerts@example.com>".into(),
            to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        }
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP session (RFC 5321, the commands lettre sends).
fn converse(stream: TcpStream, mails: &Mutex<Vec<Mail>>, refuse: bool) -> std::io::Result<()> {
    use base64::Engine as _;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    if refuse {
        return out.write_all(b"421 4.3.2 Not now\r\n");
    }
    out.write_all(b"220 127.0.0.1 ESMTP test receiver\r\n")?;
    let (mut login, mut mail) = (None, Mail::default());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let upper = command.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-127.0.0.1\r\n250 AUTH PLAIN".to_string()
        } else if upper.starts_with("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(&command[11..]).unwrap_or_default();
            let parts: Vec<String> = decoded.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
            login = (parts.len() == 3).then(|| (parts[1].clone(), parts[2].clone()));
            "235 2.7.0 Authenticated".into()
        } else if upper.starts_with("MAIL FROM:") {
            let from = command[10..].trim();
            mail = Mail { login: login.clone(), from: from[..from.find('>').map_or(from.len(), |i| i + 1)].to_string(), ..Mail::default() };
            "250 2.1.0 OK".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(command[8..].trim().to_string());
            "250 2.1.5 OK".into()
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            // The CRLF before the dot belongs to the terminator (RFC 5321 §4.1.1.4).
            mail.data = data.strip_suffix("\r\n").unwrap_or(&data).to_string();
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            "250 2.0.0 Queued".into()
        } else if upper == "QUIT" {
            return out.write_all(b"221 2.0.0 Bye\r\n");
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK".into()
        } else {
            "502 5.5.2 Not here".into()
        };
        out.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}
