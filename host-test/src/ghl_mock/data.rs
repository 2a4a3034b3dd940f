//! The in-memory location: contacts, notes, tasks, appointments and memberships, and every
//! operation on them; and, beside them, the conversations and the users.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::conversations::Conversations;
use super::fields::{belongs_to, contact_list, date_added_ms, difference, merge, refresh_derived, str_field, string_items, union};
use super::reply::{unprocessable, Reply, MSG_DUPLICATE, MSG_NUMBER};
use super::request_log::RecordedRequest;
use super::search::{check_search, compare_sort_keys, filter_matches, lookup, matches_text};
use super::validate::query_value;

/// Everything behind the mutex. Contacts, notes, tasks and appointments are kept as JSON objects
/// so that any field the spec allows is stored and echoed back exactly as sent, without a struct
/// to keep in sync. Followers live on the contact (`followers`, as `ContactsSearchSchema` lists
/// them); campaign and workflow memberships are kept beside it.
#[derive(Default)]
pub(super) struct Data {
    pub(super) contacts: Vec<Map<String, Value>>,
    pub(super) notes: Vec<Map<String, Value>>,
    pub(super) tasks: Vec<Map<String, Value>>,
    pub(super) appointments: Vec<Map<String, Value>>,
    /// `(contactId, campaignId)`, in enrolment order.
    pub(super) campaigns: Vec<(String, String)>,
    /// `(contactId, {workflowId, eventStartTime?})`, in enrolment order.
    pub(super) workflows: Vec<(String, Map<String, Value>)>,
    /// Conversations and call messages (`conversations.rs`).
    pub(super) conversations: Conversations,
    /// Users, seeded (`users.rs`).
    pub(super) users: Vec<Map<String, Value>>,
    /// Custom-field ids by `(locationId, key)`: a field written by `key` keeps one id.
    custom_field_ids: HashMap<(String, String), String>,
    pub(super) requests: Vec<RecordedRequest>,
    contact_counter: u64,
    note_counter: u64,
    task_counter: u64,
    event_counter: u64,
    trace_counter: u64,
}

impl Data {
    /// `contact0000000000001`, …: deterministic (tests assert exact request lists) and 20
    /// characters like real ids. Skips ids already taken by seeded contacts.
    fn next_contact_id(&mut self) -> String {
        loop {
            self.contact_counter += 1;
            let id = format!("contact{:013}", self.contact_counter);
            if self.contact_index(&id).is_none() {
                return id;
            }
        }
    }

    fn next_note_id(&mut self) -> String {
        self.note_counter += 1;
        format!("note{:016}", self.note_counter)
    }

    fn next_task_id(&mut self) -> String {
        self.task_counter += 1;
        format!("task{:016}", self.task_counter)
    }

    pub(super) fn next_event_id(&mut self) -> String {
        loop {
            self.event_counter += 1;
            let id = format!("event{:015}", self.event_counter);
            if !self.appointments.iter().any(|e| str_field(e, "id") == Some(&id)) {
                return id;
            }
        }
    }

    /// Upsert's `traceId`: UUID-shaped like the real one, but deterministic.
    fn next_trace_id(&mut self) -> String {
        self.trace_counter += 1;
        format!("00000000-0000-4000-8000-{:012}", self.trace_counter)
    }

    pub(super) fn contact_index(&self, id: &str) -> Option<usize> {
        self.contacts.iter().position(|c| str_field(c, "id") == Some(id))
    }

    /// The contact's index, or the 400 every operation on an unknown contact answers.
    fn existing(&self, id: &str) -> Result<usize, Reply> {
        self.contact_index(id).ok_or_else(|| Reply::contact_not_found(id))
    }

    /// Stores a new contact built from `fields`; returns its index.
    pub(super) fn insert_contact(&mut self, id: Option<String>, fields: Map<String, Value>, now: &str) -> usize {
        let id = id.unwrap_or_else(|| self.next_contact_id());
        let mut contact = Map::new();
        contact.insert("id".into(), Value::String(id));
        contact.insert("tags".into(), json!([]));
        contact.insert("customFields".into(), json!([]));
        contact.insert("dateAdded".into(), Value::String(now.to_owned()));
        contact.insert("dateUpdated".into(), Value::String(now.to_owned()));
        self.contacts.push(contact);
        let index = self.contacts.len() - 1;
        self.apply_contact_fields(index, fields);
        index
    }

