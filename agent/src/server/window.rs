//! What `serve` learns from the first boot after an apply and from a rollback: the checks'
//! [`HealthStatus`] that `nodeboot-check` keeps in `run/nodeboot/health.json` (while it is
//! there on a configured node, `serve` shows the status read-only until the window's end, then
//! stops for good), and the [`RolledBack`] record the rollback leaves in
//! `var/lib/nodeboot/rolled-back.json` (shown on an unconfigured node until the next apply).
//!
//! Both are read by [`crate::health::records`] (no link followed, bounded, cleaned); one that
//! is a link, too large or not the type is logged and served as absent.

use nodeboot_config::api::HealthStatus;

/// The longest read-only window `serve` keeps, whatever the file says (the default is 10 min).
pub const MAX_WINDOW_SECS: u64 = 3600;

pub use crate::health::records::{ReadError, read_health, read_rolled_back};

/// When the read-only window of `health` ends, for a server starting at `now`: the file's
/// end, but never more than [`MAX_WINDOW_SECS`] from `now`.
pub fn window_end(health: &HealthStatus, now: u64) -> u64 {
    health
        .window_ends_unix
        .min(now.saturating_add(MAX_WINDOW_SECS))
}

/// `HH:MM UTC` of `unix` (the day is left out: a window lasts minutes).
pub fn hh_mm_utc(unix: u64) -> String {
    let full = nodeboot_config::format_utc(i64::try_from(unix).unwrap_or(i64::MAX));
    // "YYYY-MM-DD HH:MM:SS UTC"
    match full.get(11..16) {
        Some(hm) if full.len() == 23 => format!("{hm} UTC"),
        _ => full,
    }
}

/// The 409 message of an upload or a plan during the window.
pub fn refusal(ends_unix: u64) -> String {
    format!(
        "this node is configured; its status is served read-only until {}",
        hh_mm_utc(ends_unix)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeboot_config::api::{HealthPhase, HealthReport, RollbackOn};

    #[test]
    fn refusal_names_the_window_end() {
        // 2026-12-01 10:07:00 UTC
        assert_eq!(
            refusal(1_796_119_620),
            "this node is configured; its status is served read-only until 10:07 UTC"
        );
        assert_eq!(hh_mm_utc(0), "00:00 UTC");
    }

    #[test]
    fn the_window_is_bounded() {
        let h = HealthStatus {
            digest: "d".into(),
            phase: HealthPhase::Checking,
            rollback_on: RollbackOn::Gateway,
            grace_secs: 120,
            started_unix: 0,
            window_ends_unix: u64::MAX,
            report: HealthReport::new(vec![], 0),
        };
        assert_eq!(window_end(&h, 100), 100 + MAX_WINDOW_SECS);
        let h = HealthStatus {
            window_ends_unix: 700,
            ..h
        };
        assert_eq!(window_end(&h, 100), 700);
    }
}
