//! Sequences kept by the GTM, with PostgreSQL's semantics: increment, bounds, start, cache,
//! cycle, `nextval`, `setval`, `ALTER SEQUENCE ... RESTART`.
//!
//! `nextval` hands out a whole range of up to `cache` values at once; the caller (a coordinator
//! backend) spends them locally, as a PostgreSQL backend spends its cached values. A range never
//! wraps: at the limit it is cut short, and the next call wraps (CYCLE) or fails (2200H).
//!
//! Durability: values are reserved ahead. `reserved` counts the values that may still be handed
//! out before the control file must be written again; the control file records the position
//! after all reserved values, so a GTM restarted after `kill -9` resumes past everything it ever
//! handed out. A wrap, `setval` and every DDL change force a write.

use rxc_common::gtm::proto::{
    ErrorCode, GtmError, SeqAlterOptions, SeqOptions, SeqValue, SequenceInfo,
};
use serde::{Deserialize, Serialize};

/// How many values are reserved ahead per control-file write (at least one cache's worth).
pub const SEQ_RESERVE: u64 = 1000;

/// A sequence: definition and position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: String,
    pub increment: SeqValue,
    pub min_value: SeqValue,
    pub max_value: SeqValue,
    pub start: SeqValue,
    pub cache: SeqValue,
    pub cycle: bool,
    pub last_value: SeqValue,
    pub is_called: bool,
    /// Values that may be handed out, without wrapping, before a durable write is needed.
    pub reserved: u64,
}

/// The durable form of a sequence: its definition and the position past every reserved value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableSequence {
    pub name: String,
    pub increment: SeqValue,
    pub min_value: SeqValue,
    pub max_value: SeqValue,
    pub start: SeqValue,
    pub cache: SeqValue,
    pub cycle: bool,
    pub last_value: SeqValue,
    pub is_called: bool,
}

fn invalid(message: String) -> GtmError {
    GtmError::new(ErrorCode::InvalidParameter, message)
}

impl Sequence {
    /// `CREATE SEQUENCE name` with PostgreSQL's defaults and checks.
    pub fn create(name: &str, o: &SeqOptions) -> Result<Sequence, GtmError> {
        let increment = o.increment.unwrap_or(1);
        let mut seq = Sequence {
            name: name.to_string(),
            increment,
            min_value: 0,
            max_value: 0,
            start: 0,
            cache: o.cache.unwrap_or(1),
            cycle: o.cycle,
            last_value: 0,
            is_called: false,
            reserved: 0,
        };
        seq.set_bounds(o.min_value, o.max_value)?;
        seq.start = o.start.unwrap_or(if increment > 0 {
            seq.min_value
        } else {
            seq.max_value
        });
        seq.validate()?;
        seq.last_value = seq.start;
        Ok(seq)
    }

    fn set_bounds(&mut self, min: Option<SeqValue>, max: Option<SeqValue>) -> Result<(), GtmError> {
        if self.increment == 0 {
            return Err(invalid("INCREMENT must not be zero".into()));
        }
        let ascending = self.increment > 0;
        self.min_value = min.unwrap_or(if ascending { 1 } else { SeqValue::MIN });
        self.max_value = max.unwrap_or(if ascending { SeqValue::MAX } else { -1 });
        Ok(())
    }

    fn validate(&self) -> Result<(), GtmError> {
        if self.increment == 0 {
            return Err(invalid("INCREMENT must not be zero".into()));
        }
        if self.min_value >= self.max_value {
            return Err(invalid(format!(
                "MINVALUE ({}) must be less than MAXVALUE ({})",
                self.min_value, self.max_value
            )));
        }
        if self.start < self.min_value {
            return Err(invalid(format!(
                "START value ({}) cannot be less than MINVALUE ({})",
                self.start, self.min_value
            )));
        }
        if self.start > self.max_value {
            return Err(invalid(format!(
                "START value ({}) cannot be greater than MAXVALUE ({})",
                self.start, self.max_value
            )));
        }
        if self.cache <= 0 {
            return Err(invalid(format!(
                "CACHE ({}) must be greater than zero",
                self.cache
            )));
        }
        Ok(())
    }