    /// Writes request fields onto a stored contact: [`merge`] for plain fields, the custom-field
    /// conversion for `customFields`, then the derived fields.
    ///
    /// Custom fields are written as `{id, key?, field_value}` and read as `{id, value}`. Each
    /// written entry updates the stored entry with the same id (others are kept); an entry with
    /// only a `key` gets the id that key already has in the location, or `cf_<key>`. A `null` or
    /// `""` `field_value` clears the field; an entry without `field_value`, or with neither id
    /// nor key, changes nothing.
    fn apply_contact_fields(&mut self, index: usize, mut fields: Map<String, Value>) {
        let written = fields.remove("customFields");
        let contact = &mut self.contacts[index];
        merge(contact, fields);
        if let Some(Value::Array(entries)) = written {
            let location = str_field(contact, "locationId").unwrap_or_default().to_owned();
            let mut stored = match contact.remove("customFields") {
                Some(Value::Array(stored)) => stored,
                _ => Vec::new(),
            };
            for entry in entries.iter().filter_map(Value::as_object) {
                let key = str_field(entry, "key").filter(|k| !k.is_empty());
                let id = match (str_field(entry, "id").filter(|id| !id.is_empty()), key) {
                    (Some(id), Some(key)) => {
                        self.custom_field_ids.insert((location.clone(), key.to_owned()), id.to_owned());
                        id.to_owned()
                    }
                    (Some(id), None) => id.to_owned(),
                    (None, Some(key)) => self.custom_field_ids.entry((location.clone(), key.to_owned())).or_insert_with(|| format!("cf_{key}")).clone(),
                    (None, None) => continue,
                };
                let Some(value) = entry.get("field_value") else {
                    continue;
                };
                let position = stored.iter().position(|s| s["id"].as_str() == Some(id.as_str()));
                match (position, value.is_null() || value == "") {
                    (Some(at), true) => {
                        stored.remove(at);
                    }
                    (None, true) => {}
                    (Some(at), false) => stored[at]["value"] = value.clone(),
                    (None, false) => stored.push(json!({ "id": id, "value": value })),
                }
            }
            contact.insert("customFields".into(), Value::Array(stored));
        }
        refresh_derived(contact);
    }

