//! The state store in a DynamoDB table (`aws-sdk-dynamodb`), the backend
//! for production and for `ha`: conditional writes are the compare-and-swap
//! (AWS's standard lock), every read is strongly consistent, and a global
//! table in multi-Region strong consistency (MRSC) survives the loss of any
//! one Region while each instance talks to its own Region's replica.
//!
//! The table: partition key `pk` (S), sort key `sk` (S). An item's `pk` is
//! `owner#space` (`*#claims` for the claims every install sees), its `sk`
//! the item's name; `value` (S) holds the caller's JSON, `version` (N) the
//! counter every write raises (from a fresh start for a new item), `updated` (N) unix milliseconds, for people.
//! One `Query` on `pk` lists a space. `docs/design.md#the-state-store` has
//! the Terraform that makes it.
//!
//! Each call is one try bounded by `call_timeout` (the SDK's own retries
//! are off): the callers know their deadlines (a lease holder's write
//! window) and retry at their own pace.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb as ddb;
use ddb::error::{ProvideErrorMetadata, SdkError};
use ddb::types::{AttributeValue, KeyType, ReturnValue, ScalarAttributeType};
use serde::{Deserialize, Serialize};

use super::{conflict, partition, Condition, Item, Space, StateStore, StoreError, StoreReport};

/// What `DescribeTable` says of the table's consistency across Regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableMode {
    /// One Region: linearizable, lost with its Region.
    SingleRegion,
    /// A global table in multi-Region strong consistency (MRSC).
    Strong,
    /// A global table in eventual consistency (MREC): last writer wins, so
    /// two instances can both win one conditional write.
    Eventual,
}

impl TableMode {
    pub fn linearizable(self) -> bool {
        !matches!(self, TableMode::Eventual)
    }

    /// What an operator should know of it.
    pub fn warning(self, table: &str) -> Option<String> {
        match self {
            TableMode::Strong => None,
            TableMode::SingleRegion => Some(format!(
                "state_store: table {table} lives in one Region: if that Region is lost, so is \
                 the lease and every instance's memory of the zones; a global table in \
                 multi-Region strong consistency (MRSC) survives the loss of any one Region"
            )),
            TableMode::Eventual => Some(format!(
                "state_store: table {table} is a global table in eventual consistency (MREC): \
                 the last writer wins, so two instances can both take the lease and both write \
                 (use MRSC: three replicas, or two and a witness)"
            )),
        }
    }
}

/// The table's mode from what `DescribeTable` answers: its replicas, and
/// the multi-Region consistency it names (none: eventual, the default of
/// global tables).
pub fn table_mode(replicas: usize, consistency: Option<&str>) -> TableMode {
    match (replicas, consistency) {
        (0, _) => TableMode::SingleRegion,
        (_, Some("STRONG")) => TableMode::Strong,
        _ => TableMode::Eventual,
    }
}

pub struct DynamoStore {
    client: ddb::Client,
    table: String,
    region: String,
    owner: String,
    call_timeout: Duration,
}

/// Service errors that say "not now" rather than "no".
fn classify<E>(e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = ddb::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match s.err().code() {
                Some("ConditionalCheckFailedException") => StoreError::Conflict(text),
                Some(
                    "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded",
                ) => StoreError::Throttled(text),
                // Another write to the item in flight (a transaction, or
                // another replica of an MRSC table): not a condition that
                // failed, and worth trying again.
                Some("TransactionConflictException" | "ReplicatedWriteConflictException") => {
                    StoreError::Unavailable(text)
                }
                _ if status >= 500 => StoreError::Unavailable(text),
                _ => StoreError::Refused(text),
            }
        }
        SdkError::TimeoutError(_) => StoreError::Timeout(text),
        _ => StoreError::Unavailable(text),
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn item_of(attrs: &HashMap<String, AttributeValue>) -> Option<Item> {
    let name = attrs.get("sk")?.as_s().ok()?.clone();
    let value = attrs.get("value")?.as_s().ok()?.clone();
    let version = attrs.get("version")?.as_n().ok()?.parse().ok()?;
    Some(Item {
        name,
        value,
        version,
    })
}

impl DynamoStore {
    /// A client for `table` in `region` (this instance's own replica),
    /// credentials from the default chain (or `credentials`, for tests).
    pub async fn new(
        table: &str,
        region: &str,
        endpoint_url: Option<&str>,
        owner: &str,
        call_timeout: Duration,
        credentials: Option<ddb::config::Credentials>,
    ) -> Self {
        let mut loader = crate::aws::loader(region, endpoint_url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(call_timeout)
                    .build(),
            );
        if let Some(c) = credentials {
            loader = loader.credentials_provider(c);
        }
        let shared = loader.load().await;
        DynamoStore {
            client: ddb::Client::new(&shared),
            table: table.to_string(),
            region: region.to_string(),
            owner: owner.to_string(),
            call_timeout,
        }
    }

