//! `COPY` data formats: PostgreSQL's text and CSV formats, decoded from a stream of `CopyData`
//! chunks into rows of fields and encoded from rows of values. Shared by the datanode (which
//! stores the rows) and the coordinator (which routes them to datanodes in batches).
//!
//! A [`CopyDecoder`] is fed chunks as they arrive — a chunk may end anywhere, inside a row or
//! inside a quoted CSV field — and hands out every complete row; [`CopyDecoder::finish`] takes
//! the last row when the data does not end with a newline. A field is `None` for SQL NULL. The
//! end-of-data marker `\.` on a line of its own ends the data, as PostgreSQL accepts it.
//!
//! Text format: fields separated by the delimiter (tab), rows by newline (`\r\n` accepted),
//! `\N` is NULL, backslash escapes `\b \f \n \r \t \v \\`, octal `\ooo` and hex `\xhh`; any other
//! escaped character stands for itself. CSV: fields separated by `,`, quoted with `"` (doubled
//! inside, or preceded by ESCAPE), an unquoted empty field is NULL, a quoted one an empty
//! string, quoted fields may hold delimiters and newlines. HEADER (both formats) skips the
//! first line on input and writes the column names on output.

use super::binder::{ident_name, object_name, quote_ident};
use super::error::{sqlstate, Result, SqlError};
use super::parser::{CopyStatement, GenericOption, OptionValue};
use super::Value;
use sqlparser::ast;

/// Refuses a COPY that is not `FROM STDIN` or `TO STDOUT` (server files and programs).
pub fn check_target(copy: &CopyStatement) -> Result<()> {
    match (copy.to, &copy.target) {
        (false, ast::CopyTarget::Stdin) | (true, ast::CopyTarget::Stdout) => Ok(()),
        _ => Err(SqlError::unsupported(
            "COPY to or from a server file or program is not supported; use COPY ... \
             FROM STDIN or TO STDOUT (psql's \\copy)",
        )),
    }
}

/// The query `COPY source TO STDOUT` runs: `SELECT cols FROM t`, or the COPY's query.
pub fn out_query(source: &ast::CopySource) -> Result<String> {
    Ok(match source {
        ast::CopySource::Table {
            table_name,
            columns,
        } => {
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| quote_ident(&ident_name(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "SELECT {list} FROM {}",
                quote_ident(&object_name(table_name)?)
            )
        }
        ast::CopySource::Query(q) => q.to_string(),
    })
}

/// COPY TO's data: each row of the query (columns `names`) encoded as one line in the format
/// `options` ask for (a header first when asked, as part of the first line); with whether
/// the format is CSV.
pub fn encode_out(
    options: &[GenericOption],
    names: &[String],
    rows: &[Vec<Value>],
) -> Result<(bool, Vec<Vec<u8>>)> {
    let format = CopyFormat::from_options(options, names)?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut header = Vec::new();
    if format.header {
        let fields: Vec<Option<String>> = names.iter().cloned().map(Some).collect();
        format.encode_row(&fields, &mut header);
    }
    for row in rows {
        let fields: Vec<Option<String>> = row.iter().map(Value::to_text).collect();
        let mut line = std::mem::take(&mut header);
        format.encode_row(&fields, &mut line);
        lines.push(line);
    }
    if !header.is_empty() {
        lines.push(header);
    }
    Ok((format.csv, lines))
}

/// Checks that a row of COPY FROM data has one field per column (`context` names the line).
pub fn check_width(
    fields: usize,
    columns: &[String],
    context: impl FnOnce() -> String,
) -> Result<()> {
    if fields > columns.len() {
        return Err(SqlError::new(
            sqlstate::BAD_COPY_FILE_FORMAT,
            "extra data after last expected column",
        )
        .with_context(context()));
    }
    if fields < columns.len() {
        return Err(SqlError::new(
            sqlstate::BAD_COPY_FILE_FORMAT,
            format!("missing data for column \"{}\"", columns[fields]),
        )
        .with_context(context()));
    }
    Ok(())
}

/// The format of a COPY's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFormat {
    /// CSV rather than text.
    pub csv: bool,
    /// The field delimiter.
    pub delimiter: u8,
    /// The string that stands for NULL.
    pub null: String,
    /// Whether the first line is a header.
    pub header: bool,
    /// The CSV quote character.
    pub quote: u8,
    /// The CSV escape character (the quote by default).
    pub escape: u8,
    /// Columns (by position in the COPY's column list) always quoted on output (CSV).
    pub force_quote: Vec<usize>,
    /// Whether every column is quoted on output (`FORCE_QUOTE *`).
    pub force_quote_all: bool,
}

