//! What differs between the two backends' SQL, kept to the few things
//! that cannot be written once: placeholders (`?` for SQLite, `$1` for
//! PostgreSQL) and casts of bound text to a native type (`?::jsonb`,
//! `?::timestamptz`: PostgreSQL's columns are typed, SQLite stores text).
//! Everything else is written portably (`IS DISTINCT FROM`, `TRUE`,
//! `LOWER(x) LIKE LOWER(?)`) or chosen with `PG` at the statement.

use chrono::{DateTime, SecondsFormat, Utc};

/// Rewrites `sql` for a backend: each `?` outside quotes becomes `$n` on
/// PostgreSQL; a `::type` cast right after a placeholder is kept there and
/// dropped for SQLite.
pub(crate) fn translate(sql: &str, pg: bool) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((_, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                n += 1;
                if pg {
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push('?');
                }
                // A cast of the placeholder: `::name`.
                if chars.peek().map(|&(_, c)| c) == Some(':') {
                    let mut lookahead = chars.clone();
                    lookahead.next();
                    if lookahead.peek().map(|&(_, c)| c) == Some(':') {
                        chars.next();
                        chars.next();
                        let mut name = String::new();
                        while let Some(&(_, c)) = chars.peek() {
                            if c.is_ascii_alphanumeric() || c == '_' {
                                name.push(c);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        if pg {
                            out.push_str("::");
                            out.push_str(&name);
                        }
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A time as the store writes it: RFC 3339 in UTC to the millisecond
/// (text that sorts as time on SQLite; `timestamptz` on PostgreSQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts(pub DateTime<Utc>);

impl Ts {
    pub(crate) fn now() -> Ts {
        Ts(Utc::now())
    }

    /// Now plus `lease`.
    pub(crate) fn after(lease: std::time::Duration) -> Ts {
        Ts(Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX))
    }
}

impl std::fmt::Display for Ts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl sqlx::Type<sqlx::Sqlite> for Ts {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.to_string(), buf)
    }
}

impl sqlx::Type<sqlx::Postgres> for Ts {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <DateTime<Utc> as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <DateTime<Utc> as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// A time read back, as the store's text.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    Ts(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_and_casts_per_backend() {
        let sql = "UPDATE t SET a = ?, b = ?::jsonb WHERE c = '?' AND d < ?::timestamptz";
        assert_eq!(
            translate(sql, true),
            "UPDATE t SET a = $1, b = $2::jsonb WHERE c = '?' AND d < $3::timestamptz"
        );
        assert_eq!(
            translate(sql, false),
            "UPDATE t SET a = ?, b = ? WHERE c = '?' AND d < ?"
        );
        // A cast of a column stays on both.
        assert_eq!(translate("SELECT x::text", false), "SELECT x::text");
    }
}
