//! Every operation of both sides as an action, through the real component: the catalog equals
//! the four official specs one for one (HighLevel's Contacts, Conversations and Users, and
//! Dialpad's), every Contacts operation runs against the mock (every operation of all four runs
//! against Prism: `prism_every_operation.rs`), and bad input or a missing grant is refused
//! before any request.

use e2e_tests::*;
use host_test::ghl_mock::MockOptions;
use serde_json::{json, Value};

/// `(api, operationId, METHOD, path)` of every operation of the official specs (read from
/// `../shared`, not from the repository's copies).
fn spec_operations() -> Vec<(String, String, String, String)> {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/");
    let mut ops = Vec::new();
    for (api, file) in [
        ("highlevel-contacts", "ghl/contacts.openapi.json"),
        ("highlevel-conversations", "ghl/conversations.openapi.json"),
        ("highlevel-users", "ghl/users.openapi.json"),
        ("dialpad", "dialpad/dialpad_api_spec.json"),
    ] {
        let spec: Value = serde_json::from_str(&std::fs::read_to_string(format!("{shared}{file}")).unwrap()).unwrap();
        for (p, methods) in spec["paths"].as_object().unwrap() {
            for (m, op) in methods.as_object().unwrap() {
                ops.push((api.to_string(), op["operationId"].as_str().unwrap().to_string(), m.to_uppercase(), p.clone()));
            }
        }
    }
    ops.sort();
    ops
}

#[test]
fn the_catalog_equals_the_official_specs_one_for_one() {
    let h = Harness::new();
    let catalog = h.runtime.catalog().unwrap();
    let mut ours: Vec<(String, String, String, String)> =
        catalog.iter().filter(|o| o.id != "click-to-call").map(|o| (o.api.clone(), o.id.clone(), o.method.clone(), o.path.clone())).collect();
    ours.sort();
    assert_eq!(ours, spec_operations());
    let count = |api: &str| catalog.iter().filter(|o| o.api == api).count();
    assert_eq!(
        [count("highlevel-contacts"), count("highlevel-conversations"), count("highlevel-users"), count("dialpad")],
        [32, 29, 7, 193 + 1],
        "the operations of each API, and click-to-call (Dialpad's call)"
    );
    let last = catalog.last().unwrap();
    assert_eq!((last.id.as_str(), last.scope.as_str()), ("click-to-call", "dialpad"));
    for op in &catalog {
        let schema: Value = serde_json::from_str(&op.input_schema).unwrap_or_else(|e| panic!("{}: {e}", op.id));
        assert_eq!(schema["type"], "object", "{}", op.id);
        assert_eq!(schema["additionalProperties"], false, "{}", op.id);
        // Every path parameter is required, but HighLevel's `locationId`: it defaults to the
        // configured location.
        for param in op.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).filter(|p| *p != "locationId") {
            assert!(schema["required"].as_array().unwrap().contains(&json!(param)), "{}: {param}", op.id);
        }
        assert!(op.missing_scopes.is_empty(), "every grant is assumed when none are listed: {}", op.id);
    }
    // The scopes as the specs declare them, and the grant of Dialpad's operations.
    let scope = |id: &str| catalog.iter().find(|o| o.id == id).unwrap().scope.clone();
    assert_eq!(scope("create-note"), "contacts.write");
    assert_eq!(scope("add-an-inbound-message"), "conversations/message.write");
    assert_eq!(scope("get-user"), "users.readonly");
    assert_eq!(scope("call.list"), "calls:list");
    assert_eq!(scope("sms.send"), "dialpad");
}

