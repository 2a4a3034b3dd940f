//! The operation tables, one per API, all of one shape and made by one generator (`build.rs`):
//! HighLevel's Contacts API (v2, `Version: 2021-07-28`, all 32 operations: [`OPERATIONS`]),
//! and the operations of HighLevel's Conversations ([`CONVERSATIONS`]) and Users ([`USERS`])
//! APIs and of Dialpad's API ([`DIALPAD`]) that the sync uses.
//!
//! Everything that needs to know an operation's method, path, scope or success status reads it
//! from these tables: the plugin's client builds requests from them, the mocks route requests
//! through [`match_path`] / [`match_path_in`] over them, and the catalog lists them. Tests check
//! each one for one against its official spec (`../shared/reference/`).

/// The `Version` header every Contacts operation requires.
pub const API_VERSION_HEADER: &str = "2021-07-28";
/// HighLevel's production API origin.
pub const DEFAULT_API_BASE: &str = "https://services.leadconnectorhq.com";

/// The `Version` header of the Conversations API.
pub const CONVERSATIONS_VERSION_HEADER: &str = "2021-04-15";

/// Which API an operation belongs to: where it is sent, with which `Version` header and
/// which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Contacts,
    Conversations,
    Users,
    Dialpad,
}

impl Api {
    /// The `Version` header the API requires (Dialpad's has none).
    pub const fn version_header(self) -> Option<&'static str> {
        match self {
            Api::Contacts | Api::Users => Some(API_VERSION_HEADER),
            Api::Conversations => Some(CONVERSATIONS_VERSION_HEADER),
            Api::Dialpad => None,
        }
    }

    /// True for HighLevel's APIs (one origin, one credential).
    pub const fn is_highlevel(self) -> bool {
        !matches!(self, Api::Dialpad)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Api::Contacts => "highlevel-contacts",
            Api::Conversations => "highlevel-conversations",
            Api::Users => "highlevel-users",
            Api::Dialpad => "dialpad",
        }
    }
}

/// The grant an operation needs: a HighLevel OAuth scope, or (for Dialpad's API) the Dialpad
/// credential the host holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    ContactsReadonly,
    ContactsWrite,
    ConversationsReadonly,
    ConversationsWrite,
    ConversationsMessageReadonly,
    ConversationsMessageWrite,
    UsersReadonly,
    /// Dialpad's API key or OAuth token: not a HighLevel grant, never required of one.
    Dialpad,
}

impl Scope {
    /// Every HighLevel scope, for parsing and listing.
    pub const HIGHLEVEL: &[Scope] = &[
        Scope::ContactsReadonly,
        Scope::ContactsWrite,
        Scope::ConversationsReadonly,
        Scope::ConversationsWrite,
        Scope::ConversationsMessageReadonly,
        Scope::ConversationsMessageWrite,
        Scope::UsersReadonly,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::ContactsReadonly => "contacts.readonly",
            Scope::ContactsWrite => "contacts.write",
            Scope::ConversationsReadonly => "conversations.readonly",
            Scope::ConversationsWrite => "conversations.write",
            Scope::ConversationsMessageReadonly => "conversations/message.readonly",
            Scope::ConversationsMessageWrite => "conversations/message.write",
            Scope::UsersReadonly => "users.readonly",
            Scope::Dialpad => "dialpad",
        }
    }

    /// A HighLevel scope by name (`dialpad` is not one).
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::HIGHLEVEL.iter().copied().find(|scope| scope.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }
}

/// The official spec, verbatim (`spec/SOURCE.txt` says where it comes from).
pub const SPEC_JSON: &str = include_str!("../spec/apps/contacts.json");
/// The error schemas the spec refers to as `../common/common-schemas.json`.
pub const COMMON_SCHEMAS_JSON: &str = include_str!("../spec/common/common-schemas.json");

