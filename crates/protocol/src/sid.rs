//! SIDs: a two-letter prefix naming the kind, then 32 lowercase hex digits.

use arrayvec::ArrayString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidKind {
    Account,
    ApiKey,
    Service,
    Document,
    List,
    Map,
    Stream,
    StreamMessage,
    ProxyService,
    ProxySession,
    ProxyParticipant,
    ProxyInteraction,
    PhoneNumber,
    ShortCode,
    /// A relayed message (the legs of Proxy interactions).
    Message,
    /// A Proxy alert (a debugger notification).
    Alert,
    /// A live query's subscription.
    LiveQuery,
}

impl SidKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SidKind::Account => "AC",
            SidKind::ApiKey => "SK",
            SidKind::Service => "IS",
            SidKind::Document => "ET",
            SidKind::List => "ES",
            SidKind::Map => "MP",
            SidKind::Stream => "TO",
            SidKind::StreamMessage => "TZ",
            SidKind::ProxyService => "KS",
            SidKind::ProxySession => "KC",
            SidKind::ProxyParticipant => "KP",
            SidKind::ProxyInteraction => "KI",
            SidKind::PhoneNumber => "PN",
            SidKind::ShortCode => "SC",
            SidKind::Message => "SM",
            SidKind::Alert => "NO",
            SidKind::LiveQuery => "LQ",
        }
    }

    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "AC" => SidKind::Account,
            "SK" => SidKind::ApiKey,
            "IS" => SidKind::Service,
            "ET" => SidKind::Document,
            "ES" => SidKind::List,
            "MP" => SidKind::Map,
            "TO" => SidKind::Stream,
            "TZ" => SidKind::StreamMessage,
            "KS" => SidKind::ProxyService,
            "KC" => SidKind::ProxySession,
            "KP" => SidKind::ProxyParticipant,
            "KI" => SidKind::ProxyInteraction,
            "PN" => SidKind::PhoneNumber,
            "SC" => SidKind::ShortCode,
            "SM" => SidKind::Message,
            "NO" => SidKind::Alert,
            "LQ" => SidKind::LiveQuery,
            _ => return None,
        })
    }
}

/// The length of every SID: the prefix and 32 hex digits.
const SID_LEN: usize = 34;

/// A validated SID. Stored as its string form because that is how every wire and table uses
/// it, inline: a SID is always 34 bytes, so copying one (every event, object and reply holds
/// some) needs no allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(ArrayString<SID_LEN>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid SID: expected two capital letters and 32 lowercase hex digits")]
pub struct InvalidSid(pub String);

impl Sid {
    /// A fresh SID; UUIDv7 keeps new SIDs in creation order, which keeps indexes local.
    pub fn new(kind: SidKind) -> Self {
        Self::of(kind, uuid::Uuid::now_v7())
    }

    /// A fresh SID with no time component, for secrets-adjacent identifiers.
    pub fn random(kind: SidKind) -> Self {
        Self::of(kind, uuid::Uuid::new_v4())
    }

    fn of(kind: SidKind, id: uuid::Uuid) -> Self {
        let mut hex = [0; 32];
        let mut sid = ArrayString::new();
        sid.push_str(kind.prefix());
        sid.push_str(id.simple().encode_lower(&mut hex));
        Sid(sid)
    }

    pub fn parse(s: &str) -> Result<Self, InvalidSid> {
        match ArrayString::from(s) {
            Ok(sid) if looks_like_sid(s) && SidKind::from_prefix(&s[..2]).is_some() => Ok(Sid(sid)),
            _ => Err(InvalidSid(s.to_owned())),
        }
    }

    /// Parses and checks the kind in one step.
    pub fn parse_kind(s: &str, kind: SidKind) -> Result<Self, InvalidSid> {
        let sid = Self::parse(s)?;
        if sid.kind() == kind { Ok(sid) } else { Err(InvalidSid(s.to_owned())) }
    }

