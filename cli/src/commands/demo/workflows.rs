//! The workflows that write where people look, one readable line each: the screen pop, the
//! two-way contact sync (each side's edit, and the other side's echo of it), click-to-call, the
//! call log in Conversations, and the owners of notes and tasks.

use super::tally::Tally;
use anyhow::{bail, Context as _};
use dialpad_ghl_host::bindings::dialpad_ghl::sync::types::{Report, SyncError};
use dialpad_ghl_host::engine::Runtime;
use dialpad_ghl_host::inbound::{Inbound, Source};
use dialpad_ghl_host::report;
use host_test::demo;
use host_test::dialpad_mock::{DialpadMock, WebhookDelivery};
use host_test::ghl_mock::MockServer;
use serde_json::{json, Value};
use std::time::Duration;

/// Where the mocks send their webhooks: nowhere (not an `http://` URL). The demo reads each
/// delivery's body from the mock and hands it to the runtime, as the host does once its gate
/// has checked the signature.
const CAPTURED: &str = "demo://captured";
const WAIT: Duration = Duration::from_secs(5);
/// Kenji's mobile: not in HighLevel, so only the call's custom data can name him.
const KENJI_MOBILE: &str = "+15035550188";

pub struct Workflows<'a> {
    pub runtime: &'a Runtime,
    pub highlevel: &'a MockServer,
    pub dialpad: &'a DialpadMock,
    pub tally: &'a mut Tally,
}

/// "synced [its requests]", "unchanged", "skipped (why)" or "failed: why".
fn outcome(result: &Result<Report, SyncError>) -> String {
    match result {
        Ok(r) => {
            let (name, reason) = report::outcome_name(&r.outcome);
            let ops: Vec<String> = r.operations.iter().map(|o| format!("{} {}", o.operation_id, o.status.map(|s| s.to_string()).unwrap_or_default())).collect();
            let reason = reason.map(|why| format!(" ({why})")).unwrap_or_default();
            let ops = if ops.is_empty() { String::new() } else { format!(" [{}]", ops.join(", ")) };
            format!("{name}{reason}{ops}")
        }
        Err(e) => format!("failed: {}", report::error_message(e)),
    }
}