    /// `ALTER SEQUENCE`: applies the given options, keeping the position unless RESTART.
    pub fn alter(&mut self, o: &SeqAlterOptions) -> Result<(), GtmError> {
        let mut next = self.clone();
        if let Some(inc) = o.increment {
            next.increment = inc;
        }
        if next.increment == 0 {
            return Err(invalid("INCREMENT must not be zero".into()));
        }
        let ascending = next.increment > 0;
        match o.min_value {
            Some(Some(v)) => next.min_value = v,
            Some(None) => next.min_value = if ascending { 1 } else { SeqValue::MIN },
            None => {}
        }
        match o.max_value {
            Some(Some(v)) => next.max_value = v,
            Some(None) => next.max_value = if ascending { SeqValue::MAX } else { -1 },
            None => {}
        }
        if let Some(start) = o.start {
            next.start = start;
        }
        if let Some(cache) = o.cache {
            next.cache = cache;
        }
        if let Some(cycle) = o.cycle {
            next.cycle = cycle;
        }
        next.validate()?;
        if let Some(restart) = o.restart {
            let value = restart.unwrap_or(next.start);
            if value < next.min_value {
                return Err(invalid(format!(
                    "RESTART value ({value}) cannot be less than MINVALUE ({})",
                    next.min_value
                )));
            }
            if value > next.max_value {
                return Err(invalid(format!(
                    "RESTART value ({value}) cannot be greater than MAXVALUE ({})",
                    next.max_value
                )));
            }
            next.last_value = value;
            next.is_called = false;
        } else if next.last_value < next.min_value || next.last_value > next.max_value {
            // PostgreSQL refuses bounds that exclude the current value.
            return Err(invalid(format!(
                "RESTART value ({}) cannot be {} {}VALUE ({})",
                next.last_value,
                if next.last_value < next.min_value {
                    "less than"
                } else {
                    "greater than"
                },
                if next.last_value < next.min_value {
                    "MIN"
                } else {
                    "MAX"
                },
                if next.last_value < next.min_value {
                    next.min_value
                } else {
                    next.max_value
                },
            )));
        }
        next.reserved = 0;
        *self = next;
        Ok(())
    }

    /// `nextval`: up to `cache` values as `(first, count)`. Returns whether the control file
    /// must be written before the values are handed out.
    pub fn next_range(&mut self) -> Result<(SeqValue, u64, bool), GtmError> {
        let inc = self.increment as i128;
        let (min, max) = (self.min_value as i128, self.max_value as i128);
        let mut wrapped = false;
        let first: i128 = if !self.is_called {
            self.last_value as i128
        } else {
            let candidate = self.last_value as i128 + inc;
            if candidate > max || candidate < min {
                if !self.cycle {
                    let (word, limit) = if inc > 0 {
                        ("maximum", max)
                    } else {
                        ("minimum", min)
                    };
                    return Err(GtmError::new(
                        ErrorCode::SequenceLimit,
                        format!(
                            "nextval: reached {word} value of sequence \"{}\" ({limit})",
                            self.name
                        ),
                    ));
                }
                wrapped = true;
                if inc > 0 {
                    min
                } else {
                    max
                }
            } else {
                candidate
            }
        };
        // Values from `first` onwards until the limit, in steps of `inc`.
        let room = if inc > 0 {
            (max - first) / inc + 1
        } else {
            (first - min) / -inc + 1
        };
        let count = (self.cache as i128).min(room).max(1) as u64;
        self.last_value = (first + (count as i128 - 1) * inc) as SeqValue;
        self.is_called = true;
        if wrapped {
            self.reserved = 0;
        }
        let persist = if count > self.reserved {
            let room_after = (room as u64).saturating_sub(count);
            self.reserved = room_after.min(SEQ_RESERVE.max(self.cache as u64));
            true
        } else {
            self.reserved -= count;
            false
        };
        Ok((first as SeqValue, count, persist))
    }

    /// `setval(name, value, is_called)`.
    pub fn set(&mut self, value: SeqValue, is_called: bool) -> Result<(), GtmError> {
        if value < self.min_value || value > self.max_value {
            return Err(GtmError::new(
                ErrorCode::OutOfRange,
                format!(
                    "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                    self.name, self.min_value, self.max_value
                ),
            ));
        }
        self.last_value = value;
        self.is_called = is_called;
        self.reserved = 0;
        Ok(())
    }

    /// The definition and current position.
    pub fn info(&self) -> SequenceInfo {
        SequenceInfo {
            name: self.name.clone(),
            increment: self.increment,
            min_value: self.min_value,
            max_value: self.max_value,
            start: self.start,
            cache: self.cache,
            cycle: self.cycle,
            last_value: self.last_value,
            is_called: self.is_called,
        }
    }

    /// The durable form: the position after every reserved value.
    pub fn durable(&self) -> DurableSequence {
        let last_value =
            (self.last_value as i128 + self.reserved as i128 * self.increment as i128) as SeqValue;
        DurableSequence {
            name: self.name.clone(),
            increment: self.increment,
            min_value: self.min_value,
            max_value: self.max_value,
            start: self.start,
            cache: self.cache,
            cycle: self.cycle,
            last_value,
            is_called: self.is_called || self.reserved > 0,
        }
    }

