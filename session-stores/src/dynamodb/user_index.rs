//! Users' session indexes in the sessions' table: one item per user,
//! written with conditions on its version and read strongly consistently.
//!
//! The item's key is `user#<user key>` (the user key being
//! [`session_core::store::user_key`]; session IDs never hold `#`), and its
//! attributes are those of a session item: `v`, `d` and the two expiry
//! attributes.
//!
//! An index item rather than a global secondary index on the sessions: a
//! GSI is only eventually consistent, so a revoke-all reading it could
//! miss a log-in acknowledged just before, and that session would survive
//! the revocation.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use session_core::Result;
use session_core::store::{UserIndex, from_unix_millis, now, unix_millis};

use super::{DATA, DynamoDbStore, VERSION, conditional, number, ttl_seconds};
use crate::stored::malformed;

/// Condition of a write over a live index of the expected version.
const EXPECTED_LIVE: &str = "#v = :expected AND (attribute_not_exists(#ems) OR #ems > :now)";

impl DynamoDbStore {
    fn index_key(&self, user: &str) -> (String, AttributeValue) {
        (
            self.names.key.clone(),
            AttributeValue::S(format!("user#{}", session_core::store::user_key(user))),
        )
    }

    pub(super) async fn load_index(&self, user: &str) -> Result<Option<UserIndex>> {
        let out = self.get_consistent(self.index_key(user)).await?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let expires_ms = number(item, &self.names.expiry_ms)?;
        if expires_ms.is_some_and(|ms| ms <= unix_millis(now())) {
            return Ok(None);
        }
        let version = number(item, VERSION)?
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| malformed("user index item has no valid version"))?;
        let Some(AttributeValue::B(data)) = item.get(DATA) else {
            return Err(malformed("user index item has no binary data"));
        };
        let expires_at = expires_ms
            .map(|ms| {
                from_unix_millis(ms).ok_or_else(|| malformed("user index expiry out of range"))
            })
            .transpose()?;
        Ok(Some(UserIndex::new(
            version,
            expires_at,
            data.as_ref().to_vec(),
        )))
    }

    pub(super) async fn save_index(
        &self,
        user: &str,
        index: &UserIndex,
        expected_version: Option<u64>,
    ) -> Result<bool> {
        let names = &self.names;
        let (k, v) = self.index_key(user);
        let mut item = HashMap::from([
            (k, v),
            (VERSION.into(), AttributeValue::N(index.version.to_string())),
            (
                DATA.into(),
                AttributeValue::B(Blob::new(index.bytes.clone())),
            ),
        ]);
        if let Some(at) = index.expires_at {
            item.insert(
                names.expiry.clone(),
                AttributeValue::N(ttl_seconds(at).to_string()),
            );
            item.insert(
                names.expiry_ms.clone(),
                AttributeValue::N(unix_millis(at).to_string()),
            );
        }
        let put = self
            .client
            .put_item()
            .table_name(&names.table)
            .set_item(Some(item))
            .expression_attribute_names("#ems", &names.expiry_ms)
            .expression_attribute_values(":now", AttributeValue::N(unix_millis(now()).to_string()));
        let put = match expected_version {
            None => put
                .condition_expression("attribute_not_exists(#k) OR #ems <= :now")
                .expression_attribute_names("#k", &names.key),
            Some(expected) => put
                .condition_expression(EXPECTED_LIVE)
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string())),
        };
        // A retried write whose first attempt landed is refused too;
        // session-core then redoes its change on fresh data.
        conditional("PutItem", put.send().await)
    }

    pub(super) async fn delete_index(&self, user: &str, expected_version: u64) -> Result<bool> {
        let (k, v) = self.index_key(user);
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.names.table)
            .key(k, v)
            .condition_expression(EXPECTED_LIVE)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#ems", &self.names.expiry_ms)
            .expression_attribute_values(
                ":expected",
                AttributeValue::N(expected_version.to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(unix_millis(now()).to_string()))
            .send()
            .await;
        conditional("DeleteItem", deleted)
    }
}
