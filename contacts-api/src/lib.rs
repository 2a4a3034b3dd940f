//! The operation tables, one per API, all of one shape and made by one generator (`build.rs`):
//! every operation of HighLevel's Contacts API (v2, `Version: 2021-07-28`, 32: [`OPERATIONS`]),
//! Conversations API (29: [`CONVERSATIONS`]) and Users API (7: [`USERS`]), and of Dialpad's
//! API (193: [`DIALPAD`]). Parameter and body schemas are [`shape`]s, a compact text form
//! from which JSON Schemas are derived when asked for.
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

impl Scope {
    /// A scope by name: HighLevel's (`contacts.write`) or Dialpad's (`calls:list`).
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|scope| scope.as_str() == s)
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
    /// The scope the spec's `security` block names. Operations whose entry names none get
    /// their family's (see `scope_declared_in_spec`); Dialpad's, [`Scope::Dialpad`] (its
    /// credential alone) unless they name one of Dialpad's scopes.
    pub scope: Scope,
    /// False where the spec's entry has no `security` block.
    pub scope_declared_in_spec: bool,
    /// The success status the spec declares.
    pub success_status: u16,
    pub summary: &'static str,
    pub deprecated: bool,
    /// Path and query parameters, in the spec's order (HighLevel's `Version` header is common
    /// to all its operations and not listed).
    pub params: &'static [Param],
    /// The request body, if the spec declares one (DELETE included: tags, followers, workflow).
    pub body: Option<&'static Body>,
}

pub use shape::ValueKind;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Path,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub at: At,
    pub required: bool,
    /// Its schema, as a [`shape`].
    pub shape: &'static str,
}

impl Param {
    pub fn kind(&self) -> Option<ValueKind> {
        shape::parse(self.shape).kind(&[])
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Json,
    /// `multipart/form-data` (Conversations' file upload).
    Multipart,
}

/// A request body schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// The schema's name in the spec (e.g. `CreateContactDto`); empty when declared inline.
    pub schema: &'static str,
    pub required: bool,
    pub content: Content,
    /// The body's schema, as a [`shape`] whose references go to its API's pool.
    pub shape: &'static str,
}

/// A top-level property of a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: &'static str,
    pub required: bool,
    pub shape: shape::Shape,
}

impl Body {
    /// The top-level properties; empty when the schema lists none (anything is passed through).
    pub fn properties(&self, api: Api) -> Vec<Property> {
        shape::parse(self.shape).fields(api.pool()).into_iter().map(|f| Property { name: f.name, required: f.required, shape: f.shape }).collect()
    }

    /// True when the spec lists no properties (search, campaign): anything is passed through.
    pub fn open(&self, api: Api) -> bool {
        self.properties(api).is_empty()
    }
}

impl Property {
    /// The JSON type it asks for (of several, the declared one; `None`: anything).
    pub fn kind(&self, api: Api) -> Option<ValueKind> {
        self.shape.kind(api.pool())
    }

    /// True when null is accepted.
    pub fn nullable(&self) -> bool {
        matches!(self.shape, shape::Shape::Nullable(_))
    }

    /// True when a value of this JSON type can fit (`dateOfBirth` is declared an object, and
    /// sent as a string).
    pub fn accepts(&self, api: Api, kind: ValueKind) -> bool {
        fn accepts(shape: &shape::Shape, pool: shape::Pool, kind: ValueKind) -> bool {
            match shape.resolved(pool) {
                shape::Shape::OneOf(options) => options.iter().any(|o| accepts(o, pool, kind)),
                shape::Shape::Any => true,
                other => other.kind(pool) == Some(kind),
            }
        }
        accepts(&self.shape, api.pool(), kind)
    }
}

pub mod shape;

include!(concat!(env!("OUT_DIR"), "/operations.rs"));

/// Every table.
pub static TABLES: &[&[Operation]] = &[OPERATIONS, CONVERSATIONS, USERS, DIALPAD];

impl Api {
    /// Every API, in the order of [`TABLES`].
    pub const ALL: [Api; 4] = [Api::Contacts, Api::Conversations, Api::Users, Api::Dialpad];

