//! A session's cache of parsed simple queries that differ only in their literals.
//!
//! Clients of the simple query protocol (pgbench `-M simple`, psql scripts, ORMs that inline
//! values) send the same statement again and again with other numbers and strings in it, and
//! sqlparser's tokenizer and parser were a seventh of such a statement's cost. [`ParseCache`]
//! masks the literals of a query with a small lexer — numbers and plain `'...'` strings become
//! markers, everything else stays as written — and keeps, per masked text, the tree sqlparser
//! made of the first query of that shape. A later query of the same shape gets a copy of that
//! tree with its own literals put in.
//!
//! The lexer need not understand SQL: a shape is cached only after checking that the literals
//! it found are exactly the tree's number and string values, at the same positions, with the
//! same contents. Two queries with one masked text are byte for byte the same outside those
//! literals, so sqlparser would build the same tree for both but for the values. Whatever
//! the lexer does not know for sure (comments, dollar quoting, prefixed strings like `E'..'`,
//! backslashes in strings) is parsed as ever, uncached.
//!
//! A query of several statements is cut at the `;`s the lexer found between them and each
//! statement goes through the cache on its own: a coordinator ships its statements with their
//! transaction's `BEGIN`, context and `COMMIT` in one query. A statement of rxc's own (`SET
//! TRANSACTION CONTEXT (...)`) is cached only if it has no literals: its tree holds them in no
//! form the cache can replace. If a statement fails to parse the whole query is parsed again,
//! so that the error is the one sqlparser gives for the text as sent.

use super::error::Result;
use super::parser::{self, Statement};
use sqlparser::ast::{self, Expr, Value};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// How many shapes a session keeps before it forgets them all.
const MAX_SHAPES: usize = 256;

/// Marks a number in a masked text (it cannot occur in SQL outside a string).
const NUMBER_MARK: char = '\u{1}';
/// Marks a string.
const STRING_MARK: char = '\u{2}';

/// See the module doc.
#[derive(Default)]
pub struct ParseCache {
    /// Masked text → the tree and where each literal goes, or `None`: not cacheable.
    shapes: HashMap<String, Option<Shape>>,
}

/// A cached tree and, for each number or string value in the order the visitor meets them,
/// which literal of the query it is.
struct Shape {
    tree: Statement,
    slots: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Number(String),
    String(String),
}

/// A literal and where it starts, as sqlparser counts (line and column from 1, in chars).
struct Found {
    literal: Literal,
    line: u64,
    column: u64,
}

impl ParseCache {
    /// [`parser::parse`], reusing the trees of earlier statements of the same shapes.
    pub fn parse(&mut self, sql: &str) -> Result<Vec<Statement>> {
        let Some(masked) = mask(sql) else {
            return parser::parse(sql);
        };
        // Only `;`s and whitespace after the first `;`: one statement.
        let single = masked.semicolons.first().is_none_or(|&first| {
            sql.as_bytes()[first..]
                .iter()
                .all(|&b| b == b';' || b.is_ascii_whitespace())
        });
        if single {
            return self.statement(sql, masked.key, masked.found);
        }
        let mut statements = Vec::new();
        let mut start = 0;
        for end in masked.semicolons.iter().copied().chain([sql.len()]) {
            let piece = &sql[start..end];
            start = end + 1;
            if piece.bytes().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let parsed = match mask(piece) {
                Some(m) => self.statement(piece, m.key, m.found),
                None => parser::parse(piece),
            };
            match parsed {
                Ok(parsed) => statements.extend(parsed),
                Err(_) => return parser::parse(sql),
            }
        }
        Ok(statements)
    }

    /// One statement `sql` (with trailing `;`s at most) whose masked text is `key`.
    fn statement(&mut self, sql: &str, key: String, found: Vec<Found>) -> Result<Vec<Statement>> {
        match self.shapes.get(&key) {
            Some(Some(shape)) => return Ok(vec![shape.instantiate(&found)]),
            Some(None) => return parser::parse(sql),
            None => {}
        }
        let statements = parser::parse(sql)?;
        let shape = Shape::new(&statements, &found);
        if self.shapes.len() >= MAX_SHAPES {
            self.shapes.clear();
        }
        self.shapes.insert(key, shape);
        Ok(statements)
    }
}

