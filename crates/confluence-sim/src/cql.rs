//! A subset of CQL, parsed and evaluated as Confluence Cloud does: fields
//! `type`, `space` (and `space.key`), `id`, `ancestor`, `parent`, `label`,
//! `title`, `text`, `lastmodified` and `created`; operators `=`, `!=`, `~`,
//! `!~`, `<`, `<=`, `>`, `>=`, `IN`, `NOT IN`; `AND`, `OR`, `NOT`,
//! parentheses; `ORDER BY` with `ASC`/`DESC`.
//!
//! Dates follow Confluence's rules, quirks included: the literal forms
//! `yyyy/MM/dd HH:mm`, `yyyy-MM-dd HH:mm`, `yyyy/MM/dd` and `yyyy-MM-dd`,
//! relative forms (`-2d`, `now("-4w")`, `startOfDay()`...), read in the
//! searching account's time zone and compared at minute granularity.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::model::{Content, Millis, Site};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Date(DateLiteral),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DateLiteral {
    /// An absolute local time, minute-granular; `date_only` for `yyyy-MM-dd`.
    Local { at: NaiveDateTime, date_only: bool },
    /// A function or a relative offset, resolved when evaluated.
    Function { name: String, offset: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause {
        field: String,
        op: Op,
        values: Vec<Value>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: Option<Expr>,
    pub order: Vec<(String, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CqlError(pub String);

const FIELDS: &[&str] = &[
    "type",
    "space",
    "space.key",
    "id",
    "content",
    "ancestor",
    "parent",
    "label",
    "title",
    "text",
    "lastmodified",
    "created",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, CqlError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1
            }
            '"' | '\'' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(CqlError("unterminated string".into())),
                        Some('\\') => {
                            if let Some(next) = chars.get(i + 1) {
                                text.push(*next);
                            }
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Quoted(text));
            }
            '!' | '<' | '>' | '=' | '~' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    "!=" => "!=",
                    "!~" => "!~",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        '<' => "<",
                        '>' => ">",
                        '=' => "=",
                        '~' => "~",
                        _ => return Err(CqlError(format!("unexpected character {c:?}"))),
                    },
                };
                i += op.len();
                tokens.push(Token::Op(op));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(
                        chars[i],
                        '(' | ')' | ',' | '"' | '\'' | '!' | '<' | '>' | '=' | '~'
                    )
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn or(&mut self) -> Result<Expr, CqlError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, CqlError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, CqlError> {
        self.depth += 1;
        if self.depth > 200 {
            return Err(CqlError("query nested too deeply".into()));
        }
        let result = if self.keyword("NOT") {
            self.pos += 1;
            self.not().map(|e| Expr::Not(Box::new(e)))
        } else if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err(CqlError("expected ')'".into()));
            }
            Ok(inner)
        } else {
            self.clause()
        };
        self.depth -= 1;
        result
    }

    fn clause(&mut self) -> Result<Expr, CqlError> {
        let field = match self.next() {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            other => return Err(CqlError(format!("expected a field, found {other:?}"))),
        };
        if !FIELDS.contains(&field.as_str()) {
            return Err(CqlError(format!(
                "Could not parse cql : the field '{field}' is not supported"
            )));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => match op {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "~" => Op::Contains,
                "!~" => Op::NotContains,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("NOT") => match self.next() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::NotIn,
                _ => return Err(CqlError("expected IN after NOT".into())),
            },
            other => return Err(CqlError(format!("expected an operator, found {other:?}"))),
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            if self.next() != Some(Token::Open) {
                return Err(CqlError("expected '(' after IN".into()));
            }
            let mut values = vec![self.value(&field)?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.value(&field)?),
                    Some(Token::Close) => break,
                    _ => return Err(CqlError("expected ',' or ')' in list".into())),
                }
            }
            values
        } else {
            vec![self.value(&field)?]
        };
        Ok(Expr::Clause { field, op, values })
    }

    fn value(&mut self, field: &str) -> Result<Value, CqlError> {
        let is_date = field == "lastmodified" || field == "created";
        match self.next() {
            Some(Token::Quoted(text)) if is_date => parse_date(&text).map(Value::Date),
            Some(Token::Quoted(text)) => Ok(Value::Text(text)),
            Some(Token::Word(word)) if is_date => {
                if self.peek() == Some(&Token::Open) {
                    self.pos += 1;
                    let offset = match self.next() {
                        Some(Token::Quoted(text)) | Some(Token::Word(text)) => {
                            if self.next() != Some(Token::Close) {
                                return Err(CqlError("expected ')'".into()));
                            }
                            text
                        }
                        Some(Token::Close) => String::new(),
                        _ => return Err(CqlError("bad function argument".into())),
                    };
                    Ok(Value::Date(DateLiteral::Function {
                        name: word.to_ascii_lowercase(),
                        offset,
                    }))
                } else {
                    parse_date(&word).map(Value::Date)
                }
            }
            Some(Token::Word(word)) => Ok(Value::Text(word)),
            other => Err(CqlError(format!("expected a value, found {other:?}"))),
        }
    }
}

