//! The change log: one event per mutation, numbered per service, and the since-tokens that
//! let a reader resume exactly where it left off.

use crate::error::CoreError;
use crate::model::ObjectKind;
use crate::sid::Sid;
use crate::store::EventJson;
use crate::timestamp::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

pub use ferrosync_protocol::event::{Event, EventKind};

/// What a mutation records before the store assigns its sequence number.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub kind: EventKind,
    pub object_sid: Sid,
    pub object_kind: ObjectKind,
    pub unique_name: Option<String>,
    pub item_index: Option<u64>,
    pub item_key: Option<String>,
    pub message_sid: Option<Sid>,
    pub revision: u64,
    pub data: Option<std::sync::Arc<Value>>,
    pub previous_data: Option<std::sync::Arc<Value>>,
    pub date_expires: Option<Timestamp>,
    pub date: Timestamp,
    pub identity: String,
    pub reason: Option<String>,
}

impl EventDraft {
    pub fn into_event(self, store_epoch: &str, service_sid: Sid, seq: u64) -> Event {
        let token = encode_since_token(store_epoch, &service_sid, seq);
        Event {
            seq,
            token,
            kind: self.kind,
            service_sid,
            object_sid: self.object_sid,
            object_kind: self.object_kind,
            unique_name: self.unique_name,
            item_index: self.item_index,
            item_key: self.item_key,
            message_sid: self.message_sid,
            revision: self.revision,
            data: self.data,
            previous_data: self.previous_data,
            date_expires: self.date_expires,
            date: self.date,
            identity: self.identity,
            reason: self.reason,
        }
    }
}

/// A position in one service's change log, tied to the store that issued it so a token
/// from elsewhere is refused rather than silently misread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinceToken {
    pub epoch: String,
    pub service_sid: Sid,
    pub seq: u64,
}

impl SinceToken {
    pub fn encode(&self) -> String {
        encode_since_token(&self.epoch, &self.service_sid, self.seq)
    }

    pub fn decode(token: &str) -> Result<Self, CoreError> {
        let bad = || CoreError::InvalidSinceToken(format!("'{token}' is not a since-token issued by this server"));
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let mut parts = raw.split('.');
        let (Some("1"), Some(epoch), Some(service), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(SinceToken {
            epoch: epoch.to_owned(),
            service_sid: Sid::parse(service).map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }

    /// Checks that the token belongs to this store and service, returning its sequence number.
    pub fn seq_for(&self, store_epoch: &str, service_sid: &Sid) -> Result<u64, CoreError> {
        if self.epoch != store_epoch || &self.service_sid != service_sid {
            return Err(CoreError::ForeignSinceToken);
        }
        Ok(self.seq)
    }
}

/// The token of `seq` in `service`'s log: base64url of `1.<epoch>.<service>.<seq>`. Every
/// event carries one, so it is built from its service's prefix, encoded once ([`TokenPrefix`]).
fn encode_since_token(epoch: &str, service: &Sid, seq: u64) -> String {
    let mut seq_digits = itoa::Buffer::new();
    let seq = seq_digits.format(seq);
    with_token_prefix(epoch, service, |prefix| {
        let mut buffer = [0u8; TOKEN_REST_ENCODED];
        let rest = prefix.encode_rest(seq, &mut buffer);
        let mut token = String::with_capacity(prefix.encoded.len() + rest.len());
        token.push_str(&prefix.encoded);
        token.extend(rest.iter().map(|b| char::from(*b)));
        token
    })
}

/// Whether `token` is the one [`encode_since_token`] makes, compared without allocating.
fn is_since_token(epoch: &str, service: &Sid, seq: &str, token: &str) -> bool {
    with_token_prefix(epoch, service, |prefix| {
        let mut buffer = [0u8; TOKEN_REST_ENCODED];
        token
            .strip_prefix(prefix.encoded.as_str())
            .is_some_and(|rest| rest.as_bytes() == prefix.encode_rest(seq, &mut buffer))
    })
}

/// Runs `f` with this thread's prefix of `service`'s tokens, made first if it holds another.
fn with_token_prefix<R>(epoch: &str, service: &Sid, f: impl FnOnce(&TokenPrefix) -> R) -> R {
    TOKEN_PREFIX.with_borrow_mut(|kept| {
        let prefix = match kept {
            Some(p) if p.epoch == epoch && p.service == *service => p,
            _ => kept.insert(TokenPrefix::new(epoch, service)),
        };
        f(prefix)
    })
}

thread_local! {
    /// The last service's token prefix on this thread: a thread's events mostly follow one
    /// another in one service (a writer's batch, a tailer's read).
    static TOKEN_PREFIX: std::cell::RefCell<Option<TokenPrefix>> = const { std::cell::RefCell::new(None) };
}

/// The most bytes of a token's text past its prefix's whole groups: two of the prefix and a
/// `u64`'s twenty digits.
const TOKEN_REST: usize = 22;
/// Their encoding's most characters.
const TOKEN_REST_ENCODED: usize = (TOKEN_REST * 4).div_ceil(3);

/// What every since-token of one service's log begins with, `1.<epoch>.<service>.`, encoded
/// once. Base64 turns each three bytes into four characters on their own, so the encoding of
/// the prefix's first whole groups of three begins every token; only the last byte or two of
/// it and the sequence number are encoded per event.
struct TokenPrefix {
    epoch: String,
    service: Sid,
    encoded: String,
    /// The prefix's bytes past its last whole group of three (none, one or two).
    rest: Vec<u8>,
}

impl TokenPrefix {
    /// The encoding of what follows [`TokenPrefix::encoded`] in the token of `seq` (its
    /// digits), written into `out`.
    fn encode_rest<'a>(&self, seq: &str, out: &'a mut [u8; TOKEN_REST_ENCODED]) -> &'a [u8] {
        let mut raw = [0u8; TOKEN_REST];
        let (from_prefix, digits) = (self.rest.len(), seq.len().min(TOKEN_REST - self.rest.len()));
        raw[..from_prefix].copy_from_slice(&self.rest);
        raw[from_prefix..from_prefix + digits].copy_from_slice(&seq.as_bytes()[..digits]);
        let written = URL_SAFE_NO_PAD.encode_slice(&raw[..from_prefix + digits], out).unwrap_or(0);
        &out[..written]
    }

    fn new(epoch: &str, service: &Sid) -> Self {
        let raw: String = token_parts(epoch, service, "").concat();
        let (whole, rest) = raw.as_bytes().split_at(raw.len() / 3 * 3);
        TokenPrefix {
            epoch: epoch.to_owned(),
            service: service.clone(),
            encoded: URL_SAFE_NO_PAD.encode(whole),
            rest: rest.to_vec(),
        }
    }
}

/// The text a since-token encodes, in its parts: the one place that knows its layout.
fn token_parts<'a>(epoch: &'a str, service: &'a Sid, seq: &'a str) -> [&'a str; 6] {
    ["1.", epoch, ".", service.as_str(), ".", seq]
}

