//! Tokens, lexed with winnow one at a time as the parser asks for them, so that the first error
//! in reading order is the one reported.

use winnow::ascii::{digit1, multispace0};
use winnow::combinator::{alt, dispatch, empty, fail, opt, peek};
use winnow::error::ParserError;
use winnow::prelude::*;
use winnow::token::{any, one_of, take_till, take_while};

use crate::ast::Op;
use crate::error::{ErrorKind, Expected, QueryError, Reporter, shorten};

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// `and`, `&&`
    And,
    /// `or`, `||`
    Or,
    /// A comparison operator, symbol or keyword.
    Op(Op),
    /// `exists`
    Exists,
    /// `true` / `false`
    Bool(bool),
    /// A string literal, escapes resolved.
    Str(String),
    /// A number literal.
    Num(serde_json::Number),
    /// Any other word: letters, digits, `_`, `-` and `.`, starting with a letter or `_`.
    Word,
}

/// Why lexing failed, and where: `at` is the length of the input left at the offending text,
/// `len` the byte length of that text.
#[derive(Debug)]
struct LexFail {
    at: usize,
    len: usize,
    reason: Reason,
}

#[derive(Debug, Clone, Copy)]
enum Reason {
    Unexpected,
    Unterminated,
    BadEscape,
    Surrogate,
    BadNumber,
    NumberRange,
}

impl LexFail {
    fn new(rest: &str, len: usize, reason: Reason) -> Self {
        Self { at: rest.len(), len, reason }
    }
}

impl ParserError<&str> for LexFail {
    type Inner = Self;

    fn from_input(input: &&str) -> Self {
        Self::new(input, 0, Reason::Unexpected)
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

type LexResult<O> = winnow::Result<O, LexFail>;

/// Pulls tokens out of an expression.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, rest: src }
    }

    /// The byte offset of the next unread character.
    pub(crate) fn offset(&self) -> usize {
        self.src.len() - self.rest.len()
    }

    /// The next token, or `None` at the end.
    pub(crate) fn next_token(&mut self) -> Result<Option<Token>, QueryError> {
        let skipped: LexResult<&str> = multispace0.parse_next(&mut self.rest);
        if skipped.is_err() || self.rest.is_empty() {
            return Ok(None);
        }
        let start = self.offset();
        match token.parse_next(&mut self.rest) {
            Ok(kind) => Ok(Some(Token { kind, start, end: self.offset() })),
            Err(fail) => Err(self.report(&fail)),
        }
    }

    fn report(&self, fail: &LexFail) -> QueryError {
        let reporter = Reporter::new(self.src);
        let offset = self.src.len().saturating_sub(fail.at);
        let mut end = (offset + fail.len).min(self.src.len());
        while !self.src.is_char_boundary(end) {
            end += 1;
        }
        let mut found = &self.src[offset..end];
        match fail.reason {
            Reason::Unexpected => {
                let c = self.src[offset..].chars().next().unwrap_or(' ');
                found = self.src[offset..].get(..c.len_utf8()).unwrap_or_default();
                let note = match c {
                    '&' => Some("write `&&` or `and`"),
                    '|' => Some("write `||` or `or`"),
                    '=' => Some("write `==` or `eq`"),
                    '!' => Some("write `!=` or `not_eq`"),
                    '\'' => Some("strings are double-quoted"),
                    c if c.is_alphanumeric() => Some("names are made of ASCII letters, digits, `_` and `-`"),
                    _ => None,
                };
                reporter.custom(
                    ErrorKind::Syntax,
                    Some(Expected::Token),
                    offset,
                    found,
                    &format!("unexpected character {}", quote(found)),
                    note,
                )
            }
            Reason::Unterminated => reporter.custom(
                ErrorKind::Syntax,
                Some(Expected::ClosingQuote),
                offset,
                found,
                "unterminated string starting",
                Some("expected `\"` closing the string, found end of expression"),
            ),
            Reason::BadEscape => reporter.custom(
                ErrorKind::Syntax,
                Some(Expected::Escape),
                offset,
                found,
                &format!("invalid escape {}", quote(found)),
                Some(&format!("expected {}", Expected::Escape)),
            ),
            Reason::Surrogate => reporter.custom(
                ErrorKind::Syntax,
                Some(Expected::Escape),
                offset,
                found,
                &format!("invalid escape {}", quote(found)),
                Some("a UTF-16 surrogate must be written as a high and low \\uXXXX pair"),
            ),
            Reason::BadNumber => reporter.custom(
                ErrorKind::Syntax,
                Some(Expected::Number),
                offset,
                found,
                &format!("invalid number {}", quote(found)),
                None,
            ),
            Reason::NumberRange => reporter.custom(
                ErrorKind::Syntax,
                Some(Expected::Number),
                offset,
                found,
                &format!("number out of range {}", quote(found)),
                None,
            ),
        }
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", shorten(text))
}

/// The characters of a word after its first.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn token(input: &mut &str) -> LexResult<TokenKind> {
    dispatch! {peek(any);
        '(' => '('.value(TokenKind::LParen),
        ')' => ')'.value(TokenKind::RParen),
        '[' => '['.value(TokenKind::LBracket),
        ']' => ']'.value(TokenKind::RBracket),
        ',' => ','.value(TokenKind::Comma),
        '&' => "&&".value(TokenKind::And),
        '|' => "||".value(TokenKind::Or),
        '=' => "==".value(TokenKind::Op(Op::Eq)),
        '!' => "!=".value(TokenKind::Op(Op::NotEq)),
        '<' => alt(("<=".value(Op::Le), "<".value(Op::Lt))).map(TokenKind::Op),
        '>' => alt((">=".value(Op::Ge), ">".value(Op::Gt))).map(TokenKind::Op),
        '"' => string.map(TokenKind::Str),
        '-' | '0'..='9' => number.map(TokenKind::Num),
        c if is_word_start(c) => word,
        _ => fail,
    }
    .parse_next(input)
}