fn parse_date(text: &str) -> Result<DateLiteral, CqlError> {
    let text = text.trim();
    for format in ["%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(DateLiteral::Local {
                at,
                date_only: false,
            });
        }
    }
    for format in ["%Y/%m/%d", "%Y-%m-%d"] {
        if let Ok(day) = NaiveDate::parse_from_str(text, format) {
            return Ok(DateLiteral::Local {
                at: day.and_hms_opt(0, 0, 0).unwrap_or_default(),
                date_only: true,
            });
        }
    }
    if parse_offset(text).is_some() {
        return Ok(DateLiteral::Function {
            name: "now".into(),
            offset: text.to_string(),
        });
    }
    Err(CqlError(format!(
        "Could not parse cql : invalid date '{text}', expected yyyy/MM/dd HH:mm, yyyy-MM-dd HH:mm, yyyy/MM/dd or yyyy-MM-dd"
    )))
}

/// `-4w`, `+2d`, `-15m`, `1h`...: an offset in minutes.
fn parse_offset(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes()[0] {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let unit = rest.chars().last()?;
    let amount: i64 = rest[..rest.len() - unit.len_utf8()].trim().parse().ok()?;
    let minutes = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 1440,
        'w' => 10_080,
        'y' => 525_600,
        _ => return None,
    };
    Some(sign * amount.checked_mul(minutes)?)
}

pub fn parse(input: &str) -> Result<Query, CqlError> {
    if input.len() > 10_000 {
        return Err(CqlError("query too long".into()));
    }
    let tokens = tokenize(input)?;
    // Split off ORDER BY.
    let order_at = tokens.windows(2).position(|w| {
        matches!((&w[0], &w[1]), (Token::Word(a), Token::Word(b)) if a.eq_ignore_ascii_case("ORDER") && b.eq_ignore_ascii_case("BY"))
    });
    let (filter, order_tokens) = match order_at {
        Some(at) => (tokens[..at].to_vec(), tokens[at + 2..].to_vec()),
        None => (tokens, Vec::new()),
    };
    let expr = if filter.is_empty() {
        None
    } else {
        let mut parser = Parser {
            tokens: filter,
            pos: 0,
            depth: 0,
        };
        let expr = parser.or()?;
        if parser.pos < parser.tokens.len() {
            return Err(CqlError(format!(
                "Could not parse cql : unexpected {:?}",
                parser.tokens[parser.pos]
            )));
        }
        Some(expr)
    };
    let mut order = Vec::new();
    let mut iter = order_tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        let Token::Word(field) = token else {
            return Err(CqlError("expected a field after ORDER BY".into()));
        };
        let field = field.to_ascii_lowercase();
        if !["lastmodified", "created", "title", "id"].contains(&field.as_str()) {
            return Err(CqlError(format!("cannot order by '{field}'")));
        }
        let mut ascending = true;
        if let Some(Token::Word(direction)) = iter.peek() {
            if direction.eq_ignore_ascii_case("DESC") {
                ascending = false;
                iter.next();
            } else if direction.eq_ignore_ascii_case("ASC") {
                iter.next();
            }
        }
        order.push((field, ascending));
        if iter.peek() == Some(&Token::Comma) {
            iter.next();
        }
    }
    if expr.is_none() {
        return Err(CqlError("CQL query has no condition".into()));
    }
    Ok(Query { expr, order })
}

