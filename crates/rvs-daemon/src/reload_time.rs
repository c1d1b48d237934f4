//! keepalived's scheduled reloads (`reload_time_file`, `reload_repeat`): the time a
//! reload is due, from the first line of the file. The line must be exactly `HH:MM:SS`,
//! `YY-MM-DD HH:MM:SS` or `YYYY-MM-DD HH:MM:SS`, each with an optional `Z` (UTC; local
//! time otherwise). A time without a date is the next such time (daily with
//! `reload_repeat`); a date and time in the past schedules nothing. No clock or file
//! here: the driver reads them and asks [`next`].

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A parsed reload time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// `None`: every day at `time`.
    pub date: Option<Date>,
    pub time: Time,
    pub utc: bool,
}

fn num(s: &str, len: usize) -> Result<i16, String> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not {len} digits"));
    }
    s.parse().map_err(|e| format!("'{s}': {e}"))
}

fn time_of(s: &str) -> Result<Time, String> {
    let p: Vec<&str> = s.split(':').collect();
    let [h, m, sec] = p.as_slice() else {
        return Err(format!("'{s}' is not HH:MM:SS"));
    };
    let (h, m, sec) = (num(h, 2)?, num(m, 2)?, num(sec, 2)?);
    Time::new(
        i8::try_from(h).map_err(|e| e.to_string())?,
        i8::try_from(m).map_err(|e| e.to_string())?,
        i8::try_from(sec).map_err(|e| e.to_string())?,
        0,
    )
    .map_err(|e| format!("'{s}': {e}"))
}

fn date_of(text: &str) -> Result<Date, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(format!("'{text}' is not YYYY-MM-DD or YY-MM-DD"));
    };
    // strptime's %y: 69–99 are 1969–1999, 00–68 are 2000–2068.
    let year = match y.len() {
        2 => {
            let yy = num(y, 2)?;
            if yy >= 69 {
                1900 + yy
            } else {
                2000 + yy
            }
        }
        _ => num(y, 4)?,
    };
    Date::new(
        year,
        i8::try_from(num(m, 2)?).map_err(|e| e.to_string())?,
        i8::try_from(num(d, 2)?).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("'{text}': {e}"))
}

/// Reads the first line of a reload time file.
pub fn parse(text: &str) -> Result<Spec, String> {
    let line = text.lines().next().unwrap_or_default();
    let (body, utc) = match line.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (line, false),
    };
    let (date, time) = match body.split_once(' ') {
        Some((d, t)) => (Some(date_of(d)?), time_of(t)?),
        None => (None, time_of(body)?),
    };
    Ok(Spec { date, time, utc })
}

/// When the reload is due, seen at `now` with `local` as the local time zone; `None`
/// when a dated time has passed (or does not exist in the local zone).
pub fn next(spec: &Spec, now: Timestamp, local: &TimeZone) -> Option<Timestamp> {
    let tz = if spec.utc {
        TimeZone::UTC
    } else {
        local.clone()
    };
    let at = |d: Date| {
        tz.to_ambiguous_timestamp(DateTime::from_parts(d, spec.time))
            .compatible()
            .ok()
    };
    if let Some(d) = spec.date {
        return at(d).filter(|t| *t > now);
    }
    let today = tz.to_datetime(now).date();
    match at(today).filter(|t| *t > now) {
        Some(t) => Some(t),
        None => at(today.tomorrow().ok()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keepalived_s_three_formats_and_nothing_else() {
        let s = parse("12:30:05Z").unwrap();
        assert_eq!((s.date, s.utc), (None, true));
        let s = parse("26-12-05 08:00:00").unwrap();
        assert_eq!(s.date, Some(Date::new(2026, 12, 5).unwrap()));
        assert!(!s.utc);
        let s = parse("1999-01-02 03:04:05Z\nignored").unwrap();
        assert_eq!(s.date, Some(Date::new(1999, 1, 2).unwrap()));
        assert_eq!(
            parse("70-01-01 00:00:00").unwrap().date,
            Some(Date::new(1970, 1, 1).unwrap())
        );
        for bad in [
            "",
            " 12:00:00",
            "12:00:00 ",
            "12:00",
            "2026-12-05  12:00:00",
            "2026-12-05T12:00:00",
            "25:00:00",
            "2026-02-30 12:00:00",
            "12:00:00z",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_next_time_is_today_or_tomorrow_and_a_past_date_is_none() {
        let utc = TimeZone::UTC;
        let now = ts("2026-12-05T10:00:00Z");
        let at = |t: &str| next(&parse(t).unwrap(), now, &utc);
        assert_eq!(at("10:00:01Z"), Some(ts("2026-12-05T10:00:01Z")));
        assert_eq!(at("10:00:00Z"), Some(ts("2026-12-06T10:00:00Z")));
        assert_eq!(at("09:00:00Z"), Some(ts("2026-12-06T09:00:00Z")));
        assert_eq!(at("2026-12-05 10:00:02Z"), Some(ts("2026-12-05T10:00:02Z")));
        assert_eq!(at("2026-12-05 09:59:59Z"), None);
        // Local time: the zone the driver gives.
        let tokyo = TimeZone::fixed(jiff::tz::offset(9));
        let s = parse("2026-12-05 20:00:00").unwrap();
        assert_eq!(next(&s, now, &tokyo), Some(ts("2026-12-05T11:00:00Z")));
    }
}
