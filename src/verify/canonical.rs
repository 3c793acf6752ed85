//! Canonical JSON: one byte sequence per JSON value, whoever serialised it.
//!
//! Engines and the imitation servers re-serialise `_source` (key order, whitespace, escapes), so
//! raw bytes would differ for equal documents. The canonical form is:
//! - object members sorted by their canonical key bytes (then by value, for duplicate keys);
//! - no whitespace outside strings;
//! - strings unescaped, then re-escaped one way: `\"`, `\\`, `\b \f \n \r \t`, other control
//!   characters as `\u00xx`, everything else (including `/` and non-ASCII) as literal UTF-8; a
//!   lone surrogate escape, which UTF-8 cannot hold, is kept as a lowercase `\udxxx`;
//! - numbers by their exact decimal text, never through a float: integers past 2^53 stay
//!   distinct, and `1.0`, `1` and `1e0` are three different values. The only normalisation is of
//!   the exponent's spelling (`E` → `e`, `e+5` → `e5`), which no engine keeps apart from the
//!   number it denotes. Engines keep number text as it was sent, so a faithful copy keeps it too.

/// Why a text is not JSON.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid JSON at byte {at}: {what}")]
pub struct CanonicalError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected.
    pub what: &'static str,
}

/// Nesting deeper than this is refused (the parser recurses).
const MAX_DEPTH: usize = 1000;

/// Appends the canonical form of the JSON value in `text` to `out`.
pub fn canonicalize(text: &str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
        scratch: Vec::new(),
    };
    p.ws();
    p.value(out, 0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("end of input"));
    }
    Ok(())
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    /// Reused buffer for re-ordering object members.
    scratch: Vec<u8>,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> CanonicalError {
        CanonicalError { at: self.i, what }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(self.err("less nesting"));
        }
        match self.peek() {
            Some(b'{') => self.object(out, depth),
            Some(b'[') => self.array(out, depth),
            Some(b'"') => self.string(out),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(b't') => self.literal(out, b"true"),
            Some(b'f') => self.literal(out, b"false"),
            Some(b'n') => self.literal(out, b"null"),
            _ => Err(self.err("a value")),
        }
    }

    fn literal(&mut self, out: &mut Vec<u8>, lit: &'static [u8]) -> Result<(), CanonicalError> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            out.extend_from_slice(lit);
            Ok(())
        } else {
            Err(self.err("true, false or null"))
        }
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
        self.i += 1;
        out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            out.push(b']');
            return Ok(());
        }
        loop {
            self.ws();
            self.value(out, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    out.push(b',');
                }
                Some(b']') => {
                    self.i += 1;
                    out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.err("`,` or `]`")),
            }
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
        self.i += 1;
        self.ws();
        // Members are written to `out` in input order, remembering where each key and value
        // ends, then the region is rewritten in sorted order.
        let start = out.len();
        let mut members: Vec<(usize, usize, usize)> = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            out.extend_from_slice(b"{}");
            return Ok(());
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("an object key"));
            }
            let k = out.len();
            self.string(out)?;
            let v = out.len();
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("`:`"));
            }
            self.i += 1;
            self.ws();
            self.value(out, depth + 1)?;
            members.push((k, v, out.len()));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.err("`,` or `}`")),
            }
        }
        let region = &out[start..];
        members.sort_by(|a, b| {
            let key = |m: &(usize, usize, usize)| &region[m.0 - start..m.1 - start];
            let val = |m: &(usize, usize, usize)| &region[m.1 - start..m.2 - start];
            key(a).cmp(key(b)).then_with(|| val(a).cmp(val(b)))
        });
        let mut sorted = std::mem::take(&mut self.scratch);
        sorted.clear();
        sorted.push(b'{');
        for (n, (k, v, e)) in members.iter().enumerate() {
            if n > 0 {
                sorted.push(b',');
            }
            sorted.extend_from_slice(&out[*k..*v]);
            sorted.push(b':');
            sorted.extend_from_slice(&out[*v..*e]);
        }
        sorted.push(b'}');
        out.truncate(start);
        out.extend_from_slice(&sorted);
        self.scratch = sorted;
        Ok(())
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        let b = self.b;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let mut i = self.i;
        if b[i] == b'-' {
            i += 1;
        }
        let int_start = i;
        if digits(&mut i) == 0 {
            self.i = i;
            return Err(self.err("a digit"));
        }
        if b[int_start] == b'0' && i - int_start > 1 {
            self.i = int_start;
            return Err(self.err("no leading zero"));
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.err("a digit after `.`"));
            }
        }
        out.extend_from_slice(&b[self.i..i]);
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            out.push(b'e');
            match b.get(i) {
                Some(b'+') => i += 1,
                Some(b'-') => {
                    out.push(b'-');
                    i += 1;
                }
                _ => {}
            }
            let s = i;
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.err("an exponent"));
            }
            out.extend_from_slice(&b[s..i]);
        }
        self.i = i;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, CanonicalError> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("four hex digits"))?;
        let s = std::str::from_utf8(h).map_err(|_| self.err("four hex digits"))?;
        let v = u16::from_str_radix(s, 16).map_err(|_| self.err("four hex digits"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.i += 1;
        out.push(b'"');
        loop {
            // Copy the run of bytes that need no attention at once.
            let run = self.b[self.i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or_else(|| self.err("a closing `\"`"))?;
            out.extend_from_slice(&self.b[self.i..self.i + run]);
            self.i += run;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    out.push(b'"');
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek().ok_or_else(|| self.err("an escape"))?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => match self.unicode_escape()? {
                            Ok(c) => c,
                            Err(lone) => {
                                out.extend_from_slice(format!("\\u{lone:04x}").as_bytes());
                                continue;
                            }
                        },
                        _ => return Err(self.err("a valid escape")),
                    };
                    push_char(out, c);
                }
                // A raw control character is not valid JSON, but it is unambiguous: accept it.
                c => {
                    self.i += 1;
                    push_char(out, char::from(c));
                }
            }
        }
    }

    /// After `\u`: a character, or `Err(unit)` for a lone surrogate.
    fn unicode_escape(&mut self) -> Result<Result<char, u16>, CanonicalError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                let c = char::from_u32(c).ok_or_else(|| self.err("a character"))?;
                return Ok(Ok(c));
            }
            self.i = save;
            return Ok(Err(hi));
        }
        Ok(char::from_u32(u32::from(hi)).ok_or(hi))
    }
}

