//! What the request log must not keep: the values of secret fields, in the query and in the
//! body (JSON at any depth, or a form).

use axum::http::HeaderMap;
use serde_json::Value;

/// Fields whose values are secrets: the webhook secret, the client secret, the authorization
/// code, the PKCE verifier, the refresh token.
pub const SECRET_FIELDS: [&str; 5] = ["secret", "client_secret", "code", "code_verifier", "refresh_token"];
/// What a secret's value becomes.
pub const REDACTED: &str = "REDACTED";

/// The path and query as received, with the secret parameters' values replaced (the others
/// left exactly as they were sent).
pub fn path_and_query(raw: &str) -> String {
    let Some((path, query)) = raw.split_once('?') else {
        return raw.to_string();
    };
    let pieces: Vec<String> = query
        .split('&')
        .map(|piece| {
            let name = piece.split('=').next().unwrap_or_default();
            let decoded = url::form_urlencoded::parse(name.as_bytes()).next().map(|(n, _)| n.into_owned()).unwrap_or_default();
            if SECRET_FIELDS.contains(&decoded.as_str()) {
                format!("{name}={REDACTED}")
            } else {
                piece.to_string()
            }
        })
        .collect();
    format!("{path}?{}", pieces.join("&"))
}

/// The body for the log: JSON re-serialised with secrets replaced, a form likewise, anything
/// else by its size only.
pub fn body(headers: &HeaderMap, bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    if let Ok(mut json) = serde_json::from_slice::<Value>(bytes) {
        redact_json(&mut json);
        return Some(json.to_string());
    }
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if form {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in url::form_urlencoded::parse(bytes) {
            out.append_pair(&name, if SECRET_FIELDS.contains(&name.as_ref()) { REDACTED } else { &value });
        }
        return Some(out.finish());
    }
    Some(format!("<{} bytes>", bytes.len()))
}

fn redact_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&name.as_str()) && !field.is_null() {
                    *field = Value::String(REDACTED.into());
                } else {
                    redact_json(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}
