//! What the plugin may reach, and with which credential: a fail-closed allowlist of origins
//! (scheme, host, port, judged from the request URI, never from a `Host` header), the
//! credential injected for each, the deadline, and the rate limiter of each origin.

use super::breaker::CircuitBreaker;
use super::limiter::RateLimiter;
use crate::capability::secret::Secret;
use crate::oauth::OAuthTokens;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Scheme, host and port: what the allowlist compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses `http(s)://host[:port]` (a path, if any, is ignored).
    pub fn parse(url: &str) -> anyhow::Result<Origin> {
        let uri: http::Uri = url.parse().map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
        Origin::of(&uri).ok_or_else(|| anyhow::anyhow!("{url:?} is not an http(s) origin"))
    }

    pub fn of(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        Some(Origin { host: uri.host()?.to_ascii_lowercase(), port: uri.port_u16().unwrap_or(default_port), scheme })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// What the plugin may reach, and with which credential.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    pub allowed: Vec<Origin>,
    /// `Authorization: Bearer <secret>` added to requests for this origin.
    pub credentials: Vec<(Origin, Secret)>,
    /// Deadline for one request, from sending to the response head.
    pub timeout: Duration,
    /// Deadline for the connection (the plugin may ask for less); at most `timeout`.
    pub connect_timeout: Duration,
    /// Per origin; shared by every runtime built from the same settings (one location, one
    /// credential).
    pub rate_limiters: Vec<(Origin, Arc<RateLimiter>)>,
    /// Limits on some requests of an origin, on top of its rate limiter: the first that applies
    /// to a request is waited for (see [`RouteLimit`]).
    pub route_limits: Vec<RouteLimit>,
    /// Per origin, shared like the rate limiters: an origin that stops answering fails
    /// requests at once for a while (see `breaker`).
    pub breakers: Vec<(Origin, Arc<CircuitBreaker>)>,
    /// OAuth tokens for this origin, in place of a static credential.
    pub oauth: Option<(Origin, Arc<OAuthTokens>)>,
}

/// A limit an API sets on one kind of request (Dialpad's contact creates: 100 a minute per
/// company), kept by waiting rather than by being answered 429. Shared like the rate limiters.
#[derive(Clone, Debug)]
pub struct RouteLimit {
    pub origin: Origin,
    /// Upper case, as `http::Method` prints them.
    pub methods: Vec<&'static str>,
    /// The request path it applies to, exactly (the query aside; a trailing `/` is the same path).
    pub path: &'static str,
    pub limiter: Arc<RateLimiter>,
    /// The longest a request waits for a place: past it the request fails unsent, as a
    /// transport error the inbox retries later.
    pub max_wait: Duration,
    /// How the failure names the limit, e.g. `Dialpad's contact-create limit (100 per 60 s)`.
    pub name: &'static str,
}

impl RouteLimit {
    pub fn applies(&self, origin: &Origin, method: &str, path: &str) -> bool {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        self.origin == *origin && self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) && path == self.path
    }
}

impl OutboundPolicy {
    pub(super) fn credential_for(&self, origin: &Origin) -> Option<&Secret> {
        self.credentials.iter().find(|(o, _)| o == origin).map(|(_, s)| s)
    }

    pub(super) fn breaker_for(&self, origin: &Origin) -> Option<&Arc<CircuitBreaker>> {
        self.breakers.iter().find(|(o, _)| o == origin).map(|(_, b)| b)
    }

    pub(super) fn route_limit_for(&self, origin: &Origin, method: &str, path: &str) -> Option<&RouteLimit> {
        self.route_limits.iter().find(|limit| limit.applies(origin, method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Origin::parse("https://Services.LeadConnectorHQ.com").unwrap();
        assert_eq!(a, Origin::parse("https://services.leadconnectorhq.com:443/contacts/").unwrap());
        assert_ne!(a, Origin::parse("http://services.leadconnectorhq.com").unwrap());
        assert_ne!(a, Origin::parse("https://services.leadconnectorhq.com.evil.test").unwrap());
        assert!(Origin::parse("ftp://x").is_err());
    }

    #[test]
    fn a_route_limit_applies_to_its_methods_and_path_at_its_origin_only() {
        let dialpad = Origin::parse("https://dialpad.com").unwrap();
        let limit = RouteLimit {
            origin: dialpad.clone(),
            methods: vec!["POST", "PUT"],
            path: "/api/v2/contacts",
            limiter: Arc::new(RateLimiter::dialpad_contact_creates()),
            max_wait: Duration::from_secs(60),
            name: "test",
        };
        for (method, path) in [("POST", "/api/v2/contacts"), ("PUT", "/api/v2/contacts"), ("post", "/api/v2/contacts/")] {
            assert!(limit.applies(&dialpad, method, path), "{method} {path}");
        }
        // Updates, reads, deletes and screen pops are not contact creates.
        for (method, path) in [
            ("PATCH", "/api/v2/contacts/5"),
            ("GET", "/api/v2/contacts"),
            ("DELETE", "/api/v2/contacts/5"),
            ("POST", "/api/v2/contacts/5"),
            ("POST", "/api/v2/users/7/screenpop"),
            ("POST", "/api/v2/contactsx"),
        ] {
            assert!(!limit.applies(&dialpad, method, path), "{method} {path}");
        }
        assert!(!limit.applies(&Origin::parse("https://services.leadconnectorhq.com").unwrap(), "POST", "/api/v2/contacts"));
    }
}