/// One operation of an API, as its official spec declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The spec's `operationId`.
    pub id: &'static str,
    pub api: Api,
    pub method: Method,
    /// Path template with `{param}` segments, exactly as in the spec.
    pub path: &'static str,
    /// The scope the spec's `security` block names. The two bulk operations declare none in
    /// the spec; they write, so the plugin asks for `contacts.write` (see `scope_declared_in_spec`).
    pub scope: Scope,
    /// False for the two bulk operations whose spec entry has no `security` block.
    pub scope_declared_in_spec: bool,
    /// The success status the spec declares.
    pub success_status: u16,
    pub summary: &'static str,
    pub deprecated: bool,
    /// Query parameters (the `Version` header is common to all operations).
    pub query: &'static [Param],
    /// The JSON request body, if the spec declares one (DELETE included: tags, followers, workflow).
    pub body: Option<&'static Body>,
}

/// The JSON type a value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Number,
    Boolean,
    Array,
    Object,
}

impl ValueKind {
    pub const fn json_schema_type(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
            ValueKind::Array => "array",
            ValueKind::Object => "object",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub kind: ValueKind,
}

/// A request body schema: its top-level properties, as the server's whitelist checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// The schema's name in the spec (e.g. `CreateContactDto`).
    pub schema: &'static str,
    pub required: bool,
    /// True when the spec lists no properties (search, campaign): anything is passed through.
    pub open: bool,
    pub properties: &'static [Property],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    pub name: &'static str,
    pub kind: ValueKind,
    /// A second accepted type: the one of the spec's example when it differs from the
    /// declared type (`dateOfBirth` is declared an object, and sent as a string).
    pub also: Option<ValueKind>,
    pub nullable: bool,
    pub required: bool,
}

impl Property {
    pub fn accepts(&self, value: &ValueKind) -> bool {
        self.kind == *value || self.also == Some(*value)
    }
}

include!(concat!(env!("OUT_DIR"), "/operations.rs"));

/// Every table.
pub const TABLES: &[&[Operation]] = &[OPERATIONS, CONVERSATIONS, USERS, DIALPAD];

/// Looks a Contacts operation up by its `operationId` (the actions catalog's operations).
pub fn operation(id: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.id == id)
}

/// Looks an operation of any table up by its `operationId` (ids are unique across tables).
pub fn any_operation(id: &str) -> Option<&'static Operation> {
    TABLES.iter().flat_map(|t| t.iter()).find(|op| op.id == id)
}

/// Like [`any_operation`], for ids the caller writes as literals: a typo is a bug, not input.
pub fn op(id: &str) -> &'static Operation {
    any_operation(id).unwrap_or_else(|| panic!("no operation with id {id:?}"))
}

impl Operation {
    pub fn has_body(&self) -> bool {
        self.body.is_some()
    }

    /// Names of the `{param}` segments of the path, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// Fills the path template. `value` is asked for each `{param}`; the values are
    /// percent-encoded as path segments. Returns the name of the first missing parameter.
    pub fn render_path<'a>(&self, mut value: impl FnMut(&str) -> Option<&'a str>) -> Result<String, &'static str> {
        let mut out = String::with_capacity(self.path.len() + 24);
        for (i, seg) in self.path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let name: &'static str = self.path_params().find(|p| *p == name).unwrap_or("?");
                    let v = value(name).filter(|v| !v.is_empty()).ok_or(name)?;
                    out.push_str(&percent_encode(v));
                }
                None => out.push_str(seg),
            }
        }
        Ok(out)
    }
}

/// The result of routing a request path through the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub operation: &'static Operation,
    /// `(param, value)` pairs, percent-decoded.
    pub params: Vec<(&'static str, String)>,
}

/// Routes `method path` (path without query) to an operation of the table. Literal segments
/// win over `{param}` segments, so `/contacts/search/duplicate` is never read as a contact id.
/// A trailing slash is not significant (`/contacts` and `/contacts/` are the same operation).
pub fn match_path(method: Method, path: &str) -> Option<Matched> {
    match_path_in(OPERATIONS, method, path)
}