impl Shape {
    /// The shape of `statements` parsed from a query whose literals are `found`, if it is one
    /// statement whose number and string values are exactly those literals.
    fn new(statements: &[Statement], found: &[Found]) -> Option<Shape> {
        let tree = match statements {
            [Statement::Sql(tree)] => tree,
            [other] if found.is_empty() => {
                return Some(Shape {
                    tree: other.clone(),
                    slots: Vec::new(),
                })
            }
            _ => return None,
        };
        let mut used = vec![false; found.len()];
        let mut slots = Vec::new();
        let mut copy = (**tree).clone();
        let walk = ast::visit_expressions_mut(&mut copy, |expr| {
            let Expr::Value(v) = expr else {
                return ControlFlow::Continue(());
            };
            let literal = match &v.value {
                Value::Number(n, false) => Literal::Number(n.clone()),
                Value::SingleQuotedString(s) => Literal::String(s.clone()),
                Value::Number(_, true) => return ControlFlow::Break(()),
                _ => return ControlFlow::Continue(()), // NULL, TRUE, $1: written as they are
            };
            let start = v.span.start;
            match found
                .iter()
                .position(|f| f.line == start.line && f.column == start.column)
            {
                Some(i) if !used[i] && found[i].literal == literal => {
                    used[i] = true;
                    slots.push(i);
                    ControlFlow::Continue(())
                }
                _ => ControlFlow::Break(()),
            }
        });
        (walk.is_continue() && used.iter().all(|u| *u)).then(|| Shape {
            tree: Statement::Sql(tree.clone()),
            slots,
        })
    }

