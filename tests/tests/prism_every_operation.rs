//! Conformance of every action: each operation of the four official specs (HighLevel's
//! Contacts, Conversations and Users, and Dialpad's: 261) is invoked once as an action through
//! the real component and host (`actions.invoke`), against Prism serving that spec
//! (`prism mock <spec> --errors`), with an input `spec_inputs::example_inputs` makes from the
//! spec. The plugin checks the input against the operation's shapes, builds the request, and
//! the host adds the API's credential; Prism must find nothing wrong with any request.
//!
//! Prism answers a conforming request from the spec's examples; where an example breaks the
//! spec's own response schema it answers 500 (a defect of the spec): such answers are printed,
//! not failures. So are the operations whose body Prism does not judge at all, found by sending
//! each a body of the wrong type (`true`) straight to Prism and seeing it accepted.
//!
//! Needs `tests/prism/install.sh`; without it the runner lists these tests as ignored, with
//! that reason, unless `REQUIRE_PRISM=1` (CI), where a missing Prism fails them.

// The WIT-generated error is what the plugin answers with; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use dialpad_ghl_host::capability::keyvalue::KeyValueStore;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::settings::Settings;
use e2e_tests::prism::{Prism, Spec, CONVERSATIONS_SPEC_JSON, DIALPAD_SPEC_JSON, USERS_SPEC_JSON};
use e2e_tests::prism_dialpad::{request_violations, response_defects, Exchange};
use e2e_tests::spec_inputs::example_inputs;
use e2e_tests::{report, LOCATION, TOKEN};

/// Requests no client can make conform, because of how Prism reads them: (operation, Prism's
/// one complaint). Prism reads each part of a `multipart/form-data` body as one string, and
/// splits a field into an array only when the spec declares an `encoding` style for it; the
/// Conversations upload declares none, so its required `attachmentUrls: array` is never met.
/// The test fails when one of these stops happening, so that none is kept past its time.
const PRISM_CANNOT_ACCEPT: &[(&str, &str)] = &[("upload-file-attachments", "Request body property attachmentUrls must be array")];

/// Every `operationId` of the spec, read straight from its `paths`.
fn operation_ids(spec_json: &str) -> Vec<String> {
    let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    paths.values().flat_map(|item| item.as_object().unwrap().values().filter_map(|op| op["operationId"].as_str().map(String::from))).collect()
}

/// A host whose HighLevel or Dialpad origin is Prism, holding both credentials; one attempt
/// per request (Prism's 500s for the spec's own defects are not worth retrying here).
fn runtime(prism: &Prism, spec: Spec) -> Runtime {
    let mut settings = Settings::default();
    let base = if spec == Spec::Dialpad { "dialpad_api_base" } else { "api_base" };
    settings.set(base, prism.base_url.clone());
    settings.set("location_id", LOCATION);
    settings.set("max_attempts", 1);
    settings.token = Some(Secret::new(TOKEN));
    settings.dialpad_key = Some(Secret::new("prism-dialpad-key"));
    Runtime::new(e2e_tests::plugin(), settings.runtime_options(true).unwrap(), KeyValueStore::new()).unwrap()
}