/// What evaluation needs besides the content: the site, the searching
/// account's UTC offset, the time now, and the body text for `text ~`.
pub struct EvalContext<'a> {
    pub site: &'a Site,
    pub utc_offset_minutes: i32,
    pub now: Millis,
    pub body_text: &'a dyn Fn(&Content) -> String,
}

/// A time in minutes since the epoch, shifted to the account's zone.
fn local_minute(at: Millis, offset: i32) -> i64 {
    at.div_euclid(60_000) + offset as i64
}

fn resolve(date: &DateLiteral, ctx: &EvalContext) -> Result<(i64, i64), CqlError> {
    // Returns [start, end) in local minutes.
    match date {
        DateLiteral::Local { at, date_only } => {
            let start = at.and_utc().timestamp().div_euclid(60);
            Ok((start, start + if *date_only { 1440 } else { 1 }))
        }
        DateLiteral::Function { name, offset } => {
            let now_local = local_minute(ctx.now, ctx.utc_offset_minutes);
            let shift = parse_offset(offset)
                .ok_or_else(|| CqlError(format!("bad date offset '{offset}'")))?;
            let local_now = Utc
                .timestamp_opt(now_local * 60, 0)
                .single()
                .unwrap_or_default();
            let day_start = |at: DateTime<Utc>| -> i64 {
                at.date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp()
                    / 60
            };
            let minute = match name.as_str() {
                "now" => now_local + shift,
                "startofday" => day_start(local_now) + shift,
                "endofday" => day_start(local_now) + 1440 - 1 + shift,
                "startofweek" => {
                    day_start(local_now) - local_now.weekday().num_days_from_sunday() as i64 * 1440
                        + shift
                }
                "startofmonth" => {
                    let first = local_now.date_naive().with_day(1).unwrap_or_default();
                    first
                        .and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .timestamp()
                        / 60
                        + shift
                }
                "startofyear" => {
                    let first = local_now.date_naive().with_ordinal(1).unwrap_or_default();
                    first
                        .and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .timestamp()
                        / 60
                        + shift
                }
                other => return Err(CqlError(format!("unknown date function {other}()"))),
            };
            Ok((minute, minute + 1))
        }
    }
}

fn text_of(value: &Value) -> &str {
    match value {
        Value::Text(text) => text,
        Value::Date(_) => "",
    }
}

pub fn matches(expr: &Expr, content: &Content, ctx: &EvalContext) -> Result<bool, CqlError> {
    Ok(match expr {
        Expr::And(a, b) => matches(a, content, ctx)? && matches(b, content, ctx)?,
        Expr::Or(a, b) => matches(a, content, ctx)? || matches(b, content, ctx)?,
        Expr::Not(inner) => !matches(inner, content, ctx)?,
        Expr::Clause { field, op, values } => clause(field, *op, values, content, ctx)?,
    })
}

