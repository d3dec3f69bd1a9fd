//! The `route53` provider: the AWS SDK (`aws-sdk-route53`), with an optional
//! endpoint URL for an emulator. Credentials come from the SDK's default
//! chain (environment, web identity / IRSA, profile).
//!
//! Names cross this edge in Route53's form (trailing dot, `\052` for `*`)
//! and inside the daemon in ours (lower case, no dot). The SDK's own retries
//! are off: the reconciler retries with backoff, under its rate limit, and
//! counts every attempt.

use async_trait::async_trait;
use aws_sdk_route53 as r53;
use r53::types::{Change as SdkChange, ChangeAction, ChangeBatch, RrType};

use super::{
    is_under, normalize_name, Action, Change, ChangeInfo, ChangeStatus, CheckerReport, HealthCheck,
    HealthCheckConfig, Provider, ProviderError, RecordSet, RecordType, Zone,
};

pub struct Route53Provider {
    client: r53::Client,
}

impl Route53Provider {
    /// A client from the default credential chain, for `region`, talking
    /// to `endpoint_url` when given (an emulator).
    pub async fn new(region: &str, endpoint_url: Option<&str>) -> Self {
        let shared = crate::aws::loader(region, endpoint_url).load().await;
        Self::from_conf(r53::config::Builder::from(&shared).build())
    }

    /// A client from an explicit SDK configuration (tests).
    pub fn from_conf(conf: r53::Config) -> Self {
        let conf = conf
            .to_builder()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Route53Provider {
            client: r53::Client::from_conf(conf),
        }
    }
}

mod translate;
use translate::*;

/// Names the writer's term in a write's [`super::TERM_HEADER`] (records
/// and health checks): Route53 ignores it; a proxy's log shows it.
fn name_term(
    term: Option<u64>,
) -> impl Fn(&mut r53::config::http::HttpRequest) + Send + Sync + 'static {
    move |req| {
        if let Some(t) = term {
            req.headers_mut().insert(super::TERM_HEADER, t.to_string());
        }
    }
}

/// A listing cursor: where the next page starts.
type Cursor = (Option<String>, Option<RrType>, Option<String>);

impl Route53Provider {
    /// Lists a zone page by page from `from` (its start when `None`) for as
    /// long as `wanted` accepts the records, in Route53's order.
    async fn walk(
        &self,
        zone_id: &str,
        from: Option<String>,
        page_size: Option<i32>,
        wanted: impl Fn(&RecordSet) -> bool,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        let mut records = Vec::new();
        let mut cursor: Cursor = (from, None, None);
        loop {
            let out = self
                .client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .set_start_record_name(cursor.0.clone())
                .set_start_record_type(cursor.1.clone())
                .set_start_record_identifier(cursor.2.clone())
                .set_max_items(page_size)
                .send()
                .await
                .map_err(classify)?;
            let mut past = false;
            for r in out.resource_record_sets().iter().map(from_sdk) {
                if wanted(&r) {
                    records.push(r);
                } else {
                    past = true;
                }
            }
            if past || !out.is_truncated() {
                return Ok(records);
            }
            let next: Cursor = (
                out.next_record_name().map(str::to_string),
                out.next_record_type().cloned(),
                out.next_record_identifier().map(str::to_string),
            );
            // A page that does not move the cursor would repeat forever.
            if next == cursor || next.0.is_none() {
                return Err(ProviderError::Service(format!(
                    "listing {zone_id} did not advance past {:?} {:?} {:?}",
                    next.0, next.1, next.2
                )));
            }
            cursor = next;
        }
    }
}