/// An event's head in its parts, the token among them (index [`TOKEN_PART`]).
fn head_parts<'a>(seq: &'a str, token: &'a str, service: &'a Sid) -> [&'a str; 7] {
    ["{\"seq\":", seq, ",\"token\":\"", token, "\",\"service_sid\":\"", service.as_str(), "\","]
}
const TOKEN_PART: usize = 3;

/// The head of an event's JSON as [`Event::to_json`] writes it, everything before `"type"`:
/// `{"seq":…,"token":"…","service_sid":"…",`. The embedded store keeps an event without it, since
/// the row's id, the service it belongs to and the store's epoch give it back; that is a third of
/// a small event's bytes. A token is base64url and a SID alphanumeric, so neither is escaped.
fn event_head(epoch: &str, service: &Sid, seq: u64, rest: usize) -> String {
    let token = encode_since_token(epoch, service, seq);
    let mut seq_digits = itoa::Buffer::new();
    let parts = head_parts(seq_digits.format(seq), &token, service);
    let mut head = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + rest);
    for part in parts {
        head.push_str(part);
    }
    head
}

/// What the embedded store keeps of event `seq`'s text `json`: the text after its head, or the
/// whole text when its head is not the one [`event_from_body`] would rebuild (which no event
/// the rules write has, but the log must never change what it serves).
pub fn stored_body<'a>(epoch: &str, service: &Sid, seq: u64, json: &'a str) -> &'a str {
    rebuildable_head(epoch, service, seq, json).map_or(json, |len| &json[len..])
}

/// The length of `json`'s head if it is the one [`event_head`] would rebuild. The writer calls
/// this for every event it appends, so the head is checked piece by piece and the token against
/// its service's kept prefix and its digits' encoding on the stack: no allocation.
fn rebuildable_head(epoch: &str, service: &Sid, seq: u64, json: &str) -> Option<usize> {
    let mut seq_digits = itoa::Buffer::new();
    let seq = seq_digits.format(seq);
    let parts = head_parts(seq, "", service);
    let mut rest = json;
    for part in &parts[..TOKEN_PART] {
        rest = rest.strip_prefix(part)?;
    }
    let (token, mut body) = rest.split_once('"')?;
    // The part after the token starts with the quote that closed it.
    body = body.strip_prefix(&parts[TOKEN_PART + 1][1..])?;
    for part in &parts[TOKEN_PART + 2..] {
        body = body.strip_prefix(part)?;
    }
    (is_since_token(epoch, service, seq, token) && body.starts_with('"')).then(|| json.len() - body.len())
}

