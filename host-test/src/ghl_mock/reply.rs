//! Replies before they become HTTP responses: [`Reply`], the error bodies and their texts.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use contacts_api::Api;
use serde_json::{json, Value};

/// The error DTOs the Contacts spec references as `../common/common-schemas.json`.
const COMMON_SCHEMAS: &str = contacts_api::COMMON_SCHEMAS_JSON;

pub(super) const MSG_VERSION: &str = "version header must be 2021-07-28";
pub(super) const MSG_FORBIDDEN: &str = "The token is not authorized for this scope.";
pub(super) const MSG_NOT_JSON: &str = "Unexpected token in JSON body";
pub(super) const MSG_DUPLICATE: &str = "This location does not allow duplicated contacts.";
pub(super) const MSG_NUMBER: &str = "must be a number conforming to the specified constraints";

/// A status and JSON body, before it becomes an HTTP response.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Reply {
    pub(super) fn new(status: u16, body: Value) -> Reply {
        Reply { status, body }
    }

    /// The `BadRequestDTO` shape (`statusCode` + string `message`), used for every non-422 error.
    pub(super) fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::new(status, json!({ "statusCode": status, "message": message.into() }))
    }

    pub(super) fn contact_not_found(id: &str) -> Reply {
        Reply::error(400, format!("Contact with id {id} not found"))
    }

    /// `{"succeded": true}` (sic), the body of every delete and of the campaign/workflow operations.
    pub(super) fn succeded(status: u16) -> Reply {
        Reply::new(status, json!({ "succeded": true }))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(self.body)).into_response()
    }
}

/// The error texts the common schemas fix, read from their examples.
pub(super) struct ErrorTexts {
    pub(super) unauthorized: Value,
    pub(super) unprocessable_error: String,
}

/// Parsed once, on first use; the embedded file is a constant, so this cannot fail at runtime
/// unless the embed itself is broken, which the tests catch.
pub(super) fn error_texts() -> &'static ErrorTexts {
    static TEXTS: OnceLock<ErrorTexts> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let common: Value = serde_json::from_str(COMMON_SCHEMAS).expect("the embedded common-schemas.json is JSON");
        let dto = |name: &str| &common["components"]["schemas"][name]["properties"];
        ErrorTexts {
            unauthorized: json!({
                "statusCode": 401,
                "message": dto("UnauthorizedDTO")["message"]["example"],
                "error": dto("UnauthorizedDTO")["error"]["example"],
            }),
            unprocessable_error: dto("UnprocessableDTO")["error"]["example"].as_str().unwrap_or("Unprocessable Entity").to_owned(),
        }
    })
}

/// `UnauthorizedDTO`, with the texts of the common schema's examples.
pub(super) fn unauthorized() -> Reply {
    Reply::new(401, error_texts().unauthorized.clone())
}

/// `UnprocessableDTO`: unlike every other error, `message` is an array.
pub(super) fn unprocessable(problems: Vec<String>) -> Reply {
    Reply::new(422, json!({ "statusCode": 422, "message": problems, "error": error_texts().unprocessable_error }))
}

/// The `Version` header an API requires, as the 400 names it.
pub(super) fn version_message(version: &str) -> String {
    format!("version header must be {version}")
}

/// A request the API's validation refuses. The Contacts service answers 422; the
/// Conversations and Users specs declare no 422, only 400, which is what NestJS's
/// ValidationPipe answers by default: the same array of problems, `error` "Bad Request".
pub(super) fn invalid_for(api: Api, reply: Reply) -> Reply {
    if api == Api::Contacts || reply.status != 422 {
        return reply;
    }
    Reply::new(400, json!({ "statusCode": 400, "message": reply.body["message"], "error": "Bad Request" }))
}
