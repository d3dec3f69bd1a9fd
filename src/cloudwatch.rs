//! API Gateway's request count per period in CloudWatch (`AWS/ApiGateway`
//! `Count`, by `ApiId` and `Stage`, the Sum per period): what the traffic
//! confirmation (`decide::traffic`) reads after a withdrawal. One client
//! per region (the API's own region: its metrics live there), each call
//! bounded by [`CALL_TIMEOUT`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch as cw;
use cw::types::{Dimension, Metric, MetricDataQuery, MetricStat};

pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most GetMetricData pages one read follows.
const MAX_PAGES: usize = 20;

pub struct RequestCounts {
    clients: HashMap<String, cw::Client>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl RequestCounts {
    /// Clients for `regions` from the default credential chain, talking
    /// to `endpoint_url` when given (an emulator).
    pub async fn new<'a>(
        regions: impl IntoIterator<Item = &'a str>,
        endpoint_url: Option<&str>,
    ) -> Self {
        RequestCounts {
            clients: crate::aws::per_region(regions, endpoint_url, cw::Client::new).await,
        }
    }

    /// Each `(api_id, stage)`'s count per `period` from `since` to now, as
    /// (period start in unix seconds, count); periods without requests
    /// have no point. One GetMetricData call (and its pages).
    pub async fn counts(
        &self,
        region: &str,
        apis: &[(String, String)],
        since: SystemTime,
        period: Duration,
    ) -> Result<Vec<Vec<(u64, f64)>>, String> {
        let client = self
            .clients
            .get(region)
            .ok_or_else(|| format!("no CloudWatch client for {region}"))?;
        let p = period.as_secs().max(1);
        // Aligned to the period, as CloudWatch aligns its buckets.
        let start = secs(since) / p * p;
        let end = (secs(SystemTime::now()) / p + 1) * p;
        let queries: Vec<MetricDataQuery> = apis
            .iter()
            .enumerate()
            .map(|(i, (api, stage))| {
                let metric = Metric::builder()
                    .namespace("AWS/ApiGateway")
                    .metric_name("Count")
                    .dimensions(Dimension::builder().name("ApiId").value(api).build())
                    .dimensions(Dimension::builder().name("Stage").value(stage).build())
                    .build();
                MetricDataQuery::builder()
                    .id(format!("q{i}"))
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(p as i32)
                            .stat("Sum")
                            .build(),
                    )
                    .build()
            })
            .collect();
        let mut out: Vec<Vec<(u64, f64)>> = vec![Vec::new(); apis.len()];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let call = client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(cw::primitives::DateTime::from_secs(start as i64))
                .end_time(cw::primitives::DateTime::from_secs(end as i64))
                .set_next_token(token.clone())
                .send();
            let page = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| format!("CloudWatch: no answer within {CALL_TIMEOUT:?}"))?
                .map_err(|e| {
                    use cw::error::ProvideErrorMetadata;
                    let e = e.into_service_error();
                    format!(
                        "CloudWatch: {}",
                        e.message().map_or_else(|| e.to_string(), str::to_string)
                    )
                })?;
            for r in page.metric_data_results() {
                let Some(i) = r
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|i| *i < apis.len())
                else {
                    continue;
                };
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    let at = u64::try_from(t.secs()).unwrap_or_default() / p * p;
                    out[i].push((at, *v));
                }
            }
            match page.next_token() {
                Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}
