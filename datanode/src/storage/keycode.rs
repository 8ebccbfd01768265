//! Keycode: an order-preserving byte encoding of SQL values, so that the byte order of encoded
//! keys (what RocksDB sorts by) is the SQL order of the values, and range scans follow the
//! primary key.
//!
//! The encoding is hand-written rather than a serde `Serializer` (as toydb does): the things
//! that matter here are SQL-specific — where NULL sorts, `-0.0 = 0.0`, NaN, descending columns —
//! and they read best as explicit byte rules.
//!
//! ```text
//!  value      tag   payload (ascending)
//!  Bool       0x01  0x00 | 0x01
//!  Int        0x02  i64 big-endian with the sign bit flipped    (i16/i32 are widened to i64)
//!  Float      0x03  f64 bits: sign set → all bits flipped; else sign bit flipped
//!  Text       0x04  UTF-8 bytes, 0x00 escaped as 0x00 0xff, ended by 0x00 0x00
//!  Bytes      0x05  same as Text
//!  Numeric    0x06  sign class 0x00 negative | 0x01 zero | 0x02 positive; then, unless zero,
//!                   the value as 0.d1d2…dn × 10^e (d1 ≠ 0, dn ≠ 0): the byte e + 128, the digits
//!                   as bytes d + 1, and 0x00; a negative value inverts these bytes
//!  Null       0x7f  —
//!  tuple      values one after another, then 0x00 (never a tag: a shorter tuple sorts first)
//! ```
//!
//! - **Order**: values of different types order by tag (a key column has one type; the order
//!   across types only has to be total). Within a type: `false < true`; integers numerically;
//!   floats numerically with `-0.0 = 0.0` (both encode as `0.0`, so `-0.0` decodes as `0.0`) and
//!   every NaN equal to one NaN above `+inf`, as in PostgreSQL; text by bytes (the C collation);
//!   NULL after everything (PostgreSQL's `NULLS LAST` for ascending keys). Numerics
//!   numerically, with one encoding per value whatever its scale (`1.0`, `1.00` and `1` are one
//!   key, as PostgreSQL's numeric equality has it); the digits after the exponent compare as a
//!   decimal fraction because the terminator sorts below every digit, and inverting a negative
//!   value's bytes reverses the order of magnitudes.
//! - **Descending** ([`Order::Desc`]): every byte of the value's encoding (tag included) is
//!   inverted, which reverses its order, escapes and terminators included; NULL then sorts
//!   first, PostgreSQL's default for `DESC`. The tuple terminator is never inverted. Tags are
//!   below `0x80`, so the first byte of a value says its order ([`decode_value_any`]).
//! - **Escaping** makes strings self-delimiting without a length prefix, which would break the
//!   order: `"a" < "a\0" < "ab"` becomes `61 00 00 < 61 00 ff 00 00 < 61 62 00 00`.

use super::Result;
use crate::errdata;
use rust_decimal::Decimal;
use std::cmp::Ordering;

const TAG_BOOL: u8 = 0x01;
const TAG_INT: u8 = 0x02;
const TAG_FLOAT: u8 = 0x03;
const TAG_TEXT: u8 = 0x04;
const TAG_BYTES: u8 = 0x05;
const TAG_NUMERIC: u8 = 0x06;
const TAG_NULL: u8 = 0x7f;
/// The first byte of a descending value is at least this (an inverted tag).
const DESCENDING: u8 = 0x80;
/// Ends a tuple; below every tag and every inverted tag.
const TUPLE_END: u8 = 0x00;

/// A SQL value as it appears in a key.
#[derive(Clone, Debug)]
pub enum Value {
    /// NULL.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`, `integer`, `bigint`.
    Int(i64),
    /// `real`, `double precision`.
    Float(f64),
    /// `text`, `varchar`, `char`.
    Text(String),
    /// `bytea`.
    Bytes(Vec<u8>),
    /// `numeric`.
    Numeric(Decimal),
}

impl Value {
    fn tag(&self) -> u8 {
        match self {
            Value::Bool(_) => TAG_BOOL,
            Value::Int(_) => TAG_INT,
            Value::Float(_) => TAG_FLOAT,
            Value::Text(_) => TAG_TEXT,
            Value::Bytes(_) => TAG_BYTES,
            Value::Numeric(_) => TAG_NUMERIC,
            Value::Null => TAG_NULL,
        }
    }
}