fn word(input: &mut &str) -> LexResult<TokenKind> {
    let text = take_while(1.., is_word_char).parse_next(input)?;
    if input.starts_with(char::is_alphanumeric) {
        // A non-ASCII letter or digit inside a word: report it rather than cut the word short.
        return Err(LexFail::new(input, 0, Reason::Unexpected));
    }
    let keyword = |k: &str| text.eq_ignore_ascii_case(k);
    Ok(if keyword("and") {
        TokenKind::And
    } else if keyword("or") {
        TokenKind::Or
    } else if keyword("eq") {
        TokenKind::Op(Op::Eq)
    } else if keyword("not_eq") {
        TokenKind::Op(Op::NotEq)
    } else if keyword("in") {
        TokenKind::Op(Op::In)
    } else if keyword("not_in") {
        TokenKind::Op(Op::NotIn)
    } else if keyword("contains") {
        TokenKind::Op(Op::Contains)
    } else if keyword("exists") {
        TokenKind::Exists
    } else if keyword("true") {
        TokenKind::Bool(true)
    } else if keyword("false") {
        TokenKind::Bool(false)
    } else {
        TokenKind::Word
    })
}

/// A double-quoted string with JSON escapes.
fn string(input: &mut &str) -> LexResult<String> {
    let start = *input;
    '"'.parse_next(input)?;
    let mut out = String::new();
    loop {
        let chunk: &str = take_till(0.., ['"', '\\']).parse_next(input)?;
        out.push_str(chunk);
        let escape_at = *input;
        match opt(any).parse_next(input)? {
            None => return Err(LexFail::new(start, start.len(), Reason::Unterminated)),
            Some('"') => return Ok(out),
            Some(_) => out.push(escape(escape_at, input)?),
        }
    }
}

/// The character an escape stands for; `at` is the input at its backslash.
fn escape(at: &str, input: &mut &str) -> LexResult<char> {
    let simple: LexResult<Option<char>> = dispatch! {any;
        '"' => empty.value(Some('"')),
        '\\' => empty.value(Some('\\')),
        '/' => empty.value(Some('/')),
        'b' => empty.value(Some('\u{8}')),
        'f' => empty.value(Some('\u{c}')),
        'n' => empty.value(Some('\n')),
        'r' => empty.value(Some('\r')),
        't' => empty.value(Some('\t')),
        'u' => empty.value(None),
        _ => fail,
    }
    .parse_next(input);
    // The offending text: the backslash and `chars - 1` characters after it.
    let bad = |chars: usize| {
        let len = at.chars().take(chars).map(char::len_utf8).sum();
        LexFail::new(at, len, Reason::BadEscape)
    };
    match simple {
        Ok(Some(c)) => Ok(c),
        Ok(None) => {
            let digits = input.chars().take(4).take_while(char::is_ascii_hexdigit).count();
            let high = hex4(input).map_err(|()| bad(2 + digits))?;
            match high {
                0xD800..=0xDBFF => {
                    let pair: LexResult<&str> = "\\u".parse_next(input);
                    let low = pair.ok().and_then(|_| hex4(input).ok()).filter(|low| (0xDC00..=0xDFFF).contains(low));
                    let Some(low) = low else {
                        return Err(LexFail::new(at, 6, Reason::Surrogate));
                    };
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code).ok_or_else(|| LexFail::new(at, 12, Reason::Surrogate))
                }
                0xDC00..=0xDFFF => Err(LexFail::new(at, 6, Reason::Surrogate)),
                code => char::from_u32(code).ok_or_else(|| bad(6)),
            }
        }
        // The backslash and the character after it, if any.
        Err(_) => Err(bad(2)),
    }
}

/// Four hex digits.
fn hex4(input: &mut &str) -> Result<u32, ()> {
    let digits: LexResult<&str> = take_while(4, |c: char| c.is_ascii_hexdigit()).parse_next(input);
    let digits = digits.map_err(|_| ())?;
    u32::from_str_radix(digits, 16).map_err(|_| ())
}

/// `-?digits(.digits)?([eE][+-]?digits)?`, not followed by a word character.
fn number(input: &mut &str) -> LexResult<serde_json::Number> {
    let start = *input;
    let junk = |start: &str| {
        let len = start
            .char_indices()
            .find(|&(i, c)| !(is_word_char(c) || c == '+' || (i == 0 && c == '-')))
            .map_or(start.len(), |(i, _)| i);
        LexFail::new(start, len.max(1), Reason::BadNumber)
    };
    let text: LexResult<&str> =
        (opt('-'), digit1, opt(('.', digit1)), opt((one_of(['e', 'E']), opt(one_of(['+', '-'])), digit1)))
            .take()
            .parse_next(input);
    let Ok(text) = text else {
        return Err(junk(start));
    };
    if input.starts_with(|c: char| is_word_char(c) || c == '+') {
        return Err(junk(start));
    }
    parse_number(text).ok_or_else(|| LexFail::new(start, text.len(), Reason::NumberRange))
}

/// A number literal's value: an exact integer when it has no fraction or exponent and fits in
/// 64 bits, else a finite `f64`. `None` if it is infinite.
fn parse_number(text: &str) -> Option<serde_json::Number> {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
    }
    text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// `text` read as a whole number literal of the language (for comparing numbers with strings).
pub(crate) fn number_literal(text: &str) -> Option<serde_json::Number> {
    let mut input = text;
    let parsed: LexResult<serde_json::Number> = number.parse_next(&mut input);
    parsed.ok().filter(|_| input.is_empty())
}
