//! A corpus of hostile and odd inputs — broken JSON, forged and broken JWTs, huge and deeply
//! nested bodies, strange encodings, ids, numbers and phone numbers in every shape, unicode,
//! unknown states and shapes, bad platform events — each run through the real component in a
//! fresh host against a fresh mock.
//!
//! Every case must get a typed answer, never a trap. A refusal or a skip must write nothing at
//! all (no request reaches the mock, nothing is recorded in the key-value store): a hostile
//! body never gets halfway. What is synced must be synced right (the E.164 number, the name,
//! the transcript as sent).

use e2e_tests::*;
use host_test::ghl_mock::MockOptions;
use serde_json::{json, Value};
use std::time::Instant;

/// Cases whose right behaviour (as the table states it) the plugin does not have yet, skipped
/// until it is fixed, each with what goes wrong. The corpus's first run found five (a wrapped
/// talk time, the "(0)" trunk prefix, phone lists of numbers); all are fixed.
const KNOWN_BUGS: &[&str] = &[];

#[test]
fn every_hostile_input_gets_a_typed_answer_and_no_partial_write() {
    let started = Instant::now();
    let cases = corpus();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let duplicates: Vec<&&str> = names.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    assert!(duplicates.is_empty(), "case names must be unique: {duplicates:?}");
    for bug in KNOWN_BUGS {
        assert!(names.contains(bug), "KNOWN_BUGS names a case that is not in the corpus: {bug}");
    }

    let (mut refused, mut skipped, mut synced, mut traps) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| !KNOWN_BUGS.contains(&c.name.as_str())) {
        match run(case) {
            Verdict::Pass => match case.expect {
                Expect::Refused(_) => refused += 1,
                Expect::Skipped => skipped += 1,
                Expect::Synced(_) => synced += 1,
            },
            Verdict::Trap(trap) => {
                traps += 1;
                failures.push(format!("{}: TRAPPED: {trap}", case.name));
            }
            Verdict::Wrong(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }
    e2e_tests::figure!(
        "hostile input: {} cases: {refused} refused, {skipped} skipped, {synced} synced; {traps} traps; {} failed; {} known bugs skipped; {:.1?}",
        cases.len(),
        failures.len(),
        KNOWN_BUGS.len(),
        started.elapsed()
    );
    for bug in KNOWN_BUGS {
        eprintln!("  known bug, skipped: {bug}");
    }
    assert!(cases.len() >= 50, "the corpus holds {} cases", cases.len());
    assert!(failures.is_empty(), "{} case(s) failed:\n  {}", failures.len(), failures.join("\n  "));
}

/// The corpus signs its own JWTs with the small HS256 below; it must agree with the one that
/// signed the fixture.
#[test]
fn the_test_signer_reproduces_the_fixtures_signature() {
    let jwt = fixture_jwt();
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    assert_eq!(hs256::base64url(&hs256::hmac_sha256(FIXTURE_SECRET.as_bytes(), signed.as_bytes())), signature);
    let (header, claims) = signed.split_once('.').unwrap();
    assert_eq!(header, hs256::base64url(HS256_HEADER.as_bytes()));
    assert_eq!(jwt, hs256::sign(HS256_HEADER, &hs256::decode_base64url(claims), FIXTURE_SECRET));
}

// ------------------------------------------------------------------------------------------------
// The case table
// ------------------------------------------------------------------------------------------------

struct Case {
    name: String,
    entry: Entry,
    body: Vec<u8>,
    /// The host configures [`FIXTURE_SECRET`] as the webhook secret.
    secret: bool,
    /// A HighLevel contact that exists before the event; `{EXISTING}` in the body stands for
    /// its id.
    existing_contact: Option<Value>,
    expect: Expect,
}

/// Which export the body goes to.
enum Entry {
    /// `triggers.handle`: a raw Dialpad webhook body.
    Webhook,
    /// `triggers.handle-platform-event`: a task or note event from the automation platform.
    Platform,
}

enum Expect {
    /// A typed error of this `sync-error` kind, and nothing written.
    Refused(&'static str),
    /// `Ok` with outcome `skipped` and a reason, and nothing written.
    Skipped,
    /// `Ok` with outcome `synced`, every request answered with success, and these checks of
    /// the mock's resulting state passing.
    Synced(Vec<Check>),
}

/// A check of the mock's state after a synced case.
type Check = Box<dyn Fn(&Harness) -> Result<(), String>>;

fn webhook(name: impl Into<String>, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case { name: name.into(), entry: Entry::Webhook, body: body.into(), secret: false, existing_contact: None, expect }
}

/// A webhook body delivered to a host that holds the webhook secret.
fn signed(name: impl Into<String>, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case { secret: true, ..webhook(name, body, expect) }
}

fn platform(name: impl Into<String>, event: impl Into<String>, expect: Expect) -> Case {
    Case { entry: Entry::Platform, ..webhook(name, event.into(), expect) }
}

impl Case {
    fn with_existing_contact(self, contact: Value) -> Case {
        Case { existing_contact: Some(contact), ..self }
    }
}

fn refused(kind: &'static str) -> Expect {
    Expect::Refused(kind)
}

const MALFORMED: Expect = Expect::Refused("malformed-event");
const BAD_SIGNATURE: Expect = Expect::Refused("invalid-signature");
const INVALID_INPUT: Expect = Expect::Refused("invalid-input");

fn synced(checks: impl IntoIterator<Item = Check>) -> Expect {
    Expect::Synced(checks.into_iter().collect())
}

fn corpus() -> Vec<Case> {
    [
        malformed_json(),
        not_an_object_or_not_json(),
        sizes_and_nesting(),
        signatures(),
        ids(),
        empty_strings(),
        unicode(),
        numbers(),
        call_states(),
        unknown_shapes(),
        phone_numbers(),
        messages(),
        contact_events(),
        platform_events(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

// ------------------------------------------------------------------------------------------------
// The cases, by theme
// ------------------------------------------------------------------------------------------------

/// The inbound hangup of an unknown caller, +1 312 555 0187: the corpus's base call.
const HANGUP: &str = "call_inbound_hangup_completed.json";
const CALLER: &str = "+13125550187";
const HANGUP_MARKER: &str = "Dialpad call ID: 6011482093420544";
/// An outbound call to Kenji Watanabe, whom Dialpad knows by name and e-mail.
const OUTBOUND: &str = "call_outbound_hangup_recorded.json";
const TRANSCRIPTION: &str = "call_voicemail_transcription.json";
const SMS: &str = "sms_inbound.json";
const CONTACT_CREATED: &str = "contact_created_shared.json";

fn hangup_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    fixture_with(HANGUP, edit)
}

fn malformed_json() -> Vec<Case> {
    let hangup = fixture(HANGUP);
    vec![
        webhook("JSON cut after a comma", r#"{"call_id": 1, "state": "hangup", "#, MALFORMED),
        webhook("JSON cut in half", hangup[..hangup.len() / 2].to_vec(), MALFORMED),
        webhook("JSON missing its last brace", hangup.trim_ascii_end()[..hangup.trim_ascii_end().len() - 1].to_vec(), MALFORMED),
        webhook("a lone opening brace", "{", MALFORMED),
        webhook("a trailing comma", r#"{"call_id": 1, "state": "hangup",}"#, MALFORMED),
        webhook("single-quoted strings", "{'call_id': 1, 'state': 'hangup'}", MALFORMED),
        webhook("unquoted keys and values", "{call_id: 1, state: hangup}", MALFORMED),
        webhook("two events glued together", [hangup.clone(), hangup.clone()].concat(), MALFORMED),
        webhook("a NaN literal", r#"{"call_id": 1, "state": "hangup", "duration": NaN}"#, MALFORMED),
        webhook("a comment before the event", [b"// Dialpad event\n".to_vec(), hangup.clone()].concat(), MALFORMED),
        webhook("a raw newline inside a string", "{\"call_id\": 1, \"state\": \"hang\nup\"}", MALFORMED),
        webhook("a lone UTF-16 surrogate escape", r#"{"call_id": 1, "state": "hangup", "contact": {"name": "\ud800"}}"#, MALFORMED),
        webhook("an empty body", "", MALFORMED),
        webhook("a body of whitespace", " \r\n\t ", MALFORMED),
    ]
}

fn not_an_object_or_not_json() -> Vec<Case> {
    let hangup = String::from_utf8(fixture(HANGUP)).unwrap();
    // A fixed pseudo-random run of bytes, so a failure reproduces.
    let mut seed = 0x2545_f491_u32;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect();
    let utf16: Vec<u8> = hangup.encode_utf16().flat_map(u16::to_le_bytes).collect();
    vec![
        webhook("an empty JSON array", "[]", MALFORMED),
        webhook("a JSON array of numbers", "[1, 2, 3]", MALFORMED),
        webhook("a valid event wrapped in an array", format!("[{hangup}]"), MALFORMED),
        webhook("a JSON string", r#""hangup""#, MALFORMED),
        webhook("a JSON number", "42", MALFORMED),
        webhook("a JSON number in exponent notation", "-1.5e3", MALFORMED),
        webhook("JSON null", "null", MALFORMED),
        webhook("JSON true", "true", MALFORMED),
        // RFC 8259 forbids senders a BOM; Dialpad sends none, so one is refused, typed.
        webhook("a UTF-8 byte order mark before the event", [b"\xEF\xBB\xBF".to_vec(), hangup.clone().into_bytes()].concat(), MALFORMED),
        webhook("the event in UTF-16LE (NUL bytes between the characters)", utf16.clone(), MALFORMED),
        webhook("the event in UTF-16LE with its BOM (not UTF-8 at all)", [b"\xFF\xFE".to_vec(), utf16].concat(), MALFORMED),
        // "Zoë" in Latin-1: the 0xEB byte is not UTF-8.
        webhook("a Latin-1 byte inside a name", [&br#"{"call_id": 1, "state": "hangup", "contact": {"name": "Zo"#[..], b"\xEB", br#""}}"#].concat(), MALFORMED),
        webhook("binary garbage", garbage, MALFORMED),
        webhook("NUL bytes", vec![0u8; 64], MALFORMED),
        webhook("a gzip-compressed body", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56\x4a\x4e\xcc\xc9".to_vec(), MALFORMED),
        webhook("a form-encoded body", format!("payload={}", hangup.replace('{', "%7B").replace('"', "%22")), MALFORMED),
    ]
}

const MIB: usize = 1024 * 1024;

fn sizes_and_nesting() -> Vec<Case> {
    let hangup = fixture(HANGUP);
    let padded_to = |len: usize| -> Vec<u8> { [hangup.clone(), vec![b' '; len - hangup.len()]].concat() };
    vec![
        webhook("a 1.1 MiB transcript (over the body limit)", hangup_with(|v| v["transcription_text"] = "x".repeat(MIB + MIB / 10).into()), MALFORMED),
        // The limit is 1 MiB: a body of exactly that is accepted, one byte more is not.
        webhook("a body of exactly 1 MiB (whitespace padded)", padded_to(MIB), synced([contact_phone(CALLER), note_ends_with(HANGUP_MARKER)])),
        webhook("a body of 1 MiB + 1 byte (whitespace padded)", padded_to(MIB + 1), MALFORMED),
        webhook("10,000 nested arrays, never closed", "[".repeat(10_000), MALFORMED),
        webhook("10,000 nested arrays, closed", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)), MALFORMED),
        webhook("10,000 nested objects, never closed", r#"{"a":"#.repeat(10_000), MALFORMED),
        // serde_json's recursion limit refuses the whole body, even though the deep part is in
        // a field the sync never reads: better than a stack overflow.
        webhook(
            "a valid call carrying 10,000 nested arrays in an unknown field",
            with_raw(hangup_with(|v| v["routing_breadcrumbs"] = RAW.into()), &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
            MALFORMED,
        ),
    ]
}

/// `{"alg":"HS256","typ":"JWT"}`, as the fixture's header has it.
const HS256_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn fixture_jwt() -> String {
    String::from_utf8(fixture("call_inbound_hangup_completed.jwt")).unwrap().trim().to_string()
}

fn signatures() -> Vec<Case> {
    let jwt = fixture_jwt();
    let parts: Vec<&str> = jwt.split('.').collect();
    let (header, claims, signature) = (parts[0], parts[1], parts[2]);
    let b64 = |text: &str| hs256::base64url(text.as_bytes());
    let forged_claims = hs256::base64url(&hangup_with(|v| v["external_number"] = "+19005550100".into()));
    let sign = |claims: &[u8]| hs256::sign(HS256_HEADER, claims, FIXTURE_SECRET);
    let unicode_call = fixture_with(OUTBOUND, |v| v["contact"]["name"] = "Zoë 🚀 Ñúñez".into());
    vec![
        signed("the signed fixture", jwt.clone(), synced([contact_phone(CALLER), note_ends_with(HANGUP_MARKER)])),
        signed("the signed fixture between CRLFs and spaces", format!("\r\n  {jwt}  \r\n"), synced([contact_phone(CALLER)])),
        signed("a signed call with a unicode name", sign(&unicode_call), synced([contact_name("Zoë 🚀 Ñúñez")])),
        signed("alg none, no signature", format!("{}.{claims}.", b64(r#"{"alg":"none","typ":"JWT"}"#)), BAD_SIGNATURE),
        signed("alg none, the HS256 signature kept", format!("{}.{claims}.{signature}", b64(r#"{"alg":"none","typ":"JWT"}"#)), BAD_SIGNATURE),
        signed("alg None (capitalised)", hs256::sign(r#"{"alg":"None"}"#, &fixture(HANGUP), FIXTURE_SECRET), BAD_SIGNATURE),
        signed("alg hs256 (lower case), otherwise valid", hs256::sign(r#"{"alg":"hs256","typ":"JWT"}"#, &fixture(HANGUP), FIXTURE_SECRET), BAD_SIGNATURE),
        signed("alg HS512", hs256::sign(r#"{"alg":"HS512","typ":"JWT"}"#, &fixture(HANGUP), FIXTURE_SECRET), BAD_SIGNATURE),
        signed("a header without alg", hs256::sign(r#"{"typ":"JWT"}"#, &fixture(HANGUP), FIXTURE_SECRET), BAD_SIGNATURE),
        signed("signed with another secret", hs256::sign(HS256_HEADER, &fixture(HANGUP), "not-the-configured-secret"), BAD_SIGNATURE),
        signed("signed with an empty secret", hs256::sign(HS256_HEADER, &fixture(HANGUP), ""), BAD_SIGNATURE),
        signed("claims changed, signature kept", format!("{header}.{forged_claims}.{signature}"), BAD_SIGNATURE),
        signed("header changed, signature kept", format!("{}.{claims}.{signature}", b64(r#"{"alg":"HS256","typ":"JWS"}"#)), BAD_SIGNATURE),
        signed(
            "another token's signature",
            format!("{header}.{claims}.{}", sign(br#"{"call_id":1,"state":"hangup"}"#).rsplit('.').next().unwrap()),
            BAD_SIGNATURE,
        ),
        signed("truncated inside the signature", jwt[..jwt.len() - 10].to_string(), BAD_SIGNATURE),
        signed("truncated after the claims' dot", format!("{header}.{claims}."), BAD_SIGNATURE),
        // WIT: a truncated JWT is a malformed event.
        signed("truncated inside the claims", jwt[..header.len() + 1 + claims.len() / 2].to_string(), MALFORMED),
        signed("only the header", header.to_string(), MALFORMED),
        signed("three empty segments", "..", MALFORMED),
        signed("a fourth segment", format!("{jwt}.{signature}"), MALFORMED),
        signed("a trailing dot (an empty fourth segment)", format!("{jwt}."), MALFORMED),
        signed("five segments, as a JWE", format!("{header}..{claims}.{signature}.tag"), MALFORMED),
        signed("standard base64 padding on the signature", format!("{jwt}="), MALFORMED),
        signed("a newline inside the token", format!("{header}.\n{claims}.{signature}"), MALFORMED),
        signed("validly signed claims that are not JSON", sign(b"hello"), MALFORMED),
        signed("validly signed claims that are an array", sign(b"[1,2,3]"), MALFORMED),
        signed("plain JSON while a secret is set", fixture(HANGUP), BAD_SIGNATURE),
        signed("a plain JSON array while a secret is set", "[]", BAD_SIGNATURE),
        webhook("a signed JWT while no secret is set", jwt, BAD_SIGNATURE),
    ]
}

fn ids() -> Vec<Case> {
    vec![
        webhook("call_id as a number", fixture(HANGUP), synced([contact_phone(CALLER), note_ends_with(HANGUP_MARKER)])),
        webhook("call_id as a string", hangup_with(|v| v["call_id"] = "6011482093420544".into()), synced([note_ends_with(HANGUP_MARKER)])),
        webhook("call_id as a padded string", hangup_with(|v| v["call_id"] = "  6011482093420544 ".into()), synced([note_ends_with(HANGUP_MARKER)])),
        // Above 2^53 a double would round it; the id must stay exact.
        webhook(
            "call_id above 2^53",
            hangup_with(|v| v["call_id"] = 9_007_199_254_740_993u64.into()),
            synced([note_ends_with("Dialpad call ID: 9007199254740993")]),
        ),
        webhook("call_id of u64::MAX", hangup_with(|v| v["call_id"] = u64::MAX.into()), synced([note_ends_with("Dialpad call ID: 18446744073709551615")])),
        webhook("call_id as a boolean", hangup_with(|v| v["call_id"] = true.into()), MALFORMED),
        webhook("call_id as an array", hangup_with(|v| v["call_id"] = json!([6011482093420544u64])), MALFORMED),
        webhook("call_id null", hangup_with(|v| v["call_id"] = Value::Null), MALFORMED),
        webhook("SMS id as a string", fixture_with(SMS, |v| v["id"] = "5287316104912896".into()), synced([note_ends_with("Dialpad SMS ID: 5287316104912896")])),
        webhook(
            "contact id as a number",
            fixture_with(CONTACT_CREATED, |v| v["contact"]["id"] = 5908860431927296u64.into()),
            synced([contact_field("phone", "+12065550174"), contact_field("firstName", "Dana")]),
        ),
    ]
}

fn empty_strings() -> Vec<Case> {
    let every_optional_text_empty = hangup_with(|v| {
        for key in ["direction", "internal_number", "voicemail_link", "transcription_text", "company_call_review_share_link"] {
            v[key] = "".into();
        }
        for key in ["name", "email", "type"] {
            v["contact"][key] = "".into();
            v["target"][key] = "".into();
        }
    });
    vec![
        webhook(
            "external_number empty, contact.phone set",
            hangup_with(|v| v["external_number"] = "".into()),
            synced([contact_phone(CALLER), note_ends_with(HANGUP_MARKER)]),
        ),
        webhook("external_number null, contact.phone set", hangup_with(|v| v["external_number"] = Value::Null), synced([contact_phone(CALLER)])),
        // No number at all is an anonymous caller: skipped, not refused.
        webhook(
            "external_number and contact.phone empty",
            hangup_with(|v| (v["external_number"], v["contact"]["phone"]) = ("".into(), "".into())),
            Expect::Skipped,
        ),
        webhook(
            "external_number and contact.phone blank",
            hangup_with(|v| (v["external_number"], v["contact"]["phone"]) = ("   ".into(), "\t".into())),
            Expect::Skipped,
        ),
        webhook("call_id empty", hangup_with(|v| v["call_id"] = "".into()), MALFORMED),
        webhook("state empty", hangup_with(|v| v["state"] = "".into()), MALFORMED),
        webhook("direction empty", hangup_with(|v| v["direction"] = "".into()), synced([note_contains("Dialpad call: unknown-direction, completed")])),
        webhook(
            "a known caller's name and e-mail empty",
            fixture_with(OUTBOUND, |v| (v["contact"]["name"], v["contact"]["email"]) = ("".into(), "".into())),
            synced([contact_phone("+15035550139"), contact_lacks("firstName"), contact_lacks("email")]),
        ),
        webhook(
            "agent name and e-mail empty",
            hangup_with(|v| (v["target"]["name"], v["target"]["email"]) = ("".into(), "".into())),
            synced([note_lacks("Agent:")]),
        ),
        webhook(
            "every timestamp empty",
            hangup_with(|v| {
                for key in ["date_started", "date_connected", "date_ended", "event_timestamp"] {
                    v[key] = "".into();
                }
            }),
            synced([note_lacks("When:")]),
        ),
        webhook("talk_time and duration empty", hangup_with(|v| (v["talk_time"], v["duration"]) = ("".into(), "".into())), synced([note_lacks("Duration:")])),
        webhook(
            "every optional text field empty at once",
            every_optional_text_empty,
            synced([contact_phone(CALLER), contact_lacks("firstName"), note_contains("unknown-direction"), note_lacks("Agent:"), note_lacks("Call review:")]),
        ),
    ]
}

fn unicode() -> Vec<Case> {
    let caller_named = |name: &str| fixture_with(OUTBOUND, |v| v["contact"]["name"] = name.into());
    let message = |text: &str| fixture_with(SMS, |v| (v["text"], v["text_content"]) = (text.into(), text.into()));
    let long_transcript: String = "Hola, soy Zoë — llámame mañana al 737 555 0166. 🚀 ".chars().cycle().take(24 * 1024).collect();
    let forged_lines = "Call me back.\n\nDialpad call ID: 1\nTranscript:\nDialpad Ai recap:\n- wire $10,000";
    vec![
        webhook(
            "a caller named with accents and an emoji",
            caller_named("Zoë 🚀 Ñúñez"),
            synced([contact_phone("+15035550139"), contact_name("Zoë 🚀 Ñúñez")]),
        ),
        webhook(
            "the same name as JSON \\u escapes (a surrogate pair)",
            with_raw(caller_named(RAW), r#""Zo\u00eb \ud83d\ude80 \u00d1\u00fa\u00f1ez""#),
            synced([contact_name("Zoë 🚀 Ñúñez")]),
        ),
        // Decomposed "ë" (e + combining diaeresis) is kept as sent, not normalized.
        webhook("a name with a combining diaeresis", caller_named("Zoe\u{308} Ñúñez"), synced([contact_name("Zoe\u{308} Ñúñez")])),
        webhook("a right-to-left name", caller_named("مريم العلي"), synced([contact_name("مريم العلي")])),
        webhook("a one-word CJK name", caller_named("王小明"), synced([contact_field("firstName", "王小明"), contact_lacks("lastName")])),
        webhook("a name with a ZWJ emoji sequence", caller_named("👩‍👩‍👧 Okafor"), synced([contact_name("👩‍👩‍👧 Okafor")])),
        webhook("a name that looks like SQL", caller_named("Robert'); DROP TABLE contacts;--"), synced([contact_name("Robert'); DROP TABLE contacts;--")])),
        webhook(
            "an agent named with accents and an emoji",
            hangup_with(|v| v["target"]["name"] = "Łukasz Żółć 🎧".into()),
            synced([note_contains("Agent: Łukasz Żółć 🎧 <maya.patel@example.com>")]),
        ),
        webhook("a message in four scripts and emoji", message("¿Mañana? 你好 привет 👋🏽 — ok"), synced([note_contains("\n¿Mañana? 你好 привет 👋🏽 — ok\n")])),
        webhook(
            "a message of HTML and script",
            message("<script>alert('x')</script><b>hi</b>"),
            synced([note_contains("\n<script>alert('x')</script><b>hi</b>\n")]),
        ),
        webhook(
            "a 24 KB transcript",
            fixture_with(TRANSCRIPTION, |v| v["transcription_text"] = long_transcript.clone().into()),
            synced([contact_phone("+17375550166"), note_contains(format!("Transcript:\n{long_transcript}"))]),
        ),
        // The note's own lines inside a transcript must not become the note's marker.
        webhook(
            "a transcript imitating the note's own lines",
            fixture_with(TRANSCRIPTION, |v| v["transcription_text"] = forged_lines.into()),
            synced([note_contains(forged_lines), note_ends_with("\n\nDialpad call ID: 6307351874682880")]),
        ),
    ]
}

/// A placeholder string value that [`with_raw`] replaces.
const RAW: &str = "@@RAW@@";

/// `body` with its [`RAW`] value replaced by `raw`, JSON text written as is: `2.47318e5`, a
/// `\u` escape or 10,000 nested arrays do not survive a round trip through `serde_json::Value`.
fn with_raw(body: Vec<u8>, raw: &str) -> Vec<u8> {
    String::from_utf8(body).unwrap().replace(&format!("\"{RAW}\""), raw).into_bytes()
}

/// The hangup fixture with `key` set to `raw`, as JSON text.
fn hangup_with_raw(key: &str, raw: &str) -> Vec<u8> {
    with_raw(hangup_with(|v| v[key] = RAW.into()), raw)
}

fn numbers() -> Vec<Case> {
    // The fixture's talk time is 247318 ms: "4m 07s". Its duration key says the same.
    let talk = |raw: &str| hangup_with_raw("talk_time", raw);
    let started = |raw: &str| hangup_with_raw("date_started", raw);
    let talk_and_duration = |raw: &str| hangup_with(|v| (v["talk_time"], v["duration"]) = (raw.into(), raw.into()));
    let four_minutes = || synced([note_contains("Duration: 4m 07s")]);
    let when = || synced([note_contains("When: 2026-03-10 15:04 UTC")]);
    vec![
        webhook("talk_time as a string", talk(r#""247318""#), four_minutes()),
        webhook("talk_time as a float", talk("247318.999"), four_minutes()),
        webhook("talk_time in exponent notation", talk("2.47318e5"), four_minutes()),
        webhook("talk_time as a string in exponent notation", talk(r#""2.47318E5""#), four_minutes()),
        webhook("date_started as a string", started(r#""1773155045211""#), when()),
        webhook("date_started as a padded string", started(r#"" 1773155045211 ""#), when()),
        webhook("date_started in exponent notation", started("1.773155045211e12"), when()),
        webhook("date_started as a float", started("1773155045211.75"), when()),
        webhook("a negative talk time", hangup_with(|v| (v["talk_time"], v["duration"]) = (json!(-5000), json!(-5000))), synced([note_lacks("Duration: -")])),
        // Absurd but finite: whatever is written, it must not be a negative duration.
        webhook("a talk time of 1e300 ms", hangup_with_raw("talk_time", "1e300"), synced([note_lacks("Duration: -")])),
        webhook("a talk time of i64::MAX ms", hangup_with(|v| v["talk_time"] = i64::MAX.into()), synced([note_lacks("Duration: -")])),
        webhook("a talk time beyond f64 (1e400)", talk("1e400"), MALFORMED),
        webhook("talk_time in words", talk_and_duration("four minutes"), MALFORMED),
        webhook("talk_time as a NaN string", talk_and_duration("NaN"), MALFORMED),
        webhook("talk_time as an infinity string", talk_and_duration("-inf"), MALFORMED),
        webhook("talk_time as a boolean", talk("true"), MALFORMED),
        webhook("date_started as an ISO 8601 string", started(r#""2026-03-10T15:04:05Z""#), MALFORMED),
        webhook("date_started as an object", started(r#"{"ms": 1773155045211}"#), MALFORMED),
    ]
}

fn call_states() -> Vec<Case> {
    let state = |s: Value| hangup_with(|v| v["state"] = s);
    vec![
        webhook("an unknown call state", state("warp_drive".into()), Expect::Skipped),
        webhook("a Dialpad state the sync does not act on (csat)", state("csat".into()), Expect::Skipped),
        webhook("a call state in Japanese", state("ハングアップ".into()), Expect::Skipped),
        webhook("a 10 KB call state", state("x".repeat(10 * 1024).into()), Expect::Skipped),
        webhook("a call state given as a number", state(42.into()), Expect::Skipped),
        webhook("state in upper case", state("HANGUP".into()), synced([contact_phone(CALLER), note_ends_with(HANGUP_MARKER)])),
        webhook("state padded with spaces", state("  Hangup ".into()), synced([note_ends_with(HANGUP_MARKER)])),
        webhook("state as an array", state(json!(["hangup"])), MALFORMED),
        webhook("state null", state(Value::Null), MALFORMED),
        // A call in progress writes nothing, so its number need not be usable yet.
        webhook(
            "ringing with an unusable number",
            hangup_with(|v| (v["state"], v["external_number"], v["contact"]["phone"]) = ("ringing".into(), "anonymous".into(), "".into())),
            Expect::Skipped,
        ),
        webhook("an internal call", hangup_with(|v| v["is_internal"] = true.into()), Expect::Skipped),
        webhook("an internal call flagged \"TRUE\"", hangup_with(|v| v["is_internal"] = "TRUE".into()), Expect::Skipped),
        webhook("is_internal \"yes\"", hangup_with(|v| v["is_internal"] = "yes".into()), MALFORMED),
        webhook("the agent as a string", hangup_with(|v| v["target"] = "Maya Patel".into()), MALFORMED),
        webhook("recording_details not a list", hangup_with(|v| v["recording_details"] = "https://dialpad.com/rec".into()), MALFORMED),
        webhook("labels as one string", hangup_with(|v| v["labels"] = "vip".into()), synced([note_contains("Labels: vip")])),
    ]
}

fn unknown_shapes() -> Vec<Case> {
    let hangup: Value = serde_json::from_slice(&fixture(HANGUP)).unwrap();
    vec![
        webhook("an empty object", "{}", MALFORMED),
        webhook("an object of unknown keys", r#"{"hello": "world"}"#, MALFORMED),
        webhook("a call_id without a state", r#"{"call_id": 6011482093420544}"#, MALFORMED),
        webhook("a state without a call_id", r#"{"state": "hangup"}"#, MALFORMED),
        webhook("a contact event without its contact", r#"{"event": "Created"}"#, MALFORMED),
        webhook("the call inside another vendor's envelope", json!({"type": "call.hangup", "data": hangup}).to_string(), MALFORMED),
        webhook("an agent status of the wrong type", r#"{"on_duty_status": 42}"#, Expect::Skipped),
    ]
}

/// The hangup of an unknown caller whose number Dialpad sends as `raw`, in both places a call
/// carries it.
fn caller_number(raw: Value) -> Vec<u8> {
    hangup_with(|v| (v["external_number"], v["contact"]["phone"]) = (raw.clone(), raw))
}

fn phone_numbers() -> Vec<Case> {
    let valid: &[(&str, &str)] = &[
        ("(312) 555-0187", CALLER),
        ("312.555.0187", CALLER),
        ("312 555 0187", CALLER),
        ("3125550187", CALLER),
        ("1-312-555-0187", CALLER),
        ("+1 (312) 555-0187", CALLER),
        ("001 312 555 0187", CALLER),
        ("011 1 312 555 0187", CALLER),
        ("  +13125550187  ", CALLER),
        ("+1\u{a0}312\u{a0}555\u{a0}0187", CALLER),
        ("+1 312 555 0187 ext. 42", CALLER),
        ("+1 312 555 0187;ext=42", CALLER),
        ("(312) 555-0187 x42", CALLER),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),
        // "(0)" marks the trunk prefix, dialled only from inside the country.
        ("+44 (0)20 7946 0958", "+442079460958"),
    ];
    let invalid: &[&str] = &[
        "555-0187",
        "+",
        "+0 312 555 0187",
        "++13125550187",
        "12345678901234567890",
        "+1-3I2-555-0187",
        "1-800-FLOWERS",
        "sip:+13125550187@dialpad.com",
        "(312) 555-0187 / (312) 555-0188",
        "٣١٢٥٥٥٠١٨٧",
        "３１２５５５０１８７",
        "☎ 312 555 0187",
    ];
    let mut cases: Vec<Case> = valid
        .iter()
        .map(|(raw, e164)| {
            webhook(format!("phone {raw:?} → {e164}"), caller_number((*raw).into()), synced([contact_phone(e164), note_contains(format!("From: {e164}"))]))
        })
        .collect();
    cases.extend(invalid.iter().map(|raw| webhook(format!("phone {raw:?} refused"), caller_number((*raw).into()), MALFORMED)));
    cases.extend([
        // A withheld caller ID has no number: the call is anonymous, skipped, not refused.
        webhook("a withheld caller id (\"anonymous\")", caller_number("anonymous".into()), Expect::Skipped),
        webhook("a withheld caller id (\"BLOCKED\")", caller_number("BLOCKED".into()), Expect::Skipped),
        webhook("an empty caller number", caller_number("".into()), Expect::Skipped),
        webhook("phone as a JSON number", caller_number(13125550187u64.into()), synced([contact_phone(CALLER)])),
        webhook("phone of 10,000 digits", caller_number("1".repeat(10_000).into()), MALFORMED),
        webhook("phone as a boolean", caller_number(true.into()), MALFORMED),
        webhook("phone as an object", caller_number(json!({"e164": CALLER})), MALFORMED),
    ]);
    cases
}

fn messages() -> Vec<Case> {
    let sms = |edit: fn(&mut Value)| fixture_with(SMS, edit);
    let outbound_to = |to: Value| {
        fixture_with(SMS, |v| {
            v["direction"] = "outbound".into();
            v["to_number"] = to;
            v["contact"]["phone_number"] = "".into();
        })
    };
    vec![
        webhook(
            "an SMS with no text at all",
            sms(|v| {
                let m = v.as_object_mut().unwrap();
                m.remove("text");
                m.remove("text_content");
            }),
            synced([contact_phone(CALLER), note_contains("\n(no text)\n")]),
        ),
        webhook("an SMS with empty text", sms(|v| (v["text"], v["text_content"]) = ("".into(), "".into())), synced([note_contains("\n(no text)\n")])),
        webhook(
            "an MMS with only its media",
            sms(|v| (v["mms"], v["mms_url"], v["text"], v["text_content"]) = (true.into(), "https://dialpad.com/mms/1.jpg".into(), Value::Null, Value::Null)),
            synced([note_contains("Dialpad MMS: inbound"), note_contains("Media: https://dialpad.com/mms/1.jpg"), note_contains("\n(no text)\n")]),
        ),
        webhook("an SMS whose text is a number", sms(|v| (v["text"], v["text_content"]) = (42.into(), Value::Null)), synced([note_contains("\n42\n")])),
        webhook("an SMS whose text is an object", sms(|v| v["text"] = json!({"body": "hi"})), MALFORMED),
        webhook("an SMS id empty", sms(|v| v["id"] = "".into()), MALFORMED),
        webhook(
            "an SMS with no number (an anonymous sender)",
            sms(|v| (v["from_number"], v["contact"]["phone_number"]) = ("".into(), "".into())),
            Expect::Skipped,
        ),
        webhook("an SMS with an unusable number", sms(|v| (v["from_number"], v["contact"]["phone_number"]) = ("text me".into(), "".into())), MALFORMED),
        webhook("a bare text with nothing else", r#"{"text": "hi"}"#, MALFORMED),
        webhook("an internal SMS", sms(|v| v["is_internal"] = true.into()), Expect::Skipped),
        webhook(
            "an outbound SMS with to_number as a string",
            outbound_to("(503) 555-0139".into()),
            synced([contact_phone("+15035550139"), note_contains("To: +15035550139")]),
        ),
        // Numbers are accepted as text everywhere else (`external_number: 13125550187`).
        webhook("an outbound SMS with to_number as a list of JSON numbers", outbound_to(json!([15035550139u64])), synced([contact_phone("+15035550139")])),
        webhook("an inbound SMS with to_number as a list of JSON numbers", sms(|v| v["to_number"] = json!([14155550142u64])), synced([contact_phone(CALLER)])),
    ]
}

fn contact_events() -> Vec<Case> {
    let contact = |edit: fn(&mut Value)| fixture_with(CONTACT_CREATED, edit);
    vec![
        webhook("a contact event without contact.id", contact(|v| _ = v["contact"].as_object_mut().unwrap().remove("id")), MALFORMED),
        webhook("a contact event with contact.id null", contact(|v| v["contact"]["id"] = Value::Null), MALFORMED),
        webhook("a contact event with contact.id empty", contact(|v| v["contact"]["id"] = "".into()), MALFORMED),
        webhook("a contact event with contact.id an object", contact(|v| v["contact"]["id"] = json!({})), MALFORMED),
        webhook("a contact event whose contact is a string", contact(|v| v["contact"] = "Dana Whitfield".into()), MALFORMED),
        webhook("a contact event whose contact is empty", contact(|v| v["contact"] = json!({})), MALFORMED),
        webhook("a contact event of an unknown action", contact(|v| v["event"] = "Merged".into()), MALFORMED),
        webhook("a contact event with an empty action", contact(|v| v["event"] = "".into()), MALFORMED),
        webhook("a contact event in upper case", contact(|v| v["event"] = "CREATED".into()), synced([contact_field("phone", "+12065550174")])),
        webhook(
            "a contact's phones as one string",
            contact(|v| (v["contact"]["phones"], v["contact"]["primary_phone"]) = ("(206) 555-0174".into(), Value::Null)),
            synced([contact_field("phone", "+12065550174")]),
        ),
        webhook(
            "a contact named in unicode",
            contact(|v| {
                let c = &mut v["contact"];
                (c["first_name"], c["last_name"], c["display_name"]) = ("Zoë".into(), "Ñúñez 🚀".into(), "Zoë Ñúñez 🚀".into());
            }),
            synced([contact_field("firstName", "Zoë"), contact_field("lastName", "Ñúñez 🚀")]),
        ),
        webhook(
            "a contact with every name empty",
            contact(|v| {
                for key in ["first_name", "last_name", "display_name", "company_name", "job_title"] {
                    v["contact"][key] = "".into();
                }
            }),
            synced([contact_field("phone", "+12065550174"), contact_lacks("firstName"), contact_lacks("lastName")]),
        ),
        webhook("a deleted contact (kept in HighLevel by default)", fixture("contact_deleted.json"), Expect::Skipped),
    ]
}

fn platform_events() -> Vec<Case> {
    let dana = json!({"locationId": LOCATION, "firstName": "Dana", "phone": "+12065550174", "email": "dana@example.org"});
    // A task.created event, valid but for the part each case breaks.
    let task = |task: Value| json!({"id": "evt-1", "type": "task.created", "contact": {"id": "c-1"}, "task": task}).to_string();
    let task_for = |contact: Value| {
        json!({"id": "evt-1", "type": "task.created", "contact": contact, "task": {"ref": "t-1", "title": "x", "due": "2026-03-12T09:00:00Z"}}).to_string()
    };
    vec![
        platform("a platform event that is not JSON", "task.created", MALFORMED),
        platform("an empty platform event", "", MALFORMED),
        platform("a platform event cut short", r#"{"id": "evt-1", "type": "task.cr"#, MALFORMED),
        platform("a platform event of 10,000 nested arrays", "[".repeat(10_000), MALFORMED),
        platform("a platform event that is an array", "[]", INVALID_INPUT),
        platform("a platform event that is null", "null", INVALID_INPUT),
        platform("a platform event that is a string", r#""task.created""#, INVALID_INPUT),
        platform("a platform event that is a number", "42", INVALID_INPUT),
        platform("a platform event id as a number", r#"{"id": 1001, "type": "note.updated", "note": {"ref": "n-1", "body": "x"}}"#, INVALID_INPUT),
        platform("a platform event of an unknown type", r#"{"id": "evt-1", "type": "task.deleted", "task": {"ref": "t-1"}}"#, INVALID_INPUT),
        platform("a platform event without a type", r#"{"id": "evt-1", "task": {"ref": "t-1", "title": "x"}}"#, INVALID_INPUT),
        platform("a platform event type as a number", r#"{"id": "evt-1", "type": 7, "task": {"ref": "t-1", "title": "x"}}"#, INVALID_INPUT),
        platform("a platform event with an unknown key", r#"{"id": "evt-1", "type": "note.updated", "priority": "high", "note": {"ref": "n-1", "body": "x"}}"#, INVALID_INPUT),
        platform("a task with an unknown key", task(json!({"ref": "t-1", "title": "Call back", "due": "2026-03-12T09:00:00-05:00", "colour": "red"})), INVALID_INPUT),
        platform("a task with a numeric title", task(json!({"ref": "t-1", "title": 42, "due": "2026-03-12T09:00:00-05:00"})), INVALID_INPUT),
        platform("a task.created without a due date", task(json!({"ref": "t-1", "title": "Call back"})), INVALID_INPUT),
        platform("a task due \"tomorrow\"", task(json!({"ref": "t-1", "title": "Call back", "due": "tomorrow"})), INVALID_INPUT),
        platform("a task due without an offset", task(json!({"ref": "t-1", "title": "Call back", "due": "2026-03-12T09:00:00"})), INVALID_INPUT),
        platform("a task due with a unicode dash for its offset", task(json!({"ref": "t-1", "title": "Call back", "due": "2026-03-12T09:00:00—05:00"})), INVALID_INPUT),
        platform("a task.created whose contact is a string", task_for("Dana".into()), INVALID_INPUT),
        platform("a task.created whose contact is empty", task_for(json!({})), INVALID_INPUT),
        platform("a task.created for an invalid phone", task_for(json!({"phone": "not a phone"})), INVALID_INPUT),
        platform("a task.created for a contact id of the wrong type", task_for(json!({"id": 42})), INVALID_INPUT),
        platform("a note.created without a body", r#"{"id": "evt-1", "type": "note.created", "contact": {"id": "c-1"}, "note": {"ref": "n-1"}}"#, INVALID_INPUT),
        platform("a note.created with a blank body", r#"{"id": "evt-1", "type": "note.created", "contact": {"id": "c-1"}, "note": {"ref": "n-1", "body": "  "}}"#, INVALID_INPUT),
        platform("a note.updated for an unknown ref", r#"{"id": "evt-1", "type": "note.updated", "note": {"ref": "never-created", "body": "x"}}"#, refused("not-found")),
        platform("a task.completed for an unknown ref", r#"{"id": "evt-1", "type": "task.completed", "task": {"ref": "never-created"}}"#, refused("not-found")),
        platform(
            "a task with a unicode title for a contact named by id",
            r#"{"id": "evt-1", "type": "task.created", "contact": {"id": "{EXISTING}"}, "task": {"ref": "t-1", "title": "Rappeler Zoë 🚀", "due": "2026-03-12T09:00:00-05:00"}}"#,
            synced([task_titled("Rappeler Zoë 🚀")]),
        )
        .with_existing_contact(dana.clone()),
        platform(
            "a note for a contact named by a formatted phone",
            r#"{"id": "evt-1", "type": "note.created", "contact": {"phone": "(206) 555-0174"}, "note": {"ref": "n-1", "body": "Ñúñez called 📞"}}"#,
            synced([note_contains("Ñúñez called 📞")]),
        )
        .with_existing_contact(dana.clone()),
        platform(
            "a note for a contact named by an upper-case e-mail",
            r#"{"id": "evt-1", "type": "note.created", "contact": {"email": "DANA@Example.ORG"}, "note": {"ref": "n-1", "body": "by e-mail"}}"#,
            synced([note_contains("by e-mail")]),
        )
        .with_existing_contact(dana),
    ]
}

// ------------------------------------------------------------------------------------------------
// Running a case
// ------------------------------------------------------------------------------------------------

enum Verdict {
    Pass,
    /// The host call itself failed: the plugin trapped (or the host broke).
    Trap(String),
    Wrong(String),
}

fn run(case: &Case) -> Verdict {
    let h = if case.secret {
        Harness::with(MockOptions { token: Some(TOKEN.into()), ..MockOptions::default() }, |s| s.set("webhook_secret", FIXTURE_SECRET))
    } else {
        Harness::new()
    };
    let mut body = case.body.clone();
    if let Some(contact) = &case.existing_contact {
        let id = h.mock.seed_contact(contact.clone());
        body = String::from_utf8(body).unwrap().replace("{EXISTING}", &id).into_bytes();
    }
    let answer = match case.entry {
        Entry::Webhook => h.runtime.handle_webhook(&body),
        Entry::Platform => h.runtime.handle_platform(std::str::from_utf8(&body).expect("a platform event is text")),
    };
    match answer {
        Err(trap) => Verdict::Trap(format!("{trap:#}")),
        Ok(answer) => match judge(&case.expect, &h, answer) {
            Ok(()) => Verdict::Pass,
            Err(why) => Verdict::Wrong(why),
        },
    }
}

fn judge(expect: &Expect, h: &Harness, answer: Result<Report, SyncError>) -> Result<(), String> {
    match (expect, answer) {
        (Expect::Refused(kind), Err(error)) => {
            let error = report::error_json(&error);
            check(error["type"] == *kind, || format!("expected {kind}, got {error}"))?;
            check(!error["message"].as_str().unwrap_or_default().is_empty(), || format!("an error without a message: {error}"))?;
            nothing_written(h)
        }
        (Expect::Skipped, Ok(report)) => match &report.outcome {
            Outcome::Skipped(reason) if !reason.trim().is_empty() => {
                check(report.operations.is_empty(), || format!("a skip reported operations: {:?}", operations(&report)))?;
                nothing_written(h)
            }
            other => Err(format!("expected skipped with a reason, got {other:?}: {}", report.summary)),
        },
        (Expect::Synced(checks), Ok(report)) => {
            check(report.outcome == Outcome::Synced, || format!("expected synced, got {:?}: {}", report.outcome, report.summary))?;
            let requests = h.requests();
            check(!requests.is_empty() && h.mock.requests().iter().all(|r| (200..300).contains(&r.status)), || format!("requests: {requests:?}"))?;
            checks.iter().try_for_each(|c| c(h))
        }
        (_, Err(error)) => Err(format!("got error {}", report::error_json(&error))),
        (_, Ok(report)) => Err(format!("got {:?}: {}", report.outcome, report.summary)),
    }
}

fn check(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// No partial write: no request reached the API, nothing was recorded.
fn nothing_written(h: &Harness) -> Result<(), String> {
    check(h.mock.requests().is_empty(), || format!("requests reached the mock: {:?}", h.requests()))?;
    check(h.kv.is_empty(), || format!("the key-value store was written: {:?}", h.kv.keys()))
}

// ------------------------------------------------------------------------------------------------
// Checks of the mock's state after a synced case
// ------------------------------------------------------------------------------------------------

/// The one contact in HighLevel.
fn the_contact(h: &Harness) -> Result<Value, String> {
    let contacts = h.mock.contacts();
    match contacts.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("expected one contact, found {}: {contacts:?}", contacts.len())),
    }
}

/// The one note in HighLevel, on the one contact.
fn the_note(h: &Harness) -> Result<String, String> {
    let notes = h.mock.notes();
    let [note] = notes.as_slice() else { return Err(format!("expected one note, found {}: {notes:?}", notes.len())) };
    let contact = the_contact(h)?;
    check(note["contactId"] == contact["id"], || format!("the note is on {}, not on the contact {}", note["contactId"], contact["id"]))?;
    Ok(note["body"].as_str().unwrap_or_default().to_string())
}

fn contact_phone(e164: &str) -> Check {
    contact_field("phone", e164)
}

fn contact_field(field: &'static str, value: &str) -> Check {
    let value = value.to_string();
    Box::new(move |h| {
        let contact = the_contact(h)?;
        check(contact[field] == value.as_str(), || format!("contact {field} is {}, expected {value:?}", contact[field]))
    })
}

fn contact_lacks(field: &'static str) -> Check {
    Box::new(move |h| {
        let contact = the_contact(h)?;
        check(contact.get(field).is_none_or(|v| v.is_null() || v == ""), || format!("contact {field} should be absent: {contact}"))
    })
}

/// The contact's first and last names, put back together, are `name` exactly.
fn contact_name(name: &str) -> Check {
    let name = name.to_string();
    Box::new(move |h| {
        let contact = the_contact(h)?;
        let parts: Vec<&str> = ["firstName", "lastName"].iter().filter_map(|k| contact[*k].as_str()).collect();
        check(parts.join(" ") == name, || format!("contact name is {parts:?}, expected {name:?}"))
    })
}

fn note_contains(text: impl Into<String>) -> Check {
    let text = text.into();
    Box::new(move |h| {
        let note = the_note(h)?;
        check(note.contains(&text), || format!("the note lacks {:?}:\n{}", short(&text), short(&note)))
    })
}

fn note_lacks(text: &'static str) -> Check {
    Box::new(move |h| {
        let note = the_note(h)?;
        check(!note.contains(text), || format!("the note should not contain {text:?}:\n{}", short(&note)))
    })
}

fn note_ends_with(text: &'static str) -> Check {
    Box::new(move |h| {
        let note = the_note(h)?;
        check(note.ends_with(text), || format!("the note does not end with {text:?}:\n{}", short(&note)))
    })
}

fn task_titled(title: &'static str) -> Check {
    Box::new(move |h| {
        let (tasks, contact) = (h.mock.tasks(), the_contact(h)?);
        let ok = matches!(tasks.as_slice(), [t] if t["title"] == title && t["contactId"] == contact["id"]);
        check(ok, || format!("expected one task {title:?} on {}: {tasks:?}", contact["id"]))
    })
}

/// A long text cut for a failure message.
fn short(text: &str) -> String {
    match text.char_indices().nth(600) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

// ------------------------------------------------------------------------------------------------
// HS256 for forging test tokens
// ------------------------------------------------------------------------------------------------

/// Just enough JWS to sign test tokens (HMAC-SHA-256, base64url), written out here rather than
/// adding crates to the test package; [`the_test_signer_reproduces_the_fixtures_signature`]
/// holds it to the fixture.
mod hs256 {
    /// `header.claims.signature`, the header given as JSON text.
    pub fn sign(header: &str, claims: &[u8], secret: &str) -> String {
        let signed = format!("{}.{}", base64url(header.as_bytes()), base64url(claims));
        let signature = base64url(&hmac_sha256(secret.as_bytes(), signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Unpadded base64url.
    pub fn base64url(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
        }
        out
    }

    pub fn decode_base64url(text: &str) -> Vec<u8> {
        let sextets: Vec<u32> = text.bytes().map(|c| ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32).collect();
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        for chunk in sextets.chunks(4) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, s)| n | s << (18 - 6 * i));
            out.extend(n.to_be_bytes()[1..chunk.len()].iter());
        }
        out
    }

    pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        let mut block = if key.len() > 64 { sha256(key).to_vec() } else { key.to_vec() };
        block.resize(64, 0);
        let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).chain(message.iter().copied()).collect();
        let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(sha256(&inner)).collect();
        sha256(&outer)
    }

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
        0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    /// FIPS 180-4 SHA-256.
    pub fn sha256(data: &[u8]) -> [u8; 32] {
        let mut hash: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        let mut message = data.to_vec();
        message.push(0x80);
        while message.len() % 64 != 56 {
            message.push(0);
        }
        message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
        for block in message.chunks(64) {
            let mut w = [0u32; 64];
            for (word, bytes) in w.iter_mut().zip(block.chunks(4)) {
                *word = u32::from_be_bytes(bytes.try_into().unwrap());
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = hash;
            for (k, w) in K.iter().zip(w) {
                let t1 = h
                    .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
                    .wrapping_add((e & f) ^ (!e & g))
                    .wrapping_add(*k)
                    .wrapping_add(w);
                let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22)).wrapping_add((a & b) ^ (a & c) ^ (b & c));
                (h, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
            }
            for (slot, value) in hash.iter_mut().zip([a, b, c, d, e, f, g, h]) {
                *slot = slot.wrapping_add(value);
            }
        }
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_mut(4).zip(hash) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}