    /// The API's operations.
    pub const fn table(self) -> &'static [Operation] {
        match self {
            Api::Contacts => OPERATIONS,
            Api::Conversations => CONVERSATIONS,
            Api::Users => USERS,
            Api::Dialpad => DIALPAD,
        }
    }

    /// The named schemas its operations' shapes refer to.
    pub const fn pool(self) -> shape::Pool {
        match self {
            Api::Contacts => CONTACTS_SHAPES,
            Api::Conversations => CONVERSATIONS_SHAPES,
            Api::Users => USERS_SHAPES,
            Api::Dialpad => DIALPAD_SHAPES,
        }
    }
}

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

    /// The query parameters.
    pub fn query(&self) -> impl Iterator<Item = &'static Param> {
        self.params.iter().filter(|p| p.at == At::Query)
    }

    /// The top-level properties of the body (none without one).
    pub fn body_properties(&self) -> Vec<Property> {
        self.body.map(|b| b.properties(self.api)).unwrap_or_default()
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

    /// Each table and its official spec agree one for one: the same operations (count and
    /// ids), methods, paths, declared scopes, success statuses, bodies and deprecations; the
    /// embedded copies are the official specs byte for byte; ids are unique across tables.
    #[test]
    fn every_table_matches_its_official_spec() {
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/");
        let local = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/");
        for (api, count, official, copy) in [
            (Api::Contacts, 32, "ghl/contacts.openapi.json", "apps/contacts.json"),
            (Api::Conversations, 29, "ghl/conversations.openapi.json", "apps/conversations.json"),
            (Api::Users, 7, "ghl/users.openapi.json", "apps/users.json"),
            (Api::Dialpad, 193, "dialpad/dialpad_api_spec.json", "dialpad/dialpad_api_spec.json"),
        ] {
            let text = std::fs::read_to_string(format!("{shared}{official}")).expect("../shared beside the clone");
            assert_eq!(text, std::fs::read_to_string(format!("{local}{copy}")).unwrap(), "{copy} is not the official spec verbatim");
            let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut from_spec = Vec::new();
            for (p, ops) in spec["paths"].as_object().unwrap() {
                for (m, o) in ops.as_object().unwrap() {
                    let scope = o["security"][0].as_object().and_then(|s| s.values().next()).and_then(|s| s[0].as_str()).map(str::to_string);
                    let ok: Vec<u16> = o["responses"].as_object().unwrap().keys().filter(|c| c.starts_with('2')).map(|c| c.parse().unwrap()).collect();
                    let mut params: Vec<String> = o["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| p["in"] == "path" || p["in"] == "query")
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect();
                    // The path's `{param}`s that the entry does not declare.
                    for name in p.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                        if !params.iter().any(|n| n == name) {
                            params.push(name.to_string());
                        }
                    }
                    from_spec.push((
                        o["operationId"].as_str().unwrap().to_string(),
                        m.to_uppercase(),
                        p.clone(),
                        scope,
                        ok[0],
                        params,
                        o.get("requestBody").is_some(),
                        o["deprecated"].as_bool().unwrap_or(false),
                    ));
                }
            }
            from_spec.sort();
            let mut ours: Vec<_> = api
                .table()
                .iter()
                .map(|o| {
                    assert_eq!(o.api, api);
                    (
                        o.id.to_string(),
                        o.method.as_str().to_string(),
                        o.path.to_string(),
                        o.scope_declared_in_spec.then(|| o.scope.as_str().to_string()),
                        o.success_status,
                        o.params.iter().map(|p| p.name.to_string()).collect::<Vec<_>>(),
                        o.has_body(),
                        o.deprecated,
                    )
                })
                .collect();
            ours.sort();
            assert_eq!(ours, from_spec, "{official}");
            assert_eq!(ours.len(), count, "{official}");
        }
        let mut ids: Vec<&str> = TABLES.iter().flat_map(|t| t.iter().map(|o| o.id)).collect();
        assert_eq!(ids.len(), 261);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 261, "an operation id appears in two tables");
    }

    /// Every shape of every table reads, and makes a JSON Schema.
    #[test]
    fn every_shape_reads() {
        for api in Api::ALL {
            for op in api.table() {
                let mut defs = serde_json::Map::new();
                for p in op.params {
                    shape::json_schema(&shape::parse(p.shape), api.pool(), &mut defs);
                }
                if let Some(body) = op.body {
                    let schema = shape::json_schema(&shape::parse(body.shape), api.pool(), &mut defs);
                    assert!(schema.is_object(), "{}", op.id);
                }
                assert!(defs.values().all(serde_json::Value::is_object), "{}", op.id);
            }
            for (_, text) in api.pool() {
                shape::parse(text);
            }
        }
        let create = op("create-contact").body_properties();
        let dob = create.iter().find(|p| p.name == "dateOfBirth").unwrap();
        assert!(dob.accepts(Api::Contacts, ValueKind::String) && dob.accepts(Api::Contacts, ValueKind::Object), "{dob:?}");
        assert!(create.iter().any(|p| p.name == "locationId" && p.required));
    }

    #[test]
    fn scopes_and_routes_of_the_other_apis() {
        assert_eq!(op("add-an-inbound-message").api.version_header(), Some("2021-04-15"));
        assert_eq!(op("screen_pop.initiate").scope, Scope::DialpadScreenPop);
        assert_eq!(op("contacts.get").scope, Scope::Dialpad);
        assert_eq!(op("cancel-scheduled-email-message").scope, Scope::ConversationsMessageWrite, "as docs/Scopes.md lists it");
        assert_eq!(op("get-all-custom-subtypes").scope, Scope::ConversationsReadonly);
        assert_eq!(op("add-message-attachments").scope, Scope::ConversationsMessageWrite);
        assert_eq!(match_path_in(DIALPAD, Method::Post, "/api/v2/users/42/screenpop").unwrap().params, vec![("id", "42".to_string())]);
    }
}
