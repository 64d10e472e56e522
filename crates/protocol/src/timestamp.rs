//! Millisecond UTC timestamps, written on the wire as RFC 3339.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ISO_SECONDS: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, secs: u64) -> Self {
        Timestamp(self.0.saturating_add((secs as i64).saturating_mul(1000)))
    }

    /// `2023-11-14T22:13:20.123Z`: the fraction as long as its digits need, none when whole.
    /// Years 0–9999 are written directly (every event and view carries dates, and `time`'s
    /// general formatter costs several times more); others keep `time`'s answer.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        if !(0..=9999).contains(&year) {
            return self.to_rfc3339_by_time();
        }
        let in_day = secs.rem_euclid(86_400);
        let mut out = Vec::with_capacity(24);
        push_digits(&mut out, year, 4);
        out.push(b'-');
        push_digits(&mut out, month, 2);
        out.push(b'-');
        push_digits(&mut out, day, 2);
        out.push(b'T');
        push_digits(&mut out, in_day / 3600, 2);
        out.push(b':');
        push_digits(&mut out, in_day / 60 % 60, 2);
        out.push(b':');
        push_digits(&mut out, in_day % 60, 2);
        let mut millis = self.0.rem_euclid(1000);
        if millis != 0 {
            let mut width = 3;
            while millis % 10 == 0 {
                millis /= 10;
                width -= 1;
            }
            out.push(b'.');
            push_digits(&mut out, millis, width);
        }
        out.push(b'Z');
        String::from_utf8(out).unwrap_or_default()
    }

    fn to_rfc3339_by_time(self) -> String {
        let dt =
            OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        dt.format(&Rfc3339).unwrap_or_default()
    }

    /// `2015-07-30T20:00:00Z`: whole seconds, the form Twilio's REST APIs write and its
    /// helper libraries parse.
    pub fn to_iso_seconds(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        dt.format(&ISO_SECONDS).unwrap_or_default()
    }

    /// `Thu, 30 Jul 2015 20:00:00 +0000`, the form of Twilio's 2010-04-01 API.
    pub fn to_rfc2822(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp(self.0.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        dt.format(&time::format_description::well_known::Rfc2822).unwrap_or_default()
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(|dt| Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

/// The proleptic Gregorian date of day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): year, month 1–12, day 1–31.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `value` (not negative) in exactly `width` digits, zero-padded.
fn push_digits(out: &mut Vec<u8>, value: i64, width: u32) {
    for place in (0..width).rev() {
        out.push(b'0' + (value / 10_i64.pow(place) % 10) as u8);
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_date_forms() {
        let t = Timestamp(1_438_286_400_999);
        assert_eq!(t.to_iso_seconds(), "2015-07-30T20:00:00Z");
        assert_eq!(t.to_rfc2822(), "Thu, 30 Jul 2015 20:00:00 +0000");
    }

    #[test]
    fn rfc3339_is_written_as_time_writes_it() {
        let mut samples = vec![
            0,
            1,
            10,
            100,
            999,
            1000,
            -1,
            -999,
            -1000,
            -1001,
            951_782_400_000,
            951_868_799_999,
            4_107_542_400_000,
            -2_208_988_800_000,
            -62_167_219_200_000,
            -62_167_219_200_001,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MAX,
            i64::MIN,
        ];
        // A deterministic sweep from before year 0 to past 9999, and around today.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000_i64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let spread = (x >> 11) as i64 % 700_000_000_000_000;
            samples.push(if i % 2 == 0 {
                spread - 350_000_000_000_000
            } else {
                1_764_800_000_000 + spread % 10_000_000_000
            });
        }
        for ms in samples {
            assert_eq!(Timestamp(ms).to_rfc3339(), Timestamp(ms).to_rfc3339_by_time(), "{ms}");
        }
    }

    #[test]
    fn round_trips_through_rfc3339() {
        let t = Timestamp(1_700_000_000_123);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }
}