/// The key order described in the module docs; `encode` preserves it.
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => float_key(*a).cmp(&float_key(*b)),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Numeric(a), Value::Numeric(b)) => a.cmp(b),
            (a, b) => a.tag().cmp(&b.tag()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

/// The sort direction of a key column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Ascending, NULLs last.
    #[default]
    Asc,
    /// Descending, NULLs first.
    Desc,
}

impl Order {
    /// XOR mask applied to every byte of a value encoded in this order.
    fn mask(self) -> u8 {
        match self {
            Order::Asc => 0x00,
            Order::Desc => 0xff,
        }
    }
}

/// An `f64` as a `u64` whose unsigned order is the float order (-0.0 = 0.0, NaN last).
fn float_key(f: f64) -> u64 {
    let f = if f.is_nan() {
        f64::NAN
    } else if f == 0.0 {
        0.0
    } else {
        f
    };
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    }
}

fn float_from_key(key: u64) -> f64 {
    let bits = if key >> 63 == 1 {
        key ^ (1 << 63)
    } else {
        !key
    };
    f64::from_bits(bits)
}

const NUMERIC_NEGATIVE: u8 = 0x00;
const NUMERIC_ZERO: u8 = 0x01;
const NUMERIC_POSITIVE: u8 = 0x02;

