//! A fixed-window limiter in memory, per (purpose, key). Enough for one server; a fleet
//! behind a balancer multiplies the allowance by its size, which docs/api.md states.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Limiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl Limiter {
    /// Count one event for `key` in the current window of `window_s` seconds; false when
    /// the window already holds `limit` events.
    pub fn allow(&self, key: &str, limit: u32, window_s: i64, now: i64) -> bool {
        let window = now.div_euclid(window_s);
        let mut map = self.windows.lock().expect("limiter");
        if map.len() > 100_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = map.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Whether the window for `key` is already full, without counting anything.
    pub fn peek(&self, key: &str, limit: u32, window_s: i64, now: i64) -> bool {
        let window = now.div_euclid(window_s);
        let map = self.windows.lock().expect("limiter");
        map.get(key).is_some_and(|(w, n)| *w == window && *n >= limit)
    }

    /// How many events `key` has in the current window (without counting one).
    pub fn used(&self, key: &str, window_s: i64, now: i64) -> u32 {
        let window = now.div_euclid(window_s);
        self.windows.lock().expect("limiter").get(key).filter(|(w, _)| *w == window).map(|(_, n)| *n).unwrap_or(0)
    }
}