    /// A sequence as it resumes from its durable form.
    pub fn from_durable(d: &DurableSequence) -> Sequence {
        Sequence {
            name: d.name.clone(),
            increment: d.increment,
            min_value: d.min_value,
            max_value: d.max_value,
            start: d.start,
            cache: d.cache,
            cycle: d.cycle,
            last_value: d.last_value,
            is_called: d.is_called,
            reserved: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(inc: i64, min: Option<i64>, max: Option<i64>, cache: i64, cycle: bool) -> SeqOptions {
        SeqOptions {
            increment: Some(inc),
            min_value: min,
            max_value: max,
            start: None,
            cache: Some(cache),
            cycle,
        }
    }

    fn values(seq: &mut Sequence, calls: usize) -> Vec<Result<(i64, u64), ErrorCode>> {
        (0..calls)
            .map(|_| seq.next_range().map(|(f, c, _)| (f, c)).map_err(|e| e.code))
            .collect()
    }

    #[test]
    fn defaults_follow_postgresql() {
        let up = Sequence::create("s", &SeqOptions::default()).unwrap();
        assert_eq!(
            (up.min_value, up.max_value, up.start, up.cache),
            (1, i64::MAX, 1, 1)
        );
        let down = Sequence::create("d", &opts(-1, None, None, 1, false)).unwrap();
        assert_eq!(
            (down.min_value, down.max_value, down.start),
            (i64::MIN, -1, -1)
        );
    }

    #[test]
    fn invalid_definitions_are_refused_with_postgres_messages() {
        let cases = [
            (opts(0, None, None, 1, false), "INCREMENT must not be zero"),
            (
                opts(1, Some(5), Some(5), 1, false),
                "MINVALUE (5) must be less than MAXVALUE (5)",
            ),
            (
                opts(1, None, None, 0, false),
                "CACHE (0) must be greater than zero",
            ),
            (
                SeqOptions {
                    start: Some(0),
                    ..SeqOptions::default()
                },
                "START value (0) cannot be less than MINVALUE (1)",
            ),
        ];
        for (o, message) in cases {
            let err = Sequence::create("s", &o).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidParameter);
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn nextval_stops_at_max_without_cycle() {
        let mut s = Sequence::create("s", &opts(2, Some(1), Some(6), 1, false)).unwrap();
        assert_eq!(
            values(&mut s, 4),
            vec![
                Ok((1, 1)),
                Ok((3, 1)),
                Ok((5, 1)),
                Err(ErrorCode::SequenceLimit)
            ]
        );
        let err = s.next_range().unwrap_err();
        assert_eq!(
            err.message,
            "nextval: reached maximum value of sequence \"s\" (6)"
        );
        assert_eq!(err.code.sqlstate(), "2200H");
    }

    #[test]
    fn nextval_cycles_and_ranges_never_wrap() {
        let mut s = Sequence::create("s", &opts(1, Some(1), Some(5), 2, true)).unwrap();
        assert_eq!(
            values(&mut s, 5),
            vec![Ok((1, 2)), Ok((3, 2)), Ok((5, 1)), Ok((1, 2)), Ok((3, 2))]
        );
        let mut down = Sequence::create("d", &opts(-3, Some(-10), Some(-1), 1, true)).unwrap();
        assert_eq!(
            values(&mut down, 5),
            vec![
                Ok((-1, 1)),
                Ok((-4, 1)),
                Ok((-7, 1)),
                Ok((-10, 1)),
                Ok((-1, 1))
            ]
        );
    }

    #[test]
    fn setval_and_restart() {
        let mut s = Sequence::create("s", &SeqOptions::default()).unwrap();
        s.set(41, true).unwrap();
        assert_eq!(s.next_range().unwrap().0, 42);
        s.set(7, false).unwrap();
        assert_eq!(s.next_range().unwrap().0, 7);
        let err = s.set(0, true).unwrap_err();
        assert_eq!(err.code.sqlstate(), "22003");
        s.alter(&SeqAlterOptions {
            restart: Some(Some(100)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.next_range().unwrap().0, 100);
        s.alter(&SeqAlterOptions {
            increment: Some(10),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.next_range().unwrap().0, 110);
    }

    #[test]
    fn durable_position_covers_every_value_handed_out() {
        let mut s = Sequence::create("s", &opts(1, None, None, 10, false)).unwrap();
        let mut handed_out = Vec::new();
        let mut writes = 0;
        let mut durable = s.durable();
        for _ in 0..500 {
            let (first, count, persist) = s.next_range().unwrap();
            if persist {
                writes += 1;
                durable = s.durable();
            }
            handed_out.push(first + count as i64 - 1);
        }
        // Reserving ahead keeps writes rare.
        assert!(writes <= 6, "{writes} control-file writes for 500 nextvals");
        // A restart from the last durable state resumes past every value handed out.
        let mut restarted = Sequence::from_durable(&durable);
        let (next, _, _) = restarted.next_range().unwrap();
        assert!(next > *handed_out.iter().max().unwrap());
    }
}