    /// The location's duplicate rule: email first (case-insensitive), then phone (exact after
    /// trimming), within one location. Returns the index of the existing contact and the field
    /// that matched. Empty values never match.
    fn find_duplicate(&self, location: &str, email: Option<&str>, phone: Option<&str>) -> Option<(usize, &'static str)> {
        let candidates = || {
            self.contacts
                .iter()
                .enumerate()
                .filter(|(_, c)| str_field(c, "locationId") == Some(location))
                .map(|(index, c)| (index, |name: &str| str_field(c, name).map(str::trim)))
        };
        if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()).map(str::to_lowercase) {
            if let Some((index, _)) = candidates().find(|(_, field)| field("email").is_some_and(|e| e.to_lowercase() == email)) {
                return Some((index, "email"));
            }
        }
        if let Some(phone) = phone.map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((index, _)) = candidates().find(|(_, field)| field("phone") == Some(phone)) {
                return Some((index, "phone"));
            }
        }
        None
    }

    pub(super) fn create_contact(&mut self, body: Map<String, Value>, allow_duplicates: bool, ok: u16, now: &str) -> Reply {
        if !allow_duplicates {
            let location = str_field(&body, "locationId").unwrap_or_default();
            if let Some((index, matching_field)) = self.find_duplicate(location, str_field(&body, "email"), str_field(&body, "phone")) {
                let existing = &self.contacts[index];
                return Reply::new(
                    400,
                    json!({
                        "statusCode": 400,
                        "message": MSG_DUPLICATE,
                        "meta": {
                            "contactId": existing["id"],
                            "contactName": str_field(existing, "name").unwrap_or_default(),
                            "matchingField": matching_field,
                        }
                    }),
                );
            }
        }
        let index = self.insert_contact(None, body, now);
        Reply::new(ok, json!({ "contact": self.contacts[index] }))
    }

    /// Upsert: update the contact the duplicate rule finds, or create one. `tags` in the body
    /// replaces all tags (the real API's documented behaviour). With duplicates allowed and
    /// `createNewIfDuplicateAllowed: true`, a new contact is always created.
    pub(super) fn upsert_contact(&mut self, mut body: Map<String, Value>, allow_duplicates: bool, ok: u16, now: &str) -> Reply {
        // A request flag, not a contact field: never stored.
        let asked_for_new = body.remove("createNewIfDuplicateAllowed") == Some(Value::Bool(true));
        let create_new = allow_duplicates && asked_for_new;
        let location = str_field(&body, "locationId").unwrap_or_default();
        let existing = if create_new { None } else { self.find_duplicate(location, str_field(&body, "email"), str_field(&body, "phone")) };
        let trace_id = self.next_trace_id();
        let (new, index) = match existing {
            Some((index, _)) => {
                body.remove("locationId");
                self.apply_contact_fields(index, body);
                self.touch(index, now);
                (false, index)
            }
            None => (true, self.insert_contact(None, body, now)),
        };
        Reply::new(ok, json!({ "new": new, "contact": self.contacts[index], "traceId": trace_id }))
    }

    fn touch(&mut self, index: usize, now: &str) {
        self.contacts[index].insert("dateUpdated".into(), Value::String(now.to_owned()));
    }

    pub(super) fn get_contact(&self, id: &str, ok: u16) -> Reply {
        match self.existing(id) {
            Ok(index) => Reply::new(ok, json!({ "contact": self.contacts[index] })),
            Err(reply) => reply,
        }
    }

    pub(super) fn update_contact(&mut self, id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        let index = match self.existing(id) {
            Ok(index) => index,
            Err(reply) => return reply,
        };
        self.apply_contact_fields(index, body);
        self.touch(index, now);
        Reply::new(ok, json!({ "succeded": true, "contact": self.contacts[index] }))
    }

    /// Deletes the contact with everything hanging off it: notes, tasks, appointments and
    /// campaign/workflow memberships.
    pub(super) fn delete_contact(&mut self, id: &str, ok: u16) -> Reply {
        let index = match self.existing(id) {
            Ok(index) => index,
            Err(reply) => return reply,
        };
        self.contacts.remove(index);
        self.notes.retain(|n| !belongs_to(n, id));
        self.tasks.retain(|t| !belongs_to(t, id));
        self.appointments.retain(|e| !belongs_to(e, id));
        self.campaigns.retain(|(contact, _)| contact != id);
        self.workflows.retain(|(contact, _)| contact != id);
        Reply::succeded(ok)
    }

    pub(super) fn duplicate_contact(&self, query: &[(String, String)], ok: u16) -> Reply {
        let location = query_value(query, "locationId").unwrap_or_default();
        let found = self.find_duplicate(location, query_value(query, "email"), query_value(query, "number"));
        let contact = found.map_or(Value::Null, |(index, _)| Value::Object(self.contacts[index].clone()));
        Reply::new(ok, json!({ "contact": contact }))
    }

    /// Contacts of `location` matching the free-text `query`, in creation order.
    fn in_location<'a>(&'a self, location: &'a str, text: Option<&'a str>) -> impl Iterator<Item = &'a Map<String, Value>> {
        self.contacts.iter().filter(move |c| str_field(c, "locationId") == Some(location)).filter(move |c| text.is_none_or(|q| matches_text(c, q)))
    }

    /// `POST /contacts/search`. The spec leaves `SearchBodyV2DTO` empty; the fields below follow
    /// the published search documentation: `locationId` and `pageLimit` (≤ 500) required, `page`
    /// 1-based, `query` free text over name/email/phone, `filters` (`{field, operator, value}` or
    /// `{group: AND|OR, filters}`, all ANDed), `sort` (`[{field, direction}]`, creation order
    /// otherwise), `searchAfter` (the cursor each returned contact carries). Unknown fields are
    /// ignored, like the open schema says.
    pub(super) fn search(&self, body: &Map<String, Value>, ok: u16) -> Reply {
        let problems = check_search(body);
        if !problems.is_empty() {
            return unprocessable(problems);
        }
        let location = str_field(body, "locationId").unwrap_or_default();
        let text = str_field(body, "query");
        let filters = body.get("filters").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let mut found: Vec<&Map<String, Value>> = self.in_location(location, text).filter(|c| filters.iter().all(|f| filter_matches(c, f))).collect();
        for rule in body.get("sort").and_then(Value::as_array).into_iter().flatten().rev() {
            let field = rule["field"].as_str().unwrap_or_default();
            let descending = rule["direction"].as_str() == Some("desc");
            // Stable sorts, last rule first, give the lexicographic order of all rules.
            found.sort_by(|a, b| {
                let order = compare_sort_keys(lookup(a, field), lookup(b, field));
                if descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        let total = found.len();
        let limit = body["pageLimit"].as_f64().unwrap_or(0.0) as usize;
        let start = match body.get("searchAfter").and_then(Value::as_array) {
            Some(cursor) => {
                let after_id = cursor.iter().rev().find_map(Value::as_str).unwrap_or_default();
                found.iter().position(|c| str_field(c, "id") == Some(after_id)).map_or(total, |at| at + 1)
            }
            None => (body.get("page").and_then(Value::as_f64).unwrap_or(1.0) as usize).saturating_sub(1).saturating_mul(limit),
        };
        let contacts: Vec<Value> = found
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|c| {
                let mut c = c.clone();
                let cursor = json!([date_added_ms(&c), c["id"]]);
                c.insert("searchAfter".into(), cursor);
                Value::Object(c)
            })
            .collect();
        Reply::new(ok, json!({ "contacts": contacts, "total": total }))
    }

    /// `GET /contacts/` (deprecated): cursor paging over creation order. `startAfterId` (the last
    /// id of the previous page) wins; otherwise `startAfter` (epoch ms) starts at the first
    /// contact added after it. `count` and `meta.total` are the number of matching contacts.
    pub(super) fn list_contacts(&self, query: &[(String, String)], origin: &str, ok: u16) -> Reply {
        let limit = match query_value(query, "limit").map(str::trim) {
            None | Some("") => 20,
            Some(limit) => match limit.parse::<f64>() {
                Ok(n) if n > 100.0 => return unprocessable(vec!["limit must not be greater than 100".into()]),
                Ok(n) if n < 1.0 => return unprocessable(vec!["limit must not be less than 1".into()]),
                Ok(n) => n as usize,
                Err(_) => return unprocessable(vec![format!("limit {MSG_NUMBER}")]),
            },
        };
        let location = query_value(query, "locationId").unwrap_or_default();
        let text = query_value(query, "query").filter(|q| !q.trim().is_empty());
        let all: Vec<&Map<String, Value>> = self.in_location(location, text).collect();
        let after_id = query_value(query, "startAfterId").filter(|id| !id.is_empty());
        let after_ms = query_value(query, "startAfter").and_then(|ms| ms.trim().parse::<f64>().ok());
        let start = match (after_id.and_then(|id| all.iter().position(|c| str_field(c, "id") == Some(id))), after_ms) {
            (Some(at), _) => at + 1,
            (None, Some(ms)) => all.iter().position(|c| date_added_ms(c) as f64 > ms).unwrap_or(all.len()),
            (None, None) => 0,
        };
        let page: Vec<&Map<String, Value>> = all.iter().skip(start).take(limit).copied().collect();
        let current = start / limit + 1;
        let more = start + page.len() < all.len();
        let last = page.last();
        let next_url = match last {
            Some(last) if more => {
                let ms = date_added_ms(last).to_string();
                let mut pairs = vec![("locationId", location), ("startAfter", ms.as_str())];
                pairs.push(("startAfterId", str_field(last, "id").unwrap_or_default()));
                let limit_given = query_value(query, "limit");
                pairs.extend(limit_given.map(|l| ("limit", l)));
                pairs.extend(text.map(|q| ("query", q)));
                let pairs: Vec<(&str, String)> = pairs.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
                Value::String(format!("{origin}/contacts/{}", contacts_api::query_string(pairs.iter().map(|(k, v)| (*k, v.as_str())))))
            }
            _ => Value::Null,
        };
        Reply::new(
            ok,
            json!({
                "contacts": page,
                "count": all.len(),
                "meta": {
                    "total": all.len(),
                    "nextPageUrl": next_url,
                    "startAfterId": last.map_or(Value::Null, |c| c["id"].clone()),
                    "startAfter": last.map_or(Value::Null, |c| json!(date_added_ms(c))),
                    "currentPage": current,
                    "nextPage": if more { json!(current + 1) } else { Value::Null },
                    "prevPage": if current > 1 { json!(current - 1) } else { Value::Null },
                }
            }),
        )
    }

    /// `GET /contacts/business/{businessId}`: `skip`/`limit` paging (number strings, defaults
    /// "0"/"25") over the location's contacts with that `businessId`; `count` is all matches.
    pub(super) fn business_contacts(&self, business: &str, query: &[(String, String)], ok: u16) -> Reply {
        let number = |name: &str, default: usize| match query_value(query, name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| format!("{name} must be a number string")),
        };
        let (limit, skip) = match (number("limit", 25), number("skip", 0)) {
            (Ok(limit), Ok(skip)) => (limit, skip),
            (limit, skip) => return unprocessable(limit.err().into_iter().chain(skip.err()).collect()),
        };
        let location = query_value(query, "locationId").unwrap_or_default();
        let text = query_value(query, "query").filter(|q| !q.trim().is_empty());
        let all: Vec<&Map<String, Value>> = self.in_location(location, text).filter(|c| str_field(c, "businessId") == Some(business)).collect();
        let page: Vec<&Map<String, Value>> = all.iter().skip(skip).take(limit).copied().collect();
        Reply::new(ok, json!({ "contacts": page, "count": all.len() }))
    }

    /// Sets (or, with `null`, clears) `businessId` on each listed contact of the location.
    /// Ids that are unknown or in another location are skipped and left out of `ids`.
    pub(super) fn bulk_business(&mut self, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        let location = str_field(body, "locationId").unwrap_or_default();
        let business = body.get("businessId").cloned().unwrap_or(Value::Null);
        let mut updated = Vec::new();
        for id in body["ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let Some(index) = self.contact_index(id) else { continue };
            if str_field(&self.contacts[index], "locationId") != Some(location) {
                continue;
            }
            let mut fields = Map::new();
            fields.insert("businessId".into(), business.clone());
            merge(&mut self.contacts[index], fields);
            self.touch(index, now);
            if !updated.iter().any(|u| u == id) {
                updated.push(id.to_owned());
            }
        }
        Reply::new(ok, json!({ "success": true, "ids": updated }))
    }

    /// `POST /contacts/bulk/tags/update/{add|remove}`: one `responses` item per listed contact
    /// (duplicates included). Unknown contacts and contacts of another location are per-item
    /// errors counted in `errorCount`; the request itself succeeds.
    pub(super) fn bulk_tags(&mut self, kind: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        let remove_all = matches!(body.get("removeAllTags"), Some(Value::Bool(true))) || str_field(body, "removeAllTags") == Some("true");
        if remove_all && kind != "remove" {
            return unprocessable(vec!["removeAllTags can only be used with remove type".into()]);
        }
        let location = str_field(body, "locationId").unwrap_or_default();
        let tags: Vec<Value> = string_items(body, "tags");
        let mut responses = Vec::new();
        let mut errors = 0;
        for id in body["contacts"].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default();
            let index = match self.contact_index(id) {
                Some(index) if str_field(&self.contacts[index], "locationId") == Some(location) => index,
                found => {
                    errors += 1;
                    let message = if found.is_some() { "contact does not belong to location".to_owned() } else { format!("Contact with id {id} not found") };
                    responses.push(json!({ "contactId": id, "message": message, "type": "error" }));
                    continue;
                }
            };
            let old = contact_list(&self.contacts[index], "tags");
            let (new, added, removed) = if kind == "add" {
                let (new, added) = union(&old, &tags);
                (new, added, Vec::new())
            } else if remove_all {
                (Vec::new(), Vec::new(), old.clone())
            } else {
                let (new, removed) = difference(&old, &tags);
                (new, Vec::new(), removed)
            };
            self.contacts[index].insert("tags".into(), Value::Array(new));
            self.touch(index, now);
            responses.push(json!({
                "contactId": id,
                "message": "Tags updated",
                "type": "success",
                "oldTags": old,
                "tagsAdded": added,
                "tagsRemoved": removed,
            }));
        }
        Reply::new(ok, json!({ "succeded": true, "errorCount": errors, "responses": responses }))
    }

    /// Adds tags to a contact (keeping the existing ones, no duplicates) and answers with all of them.
    pub(super) fn add_tags(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "tags", body, true, now).map_or_else(|e| e, |(all, _)| Reply::new(ok, json!({ "tags": all })))
    }

    /// Removes tags from a contact and answers with the remaining ones.
    pub(super) fn remove_tags(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "tags", body, false, now).map_or_else(|e| e, |(all, _)| Reply::new(ok, json!({ "tags": all })))
    }

    pub(super) fn add_followers(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "followers", body, true, now)
            .map_or_else(|e| e, |(all, added)| Reply::new(ok, json!({ "followers": all, "followersAdded": added })))
    }

    pub(super) fn remove_followers(&mut self, contact_id: &str, body: &Map<String, Value>, ok: u16, now: &str) -> Reply {
        self.edit_list(contact_id, "followers", body, false, now)
            .map_or_else(|e| e, |(all, removed)| Reply::new(ok, json!({ "followers": all, "followersRemoved": removed })))
    }

    /// Adds (`add`) or removes the body's `field` strings to/from the contact's `field` list.
    /// Returns the new list and the values actually added or removed.
    fn edit_list(&mut self, contact_id: &str, field: &str, body: &Map<String, Value>, add: bool, now: &str) -> Result<(Vec<Value>, Vec<Value>), Reply> {
        let index = self.existing(contact_id)?;
        let old = contact_list(&self.contacts[index], field);
        let given = string_items(body, field);
        let (new, changed) = if add { union(&old, &given) } else { difference(&old, &given) };
        self.contacts[index].insert(field.to_owned(), Value::Array(new.clone()));
        self.touch(index, now);
        Ok((new, changed))
    }

    pub(super) fn create_note(&mut self, contact_id: &str, body: Map<String, Value>, ok: u16, now: &str) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut note = Map::new();
        note.insert("id".into(), Value::String(self.next_note_id()));
        note.insert("dateAdded".into(), Value::String(now.to_owned()));
        note.insert("contactId".into(), Value::String(contact_id.to_owned()));
        merge(&mut note, body);
        self.notes.push(note.clone());
        Reply::new(ok, json!({ "note": note }))
    }

    /// The notes or the tasks.
    fn children(&self, kind: Child) -> &Vec<Map<String, Value>> {
        match kind {
            Child::Note => &self.notes,
            Child::Task => &self.tasks,
        }
    }

    fn children_mut(&mut self, kind: Child) -> &mut Vec<Map<String, Value>> {
        match kind {
            Child::Note => &mut self.notes,
            Child::Task => &mut self.tasks,
        }
    }

    /// `get-all-notes` / `get-all-tasks`: the contact must exist.
    pub(super) fn all_children(&self, kind: Child, contact_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let items: Vec<&Map<String, Value>> = self.children(kind).iter().filter(|n| belongs_to(n, contact_id)).collect();
        Reply::new(ok, json!({ (kind.list_key()): items }))
    }

    /// The note or task `id` of contact `contact_id`: the contact must exist, and the item must belong to it.
    fn child_index(&self, kind: Child, contact_id: &str, id: &str) -> Result<usize, Reply> {
        self.existing(contact_id)?;
        self.children(kind)
            .iter()
            .position(|n| belongs_to(n, contact_id) && str_field(n, "id") == Some(id))
            .ok_or_else(|| Reply::error(400, format!("{} with id {id} not found", kind.noun())))
    }

    pub(super) fn get_child(&self, kind: Child, contact_id: &str, id: &str, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => Reply::new(ok, json!({ (kind.item_key()): self.children(kind)[index] })),
            Err(reply) => reply,
        }
    }

    /// `update-note`, and both `update-task` (any of the five fields) and `update-task-completed` (`{completed}`).
    pub(super) fn update_child(&mut self, kind: Child, contact_id: &str, id: &str, body: Map<String, Value>, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => {
                let item = &mut self.children_mut(kind)[index];
                merge(item, body);
                Reply::new(ok, json!({ (kind.item_key()): item }))
            }
            Err(reply) => reply,
        }
    }

    pub(super) fn delete_child(&mut self, kind: Child, contact_id: &str, id: &str, ok: u16) -> Reply {
        match self.child_index(kind, contact_id, id) {
            Ok(index) => {
                self.children_mut(kind).remove(index);
                Reply::succeded(ok)
            }
            Err(reply) => reply,
        }
    }

    /// A task is `TaskSchema`: `{id, title, body?, assignedTo?, dueDate, completed, contactId}`.
    pub(super) fn create_task(&mut self, contact_id: &str, body: Map<String, Value>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut task = Map::new();
        task.insert("id".into(), Value::String(self.next_task_id()));
        task.insert("contactId".into(), Value::String(contact_id.to_owned()));
        merge(&mut task, body);
        self.tasks.push(task.clone());
        Reply::new(ok, json!({ "task": task }))
    }

    pub(super) fn appointments_of(&self, contact_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let events: Vec<&Map<String, Value>> = self.appointments.iter().filter(|e| belongs_to(e, contact_id)).collect();
        Reply::new(ok, json!({ "events": events }))
    }

    /// Enrolling twice is harmless: the membership is kept once.
    pub(super) fn add_to_campaign(&mut self, contact_id: &str, campaign_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        if !self.campaigns.iter().any(|(c, k)| c == contact_id && k == campaign_id) {
            self.campaigns.push((contact_id.to_owned(), campaign_id.to_owned()));
        }
        Reply::succeded(ok)
    }

    /// One campaign, or (`None`) all of them. Removing a membership that does not exist succeeds.
    pub(super) fn remove_from_campaigns(&mut self, contact_id: &str, campaign_id: Option<&str>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        self.campaigns.retain(|(c, k)| !(c == contact_id && campaign_id.is_none_or(|id| id == k)));
        Reply::succeded(ok)
    }

    /// Enrolling again replaces the stored `eventStartTime`.
    pub(super) fn add_to_workflow(&mut self, contact_id: &str, workflow_id: &str, body: &Map<String, Value>, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        let mut enrolment = Map::new();
        enrolment.insert("workflowId".into(), Value::String(workflow_id.to_owned()));
        if let Some(start) = body.get("eventStartTime").filter(|v| !v.is_null()) {
            enrolment.insert("eventStartTime".into(), start.clone());
        }
        match self.workflows.iter_mut().find(|(c, e)| c == contact_id && str_field(e, "workflowId") == Some(workflow_id)) {
            Some((_, existing)) => *existing = enrolment,
            None => self.workflows.push((contact_id.to_owned(), enrolment)),
        }
        Reply::succeded(ok)
    }

    /// Removing a membership that does not exist succeeds.
    pub(super) fn remove_from_workflow(&mut self, contact_id: &str, workflow_id: &str, ok: u16) -> Reply {
        if let Err(reply) = self.existing(contact_id) {
            return reply;
        }
        self.workflows.retain(|(c, e)| !(c == contact_id && str_field(e, "workflowId") == Some(workflow_id)));
        Reply::succeded(ok)
    }
}

/// The two kinds of items a contact owns that the API reads, updates and deletes alike.
#[derive(Clone, Copy)]
pub(super) enum Child {
    Note,
    Task,
}

impl Child {
    fn list_key(self) -> &'static str {
        match self {
            Child::Note => "notes",
            Child::Task => "tasks",
        }
    }

    fn item_key(self) -> &'static str {
        match self {
            Child::Note => "note",
            Child::Task => "task",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Child::Note => "Note",
            Child::Task => "Task",
        }
    }
}