/// An event's text from what the store kept of it ([`stored_body`]): a whole text (an object,
/// as every event was kept before) as it is, else the head put back in front.
pub fn event_from_body(epoch: &str, service: &Sid, seq: u64, body: String) -> EventJson {
    if body.starts_with('{') {
        return EventJson::stored(body);
    }
    let mut text = event_head(epoch, service, seq, body.len());
    text.push_str(&body);
    EventJson::stored(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::SidKind;

    #[test]
    fn tokens_round_trip_and_refuse_other_stores() {
        let service = Sid::new(SidKind::Service);
        let t = SinceToken { epoch: "abc123".into(), service_sid: service.clone(), seq: 42 };
        let decoded = SinceToken::decode(&t.encode()).expect("decodes");
        assert_eq!(decoded, t);
        assert_eq!(decoded.seq_for("abc123", &service).expect("same store"), 42);
        assert!(matches!(decoded.seq_for("other", &service), Err(CoreError::ForeignSinceToken)));
        assert!(matches!(decoded.seq_for("abc123", &Sid::new(SidKind::Service)), Err(CoreError::ForeignSinceToken)));
        assert!(matches!(SinceToken::decode("garbage!"), Err(CoreError::InvalidSinceToken(_))));
    }

    fn draft(kind: EventKind) -> EventDraft {
        EventDraft {
            kind,
            object_sid: Sid::new(SidKind::Document),
            object_kind: ObjectKind::Document,
            unique_name: None,
            item_index: None,
            item_key: None,
            message_sid: None,
            revision: 1,
            data: None,
            previous_data: None,
            date_expires: None,
            date: Timestamp(0),
            identity: "system".into(),
            reason: None,
        }
    }

    #[test]
    fn an_event_is_stored_without_its_head_and_read_back_byte_for_byte() {
        let service = Sid::new(SidKind::Service);
        let mut every_field = draft(EventKind::ListItemUpdated);
        every_field.unique_name = Some("a \"name\", \"type\":".into());
        every_field.item_index = Some(3);
        every_field.data = Some(serde_json::json!({ "type": "not the key", "seq": 1 }).into());
        every_field.previous_data = Some(serde_json::json!("before").into());
        every_field.reason = Some("expired".into());
        for (draft, seq) in [(draft(EventKind::DocumentCreated), 1), (every_field, u64::MAX >> 20)] {
            let json = EventJson::of(&draft.into_event("abc123", service.clone(), seq));
            let body = stored_body("abc123", &service, seq, json.get());
            assert!(body.starts_with("\"type\":"), "{body}");
            assert!(!body.contains(service.as_str()), "the service is left out: {body}");
            assert_eq!(event_from_body("abc123", &service, seq, body.to_owned()), json);
        }
    }

    #[test]
    fn a_text_whose_head_differs_is_kept_whole_and_read_as_it_is() {
        let service = Sid::new(SidKind::Service);
        let json = EventJson::of(&draft(EventKind::DocumentUpdated).into_event("abc123", service.clone(), 5));
        // Another epoch, service or sequence number would rebuild another head.
        for (epoch, svc, seq) in
            [("other", service.clone(), 5), ("abc123", Sid::new(SidKind::Service), 5), ("abc123", service.clone(), 6)]
        {
            assert_eq!(stored_body(epoch, &svc, seq, json.get()), json.get());
        }
        // The same head but for another token.
        let token = encode_since_token("abc123", &service, 5);
        let other_token = json.get().replacen(&token, &encode_since_token("abc124", &service, 5), 1);
        assert_ne!(other_token, json.get());
        assert_eq!(stored_body("abc123", &service, 5, &other_token), other_token);
        // A text stored whole, as every event was before, is served as it is.
        let whole = r#"{"seq":5,"token":"t","type":"document_updated"}"#;
        assert_eq!(event_from_body("abc123", &service, 5, whole.to_owned()).get(), whole);
    }

    #[test]
    fn a_token_keeps_the_form_clients_already_hold() {
        // Clients keep tokens across server upgrades, so the encoding may never drift.
        let service = Sid::new(SidKind::Service);
        let token =
            SinceToken { epoch: "abc123".into(), service_sid: service.clone(), seq: 18_446_744_073_709_551_615 };
        let raw = URL_SAFE_NO_PAD.decode(token.encode()).expect("base64url");
        assert_eq!(String::from_utf8(raw).expect("utf-8"), format!("1.abc123.{service}.18446744073709551615"));
        let event = draft(EventKind::DocumentUpdated).into_event("abc123", service.clone(), 7);
        let from_event = SinceToken::decode(&event.token).expect("decodes");
        assert_eq!(from_event, SinceToken { epoch: "abc123".into(), service_sid: service, seq: 7 });
    }

    /// Tokens built from a kept prefix are the encoding of their whole text, whatever the
    /// prefix's length leaves over its last group of three, across services and epochs that
    /// take turns on one thread.
    #[test]
    fn a_token_from_its_kept_prefix_is_the_encoding_of_its_whole_text() {
        let services = [Sid::new(SidKind::Service), Sid::new(SidKind::Service)];
        // Epochs of three lengths in a row: the prefix leaves zero, one and two bytes over.
        for epoch in ["abc123", "abc1234", "abc12345"] {
            for seq in [0, 1, 99, 100, 12_345, u64::MAX] {
                for service in &services {
                    let whole = format!("1.{epoch}.{service}.{seq}");
                    assert_eq!(encode_since_token(epoch, service, seq), URL_SAFE_NO_PAD.encode(&whole), "{whole}");
                }
            }
        }
    }
}
