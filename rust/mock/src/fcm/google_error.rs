//! Google API error bodies: `{"error":{"code","message","status","details":[...]}}`.

use serde_json::{json, Value};

use crate::reply::Reply;

const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
const QUOTA_FAILURE_TYPE: &str = "type.googleapis.com/google.rpc.QuotaFailure";

/// Google's message for a bearer token that is unknown or expired.
pub(crate) const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. \
     Expected OAuth 2 access token, login cookie or other valid authentication credential. \
     See https://developers.google.com/identity/sign-in/web/devconsole-project.";
/// Google's message when no bearer token was sent.
pub(crate) const MISSING_CREDENTIALS: &str = "Request is missing required authentication \
     credential. Expected OAuth 2 access token, login cookie or other valid authentication \
     credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// One Google error answer under construction.
#[derive(Debug, Clone)]
pub(crate) struct GoogleError {
    code: u16,
    message: String,
    details: Vec<Value>,
    retry_after: Option<u64>,
}

impl GoogleError {
    /// A plain error without details (e.g. 401 `UNAUTHENTICATED`).
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        GoogleError {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// An FCM error: clients branch on this `errorCode`, not on `status`.
    pub fn fcm(code: u16, error_code: &str, message: impl Into<String>) -> Self {
        let mut error = GoogleError::new(code, message);
        error
            .details
            .push(json!({"@type": FCM_ERROR_TYPE, "errorCode": error_code}));
        error
    }

    /// 400 `INVALID_ARGUMENT` about one field: the FCM code plus a `BadRequest` violation.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        GoogleError::fcm(400, "INVALID_ARGUMENT", description.clone())
            .field_violation(Some(field), description)
    }

    /// Adds a `google.rpc.BadRequest` field violation (`field` omitted when unknown).
    pub fn field_violation(mut self, field: Option<&str>, description: impl Into<String>) -> Self {
        let mut violation = json!({"description": description.into()});
        if let Some(field) = field {
            violation["field"] = Value::from(field);
        }
        self.details
            .push(json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]}));
        self
    }

    /// Adds a `google.rpc.QuotaFailure` naming the exhausted quota.
    pub fn quota_violation(mut self, subject: &str, description: &str) -> Self {
        self.details.push(json!({
            "@type": QUOTA_FAILURE_TYPE,
            "violations": [{"subject": subject, "description": description}],
        }));
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn into_reply(self) -> Reply {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "status": canonical_status(self.code),
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details);
        }
        let reply = Reply::json(self.code, json!({ "error": error }).to_string());
        match self.retry_after {
            Some(seconds) => reply.retry_after(seconds),
            None => reply,
        }
    }
}

/// The canonical `google.rpc.Code` name Google APIs send with this HTTP status.
pub(crate) fn canonical_status(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// Google's usual wording for a status, for answers that have nothing more specific.
pub(crate) fn default_message(code: u16) -> &'static str {
    match code {
        400 => "Request contains an invalid argument.",
        401 => INVALID_CREDENTIALS,
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        409 => "The operation was aborted.",
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => "Internal error encountered.",
        501 => "Operation is not implemented, or supported, or enabled.",
        503 => "The service is currently unavailable.",
        504 => "The request timed out.",
        _ => "Unknown error.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(error: GoogleError) -> (u16, Value, Option<String>) {
        let reply = error.into_reply();
        let retry_after = reply
            .headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let json = serde_json::from_slice(&reply.body).unwrap();
        (reply.status.as_u16(), json, retry_after)
    }

    #[test]
    fn fcm_error_has_the_documented_shape() {
        let (status, json, retry_after) =
            body(GoogleError::fcm(404, "UNREGISTERED", default_message(404)));
        assert_eq!(status, 404);
        assert_eq!(retry_after, None);
        assert_eq!(
            json,
            json!({"error": {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
                "details": [{
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": "UNREGISTERED",
                }],
            }})
        );
    }

    #[test]
    fn field_violations_follow_the_fcm_error() {
        let error = GoogleError::invalid_field("message.data[0].value", "not a string");
        let (status, json, _) = body(error);
        assert_eq!(status, 400);
        let details = json["error"]["details"].as_array().unwrap();
        assert_eq!(details[0]["errorCode"], "INVALID_ARGUMENT");
        assert_eq!(details[1]["@type"], BAD_REQUEST_TYPE);
        assert_eq!(
            details[1]["fieldViolations"][0],
            json!({"field": "message.data[0].value", "description": "not a string"})
        );
    }

    #[test]
    fn plain_errors_have_no_details_and_retry_after_is_a_header() {
        let (status, json, retry_after) =
            body(GoogleError::new(401, INVALID_CREDENTIALS).retry_after(7));
        assert_eq!(status, 401);
        assert_eq!(json["error"]["status"], "UNAUTHENTICATED");
        assert!(json["error"].get("details").is_none());
        assert_eq!(retry_after.as_deref(), Some("7"));
        assert_eq!(canonical_status(418), "UNKNOWN");
    }
}