fn clause(
    field: &str,
    op: Op,
    values: &[Value],
    content: &Content,
    ctx: &EvalContext,
) -> Result<bool, CqlError> {
    let any_equal = |actual: &dyn Fn(&str) -> bool| values.iter().any(|v| actual(text_of(v)));
    let equality = |hit: bool| -> Result<bool, CqlError> {
        match op {
            Op::Eq | Op::In => Ok(hit),
            Op::Ne | Op::NotIn => Ok(!hit),
            _ => Err(CqlError(format!(
                "operator not supported for field '{field}'"
            ))),
        }
    };
    match field {
        "type" => equality(any_equal(&|v| {
            v.eq_ignore_ascii_case(content.kind.v1_type())
        })),
        "space" | "space.key" => {
            let key = ctx
                .site
                .spaces
                .get(&content.space_id)
                .map(|s| s.key.as_str())
                .unwrap_or("");
            equality(any_equal(&|v| v == key))
        }
        "id" | "content" => equality(any_equal(&|v| v == content.id.to_string())),
        "ancestor" => {
            let ancestors = ctx.site.ancestors(content);
            equality(any_equal(&|v| {
                v.parse::<u64>().is_ok_and(|id| ancestors.contains(&id))
            }))
        }
        "parent" => equality(any_equal(&|v| {
            content
                .parent_id
                .is_some_and(|parent| v == parent.to_string())
        })),
        "label" => equality(any_equal(&|v| content.labels.iter().any(|l| l == v))),
        "title" | "text" => {
            let haystack = if field == "title" {
                content.title.to_lowercase()
            } else {
                format!("{} {}", content.title, (ctx.body_text)(content)).to_lowercase()
            };
            match op {
                Op::Contains | Op::NotContains => {
                    let needle = text_of(&values[0]).to_lowercase();
                    let terms: Vec<&str> = needle
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|t| !t.is_empty())
                        .collect();
                    let hit = !terms.is_empty() && terms.iter().all(|t| haystack.contains(t));
                    Ok(hit == (op == Op::Contains))
                }
                _ if field == "title" => {
                    equality(any_equal(&|v| v.eq_ignore_ascii_case(&content.title)))
                }
                _ => Err(CqlError("field 'text' takes ~ and !~ only".into())),
            }
        }
        "lastmodified" | "created" => {
            let at = if field == "created" {
                content.created_at
            } else {
                content.modified_at
            };
            let actual = local_minute(at, ctx.utc_offset_minutes);
            let mut hit = false;
            for value in values {
                let Value::Date(date) = value else {
                    return Err(CqlError(format!("'{field}' takes a date")));
                };
                let (start, end) = resolve(date, ctx)?;
                let this = match op {
                    Op::Eq | Op::In => actual >= start && actual < end,
                    Op::Ne | Op::NotIn => !(actual >= start && actual < end),
                    Op::Lt => actual < start,
                    Op::Le => actual < end,
                    Op::Gt => actual >= end,
                    Op::Ge => actual >= start,
                    Op::Contains | Op::NotContains => {
                        return Err(CqlError(format!("'~' is not supported for '{field}'")))
                    }
                };
                hit |= this;
            }
            Ok(hit)
        }
        _ => Err(CqlError(format!("unsupported field '{field}'"))),
    }
}

/// The ids a query can match, when it says so (`id = 1`, `id IN (1, 2)`,
/// alone or ANDed with other clauses): a search then visits those only.
pub fn candidate_ids(expr: &Expr) -> Option<Vec<u64>> {
    match expr {
        Expr::Clause {
            field,
            op: Op::Eq | Op::In,
            values,
        } if field == "id" || field == "content" => Some(
            values
                .iter()
                .filter_map(|v| match v {
                    Value::Text(t) => t.parse().ok(),
                    Value::Date(_) => None,
                })
                .collect(),
        ),
        Expr::And(a, b) => candidate_ids(a).or_else(|| candidate_ids(b)),
        _ => None,
    }
}

/// A timestamp as a CQL literal (`yyyy-MM-dd HH:mm`) in a zone `offset_minutes`
/// east of UTC.
pub fn format_local(at: Millis, offset_minutes: i32) -> String {
    let local = Utc.timestamp_millis_opt(at).single().unwrap_or_default()
        + Duration::minutes(offset_minutes as i64);
    local.format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let query = parse(
            "type = page AND space IN (\"ENG\", DOC) AND lastmodified >= \"2024/01/02 10:30\" \
             AND NOT label = draft ORDER BY lastmodified DESC, id",
        )
        .unwrap();
        assert_eq!(
            query.order,
            vec![("lastmodified".into(), false), ("id".into(), true)]
        );
        assert!(parse("created > now(\"-4w\")").is_ok());
        assert!(parse("created > -2d").is_ok());
        assert!(parse("lastmodified > startOfDay()").is_ok());
    }

    #[test]
    fn rejects_what_confluence_rejects() {
        assert!(parse("nosuchfield = 1").is_err());
        assert!(parse("lastmodified > \"yesterday-ish\"").is_err());
        assert!(parse("type = ").is_err());
        assert!(parse("(type = page").is_err());
        assert!(parse("title = \"unterminated").is_err());
        assert!(parse(&"(".repeat(5000)).is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("-4w"), Some(-40_320));
        assert_eq!(parse_offset("15m"), Some(15));
        assert_eq!(parse_offset("x"), None);
    }
}