    /// The tree with the literals `found` (of a query of this shape) in place.
    fn instantiate(&self, found: &[Found]) -> Statement {
        let Statement::Sql(tree) = &self.tree else {
            return self.tree.clone();
        };
        if self.slots.is_empty() {
            return self.tree.clone();
        }
        let mut tree = (**tree).clone();
        let mut next = self.slots.iter();
        let _ = ast::visit_expressions_mut(&mut tree, |expr| {
            if let Expr::Value(v) = expr {
                if matches!(v.value, Value::Number(..) | Value::SingleQuotedString(_)) {
                    if let Some(&slot) = next.next() {
                        v.value = match &found[slot].literal {
                            Literal::Number(n) => Value::Number(n.clone(), false),
                            Literal::String(s) => Value::SingleQuotedString(s.clone()),
                        };
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        Statement::Sql(Arc::new(tree))
    }
}

/// Whether byte `b` continues an identifier or keyword (any non-ASCII byte does: PostgreSQL
/// takes letters of every script).
pub fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || !b.is_ascii()
}

/// What the lexer made of a query.
struct Masked {
    /// The text with its literals masked.
    key: String,
    /// The literals, in order.
    found: Vec<Found>,
    /// Where the `;`s between statements are (byte offsets).
    semicolons: Vec<usize>,
}

/// The masked text of `sql`, its literals and `;`s, or `None` if the lexer cannot be sure of
/// them.
fn mask(sql: &str) -> Option<Masked> {
    let bytes = sql.as_bytes();
    if bytes
        .iter()
        .any(|&b| b == NUMBER_MARK as u8 || b == STRING_MARK as u8)
    {
        return None;
    }
    let at = |j: usize| bytes.get(j).copied();
    let mut key = Vec::with_capacity(bytes.len());
    let mut found = Vec::new();
    let (mut line, mut column) = (1u64, 1u64);
    let mut i = 0;
    let mut semicolons = Vec::new();
    while i < bytes.len() {
        let c = bytes[i];
        let prev = i.checked_sub(1).map(|p| bytes[p]);
        let next = at(i + 1);
        let after_ident = prev.is_some_and(is_ident_byte);
        let len = match c {
            b';' => {
                semicolons.push(i);
                key.push(c);
                1
            }
            b'\'' if after_ident => return None, // E'..', B'..', U&'..' and the like
            b'\'' => {
                let mut j = i + 1;
                let mut content = Vec::new();
                loop {
                    match at(j) {
                        None | Some(b'\\') => return None,
                        Some(b'\'') if at(j + 1) == Some(b'\'') => {
                            content.push(b'\'');
                            j += 2;
                        }
                        Some(b'\'') => break,
                        Some(other) => {
                            content.push(other);
                            j += 1;
                        }
                    }
                }
                if at(j + 1).is_some_and(|c| is_ident_byte(c) || c == b'\'') {
                    return None;
                }
                found.push(Found {
                    literal: Literal::String(String::from_utf8(content).ok()?),
                    line,
                    column,
                });
                key.push(STRING_MARK as u8);
                j + 1 - i
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match at(j) {
                        None => return None,
                        Some(b'"') if at(j + 1) == Some(b'"') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                key.extend_from_slice(&bytes[i..=j]);
                j + 1 - i
            }
            b'-' if next == Some(b'-') => return None,
            b'/' if next == Some(b'*') => return None,
            b'$' if !after_ident && !next.is_some_and(|n| n.is_ascii_digit()) => return None,
            c if !after_ident
                && prev != Some(b'.')
                && (c.is_ascii_digit()
                    || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit()))) =>
            {
                let digits = |mut j: usize| {
                    while at(j).is_some_and(|c| c.is_ascii_digit()) {
                        j += 1;
                    }
                    j
                };
                let mut j = digits(i);
                if at(j) == Some(b'.') {
                    j = digits(j + 1);
                }
                if at(j).is_some_and(|c| c == b'e' || c == b'E') {
                    j += 1;
                    if at(j).is_some_and(|c| c == b'+' || c == b'-') {
                        j += 1;
                    }
                    if !at(j).is_some_and(|c| c.is_ascii_digit()) {
                        return None;
                    }
                    j = digits(j);
                }
                if at(j).is_some_and(|c| is_ident_byte(c) || c == b'.') {
                    return None; // 0x1f, 1_000, 1.2.3: not sure how they lex
                }
                found.push(Found {
                    literal: Literal::Number(sql[i..j].to_string()),
                    line,
                    column,
                });
                key.push(NUMBER_MARK as u8);
                j - i
            }
            c => {
                key.push(c);
                1
            }
        };
        // sqlparser counts lines and columns in chars: skip UTF-8 continuation bytes.
        for &b in &bytes[i..i + len] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
        }
        i += len;
    }
    Some(Masked {
        key: String::from_utf8(key).ok()?,
        found,
        semicolons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The debug form of `statements` without source spans (a cached tree keeps those of the
    /// query it was first parsed from; nothing after parsing reads them).
    fn unspanned(statements: &[Statement]) -> String {
        let mut text = format!("{statements:?}");
        while let Some(start) = text.find("span: Span(") {
            let end = start + text[start..].find(')').unwrap() + 1;
            let end = end + text[end..].find(')').unwrap() + 1;
            let end = end + text[end..].find(')').unwrap() + 1;
            text.replace_range(start..end, "");
        }
        text
    }

    /// Parses `sql` through `cache` and plainly, and checks both trees are the same.
    fn same(cache: &mut ParseCache, sql: &str) -> bool {
        let cached = cache.parse(sql).unwrap();
        let plain = parser::parse(sql).unwrap();
        assert_eq!(unspanned(&cached), unspanned(&plain), "{sql}");
        matches!(cache.shapes.get(&mask(sql).unwrap().key), Some(Some(_)))
    }

    #[test]
    fn queries_of_one_shape_share_a_tree_with_their_own_literals() {
        let mut cache = ParseCache::default();
        let update = "UPDATE pgbench_accounts SET abalance = abalance + -4207 WHERE aid = 17;";
        assert!(same(&mut cache, update));
        assert!(same(
            &mut cache,
            "UPDATE pgbench_accounts SET abalance = abalance + -12 WHERE aid = 900001;"
        ));
        let insert = "INSERT INTO t (a, b, c) VALUES (1, 'it''s', 2.5e3), (NULL, 'x', .5)";
        assert!(same(&mut cache, insert));
        assert!(same(
            &mut cache,
            "INSERT INTO t (a, b, c) VALUES (7, '', 1), (NULL, 'ÿ\n2', 3.25)"
        ));
        assert!(same(
            &mut cache,
            "SELECT a, 'b' FROM t1 WHERE x2 > 3\n AND y = $1 LIMIT 5"
        ));
        assert!(same(
            &mut cache,
            "SELECT a, 'c' FROM t1 WHERE x2 > 4\n AND y = $1 LIMIT 6"
        ));
        // Columns count chars, as sqlparser's do.
        assert!(same(&mut cache, "SELECT 'ÿé', \"ñ\" + 5 FROM t"));
        assert!(same(&mut cache, "SELECT 'ab', \"ñ\" + 6 FROM t"));
        // A statement without literals is its text's tree.
        assert!(same(&mut cache, "BEGIN;"));
        assert_eq!(cache.shapes.len(), 5);
    }

    #[test]
    fn what_the_lexer_is_unsure_of_is_parsed_as_ever() {
        for sql in [
            "SELECT 1 -- comment",
            "SELECT /* c */ 1",
            "SELECT E'a\\nb'",
            "SELECT 'a\\b'",
            "SELECT $$x$$",
            "SELECT 0x1f",
        ] {
            assert!(mask(sql).is_none(), "{sql}");
            let mut cache = ParseCache::default();
            assert_eq!(
                format!("{:?}", cache.parse(sql).ok()),
                format!("{:?}", parser::parse(sql).ok())
            );
        }
        // Literals that are no values in the tree: the shape is not cached.
        let mut cache = ParseCache::default();
        assert!(!same(&mut cache, "CREATE TABLE t (a varchar(10))"));
        assert!(!same(&mut cache, "SELECT CAST(a AS varchar(10)) FROM t"));
        assert!(!same(&mut cache, "SELECT DATE '2020-01-01'"));
    }

    /// A coordinator's shipment: the statements of one query each from their own shape.
    #[test]
    fn several_statements_share_their_statements_trees() {
        let mut cache = ParseCache::default();
        let shipped = |k: i32| {
            format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET TRANSACTION CONTEXT (SNAPSHOT \
                 LATEST); SELECT abalance FROM pgbench_accounts WHERE aid = '{k}'::integer; \
                 COMMIT"
            )
        };
        for k in [1, 7, 123456] {
            let sql = shipped(k);
            let cached = cache.parse(&sql).unwrap();
            assert_eq!(cached.len(), 4);
            assert_eq!(unspanned(&cached), unspanned(&parser::parse(&sql).unwrap()));
        }
        // BEGIN, the context, the SELECT's shape and COMMIT, each once.
        assert_eq!(cache.shapes.len(), 4);
        assert!(cache.shapes.values().all(Option::is_some));
        // A context with literals is parsed every time; the rest still comes from the cache.
        for gxid in [10, 11] {
            let sql = format!("SET TRANSACTION CONTEXT (GXID {gxid}, SNAPSHOT LATEST); COMMIT");
            assert_eq!(
                unspanned(&cache.parse(&sql).unwrap()),
                unspanned(&parser::parse(&sql).unwrap())
            );
        }
        assert_eq!(cache.shapes.values().filter(|s| s.is_none()).count(), 1);
        // A `;` inside a string or a quoted name does not cut the query.
        let sql = "SELECT 'a;b', \"c;d\" FROM t; SELECT 2;;";
        assert_eq!(
            unspanned(&cache.parse(sql).unwrap()),
            unspanned(&parser::parse(sql).unwrap())
        );
        // An error in a later statement is the whole query's, positions as sent.
        let sql = "SELECT 1;\nSELEC 2; SELECT 3";
        assert_eq!(
            cache.parse(sql).unwrap_err().to_string(),
            parser::parse(sql).unwrap_err().to_string()
        );
        assert!(cache.parse("; ;").unwrap().is_empty());
    }

    #[test]
    fn errors_are_the_parsers() {
        let mut cache = ParseCache::default();
        let err = cache.parse("SELEC 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            parser::parse("SELEC 1").unwrap_err().to_string()
        );
    }
}