    pub fn kind(&self) -> SidKind {
        // Constructed only through `parse`/`new`, so the prefix is always known.
        SidKind::from_prefix(&self.0[..2]).unwrap_or(SidKind::Account)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SID's text as a `String`, without `Display`'s formatting (as `to_string` would).
    pub fn into_string(self) -> String {
        self.0.as_str().to_owned()
    }
}

/// True when `s` has the shape of a SID (any two capitals + 32 lowercase hex). Unique names may
/// never have this shape, so that a path segment is never ambiguous.
pub fn looks_like_sid(s: &str) -> bool {
    let b = s.as_bytes();
    // Every digit checked without an early exit, which the compiler turns into a few vector
    // instructions: SIDs arrive in every request, and nearly all of them are well formed.
    b.len() == SID_LEN
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2..].iter().fold(true, |ok, &c| ok & (c.is_ascii_digit() | (b'a'..=b'f').contains(&c)))
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Sid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read from the input as it is, without a `String` of its own first.
        struct SidText;
        impl serde::de::Visitor<'_> for SidText {
            type Value = Sid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SID")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Sid, E> {
                Sid::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(SidText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sids_have_the_prefix_and_32_hex_digits() {
        let sid = Sid::new(SidKind::Document);
        assert!(sid.as_str().starts_with("ET"));
        assert_eq!(sid.as_str().len(), 34);
        assert_eq!(Sid::parse(sid.as_str()), Ok(sid.clone()));
        assert_eq!(sid.kind(), SidKind::Document);
    }

    #[test]
    fn rejects_bad_shapes_and_unknown_prefixes() {
        assert!(Sid::parse("ET123").is_err());
        assert!(Sid::parse(&format!("ET{}", "A".repeat(32))).is_err());
        assert!(Sid::parse(&format!("ZZ{}", "a".repeat(32))).is_err());
        assert!(looks_like_sid(&format!("ZZ{}", "a".repeat(32))));
        // A bad digit anywhere, at either end included, is refused.
        for at in [2, 17, 33] {
            for bad in [b'g', b'A', b'/', b':', b'`', b' ', 0xc3] {
                let mut text = format!("ET{}", "0".repeat(32)).into_bytes();
                text[at] = bad;
                assert!(!looks_like_sid(&String::from_utf8_lossy(&text)), "{bad} at {at}");
            }
        }
        assert!(Sid::parse_kind(&format!("ET{}", "a".repeat(32)), SidKind::Map).is_err());
        assert!(Sid::parse(&format!("ET{}", "a".repeat(33))).is_err(), "longer than a SID");
        assert!(Sid::parse("").is_err());
    }

    #[test]
    fn sids_read_from_json_as_text_and_are_refused_otherwise() {
        let sid = Sid::new(SidKind::Stream);
        let json = serde_json::to_string(&sid).expect("writes");
        assert_eq!(json, format!("\"{sid}\""));
        assert_eq!(serde_json::from_str::<Sid>(&json).expect("reads"), sid);
        // Escaped text is read through a buffer of its own.
        let escaped = format!("\"\\u0054O{}\"", &sid.as_str()[2..]);
        assert_eq!(serde_json::from_str::<Sid>(&escaped).expect("reads"), sid);
        for bad in ["42", "null", "\"TO123\"", "[\"a\"]"] {
            assert!(serde_json::from_str::<Sid>(bad).is_err(), "{bad}");
        }
        let error = serde_json::from_str::<Sid>("\"ZZ0\"").expect_err("refused").to_string();
        assert!(error.contains("'ZZ0' is not a valid SID"), "{error}");
    }

    #[test]
    fn random_sids_are_distinct_and_well_formed() {
        let (a, b) = (Sid::random(SidKind::ApiKey), Sid::random(SidKind::ApiKey));
        assert_ne!(a, b);
        for sid in [&a, &b] {
            assert_eq!(Sid::parse(sid.as_str()).as_ref(), Ok(sid));
            assert_eq!(sid.kind(), SidKind::ApiKey);
        }
        assert_eq!(a.clone().into_string(), a.as_str());
    }
}