/// The outcomes of a webhook's echoes, joined.
fn outcomes(results: &[Result<Report, SyncError>]) -> String {
    if results.is_empty() {
        "none came".into()
    } else {
        results.iter().map(outcome).collect::<Vec<_>>().join(", ")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "First Last", or the phone of a contact with no name.
fn name_of(contact: &Value) -> String {
    let name = [contact["firstName"].as_str(), contact["lastName"].as_str()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        contact["phone"].as_str().unwrap_or("?").to_string()
    } else {
        name
    }
}

impl Workflows<'_> {
    fn handle(&mut self, source: Source, body: Vec<u8>) -> anyhow::Result<Result<Report, SyncError>> {
        let result = self.runtime.handle(&Inbound::new(source, body))?.result;
        self.tally.add(&result);
        Ok(result)
    }

    /// Hands the webhooks a mock sent after the first `seen` to the runtime, as `source`.
    fn deliver(&mut self, deliveries: Vec<WebhookDelivery>, seen: usize, source: Source) -> anyhow::Result<Vec<Result<Report, SyncError>>> {
        deliveries.into_iter().skip(seen).map(|d| self.handle(source, d.body.into_bytes())).collect()
    }

    fn settle(&self) -> anyhow::Result<()> {
        if !self.highlevel.wait_webhooks_delivered(WAIT) || !self.dialpad.wait_webhooks_delivered(WAIT) {
            bail!("a mock's contact webhooks did not go out");
        }
        Ok(())
    }

    fn contact(&self, id: &str) -> Value {
        self.highlevel.contacts().into_iter().find(|c| c["id"] == id).unwrap_or(Value::Null)
    }

    pub fn run(&mut self) -> anyhow::Result<()> {
        println!("\nWhere people look: screen pop, two-way contacts, click-to-call, call log, owners (Dialpad's API key is the host's to add):");
        self.screen_pop()?;
        let kenji = self.highlevel.contacts().into_iter().find(|c| c["phone"] == "+15035550139").context("Kenji is seeded")?;
        let kenji = kenji["id"].as_str().unwrap_or_default().to_string();
        self.two_way(&kenji)?;
        self.click_to_call(&kenji)?;
        self.call_log();
        self.owners();
        Ok(())
    }

    /// Priya calls again: now a HighLevel contact, her page opens on Maya's screen.
    fn screen_pop(&mut self) -> anyhow::Result<()> {
        let result = self.handle(Source::DialpadWebhook, demo::ringing_again(6_011_482_093_429_999))?;
        match (self.dialpad.screen_pops().last(), &result) {
            (Some(pop), Ok(_)) => {
                let user = self.dialpad.users().into_iter().find(|u| u["id"] == pop.user_id.as_str()).map(|u| u["display_name"].clone());
                let user = user.as_ref().and_then(Value::as_str).unwrap_or("?").to_string();
                println!("  screen pop → {user}: {}  (Priya rings again: {})", pop.uri, outcome(&result));
            }
            _ => println!("  {}", report::human_line("screen pop (Priya rings again)", &result)),
        }
        Ok(())
    }

    /// A person edits Kenji in HighLevel, then in Dialpad; each side's webhook of the sync's own
    /// write comes back and changes nothing.
    fn two_way(&mut self, kenji: &str) -> anyhow::Result<()> {
        let webhook: i64 = self.dialpad.add_webhook(CAPTURED, None).parse()?;
        self.dialpad.add_subscription("contact", json!({"endpoint_id": webhook, "contact_type": "shared", "enabled": true}));
        self.highlevel.set_contact_webhook(Some(CAPTURED.into()));

        let (hl_seen, dp_seen) = (self.highlevel.contact_webhook_deliveries().len(), self.dialpad.contact_event_deliveries().len());
        self.highlevel.edit_contact(kenji, json!({"companyName": "Watanabe Design"}));
        self.settle()?;
        let edits = self.deliver(self.highlevel.contact_webhook_deliveries(), hl_seen, Source::HighLevelWebhook)?;
        self.settle()?;
        let echoes = self.deliver(self.dialpad.contact_event_deliveries(), dp_seen, Source::DialpadWebhook)?;
        let dialpad_contact = self.dialpad.contact_by_uid(kenji);
        match (edits.as_slice(), &dialpad_contact) {
            ([edit @ Ok(_)], Some(c)) => println!(
                "  HighLevel contact edit (Kenji's company) → Dialpad contact {} (uid {kenji}) has company {}: {}; Dialpad's echo: {}",
                c["id"].as_str().unwrap_or("?"),
                c["company_name"],
                outcome(edit),
                outcomes(&echoes)
            ),
            _ => println!("  ✗ HighLevel contact edit: {} (Dialpad's echo: {})", outcomes(&edits), outcomes(&echoes)),
        }

        if let Some(dialpad_id) = dialpad_contact.as_ref().and_then(|c| c["id"].as_str()) {
            let (hl_seen, dp_seen) = (self.highlevel.contact_webhook_deliveries().len(), self.dialpad.contact_event_deliveries().len());
            self.dialpad.edit_contact(dialpad_id, json!({"emails": ["kenji@watanabe-design.example"]}));
            self.settle()?;
            let edits = self.deliver(self.dialpad.contact_event_deliveries(), dp_seen, Source::DialpadWebhook)?;
            self.settle()?;
            let echoes = self.deliver(self.highlevel.contact_webhook_deliveries(), hl_seen, Source::HighLevelWebhook)?;
            match edits.as_slice() {
                [edit @ Ok(_)] => println!(
                    "  Dialpad contact edit (Kenji's e-mail) → HighLevel contact {kenji} has email {}: {}; HighLevel's echo: {}",
                    self.contact(kenji)["email"],
                    outcome(edit),
                    outcomes(&echoes)
                ),
                _ => println!("  ✗ Dialpad contact edit: {} (HighLevel's echo: {})", outcomes(&edits), outcomes(&echoes)),
            }
        }
        self.highlevel.set_contact_webhook(None);
        Ok(())
    }

    /// Maya calls Kenji from his HighLevel page, on a mobile number HighLevel does not have; the
    /// call's hangup is matched to him by the call's custom data, with no phone search.
    fn click_to_call(&mut self, kenji: &str) -> anyhow::Result<()> {
        let input = json!({"contactId": kenji, "userId": demo::MAYA_DIALPAD_ID, "phone": KENJI_MOBILE});
        let answer = self.runtime.invoke("click-to-call", &input.to_string())?;
        let (Ok(_), Some(call)) = (&answer, self.dialpad.initiated_calls().last().cloned()) else {
            match answer {
                Err(e) => println!("  ✗ click-to-call: failed: {}", report::error_message(&e)),
                Ok(a) => println!("  ✗ click-to-call: no call on the Dialpad mock (answer {a})"),
            }
            return Ok(());
        };
        println!(
            "  click-to-call → Dialpad call {} for contact {kenji} ({}'s mobile {}), custom_data {}",
            call.call_id,
            name_of(&self.contact(kenji)),
            call.phone_number,
            call.custom_data.as_deref().unwrap_or("-")
        );
        let result = self.handle(Source::DialpadWebhook, demo::click_to_call_hangup(&call.call_id, &call.phone_number, kenji))?;
        match &result {
            Ok(r) => {
                let searched = r.operations.iter().any(|o| o.operation_id == "get-duplicate-contact" || o.operation_id.starts_with("search-contact"));
                println!(
                    "    its hangup → contact {} {}: {}",
                    r.contact_id.as_deref().unwrap_or("?"),
                    if searched { "after a phone search" } else { "by its custom_data, no phone search" },
                    outcome(&result),
                );
            }
            Err(_) => println!("    {}", report::human_line("its hangup", &result)),
        }
        Ok(())
    }

    /// The call entries in HighLevel Conversations, with their recordings.
    fn call_log(&self) {
        let notes = self.highlevel.notes();
        for entry in self.highlevel.call_entries() {
            let id = entry["id"].as_str().unwrap_or("?");
            let attachments = entry["attachments"].as_array().map(Vec::len).unwrap_or(0);
            let named = notes.iter().any(|n| n["body"].as_str().is_some_and(|b| b.contains(&format!("HighLevel call entry: {id}"))));
            println!(
                "  call {} ({} {}) → call entry {id} in conversation {} of {}{}{}",
                entry["altId"].as_str().unwrap_or("?"),
                entry["direction"].as_str().unwrap_or("?"),
                entry["call"]["status"].as_str().unwrap_or("?"),
                entry["conversationId"].as_str().unwrap_or("?"),
                name_of(&self.contact(entry["contactId"].as_str().unwrap_or_default())),
                match attachments {
                    0 => String::new(),
                    1 => ", recording attached".to_string(),
                    n => format!(", {n} recordings attached"),
                },
                if named { "; its note names it" } else { "" }
            );
        }
    }

    /// Whose the notes and tasks are: the HighLevel user with the agent's e-mail.
    fn owners(&self) {
        let (notes, tasks) = (self.highlevel.notes(), self.highlevel.tasks());
        let mut owners = Vec::new();
        for user in self.highlevel.users() {
            let id = user["id"].as_str().unwrap_or_default();
            let count = |items: &[Value], key: &str| items.iter().filter(|i| i[key] == id).count();
            let (notes, tasks) = (count(&notes, "userId"), count(&tasks, "assignedTo"));
            owners.push(format!("{} (user {id}): {notes} note{}, {tasks} task{}", name_of(&user), plural(notes), plural(tasks)));
        }
        let reads = self.highlevel.requests().iter().filter(|r| r.path_and_query.starts_with("/users/")).count();
        println!("  owners by the agent's e-mail → {}; HighLevel's users read {reads} times, once per agent", owners.join("; "));
    }
}