impl Default for CopyFormat {
    fn default() -> Self {
        CopyFormat {
            csv: false,
            delimiter: b'\t',
            null: "\\N".into(),
            header: false,
            quote: b'"',
            escape: b'"',
            force_quote: Vec::new(),
            force_quote_all: false,
        }
    }
}

fn syntax(message: String) -> SqlError {
    SqlError::new(sqlstate::SYNTAX_ERROR, message)
}

/// A boolean option's value as PostgreSQL reads it (no value is true).
fn boolean(option: &GenericOption) -> Result<bool> {
    match &option.value {
        OptionValue::None => Ok(true),
        OptionValue::Text(t) => match t.to_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(syntax(format!("{} requires a Boolean value", option.name))),
        },
        _ => Err(syntax(format!("{} requires a Boolean value", option.name))),
    }
}

fn text(option: &GenericOption) -> Result<&str> {
    match &option.value {
        OptionValue::Text(t) => Ok(t),
        _ => Err(syntax(format!("{} requires a string value", option.name))),
    }
}

/// A one-byte character option (delimiter, quote, escape).
fn single_byte(option: &GenericOption) -> Result<u8> {
    let t = text(option)?;
    match t.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("COPY {} must be a single one-byte character", option.name),
        )),
    }
}

impl CopyFormat {
    /// The format a COPY statement's options ask for; `columns` are the COPY's column names
    /// (for FORCE_QUOTE).
    pub fn from_options(options: &[GenericOption], columns: &[String]) -> Result<CopyFormat> {
        let mut csv = false;
        let mut delimiter = None;
        let mut null = None;
        let mut header = false;
        let mut quote = None;
        let mut escape = None;
        let mut force_quote = Vec::new();
        let mut force_quote_all = false;
        for o in options {
            match o.name.as_str() {
                "format" => match text(o)?.to_lowercase().as_str() {
                    "text" => csv = false,
                    "csv" => csv = true,
                    "binary" => return Err(SqlError::unsupported("COPY BINARY is not supported")),
                    other => {
                        return Err(SqlError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ))
                    }
                },
                "freeze" => {
                    boolean(o)?;
                }
                "delimiter" => delimiter = Some(single_byte(o)?),
                "null" => null = Some(text(o)?.to_string()),
                "header" => header = boolean(o)?,
                "quote" => quote = Some(single_byte(o)?),
                "escape" => escape = Some(single_byte(o)?),
                "encoding" => {
                    let e = text(o)?.to_lowercase().replace(['-', '_'], "");
                    if e != "utf8" && e != "unicode" {
                        return Err(SqlError::unsupported(format!(
                            "COPY encoding \"{}\" is not supported; rxc speaks UTF8",
                            text(o)?
                        )));
                    }
                }
                "force_quote" => match &o.value {
                    OptionValue::Star => force_quote_all = true,
                    OptionValue::Columns(names) => {
                        for n in names {
                            let i = columns.iter().position(|c| c == n).ok_or_else(|| {
                                SqlError::new(
                                    sqlstate::INVALID_COLUMN_REFERENCE,
                                    format!("FORCE_QUOTE column \"{n}\" not referenced by COPY"),
                                )
                            })?;
                            force_quote.push(i);
                        }
                    }
                    _ => {
                        return Err(syntax(
                            "argument to option \"force_quote\" must be a list of column names"
                                .into(),
                        ))
                    }
                },
                "force_not_null" | "force_null" => {
                    return Err(SqlError::unsupported(format!(
                        "COPY {} is not supported",
                        o.name.to_uppercase()
                    )))
                }
                other => return Err(syntax(format!("option \"{other}\" not recognized"))),
            }
        }
        if !csv {
            for (set, what) in [
                (quote.is_some(), "quote"),
                (escape.is_some(), "escape"),
                (force_quote_all || !force_quote.is_empty(), "force quote"),
            ] {
                if set {
                    return Err(SqlError::unsupported(format!(
                        "COPY {what} available only in CSV mode"
                    )));
                }
            }
        }
        let quote = quote.unwrap_or(b'"');
        Ok(CopyFormat {
            csv,
            delimiter: delimiter.unwrap_or(if csv { b',' } else { b'\t' }),
            null: null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() }),
            header,
            quote,
            escape: escape.unwrap_or(quote),
            force_quote,
            force_quote_all,
        })
    }

    /// Encodes one row (text values, `None` for NULL) as a line of COPY data, newline included.
    pub fn encode_row(&self, fields: &[Option<String>], out: &mut Vec<u8>) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            let Some(text) = field else {
                out.extend_from_slice(self.null.as_bytes());
                continue;
            };
            if self.csv {
                self.encode_csv_field(i, text, out);
            } else {
                self.encode_text_field(text, out);
            }
        }
        out.push(b'\n');
    }

    fn encode_text_field(&self, text: &str, out: &mut Vec<u8>) {
        for &b in text.as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0x0b => out.extend_from_slice(b"\\v"),
                b if b == self.delimiter => {
                    out.push(b'\\');
                    out.push(b);
                }
                b => out.push(b),
            }
        }
    }

    fn encode_csv_field(&self, column: usize, text: &str, out: &mut Vec<u8>) {
        let bytes = text.as_bytes();
        let needs_quotes = self.force_quote_all
            || self.force_quote.contains(&column)
            || text == self.null
            || text.starts_with("\\.")
            || bytes
                .iter()
                .any(|&b| b == self.delimiter || b == self.quote || b == b'\n' || b == b'\r');
        if !needs_quotes {
            out.extend_from_slice(bytes);
            return;
        }
        out.push(self.quote);
        for &b in bytes {
            if b == self.quote || b == self.escape {
                out.push(self.escape);
            }
            out.push(b);
        }
        out.push(self.quote);
    }
}