    /// One call, bounded (the SDK's attempt timeout is the first bound;
    /// this one also covers credentials and connecting).
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(format!(
                "{what} on table {} took longer than {:?}",
                self.table, self.call_timeout
            ))),
        }
    }

    fn key(&self, space: Space, name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), s(partition(&self.owner, space))),
            ("sk".to_string(), s(name)),
        ])
    }

    /// The condition as an expression, with the names and values it uses.
    fn condition(condition: Condition) -> Option<(&'static str, Option<AttributeValue>)> {
        match condition {
            Condition::Any => None,
            Condition::Absent => Some(("attribute_not_exists(pk)", None)),
            Condition::Version(v) => Some(("#version = :expected", Some(n(v)))),
        }
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    fn kind(&self) -> &'static str {
        "dynamodb"
    }

    async fn describe(&self) -> Result<StoreReport, StoreError> {
        let call = async {
            self.client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(classify)
        };
        let answer = self.bounded("DescribeTable", call).await?;
        let table = answer
            .table()
            .ok_or_else(|| StoreError::Refused(format!("table {}: no description", self.table)))?;
        let keys: Vec<(String, String)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect();
        let types: HashMap<&str, &ScalarAttributeType> = table
            .attribute_definitions()
            .iter()
            .map(|d| (d.attribute_name(), d.attribute_type()))
            .collect();
        let ours =
            keys == [
                ("pk".to_string(), KeyType::Hash.as_str().to_string()),
                ("sk".to_string(), KeyType::Range.as_str().to_string()),
            ] && ["pk", "sk"]
                .iter()
                .all(|k| types.get(k) == Some(&&ScalarAttributeType::S));
        if !ours {
            return Err(StoreError::Refused(format!(
                "table {}: its key schema is {keys:?}; the state store needs partition key pk (S) \
                 and sort key sk (S)",
                self.table
            )));
        }
        let mode = table_mode(
            table.replicas().len(),
            table.multi_region_consistency().map(|c| c.as_str()),
        );
        Ok(StoreReport {
            kind: "dynamodb".into(),
            location: format!("table {} in {}", self.table, self.region),
            linearizable: mode.linearizable(),
            warnings: mode.warning(&self.table).into_iter().collect(),
        })
    }

    async fn get(&self, space: Space, name: &str) -> Result<Option<Item>, StoreError> {
        let call = async {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(self.key(space, name)))
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)
        };
        let answer = self.bounded("GetItem", call).await?;
        Ok(answer.item().and_then(item_of))
    }

    async fn list(&self, space: Space) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        // A space holds a few items per instance or per member: one page,
        // rarely two. The cap stops a cursor that does not move.
        for _ in 0..100 {
            let call = async {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(partition(&self.owner, space)))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.clone())
                    .send()
                    .await
                    .map_err(classify)
            };
            let page = self.bounded("Query", call).await?;
            items.extend(page.items().iter().filter_map(item_of));
            match page.last_evaluated_key() {
                Some(next) if Some(next) != start.as_ref() && !next.is_empty() => {
                    start = Some(next.clone())
                }
                _ => return Ok(items),
            }
        }
        Err(StoreError::Unavailable(format!(
            "listing {} in table {}: more than 100 pages",
            space.as_str(),
            self.table
        )))
    }

    async fn put(
        &self,
        space: Space,
        name: &str,
        value: &str,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let updated = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(space, name)))
            .update_expression(
                "SET #value = :value, #updated = :updated, \
                 #version = if_not_exists(#version, :zero) + :one",
            )
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#updated", "updated")
            .expression_attribute_values(":value", s(value))
            .expression_attribute_values(":updated", n(updated))
            // A new item starts at a fresh version (`first_version`).
            .expression_attribute_values(":zero", n(super::first_version() - 1))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew);
        if let Some((expr, expected)) = Self::condition(condition) {
            request = request.condition_expression(expr);
            if let Some(v) = expected {
                request = request.expression_attribute_values(":expected", v);
            }
        }
        let call = async { request.send().await.map_err(classify) };
        let answer = match self.bounded("UpdateItem", call).await {
            Err(StoreError::Conflict(_)) => return Err(conflict(space, name, condition)),
            other => other?,
        };
        answer
            .attributes()
            .and_then(|a| a.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "table {}: UpdateItem answered without the new version",
                    self.table
                ))
            })
    }

    async fn delete(
        &self,
        space: Space,
        name: &str,
        condition: Condition,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(space, name)));
        if let Some((expr, expected)) = Self::condition(condition) {
            request = request.condition_expression(expr);
            if let Some(v) = expected {
                request = request
                    .expression_attribute_names("#version", "version")
                    .expression_attribute_values(":expected", v);
            }
        }
        let call = async { request.send().await.map_err(classify) };
        match self.bounded("DeleteItem", call).await {
            Err(StoreError::Conflict(_)) => Err(conflict(space, name, condition)),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_eventual_global_table_can_crown_two_holders() {
        for (replicas, consistency, mode, linearizable) in [
            (0, None, TableMode::SingleRegion, true),
            (0, Some("EVENTUAL"), TableMode::SingleRegion, true),
            (3, Some("STRONG"), TableMode::Strong, true),
            (2, Some("STRONG"), TableMode::Strong, true),
            (2, Some("EVENTUAL"), TableMode::Eventual, false),
            // A global table that names no mode is eventual (the default).
            (2, None, TableMode::Eventual, false),
        ] {
            let m = table_mode(replicas, consistency);
            assert_eq!(m, mode, "{replicas} {consistency:?}");
            assert_eq!(m.linearizable(), linearizable);
        }
        assert!(TableMode::Eventual
            .warning("t")
            .unwrap()
            .contains("two instances can both take the lease"));
        assert!(TableMode::Strong.warning("t").is_none());
    }
}
