//! When points expire, by the programme's policy.

use crate::program::Expiry;
use crate::program::Period;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// When points that become available at `available_at` expire, or None for never.
///
/// - never: None;
/// - rolling_days N: available_at + N days;
/// - end_of_period month|year N: the start (00:00 local time in `tz`) of the Nth period
///   after the one (in `tz`) that contains available_at. Month, N = 1: available on
///   10 March expires 1 April 00:00 local. Year, N = 2: available 2026-05-01 expires
///   2028-01-01 00:00 local. A local midnight that does not exist (DST gap) resolves
///   to the earliest valid instant after it.
pub fn expires_at(policy: &Expiry, available_at: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    match *policy {
        Expiry::Never => None,
        Expiry::RollingDays { days } => available_at.checked_add_signed(Duration::try_days(days)?),
        Expiry::EndOfPeriod { period, periods } => {
            let local = available_at.with_timezone(&tz).date_naive();
            let start = match period {
                Period::Month => {
                    let months = i64::from(local.year()) * 12 + i64::from(local.month0()) + periods;
                    let year = i32::try_from(months.div_euclid(12)).ok()?;
                    NaiveDate::from_ymd_opt(year, months.rem_euclid(12) as u32 + 1, 1)?
                }
                Period::Year => {
                    let year = i32::try_from(i64::from(local.year()) + periods).ok()?;
                    NaiveDate::from_ymd_opt(year, 1, 1)?
                }
            };
            local_instant(tz, start.and_hms_opt(0, 0, 0)?)
        }
    }
}

/// The instant of a local time in `tz`: the earlier one when the clocks went back, and the
/// first valid instant after it when the clocks jumped over it (a DST gap).
fn local_instant(tz: chrono_tz::Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are at most a few hours; step a minute at a time, bounded to a day.
    for minutes in 0..=24 * 60 {
        match tz.from_local_datetime(&(local + Duration::minutes(minutes))) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earliest, _) => return Some(earliest.with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}