// One method per trait operation (twelve), each an SDK call with its
// paging or its error mapping; the type translation is in `translate.rs`.
// Splitting the impl further would scatter the trait across files.
#[async_trait]
impl Provider for Route53Provider {
    fn kind(&self) -> &'static str {
        "route53"
    }

    async fn find_zone(&self, name_or_id: &str) -> Result<Zone, ProviderError> {
        // A hosted zone id has no dot; a name has at least one.
        if !name_or_id.contains('.') {
            let out = self
                .client
                .get_hosted_zone()
                .id(name_or_id)
                .send()
                .await
                .map_err(classify)?;
            let z = out
                .hosted_zone()
                .ok_or_else(|| ProviderError::Service("GetHostedZone: no zone".into()))?;
            return Ok(Zone {
                id: bare_id(z.id()),
                name: normalize_name(z.name()),
            });
        }
        let name = normalize_name(name_or_id);
        let out = self
            .client
            .list_hosted_zones_by_name()
            .dns_name(format!("{name}."))
            .max_items(10)
            .send()
            .await
            .map_err(classify)?;
        let found: Vec<Zone> = out
            .hosted_zones()
            .iter()
            .filter(|z| normalize_name(z.name()) == name)
            .map(|z| Zone {
                id: bare_id(z.id()),
                name: name.clone(),
            })
            .collect();
        match found.len() {
            0 => Err(ProviderError::NoSuchHostedZone(format!(
                "no hosted zone named {name}"
            ))),
            1 => Ok(found.into_iter().next().expect("one zone")),
            n => Err(ProviderError::Service(format!(
                "{n} hosted zones are named {name} (public and private?); give the zone id instead"
            ))),
        }
    }

    async fn get_record(
        &self,
        zone_id: &str,
        name: &str,
        rtype: &RecordType,
    ) -> Result<Option<RecordSet>, ProviderError> {
        // The listing starts at the name and type; one item is enough.
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(format!("{name}."))
            .start_record_type(RrType::from(rtype.to_string().as_str()))
            .max_items(1)
            .send()
            .await
            .map_err(classify)?;
        Ok(out
            .resource_record_sets()
            .iter()
            .map(from_sdk)
            .find(|r| r.name == name && r.rtype == *rtype && r.set_identifier.is_none()))
    }

    async fn list_records_under(
        &self,
        zone_id: &str,
        name: &str,
    ) -> Result<Vec<RecordSet>, ProviderError> {
        // Route53 lists by reversed labels: the subtree of `name` follows
        // it, so the listing starts there and stops at the first record
        // outside it.
        self.walk(zone_id, Some(format!("{name}.")), Some(100), |r| {
            is_under(&r.name, name)
        })
        .await
    }

    async fn list_records(&self, zone_id: &str) -> Result<Vec<RecordSet>, ProviderError> {
        self.walk(zone_id, None, None, |_| true).await
    }

    async fn change(&self, zone_id: &str, changes: &[Change]) -> Result<ChangeInfo, ProviderError> {
        // The term goes in the batch's comment (kept with the change, in
        // CloudTrail) and in a header.
        let term = super::writing_term();
        let comment = match term {
            Some(t) => format!("route53-failover term {t}"),
            None => "route53-failover".to_string(),
        };
        let mut batch = ChangeBatch::builder().comment(comment);
        for c in changes {
            let action = match c.action {
                Action::Create => ChangeAction::Create,
                Action::Delete => ChangeAction::Delete,
                Action::Upsert => ChangeAction::Upsert,
            };
            batch = batch.changes(
                SdkChange::builder()
                    .action(action)
                    .resource_record_set(to_sdk(&c.record)?)
                    .build()
                    .map_err(|e| ProviderError::Service(e.to_string()))?,
            );
        }
        let batch = batch
            .build()
            .map_err(|e| ProviderError::Service(e.to_string()))?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .customize()
            .mutate_request(name_term(term))
            .send()
            .await
            .map_err(classify)?;
        let info = change_info(out.change_info())?;
        Ok(ChangeInfo {
            id: bare_id(info.id()),
            status: status(info.status()),
        })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeStatus, ProviderError> {
        let out = self
            .client
            .get_change()
            .id(change_id)
            .send()
            .await
            .map_err(classify)?;
        Ok(status(change_info(out.change_info())?.status()))
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, ProviderError> {
        let mut checks = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_health_checks()
                .set_marker(marker.clone())
                .max_items(1000)
                .send()
                .await
                .map_err(classify)?;
            checks.extend(out.health_checks().iter().map(check_from_sdk));
            if !out.is_truncated() {
                return Ok(checks);
            }
            let next = out.next_marker().map(str::to_string);
            if next.is_none() || next == marker {
                return Err(ProviderError::Service(format!(
                    "listing health checks did not advance past {next:?}"
                )));
            }
            marker = next;
        }
    }

    async fn create_health_check(
        &self,
        caller_reference: &str,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        let out = self
            .client
            .create_health_check()
            .caller_reference(caller_reference)
            .health_check_config(check_to_sdk(config)?)
            .customize()
            .mutate_request(name_term(super::writing_term()))
            .send()
            .await
            .map_err(classify)?;
        created(out.health_check())
    }

    async fn tag_health_check(
        &self,
        id: &str,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let mut req = self
            .client
            .change_tags_for_resource()
            .resource_type(r53::types::TagResourceType::Healthcheck)
            .resource_id(id);
        for (k, v) in tags {
            req = req.add_tags(r53::types::Tag::builder().key(k).value(v).build());
        }
        req.customize()
            .mutate_request(name_term(super::writing_term()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn update_health_check(
        &self,
        id: &str,
        version: i64,
        config: &HealthCheckConfig,
    ) -> Result<HealthCheck, ProviderError> {
        use r53::types::ResettableElementName as Reset;
        if config.kind == crate::provider::HealthCheckType::Calculated {
            // Its children and threshold are all a CALCULATED check updates.
            let out = self
                .client
                .update_health_check()
                .health_check_id(id)
                .health_check_version(version)
                .set_child_health_checks(Some(config.child_health_checks.clone()))
                .health_threshold(config.health_threshold as i32)
                .customize()
                .mutate_request(name_term(super::writing_term()))
                .send()
                .await
                .map_err(classify)?;
            return created(out.health_check());
        }
        // An element left out keeps its value; one that must go is reset.
        let mut resets = Vec::new();
        if config.fqdn.is_none() {
            resets.push(Reset::FullyQualifiedDomainName);
        }
        if config.regions.is_empty() {
            resets.push(Reset::Regions);
        }
        let out = self
            .client
            .update_health_check()
            .health_check_id(id)
            .health_check_version(version)
            .set_ip_address(config.ip_address.clone())
            .set_fully_qualified_domain_name(config.fqdn.clone())
            .port(i32::from(config.port))
            .resource_path(&config.resource_path)
            .set_search_string(config.search_string.clone())
            .failure_threshold(config.failure_threshold as i32)
            .enable_sni(config.enable_sni)
            .set_regions(sdk_regions(&config.regions))
            .set_reset_elements((!resets.is_empty()).then_some(resets))
            .customize()
            .mutate_request(name_term(super::writing_term()))
            .send()
            .await
            .map_err(classify)?;
        created(out.health_check())
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), ProviderError> {
        self.client
            .delete_health_check()
            .health_check_id(id)
            .customize()
            .mutate_request(name_term(super::writing_term()))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn health_check_status(&self, id: &str) -> Result<CheckerReport, ProviderError> {
        let out = self
            .client
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(classify)?;
        let statuses: Vec<&str> = out
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report()?.status())
            .collect();
        Ok(CheckerReport {
            healthy: statuses.iter().filter(|s| s.starts_with("Success")).count() as u32,
            total: statuses.len() as u32,
            failure: statuses
                .iter()
                .find(|s| !s.starts_with("Success"))
                .map(|s| s.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::AliasTarget;

    #[test]
    fn names_and_ids_are_translated_at_the_edge() {
        assert_eq!(decode_name("\\052.Example.Test."), "*.example.test");
        assert_eq!(decode_name("api.example.test."), "api.example.test");
        assert_eq!(
            decode_name("a\\05"),
            "a\\05",
            "a short escape is left alone"
        );
        assert_eq!(bare_id("/hostedzone/Z123ABC"), "Z123ABC");
        assert_eq!(bare_id("C42"), "C42");
    }

    #[test]
    fn record_sets_round_trip_through_the_sdk_types() {
        let mut alias = RecordSet::latency_a("api.example.test", "use1", "us-east-1", "");
        alias.values.clear();
        alias.ttl = None;
        alias.health_check_id = Some("hc-1".into());
        alias.alias = Some(AliasTarget {
            dns_name: "d-abc.execute-api.us-east-1.amazonaws.com".into(),
            hosted_zone_id: "Z1UJRXOUMOOFQ8".into(),
            evaluate_target_health: true,
        });
        let plain = RecordSet::latency_a("www.example.test", "euw1", "eu-west-1", "192.0.2.7");
        for r in [alias, plain] {
            let sdk = to_sdk(&r).unwrap();
            assert!(sdk.name().ends_with('.'));
            assert_eq!(from_sdk(&sdk), r);
        }
    }
}
