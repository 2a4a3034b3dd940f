//! Every Contacts API operation as an action, through the real component: the catalog equals
//! the official spec one for one, every one of the 32 operations runs against the mock, and
//! bad input or a missing scope is refused before any request.

use e2e_tests::*;
use host_test::ghl_mock::MockOptions;
use serde_json::{json, Value};

/// `(operationId, METHOD, path, scope)` of every operation in the official spec (read from
/// `../shared`, not from the repository's copy).
fn spec_operations() -> Vec<(String, String, String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/ghl/contacts.openapi.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut ops = Vec::new();
    for (p, methods) in spec["paths"].as_object().unwrap() {
        for (m, op) in methods.as_object().unwrap() {
            // The two bulk operations declare no security in the spec; they write.
            let scope = op["security"][0]["bearer"][0].as_str().unwrap_or("contacts.write").to_string();
            ops.push((op["operationId"].as_str().unwrap().to_string(), m.to_uppercase(), p.clone(), scope));
        }
    }
    ops.sort();
    ops
}

#[test]
fn the_catalog_equals_the_official_spec_one_for_one() {
    let h = Harness::new();
    let catalog = h.runtime.catalog().unwrap();
    let mut ours: Vec<(String, String, String, String)> =
        catalog.iter().filter(|o| o.id != "click-to-call").map(|o| (o.id.clone(), o.method.clone(), o.path.clone(), o.scope.clone())).collect();
    ours.sort();
    assert_eq!(ours, spec_operations());
    // The 32 operations, then the one workflow action.
    assert_eq!(catalog.len(), 33);
    assert_eq!((catalog[32].id.as_str(), catalog[32].scope.as_str()), ("click-to-call", "dialpad"));
    for op in &catalog {
        let schema: Value = serde_json::from_str(&op.input_schema).unwrap_or_else(|e| panic!("{}: {e}", op.id));
        assert_eq!(schema["type"], "object", "{}", op.id);
        assert_eq!(schema["additionalProperties"], false, "{}", op.id);
        for param in op.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            assert!(schema["required"].as_array().unwrap().contains(&json!(param)), "{}: {param}", op.id);
        }
    }
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
