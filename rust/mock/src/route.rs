//! Which protocol a request speaks, by its path: one server mocks APNs, FCM and the
//! OAuth2 token endpoint FCM clients use.

use http::request::Parts;

use crate::apns::broadcast;
use crate::fcm::oauth;
use crate::reply::Action;
use crate::state::ConnectionHandle;
use crate::state::Shared;
use crate::{apns, fcm, webpush};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `/3/device/<token>` and every path no other protocol claims (APNs says `BadPath`).
    Apns,
    /// `/token`.
    OAuthToken,
    /// `POST /4/broadcasts/apps/<bundle>`: a Live Activity broadcast.
    Broadcast,
    /// `/1/apps/<bundle>/channels` and `/all-channels`: broadcast channel management.
    Channels,
    /// `/v1/...`; the project is set for a well-formed send path.
    Fcm { project: Option<&'a str> },
    /// `/wp/<subscription id>`: a Web Push push service.
    WebPush,
}

impl<'a> Route<'a> {
    pub fn of(path: &'a str) -> Route<'a> {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        if path == oauth::TOKEN_PATH {
            Route::OAuthToken
        } else if path.starts_with(webpush::PATH_PREFIX) {
            Route::WebPush
        } else if path.starts_with(broadcast::BROADCAST_PREFIX) {
            Route::Broadcast
        } else if path.starts_with(broadcast::MANAGE_PREFIX) {
            Route::Channels
        } else if path.starts_with(fcm::PATH_PREFIX) {
            Route::Fcm {
                project: fcm::send_project(path),
            }
        } else {
            Route::Apns
        }
    }

    /// The largest body the route reads whole (one more byte is kept, to judge it).
    pub fn body_limit(self, parts: &Parts) -> usize {
        match self {
            Route::Apns => apns::body_limit(parts),
            Route::OAuthToken => oauth::BODY_LIMIT,
            Route::Broadcast => broadcast::MAX_BROADCAST_PAYLOAD,
            Route::Channels => broadcast::MAX_MANAGE_BODY,
            Route::Fcm { .. } => fcm::BODY_LIMIT,
            Route::WebPush => webpush::BODY_LIMIT,
        }
    }

    /// Counts the request and decides its answer.
    pub fn handle(
        self,
        parts: &Parts,
        body: &[u8],
        body_len: usize,
        shared: &Shared,
        conn: &ConnectionHandle,
    ) -> Action {
        match self {
            Route::Apns => apns::handle(parts, body, body_len, shared, conn),
            Route::OAuthToken => Action::Reply(oauth::handle(parts, body, body_len, shared)),
            Route::Broadcast => broadcast::handle_broadcast(parts, body, body_len, shared, conn),
            Route::Channels => broadcast::handle_manage(parts, body, body_len, shared, conn),
            Route::Fcm { project } => fcm::handle(parts, project, body, body_len, shared),
            Route::WebPush => webpush::handle(parts, body, body_len, shared),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pick_the_protocol() {
        assert_eq!(Route::of("/3/device/abc"), Route::Apns);
        assert_eq!(Route::of("/nowhere"), Route::Apns);
        assert_eq!(Route::of("/token"), Route::OAuthToken);
        assert_eq!(Route::of("/4/broadcasts/apps/com.a"), Route::Broadcast);
        assert_eq!(Route::of("/1/apps/com.a/channels"), Route::Channels);
        assert_eq!(Route::of("/token?x=1"), Route::OAuthToken);
        assert_eq!(
            Route::of("/v1/projects/p/messages:send"),
            Route::Fcm { project: Some("p") }
        );
        assert_eq!(Route::of("/v1/batch"), Route::Fcm { project: None });
        assert_eq!(Route::of("/wp/abc"), Route::WebPush);
    }
}
