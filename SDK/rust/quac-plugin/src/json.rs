//! A small JSON reader for the parameters the host passes to `create` (already validated against the
//! manifest's schema, defaults filled in), so the crate depends on nothing.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    pub fn parse(text: &str) -> Result<Json> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(o) => o.get(key),
            _ => None,
        }
    }
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }
}

/// The parameters of `create`: typed getters that fall back to a default when the parameter is absent
/// and name the parameter when it has the wrong type.
pub struct Params(pub Json);

impl Params {
    pub fn parse(text: &str) -> Result<Params> {
        match Json::parse(text)? {
            v @ Json::Object(_) => Ok(Params(v)),
            v => Err(Error::invalid(format!("parameters: expected a JSON object, got {}", v.type_name()))),
        }
    }
    fn typed<T>(&self, name: &str, default: T, want: &str, f: impl Fn(&Json) -> Option<T>) -> Result<T> {
        match self.0.get(name) {
            None | Some(Json::Null) => Ok(default),
            Some(v) => f(v).ok_or_else(|| Error::invalid(format!("parameter \"{}\": expected {}, got {}", name, want, v.type_name()))),
        }
    }
    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        self.typed(name, default, "true or false", |v| if let Json::Bool(b) = v { Some(*b) } else { None })
    }
    pub fn f64(&self, name: &str, default: f64) -> Result<f64> {
        self.typed(name, default, "a number", |v| if let Json::Number(n) = v { Some(*n) } else { None })
    }
    pub fn i64(&self, name: &str, default: i64) -> Result<i64> {
        self.typed(name, default, "an integer", |v| match v {
            Json::Number(n) if n.fract() == 0.0 && n.abs() < 9.007e15 => Some(*n as i64),
            _ => None,
        })
    }
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        self.typed(name, default.to_string(), "a string", |v| if let Json::String(s) = v { Some(s.clone()) } else { None })
    }
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.0.get(name)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &str) -> Error {
        Error::invalid(format!("parameters: malformed JSON at byte {}: {}", self.i, what))
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Result<Json> {
        self.ws();
        match self.s.get(self.i) {
            None => Err(self.err("unexpected end")),
            Some(b'{') => {
                self.i += 1;
                let mut o = BTreeMap::new();
                self.ws();
                if self.eat("}") {
                    return Ok(Json::Object(o));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(":") {
                        return Err(self.err("expected ':'"));
                    }
                    let v = self.value()?;
                    o.insert(k, v);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("}") {
                        return Ok(Json::Object(o));
                    }
                    return Err(self.err("expected ',' or '}'"));
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat("]") {
                    return Ok(Json::Array(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    if self.eat(",") {
                        continue;
                    }
                    if self.eat("]") {
                        return Ok(Json::Array(a));
                    }
                    return Err(self.err("expected ',' or ']'"));
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                text.parse::<f64>().map(Json::Number).map_err(|_| self.err("expected a value"))
            }
        }
    }
    fn string(&mut self) -> Result<String> {
        if !self.eat("\"") {
            return Err(self.err("expected a string"));
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or_else(|| self.err("unterminated escape"))?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("short \\u escape"))?;
                            let mut code = u32::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16).map_err(|_| self.err("bad \\u escape"))?;
                            self.i += 4;
                            if (0xD800..0xDC00).contains(&code) && self.s[self.i..].starts_with(b"\\u") {
                                let lo = self.s.get(self.i + 2..self.i + 6).and_then(|h| u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                                if let Some(lo) = lo {
                                    code = 0x10000 + ((code - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                                    self.i += 6;
                                }
                            }
                            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("invalid UTF-8"))
    }
}