/// Decodes COPY data chunk by chunk into rows of fields.
#[derive(Debug)]
pub struct CopyDecoder {
    format: CopyFormat,
    buffer: Vec<u8>,
    /// Lines consumed so far (for error messages and HEADER).
    line: u64,
    ended: bool,
}

/// A decoded row: its fields (`None` is NULL) and the line it started on (1-based).
pub type CopyRow = (Vec<Option<String>>, u64);

fn bad_format(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::BAD_COPY_FILE_FORMAT, message)
}

impl CopyDecoder {
    /// A decoder for data in `format`.
    pub fn new(format: CopyFormat) -> CopyDecoder {
        CopyDecoder {
            format,
            buffer: Vec::new(),
            line: 0,
            ended: false,
        }
    }

    /// The number of lines read so far.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Feeds a chunk and appends every row it completes to `rows`.
    pub fn feed(&mut self, chunk: &[u8], rows: &mut Vec<CopyRow>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.buffer.extend_from_slice(chunk);
        self.drain(false, rows)
    }

    /// Ends the data: the last row may lack its newline.
    pub fn finish(&mut self, rows: &mut Vec<CopyRow>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.drain(true, rows)?;
        self.ended = true;
        Ok(())
    }

    fn drain(&mut self, at_end: bool, rows: &mut Vec<CopyRow>) -> Result<()> {
        let mut start = 0;
        while start < self.buffer.len() && !self.ended {
            let parsed = if self.format.csv {
                self.parse_csv_record(start, at_end)?
            } else {
                self.parse_text_record(start, at_end)?
            };
            let Some((fields, next, lines)) = parsed else {
                break;
            };
            let first_line = self.line + 1;
            self.line += lines;
            start = next;
            match fields {
                None => self.ended = true,
                Some(_) if self.format.header && first_line == 1 => {}
                Some(fields) => rows.push((fields, first_line)),
            }
        }
        self.buffer.drain(..start);
        if at_end {
            self.buffer.clear();
        }
        Ok(())
    }

