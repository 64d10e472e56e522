//! The replies in an out-of-session callback's TwiML answer:
//! `<Response><Message>text</Message>…</Response>`, a `Message` also in its long form
//! (`<Message><Body>text</Body><Media>url</Media></Message>`).
//!
//! No XML crate is in the build, so this is a small parser of the XML that TwiML is: elements,
//! attributes (skipped), text, CDATA, comments, the XML declaration, and the five predefined and
//! numeric character references. A document type declaration is refused (no entity expansion),
//! as is anything malformed; nesting is bounded.

/// Elements nested at most.
const MAX_DEPTH: usize = 16;

/// One reply to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub body: String,
    pub media: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed TwiML at byte {at}: {what}")]
pub(super) struct TwimlError {
    at: usize,
    what: &'static str,
}

#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

/// The `Message` replies of a TwiML `Response`, in order; an empty `Response` has none. A
/// `Message` with neither text nor media is skipped; other verbs are ignored.
pub(super) fn replies(xml: &str) -> Result<Vec<Reply>, TwimlError> {
    let root = parse(xml)?;
    if root.name != "Response" {
        return Err(TwimlError { at: 0, what: "the root element is not <Response>" });
    }
    let mut out = Vec::new();
    for verb in &root.children {
        if verb.name != "Message" {
            tracing::debug!(verb = %verb.name, "a TwiML verb other than <Message> is ignored");
            continue;
        }
        let mut body = verb.text.clone();
        let mut media = Vec::new();
        for noun in &verb.children {
            match noun.name.as_str() {
                "Body" => body.push_str(&noun.text),
                "Media" => {
                    let url = noun.text.trim();
                    if !url.is_empty() {
                        media.push(url.to_owned());
                    }
                }
                _ => {}
            }
        }
        let body = body.trim().to_owned();
        if !body.is_empty() || !media.is_empty() {
            out.push(Reply { body, media });
        }
    }
    Ok(out)
}

/// The document's root element.
fn parse(xml: &str) -> Result<Element, TwimlError> {
    let s = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut p = Parser { s, at: 0 };
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    while p.at < s.len() {
        if p.eat("<?") {
            p.skip_past("?>", "an unclosed processing instruction")?;
        } else if p.eat("<!--") {
            p.skip_past("-->", "an unclosed comment")?;
        } else if p.eat("<![CDATA[") {
            let start = p.at;
            p.skip_past("]]>", "an unclosed CDATA section")?;
            let text = &s[start..p.at - 3];
            match stack.last_mut() {
                Some(open) => open.text.push_str(text),
                None => return Err(p.error("text outside the root element")),
            }
        } else if p.starts_with("<!") {
            return Err(p.error("document type declarations are not accepted"));
        } else if p.eat("</") {
            let name = p.name()?;
            p.skip_space();
            if !p.eat(">") {
                return Err(p.error("an end tag is not closed"));
            }
            let done = stack.pop().ok_or_else(|| p.error("an end tag without a start tag"))?;
            if done.name != name {
                return Err(p.error("an end tag does not match its start tag"));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None => root = Some(done),
            }
        } else if p.eat("<") {
            if root.is_some() {
                return Err(p.error("more than one root element"));
            }
            let name = p.name()?;
            let empty = p.attributes()?;
            let element = Element { name, ..Element::default() };
            if empty {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                if stack.len() >= MAX_DEPTH {
                    return Err(p.error("elements are nested too deeply"));
                }
                stack.push(element);
            }
        } else {
            let start = p.at;
            let end = s[start..].find('<').map_or(s.len(), |i| start + i);
            let raw = &s[start..end];
            p.at = end;
            match stack.last_mut() {
                Some(open) => open
                    .text
                    .push_str(&unescape(raw).ok_or(TwimlError { at: start, what: "a bad character reference" })?),
                None if raw.trim().is_empty() => {}
                None => return Err(TwimlError { at: start, what: "text outside the root element" }),
            }
        }
    }
    if !stack.is_empty() {
        return Err(p.error("an element is not closed"));
    }
    root.ok_or(TwimlError { at: 0, what: "no root element" })
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn error(&self, what: &'static str) -> TwimlError {
        TwimlError { at: self.at, what }
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.rest().starts_with(prefix)
    }

    fn eat(&mut self, prefix: &str) -> bool {
        let found = self.starts_with(prefix);
        if found {
            self.at += prefix.len();
        }
        found
    }

    fn skip_past(&mut self, end: &str, what: &'static str) -> Result<(), TwimlError> {
        let i = self.rest().find(end).ok_or_else(|| self.error(what))?;
        self.at += i + end.len();
        Ok(())
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn name(&mut self) -> Result<String, TwimlError> {
        let rest = self.rest();
        let len =
            rest.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))).unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("a tag without a name"));
        }
        let name = rest[..len].to_owned();
        self.at += len;
        Ok(name)
    }

    /// Skips a start tag's attributes up to its `>`; true when it was `/>` (an empty element).
    fn attributes(&mut self) -> Result<bool, TwimlError> {
        loop {
            self.skip_space();
            if self.eat("/>") {
                return Ok(true);
            }
            if self.eat(">") {
                return Ok(false);
            }
            self.name()?;
            self.skip_space();
            if !self.eat("=") {
                return Err(self.error("an attribute without a value"));
            }
            self.skip_space();
            let quote = if self.eat("\"") {
                "\""
            } else if self.eat("'") {
                "'"
            } else {
                return Err(self.error("an attribute value is not quoted"));
            };
            self.skip_past(quote, "an attribute value is not closed")?;
        }
    }
}

/// Text with its character references replaced; `None` for an unknown or bad one.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';')?;
        let name = &after[..semi];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse::<u32>().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Reply {
        Reply { body: body.into(), media: vec![] }
    }

    #[test]
    fn reads_messages_in_both_forms() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <!-- an auto-reply -->
            <Response>
              <Message>Sorry, this conversation has ended &amp; closed.</Message>
              <Message to="+15550001111"><Body>Call us: &#x31;&#50;3</Body><Media>https://m.example/a.png</Media></Message>
              <Message><![CDATA[<raw> & text]]></Message>
              <Message/>
              <Redirect>https://elsewhere.example</Redirect>
            </Response>"#;
        assert_eq!(
            replies(xml).expect("valid TwiML"),
            [
                reply("Sorry, this conversation has ended & closed."),
                Reply { body: "Call us: 123".into(), media: vec!["https://m.example/a.png".into()] },
                reply("<raw> & text"),
            ]
        );
        assert_eq!(replies("<Response/>").expect("empty"), []);
        assert_eq!(replies("\u{feff}<Response></Response>").expect("with a BOM"), []);
    }

    #[test]
    fn refuses_what_is_not_twiml() {
        for bad in [
            "",
            "OK",
            "<Response><Message>hi</Response>",
            "<Response><Message>hi</Message>",
            "<Other><Message>hi</Message></Other>",
            "<Response></Response><Response></Response>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><Response/>",
            "<Response><Message>&bogus;</Message></Response>",
            "<Response><Message a=b>hi</Message></Response>",
            "<Response>",
        ] {
            assert!(replies(bad).is_err(), "{bad:?} is refused");
        }
        let deep = format!("<Response>{}{}</Response>", "<a>".repeat(40), "</a>".repeat(40));
        assert!(replies(&deep).is_err(), "nesting is bounded");
    }
}
