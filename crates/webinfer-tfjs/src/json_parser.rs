//! JSON text to a [`serde_json::Value`], read as JavaScript's `JSON.parse` reads it.
//!
//! `model.json` is the only JSON the engine parses, into a `Value` that the rest of the crate
//! walks. This parser replaces serde_json's deserializer for that one job: with it go the
//! deserializer and the float formatting its error messages pull in, 15.6 KB of gzip of the
//! browser's CPU-only module (266.8 -> 251.2 KB, this parser included). The grammar is RFC 8259's, as strict as serde_json and
//! `JSON.parse` (no trailing commas, no leading zeros, no comments, no control characters in
//! strings); the result is the `Value` serde_json builds, except that a number is kept as the
//! value it denotes: integers exactly (`u64` / `i64`), others as the
//! nearest `f64` (what `JSON.parse` gives; in the browser module its own `parseFloat` reads
//! them, see [`crate::json::parse_f64`]). A repeated key keeps its first place and its last
//! value (serde_json's `preserve_order` map, and `JSON.parse`).
//!
//! Errors carry serde_json's line and column (1-based; the column of the byte at fault, 0 at
//! the start of a line) and a message in its words. Nesting deeper than [`MAX_DEPTH`] is an
//! error, not a stack overflow.

use serde_json::{Map, Number, Value};

/// Arrays and objects nested this deep are refused (serde_json's limit: 127 levels pass).
pub(crate) const MAX_DEPTH: usize = 128;

/// Where and why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: &'static str,
}

/// Parses `text` (UTF-8, without a byte-order mark) as one JSON value.
pub(crate) fn parse(text: &[u8]) -> Result<Value, JsonError> {
    let mut p = Parser { text, at: 0 };
    let value = p.value(0)?;
    p.blank();
    if p.at < text.len() {
        return Err(p.fail_here("trailing characters"));
    }
    Ok(value)
}