/// Appends a numeric's payload (see the module doc): sign class, exponent, digits.
fn encode_numeric(out: &mut Vec<u8>, d: Decimal) {
    if d.is_zero() {
        out.push(NUMERIC_ZERO);
        return;
    }
    let negative = d.is_sign_negative();
    out.push(if negative {
        NUMERIC_NEGATIVE
    } else {
        NUMERIC_POSITIVE
    });
    let digits = d.mantissa().unsigned_abs().to_string();
    let significant = digits.trim_end_matches('0');
    // d = 0.d1d2…dn × 10^e with n digits of mantissa and the decimal scale s: e = n - s.
    let exponent = digits.len() as i32 - d.scale() as i32;
    let start = out.len();
    out.push((exponent + 128) as u8);
    out.extend(significant.bytes().map(|b| b - b'0' + 1));
    out.push(0x00);
    if negative {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// Reads a numeric's payload written by [`encode_numeric`], its bytes XORed with `mask`.
fn decode_numeric(input: &mut &[u8], mask: u8) -> Result<Decimal> {
    let class = take(input, 1)?[0] ^ mask;
    let negative = match class {
        NUMERIC_ZERO => return Ok(Decimal::ZERO),
        NUMERIC_NEGATIVE => true,
        NUMERIC_POSITIVE => false,
        c => return Err(errdata!("invalid numeric sign byte {c:#04x} in key")),
    };
    let mask = if negative { !mask } else { mask };
    let exponent = (take(input, 1)?[0] ^ mask) as i32 - 128;
    let mut mantissa: i128 = 0;
    let mut digits = 0i32;
    loop {
        match take(input, 1)?[0] ^ mask {
            0x00 => break,
            b @ 1..=10 if digits < 29 => {
                mantissa = mantissa * 10 + (b - 1) as i128;
                digits += 1;
            }
            b => return Err(errdata!("invalid numeric digit byte {b:#04x} in key")),
        }
    }
    let mut scale = digits - exponent;
    while scale < 0 {
        mantissa *= 10;
        scale += 1;
    }
    if negative {
        mantissa = -mantissa;
    }
    Decimal::try_from_i128_with_scale(mantissa, scale as u32)
        .map_err(|e| errdata!("numeric key out of range: {e}"))
}

/// Appends `value` in `order`.
pub fn encode_value(out: &mut Vec<u8>, value: &Value, order: Order) {
    let start = out.len();
    out.push(value.tag());
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int(i) => out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes()),
        Value::Float(f) => out.extend_from_slice(&float_key(*f).to_be_bytes()),
        Value::Text(s) => encode_bytes(out, s.as_bytes()),
        Value::Bytes(b) => encode_bytes(out, b),
        Value::Numeric(d) => encode_numeric(out, *d),
    }
    if order == Order::Desc {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// Appends a tuple of values, each in its order (missing orders are ascending), and the tuple
/// terminator.
pub fn encode_tuple(out: &mut Vec<u8>, values: &[Value], orders: &[Order]) {
    for (i, value) in values.iter().enumerate() {
        encode_value(out, value, orders.get(i).copied().unwrap_or_default());
    }
    out.push(TUPLE_END);
}

/// A tuple of ascending values, encoded.
pub fn encode(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_tuple(&mut out, values, &[]);
    out
}

/// Decodes what [`encode`] produced; the input must hold exactly one tuple.
pub fn decode(bytes: &[u8]) -> Result<Vec<Value>> {
    let mut input = bytes;
    let values = decode_tuple(&mut input, &[])?;
    if !input.is_empty() {
        return Err(errdata!("{} bytes after a key tuple", input.len()));
    }
    Ok(values)
}

/// Reads one value in `order` from the front of `input`.
pub fn decode_value(input: &mut &[u8], order: Order) -> Result<Value> {
    let mask = order.mask();
    let tag = take(input, 1)?[0] ^ mask;
    Ok(match tag {
        TAG_NULL => Value::Null,
        TAG_BOOL => match take(input, 1)?[0] ^ mask {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(errdata!("invalid boolean byte {b:#04x} in key")),
        },
        TAG_INT => Value::Int((decode_u64_masked(input, mask)? ^ (1 << 63)) as i64),
        TAG_FLOAT => Value::Float(float_from_key(decode_u64_masked(input, mask)?)),
        TAG_TEXT => {
            let bytes = decode_bytes_masked(input, mask)?;
            Value::Text(
                String::from_utf8(bytes).map_err(|e| errdata!("invalid UTF-8 in key: {e}"))?,
            )
        }
        TAG_BYTES => Value::Bytes(decode_bytes_masked(input, mask)?),
        TAG_NUMERIC => Value::Numeric(decode_numeric(input, mask)?),
        t => return Err(errdata!("invalid value tag {t:#04x} in key")),
    })
}

/// Reads one value from the front of `input` in whichever order it was written, which its first
/// byte tells, and returns that order too.
pub fn decode_value_any(input: &mut &[u8]) -> Result<(Value, Order)> {
    let first = *input
        .first()
        .ok_or_else(|| errdata!("key ends early: wanted a value"))?;
    let order = if first >= DESCENDING {
        Order::Desc
    } else {
        Order::Asc
    };
    Ok((decode_value(input, order)?, order))
}

/// Reads a tuple written by [`encode_tuple`] in any orders, returning the values and their
/// orders.
pub fn decode_tuple_any(input: &mut &[u8]) -> Result<(Vec<Value>, Vec<Order>)> {
    let (mut values, mut orders) = (Vec::new(), Vec::new());
    loop {
        match input.first() {
            None => return Err(errdata!("key tuple without terminator")),
            Some(&TUPLE_END) => {
                *input = &input[1..];
                return Ok((values, orders));
            }
            Some(_) => {
                let (value, order) = decode_value_any(input)?;
                values.push(value);
                orders.push(order);
            }
        }
    }
}

/// Reads a tuple written by [`encode_tuple`] with the same orders from the front of `input`.
pub fn decode_tuple(input: &mut &[u8], orders: &[Order]) -> Result<Vec<Value>> {
    let mut values = Vec::new();
    loop {
        match input.first() {
            None => return Err(errdata!("key tuple without terminator")),
            Some(&TUPLE_END) => {
                *input = &input[1..];
                return Ok(values);
            }
            Some(_) => {
                let order = orders.get(values.len()).copied().unwrap_or_default();
                values.push(decode_value(input, order)?);
            }
        }
    }
}

/// Appends a `u64` so that byte order is numeric order (big-endian).
pub fn encode_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads a `u64` written by [`encode_u64`].
pub fn decode_u64(input: &mut &[u8]) -> Result<u64> {
    decode_u64_masked(input, 0)
}

/// Appends a `u64` in descending order (the bits inverted): larger values sort first.
pub fn encode_u64_desc(out: &mut Vec<u8>, v: u64) {
    encode_u64(out, !v);
}

/// Reads a `u64` written by [`encode_u64_desc`].
pub fn decode_u64_desc(input: &mut &[u8]) -> Result<u64> {
    decode_u64_masked(input, 0xff)
}

/// Appends a byte string, escaped (`0x00` → `0x00 0xff`) and terminated (`0x00 0x00`), so that
/// it is self-delimiting and keeps its order against any other byte string.
pub fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0x00 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

/// Reads a byte string written by [`encode_bytes`].
pub fn decode_bytes(input: &mut &[u8]) -> Result<Vec<u8>> {
    decode_bytes_masked(input, 0)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if input.len() < n {
        return Err(errdata!(
            "key ends early: wanted {n} bytes, have {}",
            input.len()
        ));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn decode_u64_masked(input: &mut &[u8], mask: u8) -> Result<u64> {
    let mut bytes = [0u8; 8];
    for (dst, src) in bytes.iter_mut().zip(take(input, 8)?) {
        *dst = src ^ mask;
    }
    Ok(u64::from_be_bytes(bytes))
}

fn decode_bytes_masked(input: &mut &[u8], mask: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let b = take(input, 1)?[0] ^ mask;
        if b != 0x00 {
            out.push(b);
            continue;
        }
        match take(input, 1)?[0] ^ mask {
            0x00 => return Ok(out),
            0xff => out.push(0x00),
            e => return Err(errdata!("invalid escape 0x00 {e:#04x} in key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic PRNG (SplitMix64), so the property tests need no dependency and
    /// every failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<T: Clone>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize].clone()
        }

        /// Short strings over a tiny alphabet that includes the escape bytes, so prefixes,
        /// equal strings and embedded zeros are common.
        fn bytes(&mut self) -> Vec<u8> {
            let len = self.below(4) as usize;
            (0..len)
                .map(|_| self.pick(&[0x00, 0x01, b'a', b'b', 0xfe, 0xff]))
                .collect()
        }

        fn value(&mut self, kind: u64) -> Value {
            match kind {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 1),
                2 => Value::Int(match self.below(3) {
                    0 => self.pick(&[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
                    1 => self.below(7) as i64 - 3,
                    _ => self.next() as i64,
                }),
                3 => Value::Float(match self.below(3) {
                    0 => self.pick(&[
                        f64::NEG_INFINITY,
                        f64::MIN,
                        -1.5,
                        -f64::MIN_POSITIVE,
                        -0.0,
                        0.0,
                        f64::MIN_POSITIVE,
                        1.5,
                        f64::MAX,
                        f64::INFINITY,
                        f64::NAN,
                        -f64::NAN,
                    ]),
                    1 => self.below(7) as f64 - 3.0,
                    _ => f64::from_bits(self.next()),
                }),
                4 => Value::Text(
                    (0..self.below(4))
                        .map(|_| self.pick(&['\0', 'a', 'b', 'é', '\u{10ffff}']))
                        .collect(),
                ),
                5 => Value::Bytes(self.bytes()),
                _ => Value::Numeric(self.numeric()),
            }
        }

        /// Numerics: edge values, small values at many scales (so equal values with
        /// different scales are common), and random 96-bit mantissas.
        fn numeric(&mut self) -> Decimal {
            match self.below(3) {
                0 => self.pick(&[
                    Decimal::MIN,
                    Decimal::MAX,
                    Decimal::ZERO,
                    Decimal::new(-0, 3),
                    Decimal::ONE,
                    Decimal::new(10, 1),
                    Decimal::new(100, 2),
                    Decimal::NEGATIVE_ONE,
                    Decimal::new(1, 28),
                    Decimal::new(-1, 28),
                    Decimal::new(100_000, 0),
                    Decimal::new(1_000_005, 1),
                ]),
                1 => {
                    let scale = self.below(4) as u32;
                    let mantissa = (self.below(21) as i64 - 10) * 10i64.pow(scale);
                    Decimal::new(
                        mantissa / 10i64.pow(self.below(scale as u64 + 1) as u32),
                        scale,
                    )
                }
                _ => {
                    let bits = (self.next() as i128) << 32 | (self.next() >> 32) as i128;
                    let mantissa = if self.below(2) == 0 { bits } else { -bits };
                    Decimal::from_i128_with_scale(mantissa, self.below(29) as u32)
                }
            }
        }

        /// A tuple; columns mostly of one type per position, as in a real key.
        fn tuple(&mut self, kinds: &[u64]) -> Vec<Value> {
            let len = self.below(kinds.len() as u64 + 1) as usize;
            kinds[..len]
                .iter()
                .map(|&k| {
                    let kind = if self.below(10) == 0 {
                        self.below(7)
                    } else {
                        k
                    };
                    self.value(kind)
                })
                .collect()
        }
    }

    /// The SQL order of two tuples: column by column in each column's order, a proper prefix
    /// first.
    fn cmp_tuples(a: &[Value], b: &[Value], orders: &[Order]) -> Ordering {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let o = match orders.get(i).copied().unwrap_or_default() {
                Order::Asc => x.cmp(y),
                Order::Desc => y.cmp(x),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.len().cmp(&b.len())
    }

    fn enc(values: &[Value], orders: &[Order]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_tuple(&mut out, values, orders);
        out
    }

    #[test]
    fn encoding_preserves_order_and_roundtrips() {
        let mut rng = Rng(0x5eed);
        for _ in 0..200_000 {
            let kinds: Vec<u64> = (0..3).map(|_| rng.below(7)).collect();
            let orders: Vec<Order> = (0..3)
                .map(|_| rng.pick(&[Order::Asc, Order::Desc]))
                .collect();
            let a = rng.tuple(&kinds);
            let b = rng.tuple(&kinds);
            let (ea, eb) = (enc(&a, &orders), enc(&b, &orders));
            assert_eq!(
                ea.cmp(&eb),
                cmp_tuples(&a, &b, &orders),
                "{a:?} vs {b:?} in {orders:?}: {ea:02x?} vs {eb:02x?}"
            );
            let mut input = ea.as_slice();
            let decoded = decode_tuple(&mut input, &orders).unwrap();
            assert!(input.is_empty());
            assert_eq!(decoded, a, "{a:?} in {orders:?}");
        }
    }

    #[test]
    fn floats_follow_postgres() {
        let key = |f: f64| encode(&[Value::Float(f)]);
        assert_eq!(key(-0.0), key(0.0));
        assert!(key(f64::INFINITY) < key(f64::NAN));
        assert_eq!(key(f64::NAN), key(-f64::NAN));
        assert!(key(f64::NEG_INFINITY) < key(f64::MIN));
        let Value::Float(zero) = decode(&key(-0.0)).unwrap()[0] else {
            panic!("not a float")
        };
        assert!(zero.is_sign_positive());
    }

    #[test]
    fn numerics_are_one_key_whatever_their_scale() {
        let key =
            |mantissa: i64, scale: u32| encode(&[Value::Numeric(Decimal::new(mantissa, scale))]);
        assert_eq!(key(1, 0), key(10, 1));
        assert_eq!(key(1, 0), key(100, 2));
        assert_eq!(key(0, 0), key(-0, 5));
        assert_eq!(key(-25, 1), key(-2500, 3));
        assert!(key(-11, 1) < key(-1, 0));
        assert!(key(1, 0) < key(100_001, 5));
        assert!(key(99, 0) < key(100, 0));
        assert!(encode(&[Value::Numeric(Decimal::MAX)]) < encode(&[Value::Null]));
        let decoded = decode(&key(12_500, 3)).unwrap();
        let Value::Numeric(d) = decoded[0] else {
            panic!("not a numeric")
        };
        assert_eq!((d.mantissa(), d.scale()), (125, 1));
        let large = Value::Numeric(Decimal::from_i128_with_scale(-5 * 10i128.pow(27), 0));
        assert_eq!(
            decode(&encode(std::slice::from_ref(&large))).unwrap(),
            [large]
        );
    }

    #[test]
    fn descending_values_announce_their_order() {
        let values = [Value::Int(3), Value::Null, Value::Text("a".into())];
        let orders = [Order::Desc, Order::Asc, Order::Desc];
        let bytes = enc(&values, &orders);
        let mut input = bytes.as_slice();
        let (decoded, decoded_orders) = decode_tuple_any(&mut input).unwrap();
        assert!(input.is_empty());
        assert_eq!(decoded, values);
        assert_eq!(decoded_orders, orders);
    }

    #[test]
    fn nulls_last_ascending_first_descending() {
        let one = Value::Int(1);
        assert!(encode(std::slice::from_ref(&one)) < encode(&[Value::Null]));
        let desc = |v: &Value| enc(std::slice::from_ref(v), &[Order::Desc]);
        assert!(desc(&Value::Null) < desc(&one));
    }

    #[test]
    fn byte_layout() {
        assert_eq!(
            encode(&[Value::Int(1)]),
            [0x02, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x00]
        );
        assert_eq!(
            encode(&[Value::Text("a\0".into())]),
            [0x04, b'a', 0, 0xff, 0, 0, 0x00]
        );
        assert_eq!(
            enc(&[Value::Bool(true)], &[Order::Desc]),
            [0xfe, 0xfe, 0x00]
        );
    }

    #[test]
    fn garbage_is_invalid_data() {
        for bad in [
            &[0x09][..],
            &[0x02, 1, 2],
            &[0x04, b'a', 0, 7, 0],
            &[0x01, 2, 0],
            &[0x7f],
            &[0x06, 0x02, 0x81, 0x0b, 0x00, 0x00],
            &[0x06, 0x05, 0x00],
        ] {
            assert!(decode(bad).is_err(), "{bad:02x?}");
        }
        assert!(decode(&[0x7f, 0x00, 0x00]).is_err(), "trailing bytes");
    }
}
