//! FCM's per-project message quota: fixed windows counted from a project's first message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct ProjectQuota {
    messages_per_window: u64,
    window: Duration,
    projects: Mutex<HashMap<String, Window>>,
}

struct Window {
    start: Instant,
    used: u64,
}

impl ProjectQuota {
    /// `window` must not be zero (the server refuses such a config).
    pub fn new(messages_per_window: u64, window: Duration) -> Self {
        ProjectQuota {
            messages_per_window,
            window,
            projects: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message from `project`'s current window, or says how long until it resets.
    pub fn admit(&self, project: &str) -> Result<(), Duration> {
        self.admit_at(project, Instant::now())
    }

    fn admit_at(&self, project: &str, now: Instant) -> Result<(), Duration> {
        let mut projects = self
            .projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = projects.entry(project.to_owned()).or_insert(Window {
            start: now,
            used: 0,
        });
        let elapsed = now.saturating_duration_since(window.start);
        if elapsed >= self.window {
            // Skip whole windows so they stay aligned to the first message.
            let whole = elapsed.as_nanos() / self.window.as_nanos().max(1);
            let skipped = self.window.as_nanos().saturating_mul(whole);
            window.start += Duration::from_nanos(u64::try_from(skipped).unwrap_or(u64::MAX));
            window.used = 0;
        }
        if window.used < self.messages_per_window {
            window.used += 1;
            Ok(())
        } else {
            Err((window.start + self.window).saturating_duration_since(now))
        }
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn windows_are_fixed_from_the_first_message_and_per_project() {
        let quota = ProjectQuota::new(2, 10 * SECOND);
        let start = Instant::now();
        assert_eq!(quota.admit_at("p", start), Ok(()));
        assert_eq!(quota.admit_at("p", start + 3 * SECOND), Ok(()));
        assert_eq!(quota.admit_at("p", start + 4 * SECOND), Err(6 * SECOND));
        assert_eq!(quota.admit_at("other", start + 4 * SECOND), Ok(()));
        // The second window starts at 10 s, not at the first message after the reset.
        assert_eq!(quota.admit_at("p", start + 25 * SECOND), Ok(()));
        assert_eq!(quota.admit_at("p", start + 26 * SECOND), Ok(()));
        assert_eq!(quota.admit_at("p", start + 27 * SECOND), Err(3 * SECOND));
        assert_eq!(quota.admit_at("p", start + 30 * SECOND), Ok(()));
    }

    #[test]
    fn zero_messages_refuses_everything() {
        let quota = ProjectQuota::new(0, SECOND);
        assert!(quota.admit("p").is_err());
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(200)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1200)), 2);
        assert_eq!(retry_after_seconds(60 * SECOND), 60);
    }
}