struct Parser<'t> {
    text: &'t [u8],
    /// The next byte to read.
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    /// Skips JSON whitespace.
    fn blank(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    /// An error at byte `at` (line and column as serde_json counts them).
    fn fail_at(&self, at: usize, message: &'static str) -> JsonError {
        let upto = self.text.get(..at.min(self.text.len())).unwrap_or_default();
        let line_start = upto
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i.saturating_add(1));
        let line = upto
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .saturating_add(1);
        let mut column = at.saturating_sub(line_start);
        if at < self.text.len() {
            column = column.saturating_add(1);
        }
        JsonError {
            line,
            column,
            message,
        }
    }

    /// An error just after the byte at `at` (a line feed there puts it at column 0 of the
    /// next line, as serde_json counts a byte it has consumed).
    fn fail_after(&self, at: usize, message: &'static str) -> JsonError {
        let mut e = self.fail_at(at, message);
        if self.text.get(at) == Some(&b'\n') {
            e.line = e.line.saturating_add(1);
            e.column = 0;
        }
        e
    }

    /// An error at the byte about to be read (or at the end of the text).
    fn fail_here(&self, message: &'static str) -> JsonError {
        self.fail_at(self.at, message)
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.blank();
        match self.peek() {
            None => Err(self.fail_here("EOF while parsing a value")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.word(b"true", Value::Bool(true)),
            Some(b'f') => self.word(b"false", Value::Bool(false)),
            Some(b'n') => self.word(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(self.fail_here("expected value")),
        }
    }

    fn word(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        for &want in word {
            match self.peek() {
                Some(b) if b == want => self.bump(),
                Some(_) => return Err(self.fail_here("expected ident")),
                None => return Err(self.fail_here("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    /// Enters an array or object at `depth`.
    fn nest(&mut self, depth: usize) -> Result<usize, JsonError> {
        let inner = depth.saturating_add(1);
        if inner >= MAX_DEPTH {
            return Err(self.fail_here("recursion limit exceeded"));
        }
        self.bump();
        Ok(inner)
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        let depth = self.nest(depth)?;
        let mut items = Vec::new();
        self.blank();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.blank();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                    self.blank();
                    if self.peek() == Some(b']') {
                        return Err(self.fail_here("trailing comma"));
                    }
                }
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(_) => return Err(self.fail_here("expected `,` or `]`")),
                None => return Err(self.fail_here("EOF while parsing a list")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        let depth = self.nest(depth)?;
        let mut map = Map::new();
        self.blank();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Value::Object(map));
        }
        loop {
            match self.peek() {
                Some(b'"') => {}
                Some(b'}') => return Err(self.fail_here("trailing comma")),
                Some(_) => return Err(self.fail_here("key must be a string")),
                None => return Err(self.fail_here("EOF while parsing an object")),
            }
            let key = self.string()?;
            self.blank();
            match self.peek() {
                Some(b':') => self.bump(),
                Some(_) => return Err(self.fail_here("expected `:`")),
                None => return Err(self.fail_here("EOF while parsing an object")),
            }
            let value = self.value(depth)?;
            map.insert(key, value);
            self.blank();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                    self.blank();
                }
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Object(map));
                }
                Some(_) => return Err(self.fail_here("expected `,` or `}`")),
                None => return Err(self.fail_here("EOF while parsing an object")),
            }
        }
    }

    /// A string, the opening quote next.
    fn string(&mut self) -> Result<String, JsonError> {
        self.bump();
        let mut out: Vec<u8> = Vec::new();
        loop {
            // A run of plain bytes, copied as they are. It ends at an ASCII byte, so never
            // inside a UTF-8 sequence: each run is valid UTF-8 on its own.
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.bump();
            }
            let run = self.text.get(start..self.at).unwrap_or_default();
            if let Err(e) = std::str::from_utf8(run) {
                let bad = start.saturating_add(e.valid_up_to());
                return Err(self.fail_after(bad, "invalid unicode code point"));
            }
            out.extend_from_slice(run);
            match self.peek() {
                None => return Err(self.fail_here("EOF while parsing a string")),
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    self.bump();
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    return Err(self.fail_after(
                        self.at,
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ))
                }
            }
        }
        String::from_utf8(out).map_err(|_| self.fail_here("invalid unicode code point"))
    }

    /// The escape after a backslash, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        let Some(b) = self.peek() else {
            return Err(self.fail_here("EOF while parsing a string"));
        };
        self.bump();
        let plain = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        // A leading surrogate must be followed by `\u` and a trailing one.
                        if self.peek() != Some(b'\\')
                            || self.text.get(self.at.saturating_add(1)) != Some(&b'u')
                        {
                            return Err(self.fail_here("lone leading surrogate in hex escape"));
                        }
                        self.bump();
                        self.bump();
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.fail_here("lone leading surrogate in hex escape"));
                        }
                        0x10000u32
                            .saturating_add((u32::from(unit).saturating_sub(0xD800)) << 10)
                            .saturating_add(u32::from(low).saturating_sub(0xDC00))
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.fail_here("lone trailing surrogate in hex escape"))
                    }
                    unit => u32::from(unit),
                };
                let c = char::from_u32(code)
                    .ok_or_else(|| self.fail_here("invalid unicode code point"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(self.fail_at(self.at.saturating_sub(1), "invalid escape")),
        };
        out.push(plain);
        Ok(())
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Result<u16, JsonError> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(b @ b'0'..=b'9') => b.wrapping_sub(b'0'),
                Some(b @ b'a'..=b'f') => b.wrapping_sub(b'a').wrapping_add(10),
                Some(b @ b'A'..=b'F') => b.wrapping_sub(b'A').wrapping_add(10),
                Some(_) => return Err(self.fail_here("invalid escape")),
                None => return Err(self.fail_here("EOF while parsing a string")),
            };
            self.bump();
            v = (v << 4) | u16::from(d);
        }
        Ok(v)
    }

    /// Skips a run of ASCII digits; whether there was one.
    fn digits(&mut self) -> bool {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.bump();
        }
        self.at > start
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<Number, JsonError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => {
                self.bump();
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.fail_here("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.fail_here("invalid number")),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.bump();
            integral = false;
            if !self.digits() {
                return Err(self.fail_here("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            integral = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            if !self.digits() {
                return Err(self.fail_here("invalid number"));
            }
        }
        let bytes = self.text.get(start..self.at).unwrap_or_default();
        // The grammar above admits ASCII only.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        if integral {
            match bytes.split_first() {
                Some((b'-', magnitude)) => {
                    // Negative integers down to i64::MIN (`-0` is the float -0, as JSON.parse
                    // and serde_json read it).
                    if let Some(m @ 1..=0x8000_0000_0000_0000) =
                        crate::json::parse_digits(magnitude)
                    {
                        return Ok(Number::from((m as i64).wrapping_neg()));
                    }
                }
                _ => {
                    if let Some(u) = crate::json::parse_digits(bytes) {
                        return Ok(Number::from(u));
                    }
                }
            }
        }
        crate::json::parse_f64(text)
            .and_then(Number::from_f64)
            .ok_or_else(|| self.fail_at(start, "number out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::number_f64;

    /// The same JSON value: numbers compared by what they denote (`number_f64`, and exactly
    /// as integers).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let int = |n: &Number| n.as_u64().map(i128::from).or(n.as_i64().map(i128::from));
                int(x) == int(y) && number_f64(x) == number_f64(y)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
            }
            _ => a == b,
        }
    }

    /// Ours against serde_json's: the same value, or both errors (at the same place when
    /// `place`).
    fn check(text: &[u8], place: bool) {
        let ours = parse(text);
        let theirs: Result<Value, _> = serde_json::from_slice(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert!(
                same(a, b),
                "{:?}: {a} vs serde_json {b}",
                String::from_utf8_lossy(text)
            ),
            (Err(e), Err(s)) => {
                if place {
                    assert_eq!(
                        (e.line, e.column),
                        (s.line(), s.column()),
                        "{:?}: {e:?} vs serde_json {s}",
                        String::from_utf8_lossy(text)
                    );
                }
            }
            _ => panic!(
                "{:?}: ours {ours:?}, serde_json {theirs:?}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    const VALID: &[&str] = &[
        "0",
        "-0",
        "-0.0",
        "1",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1.5",
        "0.1",
        "1e3",
        "1E-3",
        "1e+3",
        "2.5e-324",
        "1.7976931348623157e308",
        "0.30000000000000004",
        "3.4028234663852886e38",
        "1.0",
        "  true ",
        "false",
        "null",
        r#""""#,
        r#""plain""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u0041\u00e9\u4e2d\ud83d\ude00""#,
        r#""é中😀""#,
        "[]",
        "[1,[2,[3,[]]],{}]",
        "{}",
        r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        r#"{"a":1,"a":2,"b":3}"#,
        "\t\r\n {\"k\" :\n[ 1 , 2 ]\r\n}\n",
    ];

    const INVALID: &[&[u8]] = &[
        b"",
        b" ",
        b"01",
        b"-",
        b"-a",
        b"1.",
        b".5",
        b"+1",
        b"1e",
        b"1e+",
        b"0x10",
        b"1.5.",
        b"NaN",
        b"Infinity",
        b"tru",
        b"trux",
        b"nul",
        b"[1,]",
        b"[1 2]",
        b"[",
        b"[1",
        b"{",
        b"{\"a\"",
        b"{\"a\":",
        b"{\"a\":1,}",
        b"{\"a\" 1}",
        b"{1:2}",
        b"{\"a\":1 \"b\":2}",
        b"\"abc",
        b"\"a\nb\"",
        b"\"\\x\"",
        b"\"\\u12\"",
        b"\"\\u12G4\"",
        b"\"\\ud83d\"",
        b"\"\\ud83dx\"",
        b"\"\\ud83d\\u0041\"",
        b"\"\\ude00\"",
        b"\"\xff\"",
        b"\"\xc3\"",
        b"\xff\xfe{}",
        b"{} {}",
        b"[] x",
        b"1e400",
        b"-1e400",
        b"// c\n1",
    ];

    #[test]
    fn agrees_with_serde_json_on_valid_texts() {
        for text in VALID {
            assert!(parse(text.as_bytes()).is_ok(), "{text}");
            check(text.as_bytes(), true);
        }
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for &text in INVALID {
            // (1e400 is Infinity to JSON.parse; refused here, as by serde_json: no layer config
            // or manifest can use it.)
            let e = parse(text).unwrap_err();
            assert!(!e.message.is_empty());
            assert!(
                serde_json::from_slice::<Value>(text).is_err(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn errors_are_placed_as_serde_json_places_them() {
        for &text in INVALID {
            if text.starts_with(b"1e4") || text.starts_with(b"-1e4") || text.starts_with(b"\"\\u") {
                continue;
            }
            check(text, true);
        }
        let e = parse(b"{\n  \"a\": [1,\n  ,]\n}").unwrap_err();
        assert_eq!((e.line, e.column, e.message), (3, 3, "expected value"));
    }

    #[test]
    fn numbers_are_the_values_they_denote() {
        let n = |t: &str| match parse(t.as_bytes()).unwrap() {
            Value::Number(n) => n,
            v => panic!("{v}"),
        };
        assert_eq!(n("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(n("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(n("3").as_u64(), Some(3));
        assert_eq!(n("-3").as_i64(), Some(-3));
        assert_eq!(number_f64(&n("0.1")), Some(0.1));
        assert_eq!(
            n("-0").as_f64().map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(number_f64(&n("1e3")), Some(1000.0));
        assert_eq!(
            number_f64(&n("18446744073709551616")),
            Some(18446744073709551616.0)
        );
        // Not exact as an integer beyond u64.
        assert_eq!(n("18446744073709551616").as_u64(), None);
    }

    #[test]
    fn a_repeated_key_keeps_its_place_and_its_last_value() {
        let v = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(v["a"], 3);
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(ok.as_bytes()).is_ok());
        check(ok.as_bytes(), true);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(
            parse(deep.as_bytes()).unwrap_err().message,
            "recursion limit exceeded"
        );
        check(deep.as_bytes(), true);
        let huge = "{\"a\":".repeat(100_000);
        assert!(parse(huge.as_bytes()).is_err());
    }

    /// Random edits of the texts above: the same verdict and value as serde_json's.
    #[test]
    fn agrees_with_serde_json_on_edited_texts() {
        let seeds: Vec<&[u8]> = VALID
            .iter()
            .map(|s| s.as_bytes())
            .chain(INVALID.iter().copied())
            .collect();
        let alphabet = b"{}[],:\"\\ -+.0123456789eEtrufalsn\n\tu";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut text = seeds[next(seeds.len())].to_vec();
            for _ in 0..=next(3) {
                let at = next(text.len() + 1);
                match next(3) {
                    0 => text.insert(at, alphabet[next(alphabet.len())]),
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    _ if at < text.len() => text[at] = alphabet[next(alphabet.len())],
                    _ => {}
                }
            }
            check(&text, false);
        }
    }
}
