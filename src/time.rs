//! Wall-clock times as status, events and gauges show them.

use std::time::SystemTime;

/// Unix seconds, fractional.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
