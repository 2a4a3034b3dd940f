//! The company's users (`GET /api/v2/users`, operation `users.list`): `UserProto`s, filtered by
//! `email` (any of a user's, case-insensitive), `number` and `state`, paged in id order.
//! Screen pops and click-to-call need a user of these.
//!
//! Seeded with the agents of the fixtures (`shared/fixtures/dialpad/`): Maya Patel, the
//! `target` of the inbound calls, and Jordan Lee, of the outbound one. Tests add more with
//! [`super::DialpadMock::add_user`]. Ids are int64, written as strings as the spec's
//! examples write them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::reply::{page, Paging, Params, Reply};

/// The office of the fixtures' agents.
const FIXTURE_OFFICE: i64 = 5_180_477_381_230_592;
/// The fixtures' agents: id, first and last name, email, phone.
const FIXTURE_USERS: [(i64, &str, &str, &str, &str); 2] = [
    (5_766_401_227_931_648, "Maya", "Patel", "maya.patel@example.com", "+14155550142"),
    (6_231_954_071_076_864, "Jordan", "Lee", "jordan.lee@example.com", "+16505550123"),
];

/// Users by id.
pub(super) struct Users(pub(super) BTreeMap<i64, Value>);

impl Default for Users {
    fn default() -> Users {
        let mut users = Users(BTreeMap::new());
        for (id, first, last, email, phone) in FIXTURE_USERS {
            users.add(id, first, last, email);
            users.0.get_mut(&id).expect("just added")["phone_numbers"] = json!([phone]);
        }
        users
    }
}

impl Users {
    /// Adds (or replaces) an active user of the fixtures' office.
    pub(super) fn add(&mut self, id: i64, first: &str, last: &str, email: &str) {
        let user = json!({
            "id": id.to_string(),
            "first_name": first,
            "last_name": last,
            "display_name": format!("{first} {last}").trim(),
            "emails": [email],
            "phone_numbers": [],
            "office_id": FIXTURE_OFFICE.to_string(),
            "state": "active",
            "is_admin": false,
            "is_available": true,
            "is_on_duty": false,
            "timezone": "US/Pacific",
        });
        self.0.insert(id, user);
    }

    pub(super) fn exists(&self, id: i64) -> bool {
        self.0.contains_key(&id)
    }

    /// `GET /api/v2/users`.
    pub(super) fn list(&self, params: &Params, paging: Paging) -> Reply {
        let email = params.get("email").map(str::to_lowercase);
        let number = params.get("number");
        let state = params.get("state");
        let has = |user: &Value, field: &str, wanted: &str, fold: bool| {
            user[field].as_array().into_iter().flatten().filter_map(Value::as_str).any(|v| if fold { v.to_lowercase() == wanted } else { v == wanted })
        };
        let items = self
            .0
            .iter()
            .filter(|(_, u)| email.as_deref().is_none_or(|e| has(u, "emails", e, true)))
            .filter(|(_, u)| number.is_none_or(|n| has(u, "phone_numbers", n, false)))
            .filter(|(_, u)| state.is_none_or(|s| u["state"] == s))
            .map(|(id, u)| (*id, u.clone()))
            .collect();
        page(items, "users", params.get("cursor"), paging)
    }
}
