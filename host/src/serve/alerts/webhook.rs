//! Alerts to a webhook: one JSON POST per message, in the shape Slack's and Microsoft Teams'
//! incoming webhooks take. Sent with the host's own client (`connect::http`, wasmtime-wasi-http's
//! hyper and rustls with the webpki roots), so https needs nothing more.

use super::message::Notice;
use std::time::Duration;

/// The longest one message may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Posts `notice` to `url`; an answer other than 2xx is a failure.
pub fn post(runtime: &tokio::runtime::Runtime, url: &url::Url, notice: &Notice) -> Result<(), String> {
    let body = notice.json().to_string();
    let request = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::USER_AGENT, concat!("dialpad-ghl/", env!("CARGO_PKG_VERSION")))
        .body(crate::connect::http::body(body))
        .map_err(|e| e.to_string())?;
    // The URL's path is the credential: errors name the host only.
    let what = super::config::webhook_host(url);
    let answer = runtime.block_on(crate::connect::http::send(request, TIMEOUT, &what))?;
    if (200..300).contains(&answer.status) {
        Ok(())
    } else {
        let said: String = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
        Err(format!("{what} answered {}: {}", answer.status, said.trim()))
    }
}
