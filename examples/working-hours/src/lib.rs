//! A [`Policy`] that makes the backend **read-only outside working hours**: lists,
//! details, transcripts and live events always; commands (create, input, resize,
//! cancel, stop, delete, and the interactive WebSocket) only while the
//! [`Schedule`] says the office is open. Everything else is decided by the policy it
//! wraps (roles, grants and worker ownership with `[auth]`), so it adds a rule
//! without replacing any.
//!
//! The time comes from a [`Clock`], so tests (and demos) set it.
//!
//! ```
//! use std::sync::Arc;
//! use switchyard_example_working_hours::{Schedule, WorkingHours, system_clock};
//! use switchyard_server::Backend;
//!
//! let schedule: Schedule = "mon-fri 09:00-17:00 +01:00".parse().expect("a schedule");
//! let backend = Backend::builder().wrap_policy(move |inner| {
//!     Arc::new(WorkingHours::new(inner, schedule.clone(), system_clock()))
//! });
//! # drop(backend);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use switchyard_protocol::{RuntimeId, WorkerEvent, WorkerId};
use switchyard_registry::{Caller, Policy, PolicyDenied, PolicyRequest};
use time::{OffsetDateTime, Time, UtcOffset, Weekday};

/// Where the policy reads the time.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// When commands are allowed: on some days of the week, between two times of day,
/// in one UTC offset. Written `DAYS OPEN-CLOSE OFFSET`, e.g. `mon-fri 09:00-17:00
/// +01:00` (days are a comma list of days and ranges; the close is excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    days: [bool; 7],
    open: Time,
    close: Time,
    offset: UtcOffset,
}

/// Why a schedule does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Not three parts.
    #[error("a schedule is DAYS OPEN-CLOSE OFFSET, e.g. \"mon-fri 09:00-17:00 +00:00\"")]
    Shape,
    /// A day that is not `mon` ... `sun`, or an empty list.
    #[error(
        "days are mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, separated by commas; got {0:?}"
    )]
    Days(String),
    /// Times that are not `HH:MM-HH:MM` with the close after the open.
    #[error("hours are HH:MM-HH:MM with the close after the open, e.g. 09:00-17:00; got {0:?}")]
    Hours(String),
    /// An offset that is not `+HH:MM` or `-HH:MM`.
    #[error("the offset is +HH:MM or -HH:MM from UTC, e.g. +01:00; got {0:?}")]
    Offset(String),
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(name: &str) -> Option<usize> {
    DAY_NAMES.iter().position(|d| *d == name)
}

fn parse_days(text: &str) -> Result<[bool; 7], ScheduleError> {
    let bad = || ScheduleError::Days(text.to_owned());
    let mut days = [false; 7];
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (day_index(a).ok_or_else(bad)?, day_index(b).ok_or_else(bad)?),
            None => {
                let day = day_index(part).ok_or_else(bad)?;
                (day, day)
            }
        };
        if last < first {
            return Err(bad());
        }
        days[first..=last].iter_mut().for_each(|d| *d = true);
    }
    Ok(days)
}

fn parse_time(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

fn parse_offset(text: &str) -> Option<UtcOffset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let time = parse_time(&text[1..])?;
    UtcOffset::from_hms(sign * time.hour() as i8, sign * time.minute() as i8, 0).ok()
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, ScheduleError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, hours, offset] = parts[..] else {
            return Err(ScheduleError::Shape);
        };
        let bad_hours = || ScheduleError::Hours(hours.to_owned());
        let (open, close) = hours.split_once('-').ok_or_else(bad_hours)?;
        let (open, close) = (
            parse_time(open).ok_or_else(bad_hours)?,
            parse_time(close).ok_or_else(bad_hours)?,
        );
        if close <= open {
            return Err(bad_hours());
        }
        Ok(Self {
            days: parse_days(days)?,
            open,
            close,
            offset: parse_offset(offset).ok_or_else(|| ScheduleError::Offset(offset.to_owned()))?,
        })
    }
}

impl Schedule {
    /// Whether commands are allowed at `now`.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        let local = now.to_offset(self.offset);
        let day = local.weekday().number_days_from_monday() as usize;
        self.days[day] && local.time() >= self.open && local.time() < self.close
    }

    /// `now` in the schedule's offset, as people read it: `Sat 10:12`.
    fn local_time(&self, now: OffsetDateTime) -> String {
        let local = now.to_offset(self.offset);
        format!(
            "{} {:02}:{:02}",
            weekday_name(local.weekday()),
            local.hour(),
            local.minute()
        )
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

impl fmt::Display for Schedule {
    /// `Mon-Fri 09:00-17:00 UTC+01:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let mut runs = Vec::new();
        let mut day = 0;
        while day < 7 {
            if !self.days[day] {
                day += 1;
                continue;
            }
            let start = day;
            while day + 1 < 7 && self.days[day + 1] {
                day += 1;
            }
            runs.push(if start == day {
                names[start].to_owned()
            } else {
                format!("{}-{}", names[start], names[day])
            });
            day += 1;
        }
        let (h, m, _) = self.offset.as_hms();
        let sign = if self.offset.is_negative() { '-' } else { '+' };
        write!(
            f,
            "{} {:02}:{:02}-{:02}:{:02} UTC{sign}{:02}:{:02}",
            runs.join(","),
            self.open.hour(),
            self.open.minute(),
            self.close.hour(),
            self.close.minute(),
            h.unsigned_abs(),
            m.unsigned_abs()
        )
    }
}

