//! The access tokens the mock's OAuth2 endpoint issues, which FCM sends must carry as
//! `authorization: Bearer <token>`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};

/// Expired tokens are forgotten once this many are stored (they would get 401 anyway).
const PRUNE_AT: usize = 4096;

/// Why a send's bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerProblem {
    Missing,
    /// Unknown to this server, or expired.
    Invalid,
}

/// Access tokens this server issued, with their expiry.
pub(crate) struct AccessTokens {
    lifetime: Duration,
    expiries: Mutex<HashMap<String, Instant>>,
    issued: AtomicU64,
    random: SystemRandom,
}

impl AccessTokens {
    pub fn new(lifetime: Duration) -> Self {
        AccessTokens {
            lifetime,
            expiries: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            random: SystemRandom::new(),
        }
    }

    /// A fresh opaque token, Google-looking (`ya29.` prefix); `None` if randomness failed.
    pub fn issue(&self) -> Option<String> {
        let mut bytes = [0u8; 24];
        self.random.fill(&mut bytes).ok()?;
        let mut token = String::from("ya29.mock-");
        for byte in bytes {
            // Writing to a String cannot fail.
            let _ = write!(token, "{byte:02x}");
        }
        let now = Instant::now();
        let mut expiries = self.lock();
        if expiries.len() >= PRUNE_AT {
            expiries.retain(|_, expiry| *expiry > now);
        }
        expiries.insert(token.clone(), now + self.lifetime);
        self.issued.fetch_add(1, Ordering::Relaxed);
        Some(token)
    }

    /// Checks an `authorization` header value (`Bearer <token>`).
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), BearerProblem> {
        let header = authorization.ok_or(BearerProblem::Missing)?;
        let header = header.to_str().map_err(|_| BearerProblem::Invalid)?;
        let token = header
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
            .map(|_| header[7..].trim())
            .filter(|token| !token.is_empty())
            .ok_or(BearerProblem::Missing)?;
        match self.lock().get(token) {
            Some(expiry) if *expiry > Instant::now() => Ok(()),
            _ => Err(BearerProblem::Invalid),
        }
    }

    /// Every token issued so far stops working now; later grants are unaffected.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for expiry in self.lock().values_mut() {
            *expiry = (*expiry).min(now);
        }
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The lifetime in whole seconds, rounded up: clients read 0 as "no expiry given".
    pub fn expires_in(&self) -> u64 {
        self.lifetime.as_secs() + u64::from(self.lifetime.subsec_nanos() > 0)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.expiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_expire_and_can_be_expired_early() {
        let tokens = AccessTokens::new(Duration::from_secs(3600));
        let token = tokens.issue().unwrap();
        assert!(token.starts_with("ya29.mock-"));
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert_eq!(tokens.check(Some(&header)), Ok(()));
        let lower = HeaderValue::from_str(&format!("bearer {token}")).unwrap();
        assert_eq!(tokens.check(Some(&lower)), Ok(()));
        assert_eq!(tokens.check(None), Err(BearerProblem::Missing));
        let unknown = HeaderValue::from_static("Bearer ya29.someone-else");
        assert_eq!(tokens.check(Some(&unknown)), Err(BearerProblem::Invalid));

        tokens.expire_all();
        assert_eq!(tokens.check(Some(&header)), Err(BearerProblem::Invalid));
        let fresh = tokens.issue().unwrap();
        let fresh = HeaderValue::from_str(&format!("Bearer {fresh}")).unwrap();
        assert_eq!(tokens.check(Some(&fresh)), Ok(()));
        assert_eq!(tokens.issued(), 2);

        let short = AccessTokens::new(Duration::ZERO);
        let token = short.issue().unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert_eq!(short.check(Some(&header)), Err(BearerProblem::Invalid));
    }
}
