//! Recursive descent over the lexer's tokens: `or` over `and` over primaries.

use crate::ast::{Expr, Op, Path, Span, Value};
use crate::error::{ErrorKind, Expected, QueryError, Reporter};
use crate::lexer::{Lexer, Token, TokenKind};
use crate::{MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_LENGTH, MAX_OPERATORS};

/// Parses a Live Query expression. See the [crate documentation](crate) for the grammar.
///
/// # Errors
///
/// A [`QueryError`] for an empty, too long, too complex or malformed expression, positioned at
/// the first offending token.
pub fn parse(input: &str) -> Result<Expr, QueryError> {
    let reporter = Reporter::new(input);
    if input.len() > MAX_LENGTH {
        let mut offset = MAX_LENGTH;
        while !input.is_char_boundary(offset) {
            offset -= 1;
        }
        return Err(reporter.plain(
            ErrorKind::TooLong,
            offset,
            "",
            format!("expression too long: {} bytes, the limit is {MAX_LENGTH}", input.len()),
        ));
    }
    if input.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
        return Err(reporter.plain(ErrorKind::Empty, 0, "", "empty expression".to_owned()));
    }
    let mut parser = Parser { src: input, lexer: Lexer::new(input), peeked: None, prev: None, operators: 0, reporter };
    let expr = parser.or(0)?;
    match parser.peek()? {
        None => Ok(expr),
        Some(token) => {
            let note = (token.kind == TokenKind::RParen).then_some("no `(` to close");
            let token = token.clone();
            Err(parser.expected(Expected::EndOfExpression, Some(&token), note))
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    /// The next token once looked at: `Some(None)` is the end.
    peeked: Option<Option<Token>>,
    /// The span of the last token taken.
    prev: Option<(usize, usize)>,
    operators: usize,
    reporter: Reporter<'a>,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<Option<&Token>, QueryError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().and_then(Option::as_ref))
    }

    fn peek_kind(&mut self) -> Result<Option<TokenKind>, QueryError> {
        Ok(self.peek()?.map(|token| token.kind.clone()))
    }

    /// Takes the next token.
    fn bump(&mut self) -> Result<Option<Token>, QueryError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        if let Some(token) = &token {
            self.prev = Some((token.start, token.end));
        }
        Ok(token)
    }

    fn text(&self, token: &Token) -> &'a str {
        &self.src[token.start..token.end]
    }

    /// A syntax error at `token` (`None`: the end of the expression).
    fn expected(&self, expected: Expected, token: Option<&Token>, note: Option<&str>) -> QueryError {
        let after = self.prev.map(|(start, end)| &self.src[start..end]);
        let (offset, found) = match token {
            Some(token) => (token.start, self.text(token)),
            None => (self.src.len(), ""),
        };
        self.reporter.syntax(expected, after, offset, found, note)
    }

    /// A syntax error at the next token.
    fn expected_next(&mut self, expected: Expected, note: Option<&str>) -> QueryError {
        match self.peek() {
            Ok(token) => {
                let token = token.cloned();
                self.expected(expected, token.as_ref(), note)
            }
            Err(err) => err,
        }
    }

    /// Counts one operator against [`MAX_OPERATORS`].
    fn count_operator(&mut self, token: &Token) -> Result<(), QueryError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(self.reporter.custom(
                ErrorKind::TooManyOperators,
                None,
                token.start,
                self.text(token),
                "too many operators",
                Some(&format!(
                    "{} is operator number {}; an expression may have at most {MAX_OPERATORS} \
                     (Twilio error 54509)",
                    crate::error::describe(self.text(token)),
                    self.operators
                )),
            ));
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(depth)?];
        while let Some(TokenKind::Or) = self.peek_kind()? {
            if let Some(token) = self.bump()? {
                self.count_operator(&token)?;
            }
            items.push(self.and(depth)?);
        }
        Ok(junction(items, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.primary(depth)?];
        while let Some(TokenKind::And) = self.peek_kind()? {
            if let Some(token) = self.bump()? {
                self.count_operator(&token)?;
            }
            items.push(self.primary(depth)?);
        }
        Ok(junction(items, Expr::And))
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        match self.peek_kind()? {
            Some(TokenKind::LParen) => {
                let Some(open) = self.bump()? else {
                    return Err(self.expected_next(Expected::Field, None));
                };
                if depth >= MAX_DEPTH {
                    return Err(self.reporter.custom(
                        ErrorKind::TooDeep,
                        None,
                        open.start,
                        "(",
                        "parentheses nested too deep",
                        Some(&format!("at most {MAX_DEPTH} levels are allowed")),
                    ));
                }
                let inner = self.or(depth + 1)?;
                if let Some(TokenKind::RParen) = self.peek_kind()? {
                    self.bump()?;
                    return Ok(inner);
                }
                let note = format!("the `(` at column {} is not closed", self.reporter.column(open.start));
                Err(self.expected_next(Expected::CloseParen, Some(&note)))
            }
            Some(TokenKind::Word) => self.predicate(),
            _ => Err(self.expected_next(Expected::Field, None)),
        }
    }

    /// `field op value`, `field in array` or `field exists`; the next token is a word.
    fn predicate(&mut self) -> Result<Expr, QueryError> {
        let Some(field) = self.bump()? else {
            return Err(self.expected_next(Expected::Field, None));
        };
        let path = self.path(&field)?;
        let Some(op_token) = self.peek()?.cloned() else {
            return Err(self.expected(Expected::Operator, None, None));
        };
        let op = match op_token.kind {
            TokenKind::Op(op) => op,
            TokenKind::Exists => {
                self.bump()?;
                self.count_operator(&op_token)?;
                return Ok(Expr::Exists { path, span: Span::new(field.start, op_token.end) });
            }
            _ => return Err(self.expected(Expected::Operator, Some(&op_token), None)),
        };
        self.bump()?;
        self.count_operator(&op_token)?;
        let (value, end) = match op {
            Op::In | Op::NotIn => self.array()?,
            op if op.is_range() => self.scalar(Expected::NumberOrString)?,
            _ => self.scalar(Expected::Value)?,
        };
        Ok(Expr::Compare { path, op, value, span: Span::new(field.start, end) })
    }

    /// The field a word names.
    fn path(&self, token: &Token) -> Result<Path, QueryError> {
        let text = self.text(token);
        let mut segments = text.split('.');
        let root = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        let unknown = |note: &str| {
            self.reporter.custom(
                ErrorKind::UnknownField,
                Some(Expected::Field),
                token.start,
                text,
                &format!("unknown field \"{}\"", crate::error::shorten(text)),
                Some(note),
            )
        };
        match root {
            "key" if rest.is_empty() => Ok(Path::Key),
            "key" => Err(unknown("`key` is the item key and has no sub-fields")),
            "data" => {
                if rest.iter().any(|segment| segment.is_empty()) {
                    return Err(self.reporter.custom(
                        ErrorKind::Syntax,
                        Some(Expected::Field),
                        token.start,
                        text,
                        &format!("invalid field \"{}\"", crate::error::shorten(text)),
                        Some("every `.` must be followed by a name of letters, digits, `_` or `-`"),
                    ));
                }
                Ok(Path::Data(rest.into_iter().map(str::to_owned).collect()))
            }
            _ => Err(unknown("a field is `key` or `data` followed by `.name`s, as in data.attributes.name")),
        }
    }

    /// A string, number or boolean (a number or string for `expected ==
    /// NumberOrString`); returns it and its end offset.
    fn scalar(&mut self, expected: Expected) -> Result<(Value, usize), QueryError> {
        let allow_bool = expected != Expected::NumberOrString;
        let Some(token) = self.peek()?.cloned() else {
            return Err(self.expected(expected, None, None));
        };
        let value = match token.kind {
            TokenKind::Str(s) => Value::Str(s),
            TokenKind::Num(n) => Value::Number(n),
            TokenKind::Bool(b) if allow_bool => Value::Bool(b),
            TokenKind::Word => {
                let note = "strings are double-quoted";
                return Err(self.expected(expected, Some(&token), Some(note)));
            }
            TokenKind::LBracket => {
                let note = "arrays go with `in` and `not_in`";
                return Err(self.expected(expected, Some(&token), Some(note)));
            }
            _ => return Err(self.expected(expected, Some(&token), None)),
        };
        self.bump()?;
        Ok((value, token.end))
    }

    /// `[ value, … ]`; returns it and its end offset.
    fn array(&mut self) -> Result<(Value, usize), QueryError> {
        match self.peek_kind()? {
            Some(TokenKind::LBracket) => {
                self.bump()?;
            }
            Some(TokenKind::Str(_) | TokenKind::Num(_) | TokenKind::Bool(_)) => {
                let note = "`in` and `not_in` take an array such as [\"a\", \"b\"]";
                return Err(self.expected_next(Expected::Array, Some(note)));
            }
            _ => return Err(self.expected_next(Expected::Array, None)),
        }
        let mut items = Vec::new();
        if let Some(TokenKind::RBracket) = self.peek_kind()? {
            let end = self.bump()?.map_or(self.src.len(), |token| token.end);
            return Ok((Value::Array(items), end));
        }
        loop {
            let expected = if items.is_empty() { Expected::ValueOrCloseBracket } else { Expected::Value };
            if items.len() == MAX_ARRAY_ITEMS
                && let Some(token) = self.peek()?.cloned()
                && matches!(token.kind, TokenKind::Str(_) | TokenKind::Num(_) | TokenKind::Bool(_))
            {
                return Err(self.reporter.custom(
                    ErrorKind::ArrayTooLong,
                    None,
                    token.start,
                    self.text(&token),
                    "array too long",
                    Some(&format!(
                        "{} is item number {}; an array may have at most {MAX_ARRAY_ITEMS} items \
                         (Twilio error 54510)",
                        crate::error::describe(self.text(&token)),
                        MAX_ARRAY_ITEMS + 1
                    )),
                ));
            }
            let (item, _) = self.scalar(expected)?;
            items.push(item);
            match self.peek_kind()? {
                Some(TokenKind::Comma) => {
                    self.bump()?;
                }
                Some(TokenKind::RBracket) => {
                    let end = self.bump()?.map_or(self.src.len(), |token| token.end);
                    return Ok((Value::Array(items), end));
                }
                _ => return Err(self.expected_next(Expected::CommaOrCloseBracket, None)),
            }
        }
    }
}

fn junction(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1
        && let Some(item) = items.pop()
    {
        return item;
    }
    make(items)
}