/// Invokes every operation of `spec` as an action, and fails on any request Prism finds to
/// break the spec.
fn every_operation(spec: Spec, spec_json: &str, operations: usize) {
    let inputs = example_inputs(spec_json);
    let mut ids: Vec<&str> = inputs.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = operation_ids(spec_json);
    expected.sort_unstable();
    assert_eq!(expected.len(), operations, "{spec:?}: the spec's operations");
    assert_eq!(ids, expected, "{spec:?}: one input per operation, each once");

    let prism = Prism::start_spec(spec);
    let rt = runtime(&prism, spec);
    let (mut violations, mut excused, mut reported, mut unjudged, mut refused_by_plugin) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, input) in &inputs {
        let mut input = input.clone();
        // The plugin's own guard: tags on update and upsert replace every tag, so they are
        // sent only when the caller says that is meant.
        if matches!(id.as_str(), "update-contact" | "upsert-contact") && input["body"].get("tags").is_some() {
            input["replace_all_tags"] = true.into();
        }
        let result = rt.invoke(id, &input.to_string()).unwrap_or_else(|e| panic!("{id}: trapped: {e:#}"));
        let log = rt.http_log().take();
        if log.is_empty() {
            refused_by_plugin.push(format!("{id}: {} (input {input})", result.as_ref().err().map(report::error_message).unwrap_or_default()));
            continue;
        }
        assert_eq!(log.len(), 1, "{id}: one request per action: {log:#?}");
        let exchange = Exchange::from_host_log(&log[0]);
        let found = request_violations(std::slice::from_ref(&exchange));
        match PRISM_CANNOT_ACCEPT.iter().find(|(op, _)| op == id) {
            Some((_, complaint)) if found.len() == 1 && found[0].ends_with(&format!(": {complaint}")) => excused.push(format!("{id}: {}", found[0])),
            _ => violations.extend(found.iter().map(|line| format!("{id}: {line}"))),
        }
        if exchange.status >= 400 && found.is_empty() {
            let defect = response_defects(std::slice::from_ref(&exchange)).pop();
            reported.push(format!("{id}: {}", defect.unwrap_or_else(|| exchange.line())));
        }
        // Does Prism judge this body at all? The same request with a body of the wrong type.
        if exchange.request_headers.iter().any(|(n, v)| n == "content-type" && v == "application/json") {
            let mut headers = vec![("Authorization", "Bearer x"), ("Content-Type", "application/json")];
            headers.extend(spec.version().map(|version| ("Version", version)));
            let wrong = prism.send_bytes(&exchange.method, &exchange.path_and_query, &headers, Some(b"true")).unwrap();
            if wrong.status < 400 {
                unjudged.push(format!("{id} ({} {})", exchange.method, exchange.path_and_query));
            }
        }
    }

    eprintln!(
        "prism: {spec:?}: {} of {operations} actions sent, {} request violations, {} excused (PRISM_CANNOT_ACCEPT), {} spec defects in answers, {} bodies Prism does not judge",
        inputs.len() - refused_by_plugin.len(),
        violations.len(),
        excused.len(),
        reported.len(),
        unjudged.len()
    );
    for line in &reported {
        eprintln!("  answered with an error, no violation: {line}");
    }
    for line in &unjudged {
        eprintln!("  a body of the wrong type accepted: {line}");
    }
    for line in &excused {
        eprintln!("  excused: {line}");
    }
    assert!(refused_by_plugin.is_empty(), "{spec:?}: the plugin refused inputs the spec accepts:\n{}", refused_by_plugin.join("\n"));
    assert!(violations.is_empty(), "{spec:?}: {} requests break the spec:\n{}", violations.len(), violations.join("\n"));
    let expected_excused = PRISM_CANNOT_ACCEPT.iter().filter(|(op, _)| ids.contains(op)).count();
    assert_eq!(excused.len(), expected_excused, "{spec:?}: an entry of PRISM_CANNOT_ACCEPT no longer happens: remove it");
}

#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn every_contacts_operation_conforms_as_an_action() {
    every_operation(Spec::Contacts, contacts_api::SPEC_JSON, 32);
}

#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn every_conversations_operation_conforms_as_an_action() {
    every_operation(Spec::Conversations, CONVERSATIONS_SPEC_JSON, 29);
}

#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn every_users_operation_conforms_as_an_action() {
    every_operation(Spec::Users, USERS_SPEC_JSON, 7);
}

#[test]
#[cfg_attr(prism_missing, ignore = "Prism is not installed: run tests/prism/install.sh")]
fn every_dialpad_operation_conforms_as_an_action() {
    every_operation(Spec::Dialpad, DIALPAD_SPEC_JSON, 193);
}