/// Operations the configuration's grants do not cover are listed as unavailable, with the
/// grant they need, and refused as `missing-scope` before any request.
#[test]
fn operations_without_their_grant_are_unavailable() {
    let h = Harness::with(MockOptions::default(), |s| {
        s.set("scopes", json!(["contacts.readonly", "contacts.write"]));
        s.set("dialpad_scopes", json!(["calls:list"]));
    });
    let catalog = h.runtime.catalog().unwrap();
    let unavailable: Vec<(&str, &[String])> =
        catalog.iter().filter(|o| !o.missing_scopes.is_empty()).map(|o| (o.id.as_str(), o.missing_scopes.as_slice())).collect();
    let needs = |scope: &str| unavailable.iter().filter(|(_, m)| m.iter().any(|s| s == scope)).count();
    assert_eq!(
        unavailable.len(),
        29 + 7 + 5 + 2 + 1,
        "all of Conversations and Users, and Dialpad's operations needing change_log, conference:read, screen_pop: {unavailable:?}"
    );
    assert_eq!(needs("conversations/message.write"), 11);
    assert_eq!(needs("screen_pop"), 1);
    assert!(catalog.iter().filter(|o| o.api == "highlevel-contacts").all(|o| o.missing_scopes.is_empty()));
    let err = h.runtime.invoke("get-message", r#"{"id":"m1"}"#).unwrap().unwrap_err();
    assert_eq!(err, SyncError::MissingScope(vec!["conversations/message.readonly".into()]));
    assert!(h.mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn every_operation_runs_as_an_action_against_the_mock() {
    let h = Harness::new();
    let (mut contact, mut note, mut task) = (String::new(), String::new(), String::new());
    let mut seen = Vec::new();
    for (id, template) in EVERY_OPERATION {
        let input = operation_input(template, &contact, &note, &task);
        let output = h.runtime.invoke(id, &input).unwrap().unwrap_or_else(|e| panic!("{id}: {}", report::error_message(&e)));
        let output: Value = serde_json::from_str(&output).unwrap();
        match *id {
            "create-contact" => contact = output["contact"]["id"].as_str().unwrap().to_string(),
            "create-note" => note = output["note"]["id"].as_str().unwrap().to_string(),
            "create-task" => task = output["task"]["id"].as_str().unwrap().to_string(),
            "get-duplicate-contact" => assert_eq!(output["contact"]["id"], json!(contact)),
            "upsert-contact" => assert_eq!(output["new"], false, "upsert found Ana by e-mail"),
            "remove-tags" => assert_eq!(output["tags"], json!(["vip"])),
            "get-contacts-by-businessId" => assert_eq!(output["contacts"][0]["id"], json!(contact)),
            "delete-contact" => assert_eq!((output["succeded"].clone(), output["succeeded"].clone()), (json!(true), json!(true))),
            _ => {}
        }
        let last = h.mock.requests().last().cloned().unwrap();
        assert_eq!(last.operation_id, Some(*id));
        assert!((200..300).contains(&last.status), "{id} answered {}", last.status);
        seen.push(*id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 32, "every operation of the catalog was invoked");
    assert_eq!(h.mock.requests().len(), 32, "one request per action");
    assert!(h.mock.contacts().is_empty(), "the last action deleted the contact");
}

#[test]
fn bad_input_and_missing_scopes_are_refused_before_any_request() {
    let h = Harness::with(MockOptions::default(), |s| s.set("scopes", json!(["contacts.readonly"])));
    let cases: Vec<(&str, &str, &str)> = vec![
        ("no-such-operation", "{}", "unknown-operation"),
        ("create-note", r#"{"contactId":"c1","body":{"text":"wrong property"}}"#, "invalid-input"),
        ("get-contact", "{}", "invalid-input"),
        ("get-contact", "not json", "invalid-input"),
        ("update-contact", r#"{"contactId":"c1","body":{"tags":["vip"]}}"#, "invalid-input"),
        ("delete-contact", r#"{"contactId":"c1"}"#, "missing-scope"),
    ];
    for (id, input, expected) in cases {
        let err = h.runtime.invoke(id, input).unwrap().expect_err(id);
        assert_eq!(report::error_json(&err)["type"], expected, "{id} {input}: {}", report::error_message(&err));
    }
    match h.runtime.invoke("create-note", r#"{"contactId":"c1","body":{"text":"x"}}"#).unwrap() {
        Err(SyncError::InvalidInput(problems)) => {
            let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, vec!["/body/text", "/body/body"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(h.mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn the_apis_refusals_come_back_typed() {
    let h = Harness::new();
    let err = h.runtime.invoke("get-contact", r#"{"contactId":"nobody"}"#).unwrap().unwrap_err();
    let SyncError::Upstream(failure) = err else { panic!("{err:?}") };
    assert_eq!((failure.operation_id.as_str(), failure.status), ("get-contact", 400));
    assert_eq!(failure.message, "Contact with id nobody not found");
}

/// HighLevel's quirks, each handled: custom fields are written as `{id|key, field_value}` and
/// read as `{id, value}`; a 422's `message` is a list (joined in the typed error); `+` travels
/// as `%2B`; `succeded` is also given as `succeeded` (see the run of every operation above).
#[test]
fn the_apis_quirks_are_handled() {
    let h = Harness::new();
    let created = h
        .runtime
        .invoke("create-contact", r#"{"body":{"firstName":"Bo","phone":"+13125550100","customFields":[{"key":"plan","field_value":"gold"}]}}"#)
        .unwrap()
        .unwrap();
    let id = serde_json::from_str::<Value>(&created).unwrap()["contact"]["id"].as_str().unwrap().to_string();
    let read = h.runtime.invoke("get-contact", &json!({"contactId": id}).to_string()).unwrap().unwrap();
    let fields = serde_json::from_str::<Value>(&read).unwrap()["contact"]["customFields"].clone();
    assert_eq!(fields, json!([{"id": "cf_plan", "value": "gold"}]));

    let err = h.runtime.invoke("search-contacts-advanced", r#"{"body":{"page":1,"pageLimit":501}}"#).unwrap().unwrap_err();
    let SyncError::Upstream(failure) = err else { panic!("{err:?}") };
    assert_eq!(failure.status, 422);
    assert!(failure.message.contains("pageLimit"), "the list of messages is joined: {}", failure.message);

    h.runtime.invoke("get-duplicate-contact", r#"{"number":"+13125550100"}"#).unwrap().unwrap();
    let last = h.mock.requests().last().cloned().unwrap();
    assert!(last.path_and_query.ends_with("number=%2B13125550100"), "{}", last.path_and_query);
}
