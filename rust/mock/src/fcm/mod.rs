//! FCM HTTP v1 sends (`POST /v1/projects/{project}/messages:send`): bearer auth, project
//! quota, message checks, rules, and Google-shaped answers.

pub(crate) mod access_tokens;
pub(crate) mod fcm_message;
pub(crate) mod google_error;
pub(crate) mod oauth;
pub(crate) mod quota;
pub(crate) mod rsa_spki;
pub(crate) mod service_account;

use http::request::Parts;
use http::Method;
use serde_json::json;

use crate::config::Failure;
use crate::fcm::access_tokens::BearerProblem;
use crate::fcm::fcm_message::SendBody;
use crate::fcm::google_error::{
    default_message, GoogleError, INVALID_CREDENTIALS, MISSING_CREDENTIALS,
};
use crate::fcm::quota::retry_after_seconds;
use crate::reply::{Action, Answers, Reply};
use crate::state::Shared;

/// Every FCM path starts here; other `/v1/` paths get a Google 404.
pub(crate) const PATH_PREFIX: &str = "/v1/";
/// Bodies are kept up to this size; a bigger one is "too big" without parsing.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// What the rule behaviours `429` and `503` tell clients to wait, in seconds.
const RULE_QUOTA_RETRY_AFTER: u64 = 60;
const RULE_UNAVAILABLE_RETRY_AFTER: u64 = 1;

/// The project of a send path, `/v1/projects/{project}/messages:send`.
pub(crate) fn send_project(path: &str) -> Option<&str> {
    let project = path
        .strip_prefix("/v1/projects/")?
        .strip_suffix("/messages:send")?;
    (!project.is_empty() && !project.contains('/')).then_some(project)
}

/// Counts the request, then judges it like FCM. `project` is `None` for other `/v1/` paths.
pub(crate) fn handle(
    parts: &Parts,
    project: Option<&str>,
    body: &[u8],
    body_len: usize,
    shared: &Shared,
) -> Action {
    let send = SendBody::parse(body, body_len <= BODY_LIMIT);
    // A dry run delivers nothing, so it is counted apart from received messages.
    match &send {
        Ok(send) if send.is_dry_run() => shared.counters.fcm_dry_run(),
        Ok(send) => shared.counters.request_received(send.token()),
        Err(_) => shared.counters.request_received(None),
    }
    let Some(project) = project.filter(|_| parts.method == Method::POST) else {
        return Action::Reply(GoogleError::new(404, "Method not found.").into_reply());
    };
    let answers = FcmAnswers {
        project,
        dry_run: send.as_ref().is_ok_and(SendBody::is_dry_run),
        shared,
    };
    let judged = check_bearer(parts, shared)
        .and_then(|()| check_quota(project, shared))
        .and(send)
        .and_then(|send| send.validate(body));
    match judged {
        Ok(target) => Action::for_behavior(shared.behavior_for(target.rule_key()), &answers),
        Err(error) => Action::Reply(error.into_reply()),
    }
}

/// Without configured service accounts anyone may send.
fn check_bearer(parts: &Parts, shared: &Shared) -> Result<(), GoogleError> {
    if !shared.assertions.is_enabled() {
        return Ok(());
    }
    let authorization = parts.headers.get(http::header::AUTHORIZATION);
    shared
        .access_tokens
        .check(authorization)
        .map_err(|problem| match problem {
            BearerProblem::Missing => GoogleError::new(401, MISSING_CREDENTIALS),
            BearerProblem::Invalid => GoogleError::new(401, INVALID_CREDENTIALS),
        })
}

fn check_quota(project: &str, shared: &Shared) -> Result<(), GoogleError> {
    let Some(quota) = &shared.quota else {
        return Ok(());
    };
    quota.admit(project).map_err(|wait| {
        shared.counters.quota_rejected();
        GoogleError::fcm(429, "QUOTA_EXCEEDED", default_message(429))
            .quota_violation(
                &format!("project:{project}"),
                "Messages per project per window",
            )
            .retry_after(retry_after_seconds(wait))
    })
}

struct FcmAnswers<'a> {
    project: &'a str,
    dry_run: bool,
    shared: &'a Shared,
}

impl Answers for FcmAnswers<'_> {
    fn ok(&self) -> Reply {
        let name = if self.dry_run {
            format!("projects/{}/messages/fake_message_id", self.project)
        } else {
            let number = self.shared.next_fcm_message_number();
            format!("projects/{}/messages/0:{number}", self.project)
        };
        Reply::json(200, json!({ "name": name }).to_string())
    }

    fn failure(&self, failure: Failure) -> Reply {
        let error = match failure {
            Failure::Unregistered | Failure::ExpiredToken => {
                GoogleError::fcm(404, "UNREGISTERED", default_message(404))
            }
            // The one INVALID_ARGUMENT that means "drop this token".
            Failure::BadToken => GoogleError::fcm(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
            ),
            Failure::TooManyRequests => {
                GoogleError::fcm(429, "QUOTA_EXCEEDED", default_message(429))
                    .retry_after(RULE_QUOTA_RETRY_AFTER)
            }
            Failure::Internal => GoogleError::fcm(500, "INTERNAL", default_message(500)),
            Failure::Unavailable => GoogleError::fcm(503, "UNAVAILABLE", default_message(503))
                .retry_after(RULE_UNAVAILABLE_RETRY_AFTER),
            Failure::SenderMismatch => {
                GoogleError::fcm(403, "SENDER_ID_MISMATCH", "SenderId mismatch")
            }
            Failure::ThirdPartyAuth => GoogleError::fcm(
                401,
                "THIRD_PARTY_AUTH_ERROR",
                "Auth error from APNS or Web Push Service",
            ),
            // A payload bug, not a token problem: it names a field, unlike `BadToken`.
            Failure::InvalidArgument => {
                GoogleError::fcm(400, "INVALID_ARGUMENT", default_message(400)).field_violation(
                    Some("message"),
                    "Rejected by the mock's invalid-argument rule",
                )
            }
            Failure::Unspecified => {
                GoogleError::fcm(500, "UNSPECIFIED_ERROR", default_message(500))
            }
        };
        error.into_reply()
    }

    fn reject(&self, status: u16, reason: &str, _timestamp_ms: Option<u64>) -> Reply {
        GoogleError::fcm(status, reason, default_message(status)).into_reply()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_paths_name_their_project() {
        assert_eq!(
            send_project("/v1/projects/demo-project/messages:send"),
            Some("demo-project")
        );
        assert_eq!(
            send_project("/v1/projects/123456/messages:send"),
            Some("123456")
        );
        for other in [
            "/v1/projects//messages:send",
            "/v1/projects/a/b/messages:send",
            "/v1/projects/a/messages:batch",
            "/v1/projects/a/messages",
            "/3/device/abc",
        ] {
            assert_eq!(send_project(other), None, "{other}");
        }
    }
}