/// [`match_path`] over one table.
pub fn match_path_in(table: &'static [Operation], method: Method, path: &str) -> Option<Matched> {
    let want: Vec<&str> = trim_slash(path).split('/').collect();
    let mut best: Option<(usize, Matched)> = None;
    for op in table.iter().filter(|op| op.method == method) {
        let tmpl: Vec<&str> = trim_slash(op.path).split('/').collect();
        if tmpl.len() != want.len() {
            continue;
        }
        let mut literals = 0;
        let mut params = Vec::new();
        let fits = tmpl.iter().zip(&want).all(|(t, w)| match t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !w.is_empty() => {
                let name: &'static str = op.path_params().find(|p| *p == name).unwrap_or("?");
                params.push((name, percent_decode(w)));
                true
            }
            Some(_) => false,
            None => {
                literals += 1;
                t == w
            }
        });
        if fits && best.as_ref().is_none_or(|(score, _)| literals > *score) {
            best = Some((literals, Matched { operation: op, params }));
        }
    }
    best.map(|(_, m)| m)
}

fn trim_slash(path: &str) -> &str {
    let p = path.strip_suffix('/').unwrap_or(path);
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters. Used for path segments and
/// query values alike, so `+` in a phone number always travels as `%2B` (HighLevel reads a
/// literal `+` in a query string as a space).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; `+` is kept as is (it is a plus in a path, see [`decode_query_value`]).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes one query-string value the way HighLevel's server does: `+` means space.
pub fn decode_query_value(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Builds `?k=v&…` with every value percent-encoded; empty when there are no pairs.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_params() {
        let m = match_path(Method::Get, "/contacts/search/duplicate").unwrap();
        assert_eq!(m.operation.id, "get-duplicate-contact");
        let m = match_path(Method::Delete, "/contacts/abc/campaigns/removeAll").unwrap();
        assert_eq!(m.operation.id, "remove-contact-from-every-campaign");
        let m = match_path(Method::Delete, "/contacts/abc/campaigns/c1").unwrap();
        assert_eq!(m.operation.id, "remove-contact-from-campaign");
        assert_eq!(m.params, vec![("contactId", "abc".to_string()), ("campaignId", "c1".to_string())]);
    }

    #[test]
    fn trailing_slash_is_not_significant() {
        assert_eq!(match_path(Method::Post, "/contacts").unwrap().operation.id, "create-contact");
        assert_eq!(match_path(Method::Post, "/contacts/").unwrap().operation.id, "create-contact");
        assert_eq!(match_path(Method::Get, "/contacts/x1/").unwrap().operation.id, "get-contact");
        assert!(match_path(Method::Put, "/contacts/").is_none());
    }

    #[test]
    fn render_path_encodes_and_reports_missing_params() {
        let op = op("update-note");
        let p = op.render_path(|n| match n {
            "contactId" => Some("c 1"),
            "id" => Some("n/2"),
            _ => None,
        });
        assert_eq!(p.unwrap(), "/contacts/c%201/notes/n%2F2");
        assert_eq!(op.render_path(|_| None), Err("contactId"));
    }

    #[test]
    fn plus_travels_as_percent_2b() {
        assert_eq!(query_string([("number", "+13125550187")]), "?number=%2B13125550187");
        assert_eq!(decode_query_value("%2B1312"), "+1312");
        assert_eq!(decode_query_value("+1312"), " 1312");
    }

    /// The embedded spec is the official one, byte for byte.
    #[test]
    fn the_embedded_spec_is_the_official_one_verbatim() {
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/ghl/");
        assert_eq!(SPEC_JSON, std::fs::read_to_string(format!("{shared}contacts.openapi.json")).unwrap());
        assert_eq!(COMMON_SCHEMAS_JSON, std::fs::read_to_string(format!("{shared}common/common-schemas.json")).unwrap());
    }

    /// The table and the official spec agree one for one: ids, methods, paths, scopes, success
    /// statuses and whether a body is declared.
    #[test]
    fn table_matches_the_official_spec() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/ghl/contacts.openapi.json");
        let spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("../shared beside the clone")).unwrap();
        let mut from_spec = Vec::new();
        for (p, ops) in spec["paths"].as_object().unwrap() {
            for (m, o) in ops.as_object().unwrap() {
                let scope = o["security"][0]["bearer"][0].as_str().map(str::to_string);
                let ok: Vec<u16> = o["responses"].as_object().unwrap().keys().filter(|c| c.starts_with('2')).map(|c| c.parse().unwrap()).collect();
                from_spec.push((
                    o["operationId"].as_str().unwrap().to_string(),
                    m.to_uppercase(),
                    p.clone(),
                    scope,
                    ok[0],
                    o.get("requestBody").is_some(),
                    o["deprecated"].as_bool().unwrap_or(false),
                ));
            }
        }
        from_spec.sort();
        let mut ours: Vec<_> = OPERATIONS
            .iter()
            .map(|o| {
                (
                    o.id.to_string(),
                    o.method.as_str().to_string(),
                    o.path.to_string(),
                    o.scope_declared_in_spec.then(|| o.scope.as_str().to_string()),
                    o.success_status,
                    o.has_body(),
                    o.deprecated,
                )
            })
            .collect();
        ours.sort();
        assert_eq!(ours, from_spec);
        assert_eq!(OPERATIONS.len(), 32);
    }

    /// The other tables: each entry is its spec's operation (method, path, success status,
    /// whether a body is declared), ids are unique across tables, and the embedded copies are
    /// the official specs byte for byte.
    #[test]
    fn the_other_tables_match_their_specs() {
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/");
        let local = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/");
        for (table, official, copy) in [
            (CONVERSATIONS, "ghl/conversations.openapi.json", "apps/conversations.json"),
            (USERS, "ghl/users.openapi.json", "apps/users.json"),
            (DIALPAD, "dialpad/dialpad_api_spec.json", "dialpad/dialpad_api_spec.json"),
        ] {
            let text = std::fs::read_to_string(format!("{shared}{official}")).unwrap();
            assert_eq!(text, std::fs::read_to_string(format!("{local}{copy}")).unwrap(), "{copy} is not the official spec verbatim");
            let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(!table.is_empty());
            for op in table {
                let (path, method) = spec["paths"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .flat_map(|(p, ops)| ops.as_object().unwrap().iter().map(move |(m, o)| (p, m, o)))
                    .find(|(_, _, o)| o["operationId"] == op.id)
                    .map(|(p, m, o)| ((p.clone(), o.clone()), m.to_uppercase()))
                    .unwrap_or_else(|| panic!("{} is not in {official}", op.id));
                assert_eq!((op.path, op.method.as_str()), (path.0.as_str(), method.as_str()), "{}", op.id);
                assert_eq!(op.has_body(), path.1.get("requestBody").is_some(), "{}", op.id);
                assert!(path.1["responses"].get(op.success_status.to_string()).is_some(), "{}", op.id);
            }
        }
        let mut ids: Vec<&str> = TABLES.iter().flat_map(|t| t.iter().map(|o| o.id)).collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "an operation id appears in two tables");
        assert_eq!(op("add-an-inbound-message").api.version_header(), Some("2021-04-15"));
        assert_eq!(op("screen_pop.initiate").scope, Scope::Dialpad);
        assert_eq!(op("add-message-attachments").scope, Scope::ConversationsMessageWrite);
        assert_eq!(match_path_in(DIALPAD, Method::Post, "/api/v2/users/42/screenpop").unwrap().params, vec![("id", "42".to_string())]);
    }
}
