//! Session values, kept in their stored form, and a session's data.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key/value data of one session.
pub type Data = BTreeMap<String, Value>;

/// One session value, kept in its stored form (MessagePack, structs as
/// maps with their field names) and decoded only when it is read.
///
/// Any `serde` type can be kept and read back as itself or as another
/// type of the same shape. Loading a session copies each value's bytes and
/// no more; [`Session::get`](crate::Session::get) decodes straight into the
/// requested type, without an intermediate tree of JSON values.
///
/// ```
/// use session_core::store::Value;
///
/// let v = Value::new(&vec!["sku-1", "sku-2"]).unwrap();
/// assert_eq!(v.get::<Vec<String>>().unwrap(), ["sku-1", "sku-2"]);
/// assert_eq!(v.to_json().unwrap(), serde_json::json!(["sku-1", "sku-2"]));
/// ```
///
/// Two values are equal when their encodings are: the same struct always
/// encodes the same way, but a struct and a JSON object with the same
/// fields in another order do not. Compare with a `serde_json::Value` for
/// equality of content.
#[derive(Clone, PartialEq, Eq)]
pub struct Value(Box<[u8]>);

impl Value {
    /// Serializes `value`.
    ///
    /// # Errors
    ///
    /// What `value`'s `Serialize` implementation reports.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, ValueError> {
        let mut bytes = Vec::new();
        // Structs as maps with their field names, and the human-readable
        // forms (a UUID or an address as a string), as JSON would have
        // them: a value reads back as another type of the same shape and
        // as JSON.
        let mut ser = rmp_serde::Serializer::new(&mut bytes)
            .with_struct_map()
            .with_human_readable();
        value
            .serialize(&mut ser)
            .map_err(|e| ValueError(e.to_string()))?;
        Ok(Value(bytes.into_boxed_slice()))
    }

    /// Deserializes the value as `T`.
    ///
    /// # Errors
    ///
    /// The value does not have `T`'s shape, is malformed, or nests deeper
    /// than 64 levels.
    pub fn get<T: DeserializeOwned>(&self) -> Result<T, ValueError> {
        let mut de = rmp_serde::Deserializer::from_read_ref(&self.0[..]).with_human_readable();
        de.set_max_depth(MAX_DEPTH);
        T::deserialize(&mut de).map_err(|e| ValueError(e.to_string()))
    }

    /// The value as JSON.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get); also a map with keys that are not strings,
    /// which JSON cannot hold.
    pub fn to_json(&self) -> Result<serde_json::Value, ValueError> {
        self.get()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::from(&json)
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Self {
        // A JSON value always has a MessagePack form: string keys, 64-bit
        // numbers; writing into a `Vec` cannot fail.
        Value::new(json)
            .unwrap_or_else(|e| unreachable!("JSON value without MessagePack form: {e}"))
    }
}

impl PartialEq<serde_json::Value> for Value {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.to_json().is_ok_and(|json| json == *other)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Ok(json) => write!(f, "Value({json})"),
            Err(_) => write!(f, "Value(<{} undecodable bytes>)", self.0.len()),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the bytes of an encoded session value")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Value, E> {
                Ok(Value(bytes.into()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Value, E> {
                Ok(Value(bytes.into_boxed_slice()))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

/// Nesting limit for decoded values, so hostile input cannot exhaust the
/// stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// A session value that could not be serialized or deserialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

impl ValueError {
    pub(crate) fn new(message: String) -> Self {
        ValueError(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_their_own_type_or_as_json() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Line {
            sku: String,
            qty: i32,
        }
        let lines = vec![
            Line {
                sku: "A-1".into(),
                qty: 2,
            },
            Line {
                sku: "B".into(),
                qty: -1,
            },
        ];
        let v = Value::new(&lines).unwrap();
        assert_eq!(v.get::<Vec<Line>>().unwrap(), lines);
        assert_eq!(
            v,
            json!([{"sku": "A-1", "qty": 2}, {"sku": "B", "qty": -1}])
        );
        let from_json = Value::from(json!([{"sku": "A-1", "qty": 2}, {"sku": "B", "qty": -1}]));
        assert_eq!(from_json.get::<Vec<Line>>().unwrap(), lines);
        assert!(v.get::<Vec<u64>>().is_err(), "another shape is an error");
        assert!(Value(vec![0xc1].into()).get::<serde_json::Value>().is_err());
    }

    #[test]
    fn values_use_the_human_readable_forms_like_json() {
        // An address serializes as bytes for binary formats and as text for
        // human-readable ones; values keep the text, as JSON did.
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let v = Value::new(&ip).unwrap();
        assert_eq!(v, json!("192.0.2.7"));
        assert_eq!(v.get::<std::net::IpAddr>().unwrap(), ip);
        let from_json = Value::from(json!("192.0.2.7"));
        assert_eq!(from_json.get::<std::net::IpAddr>().unwrap(), ip);
    }

    #[test]
    fn deeply_nested_value_is_rejected_without_overflow() {
        let mut bytes = vec![0x91; 100_000];
        bytes.push(0xc0);
        let v = Value(bytes.into());
        assert!(v.get::<serde_json::Value>().is_err());
        assert!(format!("{v:?}").contains("undecodable"));
    }
}
