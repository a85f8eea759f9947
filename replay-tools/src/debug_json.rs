//! Turns the `Debug` text of a domain state into JSON.
//!
//! The domain's states derive `Debug` but not `Serialize` (the domain crate
//! stays free of persistence concerns for its states), so `as-of` prints a
//! state by reading its derived `Debug` output back as a value tree:
//!
//! | Debug text | JSON |
//! | --- | --- |
//! | `Name { a: 1, b: "x" }` | `{"$type": "Name", "a": 1, "b": "x"}` |
//! | `Name(inner)` with a scalar inner (ids, timestamps) | the scalar |
//! | `Name(inner)` otherwise, `Name(a, b)` | `{"Name": inner}`, `{"Name": [a, b]}` |
//! | `Name` | `"Name"` |
//! | `None` / `Some(x)` | `null` / `x` |
//! | `[a, b]`, `(a, b)`, `{a, b}` | arrays |
//! | `{"k": v}` | object (array of pairs when keys are not strings) |
//! | integers | numbers; decimals (`99.00`) stay strings to keep their scale |
//!
//! It is a reading aid; the exact `Debug` text is printed beside it.

use serde_json::{Map, Value};

/// Converts derived `Debug` text (non-pretty, `{:?}`) to JSON. Returns the
/// text as a JSON string when it cannot be read.
pub fn debug_to_json(text: &str) -> Value {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        at: 0,
    };
    match parser.value() {
        Some(value) if parser.skip_ws().is_none() => value,
        _ => Value::String(text.to_owned()),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Skips spaces; returns the next byte, if any.
    fn skip_ws(&mut self) -> Option<u8> {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
        self.peek()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.skip_ws() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        match self.skip_ws()? {
            b'"' => self.string().map(Value::String),
            b'\'' => self.char_literal().map(Value::String),
            b'[' => {
                self.at += 1;
                self.seq(b']').map(Value::Array)
            }
            b'(' => {
                self.at += 1;
                self.seq(b')').map(Value::Array)
            }
            b'{' => {
                self.at += 1;
                self.map()
            }
            b'-' | b'0'..=b'9' => Some(self.number()),
            _ => self.named(),
        }
    }

    fn seq(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    /// `{k: v, ...}` (a map) or `{a, b}` (a set).
    fn map(&mut self) -> Option<Value> {
        let mut pairs = Vec::new();
        let mut set = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let key = self.value()?;
            if self.eat(b':') {
                pairs.push((key, self.value()?));
            } else {
                set.push(key);
            }
            if !self.eat(b',') {
                if !self.eat(b'}') {
                    return None;
                }
                break;
            }
        }
        if !set.is_empty() {
            return Some(Value::Array(set));
        }
        if pairs.iter().all(|(k, _)| k.is_string()) {
            let mut object = Map::new();
            for (k, v) in pairs {
                if let Value::String(k) = k {
                    object.insert(k, v);
                }
            }
            Some(Value::Object(object))
        } else {
            Some(Value::Array(
                pairs
                    .into_iter()
                    .map(|(k, v)| Value::Array(vec![k, v]))
                    .collect(),
            ))
        }
    }

    fn ident(&mut self) -> Option<&str> {
        let start = self.at;
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_alphanumeric() || b == b'_' => self.at += 1,
                // A path separator (`a::B`), never a field's colon.
                Some(b':') if self.bytes.get(self.at + 1) == Some(&b':') => self.at += 2,
                _ => break,
            }
        }
        std::str::from_utf8(self.bytes.get(start..self.at)?)
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// An identifier, optionally followed by `{ fields }` or `(values)`.
    fn named(&mut self) -> Option<Value> {
        let name = self.ident()?.to_owned();
        match self.skip_ws() {
            Some(b'{') => {
                self.at += 1;
                let mut object = Map::new();
                object.insert("$type".to_owned(), Value::String(name));
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    if self.eat(b'.') {
                        // `..` of a non-exhaustive Debug.
                        self.eat(b'.');
                        continue;
                    }
                    self.skip_ws();
                    let field = self.ident()?.to_owned();
                    if !self.eat(b':') {
                        return None;
                    }
                    object.insert(field, self.value()?);
                    if !self.eat(b',') {
                        if !self.eat(b'}') {
                            return None;
                        }
                        break;
                    }
                }
                Some(Value::Object(object))
            }
            Some(b'(') => {
                self.at += 1;
                let mut items = self.seq(b')')?;
                if name == "Some" && items.len() == 1 {
                    return items.pop();
                }
                if items.len() == 1 && !matches!(items[0], Value::Object(_) | Value::Array(_)) {
                    return items.pop();
                }
                let inner = if items.len() == 1 {
                    items.pop()?
                } else {
                    Value::Array(items)
                };
                let mut object = Map::new();
                object.insert(name, inner);
                Some(Value::Object(object))
            }
            _ => Some(match name.as_str() {
                "None" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(name),
            }),
        }
    }

    fn number(&mut self) -> Value {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'_'))
        {
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned();
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Value::from(n);
        }
        Value::String(text)
    }

    fn string(&mut self) -> Option<String> {
        self.quoted(b'"')
    }

    fn char_literal(&mut self) -> Option<String> {
        self.quoted(b'\'')
    }

    /// A Rust-escaped literal between `quote` bytes.
    fn quoted(&mut self, quote: u8) -> Option<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b if b == quote => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'u' => {
                            // \u{XXXX}
                            if self.peek() != Some(b'{') {
                                return None;
                            }
                            let close = self.bytes[self.at..].iter().position(|&c| c == b'}')?;
                            let hex =
                                std::str::from_utf8(&self.bytes[self.at + 1..self.at + close])
                                    .ok()?;
                            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            self.at += close + 1;
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Id(String);

    #[derive(Debug)]
    #[allow(dead_code)]
    enum State {
        Empty,
        Open(Inner),
        Done { at: i64, who: Option<Id> },
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Inner {
        id: Id,
        note: String,
        tags: Vec<u8>,
        map: BTreeMap<String, (u32, bool)>,
        price: &'static str,
    }

    #[test]
    fn derived_debug_reads_back_as_json() {
        let inner = Inner {
            id: Id("q\"1".into()),
            note: "line\nbreak é".into(),
            tags: vec![1, 2],
            map: BTreeMap::from([("k".to_owned(), (3, true))]),
            price: "x",
        };
        let value = debug_to_json(&format!("{:?}", State::Open(inner)));
        assert_eq!(
            value,
            json!({"Open": {"$type": "Inner", "id": "q\"1", "note": "line\nbreak é",
                "tags": [1, 2], "map": {"k": [3, true]}, "price": "x"}})
        );
        assert_eq!(
            debug_to_json(&format!("{:?}", State::Empty)),
            json!("Empty")
        );
        let done = State::Done {
            at: -5,
            who: Some(Id("a".into())),
        };
        assert_eq!(
            debug_to_json(&format!("{done:?}")),
            json!({"$type": "Done", "at": -5, "who": "a"})
        );
    }

    #[test]
    fn unreadable_text_comes_back_as_a_string() {
        assert_eq!(debug_to_json("Open { a: "), json!("Open { a: "));
    }
}
