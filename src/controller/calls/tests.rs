use std::time::Duration;

use super::*;
use crate::config::HaConfig;
use crate::decide::lease::LeaseValue;
use crate::provider::faults::{Faulty, MemoryStore};
use crate::provider::memory::MemoryProvider;
use crate::provider::{HealthCheckType, RecordSet};

fn lease() -> Arc<Lease> {
    Arc::new(Lease::new(HaConfig {
        identity: "a".into(),
        zone: "example.test".into(),
        lease_name: "_route53-failover-lease.example.test".into(),
        lease_duration: Duration::from_secs(30),
        renew_every: Duration::from_secs(10),
        max_clock_drift: Duration::from_secs(1),
        view_max_age: Duration::from_secs(90),
    }))
}

fn check_config() -> HealthCheckConfig {
    HealthCheckConfig {
        kind: HealthCheckType::Http,
        ip_address: Some("192.0.2.1".into()),
        fqdn: None,
        port: 80,
        resource_path: "/health".into(),
        search_string: None,
        request_interval: 30,
        failure_threshold: 3,
        measure_latency: false,
        enable_sni: false,
        regions: vec![],
        routing_control_arn: None,
        child_health_checks: Vec::new(),
        health_threshold: 0,
    }
}

/// Calls `op` through its typed method. The match has no wildcard: a new
/// operation does not compile until this test covers it.
async fn invoke(calls: &Calls, zone: &str, op: Operation) -> Result<(), ProviderError> {
    let record = RecordSet::latency_a("api.example.test", "use1", "us-east-1", "192.0.2.1");
    let create = Change {
        action: crate::provider::Action::Create,
        record,
    };
    match op {
        Operation::FindZone => calls.find_zone("example.test").await.map(drop),
        Operation::ListRecords => calls.list_records(zone).await.map(drop),
        Operation::GetRecord => calls
            .get_record(zone, "api.example.test", &RecordType::A)
            .await
            .map(drop),
        Operation::ListRecordsUnder => calls
            .list_records_under(zone, "example.test")
            .await
            .map(drop),
        Operation::Change => calls.change(zone, &[create]).await.map(drop),
        Operation::ChangeStatus => calls.change_status("C1").await.map(drop),
        Operation::ListHealthChecks => calls.list_health_checks().await.map(drop),
        Operation::CreateHealthCheck => calls
            .create_health_check("ref-1", &check_config())
            .await
            .map(drop),
        Operation::TagHealthCheck => calls.tag_health_check("hc-1", &[]).await,
        Operation::UpdateHealthCheck => calls
            .update_health_check("hc-1", 1, &check_config())
            .await
            .map(drop),
        Operation::DeleteHealthCheck => calls.delete_health_check("hc-1").await,
        Operation::HealthCheckStatus => calls.health_check_status("hc-1").await.map(drop),
    }
}

fn total_calls(store: &MemoryStore) -> u64 {
    store.call_counts().values().sum()
}

/// Every write of the `Provider` trait is fenced by the lease: without
/// it, nothing reaches the store; every read goes through.
#[tokio::test]
async fn every_write_operation_is_fenced_and_no_read_is() {
    let store = Arc::new(Faulty::new(MemoryProvider::new(
        &["example.test"],
        Duration::ZERO,
    )));
    let zone = store.zones()[0].id.clone();
    let metrics = Arc::new(Metrics::new());
    let calls = Calls::new(
        store.clone(),
        Arc::new(RateLimiter::new(1000.0)),
        metrics,
        Some(lease()),
    );
    let writes: Vec<&str> = Operation::ALL
        .iter()
        .filter(|op| op.is_write())
        .map(|op| op.as_str())
        .collect();
    assert_eq!(
        writes,
        vec![
            "change",
            "create_health_check",
            "tag_health_check",
            "update_health_check",
            "delete_health_check"
        ]
    );
    for op in Operation::ALL {
        let before = total_calls(&store);
        let result = invoke(&calls, &zone, op).await;
        let reached = total_calls(&store) - before;
        if op.is_write() {
            assert!(
                matches!(&result, Err(ProviderError::Fenced(m)) if m.contains(op.as_str())),
                "{}: {result:?}",
                op.as_str()
            );
            assert_eq!(reached, 0, "{} reached the store unfenced", op.as_str());
        } else {
            assert!(
                !matches!(result, Err(ProviderError::Fenced(_))),
                "{} is a read",
                op.as_str()
            );
            assert_eq!(reached, 1, "{} reached the store once", op.as_str());
        }
    }
    // With the lease held, a write goes through.
    let held = lease();
    held.held(
        LeaseValue {
            holder: "a".into(),
            term: 1,
            expires_ms: 0,
        },
        Instant::now(),
    );
    let calls = Calls::new(
        store.clone(),
        Arc::new(RateLimiter::new(1000.0)),
        Arc::new(Metrics::new()),
        Some(held),
    );
    invoke(&calls, &zone, Operation::Change).await.unwrap();
    assert_eq!(store.calls(Operation::Change), 1);
}

#[tokio::test]
async fn transient_errors_are_retried_up_to_the_attempts_and_counted() {
    use crate::provider::faults::Fault;
    let store = Arc::new(Faulty::new(MemoryProvider::new(
        &["example.test"],
        Duration::ZERO,
    )));
    let metrics = Arc::new(Metrics::new());
    let calls = Calls::new(
        store.clone(),
        Arc::new(RateLimiter::new(1000.0)),
        metrics.clone(),
        None,
    );
    store.inject(Fault {
        operation: Some(Operation::ListHealthChecks),
        error: ProviderError::Throttling("slow down".into()),
        times: 2,
    });
    let once = calls.list_health_checks().await;
    assert!(
        matches!(once, Err(ProviderError::Throttling(_))),
        "no retry by default"
    );
    let retried = calls.clone().retried(3).list_health_checks().await;
    assert!(retried.is_ok(), "{retried:?}");
    assert_eq!(store.calls(Operation::ListHealthChecks), 3);
    let throttled = metrics
        .provider
        .requests_total
        .with_label_values(&["list_health_checks", "throttling"])
        .get();
    assert_eq!(throttled, 2);
}
