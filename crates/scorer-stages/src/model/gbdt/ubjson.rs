//! Universal Binary JSON (UBJSON, draft 12), as XGBoost writes it (`Booster.save_model("m.ubj")`,
//! MLflow's default XGBoost format since 2.x): decoded into the same JSON value the JSON reader
//! walks, so one reader serves both and their forests are equal by construction.
//!
//! XGBoost writes objects with length-prefixed keys, big-endian numbers, and its long arrays as
//! typed, counted containers (`[$d#L<n>` then `n` raw f32s). A file that ends early, names an
//! unknown type, nests deeper than any model does or claims more elements than it has bytes for
//! is refused with the byte offset; nothing is allocated from an unchecked count.

use serde_json::{Map, Number, Value};

/// Deepest nesting accepted: an XGBoost model nests a handful of levels.
const MAX_DEPTH: usize = 64;

/// Decodes a whole UBJSON document.
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes, at: 0 };
    let marker = reader.marker()?;
    let value = reader.value(marker, 0)?;
    if reader.at != bytes.len() {
        return Err(format!(
            "{} bytes after the end of the document at byte {}",
            bytes.len() - reader.at,
            reader.at
        ));
    }
    Ok(value)
}

/// Whether `bytes` look like a UBJSON object (`{` then a key's length, or `}`), rather than JSON
/// (`{` then whitespace or `"`).
pub fn looks_like_ubjson(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [
            b'{',
            b'i' | b'U' | b'I' | b'l' | b'L' | b'}' | b'$' | b'#',
            ..
        ]
    )
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "the file ends at byte {} inside a value that needs {n} more bytes",
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next type marker, no-ops skipped.
    fn marker(&mut self) -> Result<u8, String> {
        loop {
            let [m] = self.array::<1>()?;
            if m != b'N' {
                return Ok(m);
            }
        }
    }

    /// An integer of the type `marker` names (a length or a count).
    fn int(&mut self, marker: u8) -> Result<i64, String> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array()?)),
            b'U' => i64::from(u8::from_be_bytes(self.array()?)),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            other => {
                return Err(format!(
                    "byte {}: `{}` is not an integer type",
                    self.at - 1,
                    char::from(other)
                ));
            }
        })
    }

    /// A length or count: a non-negative integer no larger than the bytes left, each element
    /// taking at least `min_size` bytes.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let at = self.at;
        let marker = self.marker()?;
        let n = self.int(marker)?;
        let left = self.bytes.len() - self.at;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_size.max(1)) <= left)
            .ok_or_else(|| format!("byte {at}: a count of {n} with {left} bytes left"))
    }

    fn string(&mut self) -> Result<String, String> {
        let at = self.at;
        let n = self.count(1)?;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| format!("byte {at}: a string is not UTF-8"))
    }

    fn float(v: f64, at: usize) -> Result<Value, String> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| format!("byte {at}: {v} is not a finite number"))
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        let at = self.at - 1;
        if depth > MAX_DEPTH {
            return Err(format!("byte {at}: nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::Number(self.int(marker)?.into()),
            b'd' => Self::float(f64::from(f32::from_be_bytes(self.array()?)), at)?,
            b'D' => Self::float(f64::from_be_bytes(self.array()?), at)?,
            b'C' => Value::String(char::from(u8::from_be_bytes(self.array()?)).to_string()),
            b'S' => Value::String(self.string()?),
            // A number too precise for the other types, as its decimal text.
            b'H' => {
                let text = self.string()?;
                let number: Number = text
                    .parse()
                    .map_err(|_| format!("byte {at}: `{text}` is not a number"))?;
                Value::Number(number)
            }
            b'[' => Value::Array(self.elements(depth)?),
            b'{' => Value::Object(self.fields(depth)?),
            other => {
                return Err(format!(
                    "byte {at}: `{}` is not a UBJSON type",
                    char::from(other)
                ));
            }
        })
    }

    /// The optional `$type` and `#count` of a container; after `[` or `{`.
    fn header(&mut self) -> Result<(Option<u8>, Option<usize>), String> {
        let mut element = None;
        if self.bytes.get(self.at) == Some(&b'$') {
            self.at += 1;
            element = Some(self.array::<1>()?[0]);
        }
        let count = if self.bytes.get(self.at) == Some(&b'#') {
            self.at += 1;
            let size = element.map_or(1, element_size);
            Some(self.count(size)?)
        } else if element.is_some() {
            return Err(format!(
                "byte {}: a typed container without a count",
                self.at
            ));
        } else {
            None
        };
        Ok((element, count))
    }

    fn elements(&mut self, depth: usize) -> Result<Vec<Value>, String> {
        let (element, count) = self.header()?;
        let mut out = Vec::with_capacity(count.unwrap_or(0));
        match count {
            Some(n) => {
                for _ in 0..n {
                    let marker = match element {
                        Some(m) => m,
                        None => self.marker()?,
                    };
                    out.push(self.value(marker, depth + 1)?);
                }
            }
            None => loop {
                let marker = self.marker()?;
                if marker == b']' {
                    break;
                }
                out.push(self.value(marker, depth + 1)?);
            },
        }
        Ok(out)
    }

    fn fields(&mut self, depth: usize) -> Result<Map<String, Value>, String> {
        let (element, count) = self.header()?;
        let mut out = Map::new();
        let mut field = |reader: &mut Self| -> Result<(), String> {
            let key = reader.string()?;
            let marker = match element {
                Some(m) => m,
                None => reader.marker()?,
            };
            let value = reader.value(marker, depth + 1)?;
            out.insert(key, value);
            Ok(())
        };
        match count {
            Some(n) => {
                for _ in 0..n {
                    field(self)?;
                }
            }
            None => loop {
                if self.bytes.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    break;
                }
                field(self)?;
            },
        }
        Ok(out)
    }
}

/// The fewest bytes one element of a typed container takes.
fn element_size(marker: u8) -> usize {
    match marker {
        b'I' => 2,
        b'l' | b'd' => 4,
        b'L' | b'D' => 8,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_containers_xgboost_writes() {
        // {"a": [1.5f32, -2f32] as a typed array, "b": "x", "c": {"n": 300 as int16}, "t": true}
        let mut doc = b"{".to_vec();
        doc.extend(b"U\x01a[$d#U\x02");
        doc.extend(1.5f32.to_be_bytes());
        doc.extend((-2.0f32).to_be_bytes());
        doc.extend(b"U\x01bSU\x01x");
        doc.extend(b"U\x01c{U\x01nI\x01\x2c}");
        doc.extend(b"U\x01tT}");
        assert!(looks_like_ubjson(&doc));
        let v = decode(&doc).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": [1.5, -2.0], "b": "x", "c": {"n": 300}, "t": true})
        );
    }

    #[test]
    fn damaged_documents_are_refused_with_the_offset() {
        // a count far beyond the bytes left: refused before allocating
        let err = decode(b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
        assert!(err.contains("a count of"), "{err}");
        let err = decode(b"{U\x01aSU\x05ab").unwrap_err();
        assert!(err.contains("a count of 5 with 2 bytes left"), "{err}");
        let err = decode(b"[d\x00\x00").unwrap_err();
        assert!(err.contains("the file ends"), "{err}");
        let err = decode(b"[q]").unwrap_err();
        assert!(err.contains("not a UBJSON type"), "{err}");
        let deep = [b'['; 100];
        assert!(decode(&deep).unwrap_err().contains("nested deeper"));
        assert!(!looks_like_ubjson(b"{\"learner\": {}}"));
    }
}
