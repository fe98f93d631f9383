//! Provider-token rules APNs applies per connection: the connection is bound to the key
//! id of its first authenticated request, and its token may change only once per window.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::apns::auth::{AuthFailure, VerifiedToken};

/// Token state of one connection; its streams are handled concurrently.
#[derive(Default)]
pub(crate) struct ConnectionAuth {
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    bound_key_id: Option<String>,
    current: Option<CurrentToken>,
}

struct CurrentToken {
    jwt: String,
    first_used: Instant,
}

impl ConnectionAuth {
    /// Accepts `token` on this connection now, or says which APNs rule it breaks.
    pub fn admit(&self, token: VerifiedToken<'_>, window: Duration) -> Result<(), AuthFailure> {
        self.admit_at(token, window, Instant::now())
    }

    fn admit_at(
        &self,
        token: VerifiedToken<'_>,
        window: Duration,
        now: Instant,
    ) -> Result<(), AuthFailure> {
        let mut state = self.lock();
        if state
            .bound_key_id
            .as_deref()
            .is_some_and(|bound| bound != token.key_id)
        {
            return Err(AuthFailure::UnrelatedKeyId);
        }
        match &state.current {
            Some(current) if current.jwt == token.jwt => {}
            // The connection keeps its current token: a rejected update changes nothing.
            Some(current) if now.saturating_duration_since(current.first_used) < window => {
                return Err(AuthFailure::TooManyUpdates);
            }
            _ => {
                state.current = Some(CurrentToken {
                    jwt: token.jwt.to_owned(),
                    first_used: now,
                });
            }
        }
        if state.bound_key_id.is_none() {
            state.bound_key_id = Some(token.key_id.to_owned());
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(20 * 60);

    fn token<'a>(jwt: &'a str, key_id: &'a str) -> VerifiedToken<'a> {
        VerifiedToken { jwt, key_id }
    }

    #[test]
    fn a_new_token_is_refused_until_the_window_has_passed() {
        let auth = ConnectionAuth::default();
        let start = Instant::now();
        assert_eq!(auth.admit_at(token("a", "K1"), WINDOW, start), Ok(()));
        let later = start + Duration::from_secs(60);
        assert_eq!(auth.admit_at(token("a", "K1"), WINDOW, later), Ok(()));
        assert_eq!(
            auth.admit_at(token("b", "K1"), WINDOW, later),
            Err(AuthFailure::TooManyUpdates)
        );
        // The refused update did not replace the current token.
        assert_eq!(auth.admit_at(token("a", "K1"), WINDOW, later), Ok(()));
        let after = start + WINDOW;
        assert_eq!(auth.admit_at(token("b", "K1"), WINDOW, after), Ok(()));
        assert_eq!(
            auth.admit_at(token("a", "K1"), WINDOW, after),
            Err(AuthFailure::TooManyUpdates),
            "going back is an update too"
        );
    }

    #[test]
    fn the_first_key_id_binds_the_connection() {
        let auth = ConnectionAuth::default();
        let start = Instant::now();
        assert_eq!(auth.admit_at(token("a", "K1"), WINDOW, start), Ok(()));
        let after = start + WINDOW;
        assert_eq!(
            auth.admit_at(token("b", "K2"), WINDOW, after),
            Err(AuthFailure::UnrelatedKeyId)
        );
        assert_eq!(auth.admit_at(token("c", "K1"), WINDOW, after), Ok(()));
    }
}
