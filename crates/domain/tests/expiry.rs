//! Table tests for expiry dates under every policy.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use kopilka_domain::expiry::expires_at;
use kopilka_domain::program::{Expiry, Period};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn check(policy: Expiry, available_at: &str, tz: Tz, expected: Option<&str>) {
    let got = expires_at(&policy, at(available_at), tz);
    assert_eq!(got, expected.map(at), "{policy:?} from {available_at} in {tz}");
}

const fn month(periods: i64) -> Expiry {
    Expiry::EndOfPeriod { period: Period::Month, periods }
}

const fn year(periods: i64) -> Expiry {
    Expiry::EndOfPeriod { period: Period::Year, periods }
}

#[test]
fn never_expires() {
    check(Expiry::Never, "2026-03-10T10:00:00Z", Tz::UTC, None);
}

#[test]
fn rolling_days() {
    check(Expiry::RollingDays { days: 30 }, "2026-03-10T12:34:56Z", Tz::UTC, Some("2026-04-09T12:34:56Z"));
    check(Expiry::RollingDays { days: 1 }, "2026-12-31T23:00:00Z", Tz::Europe__Moscow, Some("2027-01-01T23:00:00Z"));
    // Counted in exact days of 24 h, also across a DST change.
    check(Expiry::RollingDays { days: 10 }, "2026-03-25T12:00:00Z", Tz::Europe__Berlin, Some("2026-04-04T12:00:00Z"));
    check(Expiry::RollingDays { days: 36500 }, "2026-01-01T00:00:00Z", Tz::UTC, Some("2125-12-08T00:00:00Z"));
}

#[test]
fn end_of_month_in_utc() {
    // The example of docs/api.md, "Expiry": earned 10 March, month N = 1, expires 1 April 00:00.
    check(month(1), "2026-03-10T10:00:00Z", Tz::UTC, Some("2026-04-01T00:00:00Z"));
    check(month(1), "2026-03-31T23:59:59Z", Tz::UTC, Some("2026-04-01T00:00:00Z"));
    check(month(1), "2026-04-01T00:00:00Z", Tz::UTC, Some("2026-05-01T00:00:00Z"));
    check(month(2), "2026-12-15T00:00:00Z", Tz::UTC, Some("2027-02-01T00:00:00Z"));
}

#[test]
fn end_of_period_in_moscow() {
    let msk = Tz::Europe__Moscow;
    // 1 April 00:00 MSK is 31 March 21:00 UTC.
    check(month(1), "2026-03-10T10:00:00Z", msk, Some("2026-03-31T21:00:00Z"));
    // 31 March 22:00 UTC is already 1 April in Moscow: the April period.
    check(month(1), "2026-03-31T22:00:00Z", msk, Some("2026-04-30T21:00:00Z"));
    check(month(3), "2026-11-15T09:00:00Z", msk, Some("2027-01-31T21:00:00Z"));
    check(month(12), "2026-12-05T09:00:00Z", msk, Some("2027-11-30T21:00:00Z"));
    // The doc comment's example: year, N = 2, available 2026-05-01.
    check(year(2), "2026-05-01T09:00:00Z", msk, Some("2027-12-31T21:00:00Z"));
    check(year(1), "2026-05-01T09:00:00Z", msk, Some("2026-12-31T21:00:00Z"));
    // New Year in Moscow before it is in UTC.
    check(year(1), "2026-12-31T21:30:00Z", msk, Some("2027-12-31T21:00:00Z"));
    check(year(1), "2026-12-31T20:59:59Z", msk, Some("2026-12-31T21:00:00Z"));
}

#[test]
fn end_of_period_in_a_dst_zone() {
    let berlin = Tz::Europe__Berlin;
    // 1 April is summer time (UTC+2), 1 March and 1 November winter time (UTC+1).
    check(month(1), "2026-03-10T10:00:00Z", berlin, Some("2026-03-31T22:00:00Z"));
    check(month(1), "2026-02-10T10:00:00Z", berlin, Some("2026-02-28T23:00:00Z"));
    check(month(1), "2026-10-10T10:00:00Z", berlin, Some("2026-10-31T23:00:00Z"));
    check(year(1), "2026-07-01T10:00:00Z", berlin, Some("2026-12-31T23:00:00Z"));
    let new_york = Tz::America__New_York;
    check(month(1), "2026-03-05T12:00:00Z", new_york, Some("2026-04-01T04:00:00Z"));
    check(month(1), "2026-11-05T12:00:00Z", new_york, Some("2026-12-01T05:00:00Z"));
    // Local date decides the period: 1 Dec 03:00 UTC is still 30 Nov in New York.
    check(month(1), "2026-12-01T03:00:00Z", new_york, Some("2026-12-01T05:00:00Z"));
}

#[test]
fn a_midnight_in_a_dst_gap_resolves_to_the_first_instant_after_it() {
    // Paraguay moved its clocks from 00:00 to 01:00 (UTC−4 → UTC−3) on Sunday 1 October 2023,
    // so 1 October 00:00 did not exist; the first valid instant is 01:00 −03 = 04:00 UTC.
    let midnight = chrono::NaiveDate::from_ymd_opt(2023, 10, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    assert_eq!(Tz::America__Asuncion.from_local_datetime(&midnight), chrono::LocalResult::None, "a real gap");
    check(month(1), "2023-09-10T12:00:00Z", Tz::America__Asuncion, Some("2023-10-01T04:00:00Z"));
}