/// Read-only outside the [`Schedule`]; otherwise whatever `inner` decides.
pub struct WorkingHours {
    inner: Arc<dyn Policy>,
    schedule: Schedule,
    clock: Clock,
}

impl fmt::Debug for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkingHours")
            .field("schedule", &self.schedule.to_string())
            .finish_non_exhaustive()
    }
}

impl WorkingHours {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Policy>, schedule: Schedule, clock: Clock) -> Self {
        Self {
            inner,
            schedule,
            clock,
        }
    }
}

/// A policy that wraps another forwards every method it does not decide itself, so
/// that the inner policy's worker ownership and event filtering stay in force.
impl Policy for WorkingHours {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        if request.action.is_command() {
            let now = (self.clock)();
            if !self.schedule.is_open(now) {
                return Err(PolicyDenied(format!(
                    "this backend takes commands {} only, and it is {} there: you may read and watch, but not {}; try again in working hours",
                    self.schedule,
                    self.schedule.local_time(now),
                    request.action.describe()
                )));
            }
        }
        self.inner.authorize(request)
    }

    fn authorize_admin(&self, caller: &Caller) -> Result<(), PolicyDenied> {
        self.inner.authorize_admin(caller)
    }

    fn scopes_workers(&self, caller: &Caller) -> bool {
        self.inner.scopes_workers(caller)
    }

    fn reaches_worker(&self, caller: &Caller, runtime_id: &RuntimeId, owner: Option<&str>) -> bool {
        self.inner.reaches_worker(caller, runtime_id, owner)
    }

    fn tracks_owners(&self) -> bool {
        self.inner.tracks_owners()
    }

    fn filters_events(&self) -> bool {
        self.inner.filters_events()
    }

    fn filter_event(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
        event: WorkerEvent,
    ) -> Option<WorkerEvent> {
        self.inner
            .filter_event(caller, runtime_id, worker_id, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RFC 3339 time.
    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn schedules_read_and_print() {
        let cases = [
            (
                "mon-fri 09:00-17:00 +00:00",
                "Mon-Fri 09:00-17:00 UTC+00:00",
            ),
            (
                "sat,sun 10:30-12:00 -05:30",
                "Sat-Sun 10:30-12:00 UTC-05:30",
            ),
            (
                "mon,wed-thu,sun 00:00-23:59 +14:00",
                "Mon,Wed-Thu,Sun 00:00-23:59 UTC+14:00",
            ),
        ];
        for (text, shown) in cases {
            let schedule: Schedule = text.parse().unwrap();
            assert_eq!(schedule.to_string(), shown);
        }
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let cases = [
            ("mon-fri 09:00-17:00", ScheduleError::Shape),
            (
                "weekdays 09:00-17:00 +00:00",
                ScheduleError::Days("weekdays".into()),
            ),
            (
                "fri-mon 09:00-17:00 +00:00",
                ScheduleError::Days("fri-mon".into()),
            ),
            (
                "mon 17:00-09:00 +00:00",
                ScheduleError::Hours("17:00-09:00".into()),
            ),
            (
                "mon 9:00-17:00 +00:00",
                ScheduleError::Hours("9:00-17:00".into()),
            ),
            (
                "mon 09:00-24:00 +00:00",
                ScheduleError::Hours("09:00-24:00".into()),
            ),
            (
                "mon 09:00-17:00 01:00",
                ScheduleError::Offset("01:00".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Schedule>().unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn open_hours_in_the_schedules_offset() {
        let schedule: Schedule = "mon-fri 09:00-17:00 +01:00".parse().unwrap();
        let cases = [
            // 2026-01-05 is a Monday.
            (at("2026-01-05T08:00:00Z"), true, "09:00 Monday in +01:00"),
            (at("2026-01-05T07:59:00Z"), false, "08:59 there"),
            (at("2026-01-05T15:59:00Z"), true, "16:59 there"),
            (at("2026-01-05T16:00:00Z"), false, "17:00 there: closed"),
            (at("2026-01-09T12:00:00Z"), true, "Friday noon"),
            (at("2026-01-10T12:00:00Z"), false, "Saturday"),
            (at("2026-01-04T23:30:00Z"), false, "Monday 00:30 there"),
        ];
        for (now, open, why) in cases {
            assert_eq!(schedule.is_open(now), open, "{why}");
        }
        assert_eq!(schedule.local_time(at("2026-01-10T09:12:00Z")), "Sat 10:12");
    }
}