    /// One text-format line from `start`: `Some((fields or None for the end marker, next
    /// start, lines))`, or `None` when the line is incomplete.
    #[allow(clippy::type_complexity)]
    fn parse_text_record(
        &self,
        start: usize,
        at_end: bool,
    ) -> Result<Option<(Option<Vec<Option<String>>>, usize, u64)>> {
        let rest = &self.buffer[start..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None if at_end => (rest, self.buffer.len()),
            None => return Ok(None),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            return Ok(Some((None, next, 1)));
        }
        let mut fields = Vec::new();
        let mut raw_start = 0;
        let mut field: Vec<u8> = Vec::new();
        let mut i = 0;
        let delimiter = self.format.delimiter;
        let null = self.format.null.as_bytes();
        let mut push_field = |raw: &[u8], field: &mut Vec<u8>| -> Result<()> {
            if raw == null {
                fields.push(None);
            } else {
                let s = String::from_utf8(std::mem::take(field)).map_err(|_| {
                    SqlError::new(
                        sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                        "invalid byte sequence for encoding \"UTF8\"",
                    )
                })?;
                fields.push(Some(s));
            }
            field.clear();
            Ok(())
        };
        while i < line.len() {
            let b = line[i];
            if b == delimiter {
                push_field(&line[raw_start..i], &mut field)?;
                i += 1;
                raw_start = i;
                continue;
            }
            if b != b'\\' || i + 1 >= line.len() {
                field.push(b);
                i += 1;
                continue;
            }
            let c = line[i + 1];
            i += 2;
            match c {
                b'b' => field.push(0x08),
                b'f' => field.push(0x0c),
                b'n' => field.push(b'\n'),
                b'r' => field.push(b'\r'),
                b't' => field.push(b'\t'),
                b'v' => field.push(0x0b),
                b'0'..=b'7' => {
                    let mut v = (c - b'0') as u32;
                    for _ in 0..2 {
                        match line.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + (d - b'0') as u32;
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    field.push((v & 0xff) as u8);
                }
                b'x' if line.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                    let mut v = 0u32;
                    for _ in 0..2 {
                        match line.get(i) {
                            Some(d) if d.is_ascii_hexdigit() => {
                                v = v * 16 + (*d as char).to_digit(16).unwrap_or(0);
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    field.push(v as u8);
                }
                other => field.push(other),
            }
        }
        push_field(&line[raw_start..], &mut field)?;
        Ok(Some((Some(fields), next, 1)))
    }

    /// One CSV record from `start` (it may span lines inside quotes), as
    /// [`CopyDecoder::parse_text_record`].
    #[allow(clippy::type_complexity)]
    fn parse_csv_record(
        &self,
        start: usize,
        at_end: bool,
    ) -> Result<Option<(Option<Vec<Option<String>>>, usize, u64)>> {
        let buf = &self.buffer;
        let CopyFormat {
            delimiter,
            quote,
            escape,
            ..
        } = self.format;
        // The end marker alone on a line.
        let rest = &buf[start..];
        for marker in [&b"\\.\n"[..], b"\\.\r\n"] {
            if rest.starts_with(marker) {
                return Ok(Some((None, start + marker.len(), 1)));
            }
        }
        if at_end && (rest == b"\\." || rest == b"\\.\r") {
            return Ok(Some((None, buf.len(), 1)));
        }
        let mut fields = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut lines = 1;
        let mut i = start;
        let finish_field =
            |field: &mut Vec<u8>, quoted: bool, fields: &mut Vec<Option<String>>| -> Result<()> {
                let s = String::from_utf8(std::mem::take(field)).map_err(|_| {
                    SqlError::new(
                        sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                        "invalid byte sequence for encoding \"UTF8\"",
                    )
                })?;
                fields.push(if !quoted && s == self.format.null {
                    None
                } else {
                    Some(s)
                });
                Ok(())
            };
        loop {
            let Some(&b) = buf.get(i) else {
                if !at_end {
                    return Ok(None);
                }
                if in_quotes {
                    return Err(bad_format("unterminated CSV quoted field"));
                }
                finish_field(&mut field, quoted, &mut fields)?;
                return Ok(Some((Some(fields), i, lines)));
            };
            if in_quotes {
                if b == escape {
                    // An escaped quote or escape (a doubled quote when ESCAPE is the quote).
                    match buf.get(i + 1) {
                        Some(&n) if n == quote || n == escape => {
                            field.push(n);
                            i += 2;
                            continue;
                        }
                        None if !at_end => return Ok(None),
                        _ => {}
                    }
                }
                if b == quote {
                    in_quotes = false;
                    i += 1;
                    continue;
                }
                if b == b'\n' {
                    lines += 1;
                }
                field.push(b);
                i += 1;
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    finish_field(&mut field, quoted, &mut fields)?;
                    let mut next = i + 1;
                    if b == b'\r' {
                        match buf.get(next) {
                            Some(b'\n') => next += 1,
                            None if !at_end => return Ok(None),
                            _ => {}
                        }
                    }
                    return Ok(Some((Some(fields), next, lines)));
                }
                b if b == delimiter => {
                    finish_field(&mut field, quoted, &mut fields)?;
                    quoted = false;
                    i += 1;
                }
                b if b == quote => {
                    quoted = true;
                    in_quotes = true;
                    i += 1;
                }
                b => {
                    field.push(b);
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(format: &CopyFormat, chunks: &[&[u8]]) -> Vec<Vec<Option<String>>> {
        let mut d = CopyDecoder::new(format.clone());
        let mut rows = Vec::new();
        for c in chunks {
            d.feed(c, &mut rows).unwrap();
        }
        d.finish(&mut rows).unwrap();
        rows.into_iter().map(|(f, _)| f).collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_rows_with_escapes_nulls_and_split_chunks() {
        let f = CopyFormat::default();
        let rows = decode(
            &f,
            &[b"1\tab\\tc\t\\N\n2\t", b"x\\\\y\\101\\x41\t\r\n3\t\t", b"z"],
        );
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("ab\tc"), None],
                vec![s("2"), s("x\\yAA"), s("")],
                vec![s("3"), s(""), s("z")],
            ]
        );
        // The end marker stops the data.
        assert_eq!(decode(&f, &[b"1\n\\.\n2\n"]), vec![vec![s("1")]]);
    }

    #[test]
    fn csv_quotes_nulls_header_and_multiline_fields() {
        let f = CopyFormat {
            csv: true,
            delimiter: b',',
            null: String::new(),
            header: true,
            ..CopyFormat::default()
        };
        let rows = decode(
            &f,
            &[b"a,b,c\n1,\"x,\"\"y", b"\"\"\",\n2,\"\",\"two\nlines\"\n"],
        );
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("x,\"y\""), None],
                vec![s("2"), s(""), s("two\nlines")],
            ]
        );
    }

    #[test]
    fn encoding_round_trips() {
        let text = CopyFormat::default();
        let csv = CopyFormat {
            csv: true,
            delimiter: b',',
            null: String::new(),
            ..CopyFormat::default()
        };
        let row = vec![s("a\tb\\c\nd"), None, s(""), s("x,\"y\"")];
        for f in [&text, &csv] {
            let mut out = Vec::new();
            f.encode_row(&row, &mut out);
            assert_eq!(decode(f, &[&out]), vec![row.clone()], "{f:?}");
        }
        let mut out = Vec::new();
        text.encode_row(&row, &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd\t\\N\t\tx,\"y\"\n");
        let mut out = Vec::new();
        csv.encode_row(&row, &mut out);
        assert_eq!(out, b"\"a\tb\\c\nd\",,\"\",\"x,\"\"y\"\"\"\n");
    }
}