/// Writes `c` in its canonical escaped form (inside a string).
fn push_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
        c => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The canonical form of `text` as a string (for tests and messages).
pub fn canonical_string(text: &str) -> Result<String, CanonicalError> {
    let mut out = Vec::with_capacity(text.len());
    canonicalize(text, &mut out)?;
    // Only valid UTF-8 is ever written: input runs are `&str` slices cut at ASCII bytes.
    Ok(String::from_utf8(out).expect("canonical JSON is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::canonical_string as c;

    fn same(a: &str, b: &str) {
        assert_eq!(c(a).unwrap(), c(b).unwrap(), "{a} vs {b}");
    }
    fn differ(a: &str, b: &str) {
        assert_ne!(c(a).unwrap(), c(b).unwrap(), "{a} vs {b}");
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        same(
            r#"{"b":1,"a":{"y":[1, 2],"x":null}}"#,
            "{ \"a\" : {\n\"x\":null,\t\"y\":[ 1,2 ] } ,\r\n \"b\" : 1 }",
        );
        assert_eq!(
            c(r#" { "b" : true , "a" : false } "#).unwrap(),
            r#"{"a":false,"b":true}"#
        );
        assert_eq!(c("{ }").unwrap(), "{}");
        assert_eq!(c("[ ]").unwrap(), "[]");
    }

    #[test]
    fn escapes_are_written_one_way() {
        same(r#"{"s":"\u00e9"}"#, r#"{"s":"é"}"#);
        same(r#"{"s":"a\/b"}"#, r#"{"s":"a/b"}"#);
        same(r#"{"\u0061":1}"#, r#"{"a":1}"#);
        same(r#"{"s":"\ud83d\ude00"}"#, r#"{"s":"😀"}"#);
        same(r#"{"s":"\u000A\u0009"}"#, r#"{"s":"\n\t"}"#);
        same(r#"{"s":"\u0022\u005c"}"#, r#"{"s":"\"\\"}"#);
        assert_eq!(c(r#""\u0001\u001F é\/""#).unwrap(), r#""\u0001\u001f é/""#);
        assert_eq!(c(r#""\"q\" \\ \n""#).unwrap(), r#""\"q\" \\ \n""#);
        // A lone surrogate has no UTF-8 form: it stays an escape, lowercased.
        assert_eq!(c(r#""\uD800x""#).unwrap(), r#""\ud800x""#);
        differ(r#""\ud800""#, r#""\udc00""#);
        // Escaped keys sort by their value, not their spelling.
        assert_eq!(c(r#"{"b":1,"\u0061":2}"#).unwrap(), r#"{"a":2,"b":1}"#);
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        differ("12345678901234567891", "12345678901234567890");
        differ("9007199254740993", "9007199254740992");
        differ("-9007199254740993", "-9007199254740992");
        differ(
            "123456789012345678901234567890",
            "123456789012345678901234567891",
        );
        assert_eq!(c("18446744073709551615").unwrap(), "18446744073709551615");
        assert_eq!(c("0.30000000000000004").unwrap(), "0.30000000000000004");
        differ("0.1", "0.10");
        differ("1.0", "1");
        differ("1e2", "100");
        same("1E+2", "1e2");
        same("2.5E-3", "2.5e-3");
        assert_eq!(c("-0").unwrap(), "-0");
    }

    #[test]
    fn nested_arrays_keep_their_order() {
        same(
            r#"{"a":[[1,[2,{"z":1,"y":2}]],[]],"b":[{"k":"v"}]}"#,
            r#"{"b":[{"k":"v"}],"a":[[1,[2,{"y":2,"z":1}]],[]]}"#,
        );
        differ("[1,2]", "[2,1]");
        differ(r#"{"a":[1,2]}"#, r#"{"a":[1,2,null]}"#);
    }

    #[test]
    fn values_and_types_are_kept_apart() {
        differ(r#"{"a":"1"}"#, r#"{"a":1}"#);
        differ(r#"{"a":null}"#, "{}");
        differ(r#"{"a":true}"#, r#"{"a":"true"}"#);
        differ(r#"{"a":{"b":1}}"#, r#"{"a.b":1}"#);
        // Duplicate keys are ordered by value, so their input order does not matter.
        same(r#"{"a":2,"a":1}"#, r#"{"a":1,"a":2}"#);
    }

    #[test]
    fn invalid_json_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            r#"{"a" 1}"#,
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            r#""\x""#,
            r#"{"a":1}x"#,
            r#""\u12""#,
            "{1:2}",
        ] {
            assert!(c(bad).is_err(), "{bad} accepted");
        }
        assert!(c(&"[".repeat(2000)).is_err());
    }
}
