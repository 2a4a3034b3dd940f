//! HighLevel's Users API as the sync uses it (`contacts_api::USERS`, `Version: 2021-07-28`,
//! scope `users.readonly`): `GET /users/?locationId=` → `LocationSuccessfulResponseDto`,
//! `{users: [UserSchema…]}`. The API cannot create users; tests seed them
//! ([`super::MockServer::add_user`]), and a seeded user is a user of every location (the
//! mock has no agency to hold them), so `roles.locationIds` names the location asked about.

use serde_json::{json, Map, Value};

/// A seeded user, as stored.
pub(super) fn user(id: &str, first: &str, last: &str, email: &str) -> Map<String, Value> {
    let name = [first, last].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
    let user = json!({
        "id": id,
        "name": name,
        "firstName": first,
        "lastName": last,
        "email": email,
        "phone": "",
        "extension": "",
        "deleted": false,
    });
    match user {
        Value::Object(user) => user,
        _ => unreachable!("a json! object"),
    }
}

/// Every user, as the listing of `location` shows them.
pub(super) fn listed(users: &[Map<String, Value>], location: &str) -> Value {
    let users: Vec<Value> = users
        .iter()
        .map(|user| {
            let mut user = user.clone();
            user.insert("roles".into(), json!({ "type": "account", "role": "user", "locationIds": [location], "restrictSubAccount": false }));
            Value::Object(user)
        })
        .collect();
    json!({ "users": users })
}
