//! The tokens of `/sync` and `/messages`. A sync token is a position in the Matrix service's
//! change log plus how far the device has read its to-device queue; a room token is a place in
//! one room's timeline. `/messages` takes either, so the two share one textual space.

use crate::error::CoreError;
use std::fmt;

/// `s<seq>_<to-device index>`: everything up to `seq` was delivered; to-device messages below
/// `to_device` were delivered and may go once a later sync presents this token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncToken {
    pub seq: u64,
    pub to_device: u64,
}

impl fmt::Display for SyncToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}_{}", self.seq, self.to_device)
    }
}

impl SyncToken {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, CoreError> {
        let bad = || CoreError::invalid(field, format!("'{text}' is not a sync token of this server"));
        let (seq, to_device) = text.strip_prefix('s').and_then(|t| t.split_once('_')).ok_or_else(bad)?;
        Ok(SyncToken { seq: seq.parse().map_err(|_| bad())?, to_device: to_device.parse().map_err(|_| bad())? })
    }
}

/// Where `/messages` starts or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Where a sync left the room: after every event committed up to this log position.
    Sync(u64),
    /// Just before the timeline item with this index.
    Room(u64),
}

impl Position {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, CoreError> {
        if let Some(index) = text.strip_prefix('t') {
            return index
                .parse()
                .map(Position::Room)
                .map_err(|_| CoreError::invalid(field, format!("'{text}' is not a pagination token of this server")));
        }
        SyncToken::parse(field, text).map(|t| Position::Sync(t.seq))
    }
}

/// The token of a place in a room's timeline.
pub fn room_token(index: u64) -> String {
    format!("t{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let t = SyncToken { seq: 42, to_device: 7 };
        assert_eq!(t.to_string(), "s42_7");
        assert_eq!(SyncToken::parse("since", "s42_7").expect("valid"), t);
        for bad in ["", "s", "42_7", "s42", "sx_1", "s1_", "s-1_0"] {
            assert!(SyncToken::parse("since", bad).is_err(), "{bad}");
        }
        assert_eq!(Position::parse("from", "t12").expect("valid"), Position::Room(12));
        assert_eq!(Position::parse("from", "s5_0").expect("valid"), Position::Sync(5));
        assert!(Position::parse("from", "tx").is_err());
    }
}
