//! One suite, every state store backend: the same functions run against
//! the `memory` store, the `file` store, and the `dynamodb` store (the AWS
//! SDK) talking to moto's server, whose DynamoDB keeps conditional writes
//! and consistent reads (multi-Region replication is not emulated, which
//! for a linearizable store changes nothing a caller sees). Then the
//! DynamoDB adapter's error kinds, through a fault proxy in front of moto:
//! throttling, a server error and a hang.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{dynamo_store, FaultProxy, Moto, Reply};
use route53_failover::store::{Condition, FileStore, MemoryStore, Space, StateStore, StoreError};

/// A fresh name per function, so the functions share one store.
async fn writes_and_reads_an_item(s: &dyn StateStore) {
    assert_eq!(s.get(Space::Lease, "lease").await.unwrap(), None);
    let v1 = s
        .put(
            Space::Lease,
            "lease",
            r#"{"holder":"a"}"#,
            Condition::Absent,
        )
        .await
        .unwrap();
    let item = s.get(Space::Lease, "lease").await.unwrap().unwrap();
    assert_eq!(
        (item.name.as_str(), item.value.as_str(), item.version),
        ("lease", r#"{"holder":"a"}"#, v1)
    );
    let v2 = s
        .put(
            Space::Lease,
            "lease",
            r#"{"holder":"b"}"#,
            Condition::Version(v1),
        )
        .await
        .unwrap();
    assert_eq!(v2, v1 + 1, "every write raises the version by one");
    let v3 = s
        .put(Space::Lease, "lease", r#"{"holder":"c"}"#, Condition::Any)
        .await
        .unwrap();
    assert_eq!(v3, v2 + 1);
}

/// A name deleted and written again is a new item: a delete or a write
/// conditioned on the old one's version does not touch it (a stale holder
/// deleting an ended drain must not delete the drain made again since).
async fn a_name_written_again_is_not_its_old_item(s: &dyn StateStore) {
    let old = s
        .put(Space::Controls, "again", "first", Condition::Absent)
        .await
        .unwrap();
    s.delete(Space::Controls, "again", Condition::Version(old))
        .await
        .unwrap();
    let new = s
        .put(Space::Controls, "again", "second", Condition::Absent)
        .await
        .unwrap();
    assert_ne!(new, old);
    let stale = s
        .delete(Space::Controls, "again", Condition::Version(old))
        .await;
    assert_eq!(stale.unwrap_err().kind(), "conflict");
    let stale = s
        .put(Space::Controls, "again", "third", Condition::Version(old))
        .await;
    assert_eq!(stale.unwrap_err().kind(), "conflict");
    assert_eq!(
        s.get(Space::Controls, "again")
            .await
            .unwrap()
            .unwrap()
            .value,
        "second"
    );
}

async fn of_two_racing_writers_one_wins(s: &dyn StateStore) {
    let v = s
        .put(Space::Controls, "race", "0", Condition::Absent)
        .await
        .unwrap();
    // Both read version v; both write on it: one wins, one is told.
    let (a, b) = tokio::join!(
        s.put(Space::Controls, "race", "a", Condition::Version(v)),
        s.put(Space::Controls, "race", "b", Condition::Version(v)),
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let lost = if a.is_ok() { b } else { a };
    assert_eq!(lost.unwrap_err().kind(), "conflict");
    let item = s.get(Space::Controls, "race").await.unwrap().unwrap();
    assert_eq!(item.version, v + 1);
    // A create over an item is a conflict too, and changes nothing.
    let again = s.put(Space::Controls, "race", "c", Condition::Absent).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let stale = s
        .put(Space::Controls, "race", "d", Condition::Version(v))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(s.get(Space::Controls, "race").await.unwrap().unwrap(), item);
}

async fn deletes_only_what_the_condition_names(s: &dyn StateStore) {
    let v = s
        .put(Space::Views, "gone", "x", Condition::Any)
        .await
        .unwrap();
    let wrong = s
        .delete(Space::Views, "gone", Condition::Version(v + 1))
        .await;
    assert_eq!(wrong.unwrap_err().kind(), "conflict");
    assert!(s.get(Space::Views, "gone").await.unwrap().is_some());
    s.delete(Space::Views, "gone", Condition::Version(v))
        .await
        .unwrap();
    assert_eq!(s.get(Space::Views, "gone").await.unwrap(), None);
    // Already gone: no error without a condition, a conflict with one.
    s.delete(Space::Views, "gone", Condition::Any)
        .await
        .unwrap();
    let absent = s.delete(Space::Views, "gone", Condition::Version(v)).await;
    assert_eq!(absent.unwrap_err().kind(), "conflict");
}

async fn lists_a_space_and_only_that_space(s: &dyn StateStore) {
    for name in ["view-b", "view-a", "view-c"] {
        s.put(Space::Zones, name, name, Condition::Any)
            .await
            .unwrap();
    }
    s.put(Space::Claims, "view-a", "elsewhere", Condition::Any)
        .await
        .unwrap();
    let listed: Vec<(String, String)> = s
        .list(Space::Zones)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.value))
        .collect();
    assert_eq!(
        listed,
        ["view-a", "view-b", "view-c"].map(|n| (n.to_string(), n.to_string())),
        "by name, this space's only"
    );
}

/// A value as large as a view of a few hundred members.
async fn keeps_a_large_value_whole(s: &dyn StateStore) {
    let value: String = (0..30_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    s.put(Space::Views, "large", &value, Condition::Any)
        .await
        .unwrap();
    assert_eq!(
        s.get(Space::Views, "large").await.unwrap().unwrap().value,
        value
    );
}

async fn suite(s: &dyn StateStore) {
    writes_and_reads_an_item(s).await;
    of_two_racing_writers_one_wins(s).await;
    deletes_only_what_the_condition_names(s).await;
    a_name_written_again_is_not_its_old_item(s).await;
    lists_a_space_and_only_that_space(s).await;
    keeps_a_large_value_whole(s).await;
}

/// Two owners on one store: each sees its own items, and both the claims.
async fn owners_are_apart_but_claims_are_shared(a: &dyn StateStore, b: &dyn StateStore) {
    a.put(Space::Lease, "lease", "a's", Condition::Any)
        .await
        .unwrap();
    assert_eq!(b.get(Space::Lease, "lease").await.unwrap(), None);
    a.put(Space::Claims, "arn:switch", "a", Condition::Absent)
        .await
        .unwrap();
    let seen = b.get(Space::Claims, "arn:switch").await.unwrap().unwrap();
    assert_eq!(seen.value, "a");
    let second = b
        .put(Space::Claims, "arn:switch", "b", Condition::Absent)
        .await;
    assert_eq!(second.unwrap_err().kind(), "conflict");
}

#[tokio::test]
async fn memory_store() {
    let s = MemoryStore::new("install-a");
    suite(&s).await;
    owners_are_apart_but_claims_are_shared(&s, &s.for_owner("install-b")).await;
    assert!(s.describe().await.unwrap().linearizable);
}

#[tokio::test]
async fn file_store_and_what_it_keeps_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let s = FileStore::open(&path, "install-a").unwrap();
    assert_eq!(s.describe().await.unwrap().kind, "file");
    suite(&s).await;
    owners_are_apart_but_claims_are_shared(&s, &FileStore::open(&path, "install-b").unwrap()).await;
    let before = s.list(Space::Zones).await.unwrap();
    drop(s);
    // A new process reads what the last one wrote.
    let again = FileStore::open(&path, "install-a").unwrap();
    assert_eq!(again.list(Space::Zones).await.unwrap(), before);
    assert_eq!(
        again
            .get(Space::Lease, "lease")
            .await
            .unwrap()
            .unwrap()
            .value,
        "a's"
    );
    // A folder it cannot write: refused when opened and described, with
    // the path named.
    let bad = FileStore::open(std::path::Path::new("/proc/none/state.json"), "x").unwrap();
    let err = bad.describe().await.unwrap_err();
    assert_eq!(err.kind(), "refused");
    assert!(err.to_string().contains("/proc/none/state.json"), "{err}");
    std::fs::write(&path, "not json").unwrap();
    let err = FileStore::open(&path, "x").err().unwrap();
    assert!(err.to_string().contains("not a state store file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_store_against_moto() {
    let moto = Moto::start().await;
    moto.create_table("route53-failover", "sk").await;
    let s = dynamo_store(
        &moto.url,
        "route53-failover",
        "install-a",
        Duration::from_secs(5),
    )
    .await;
    let report = s.describe().await.unwrap();
    assert_eq!(report.kind, "dynamodb");
    assert!(report.linearizable, "a single-Region table is linearizable");
    assert!(
        report.warnings.iter().any(|w| w.contains("one Region")),
        "{report:?}"
    );
    suite(&s).await;
    let b = dynamo_store(
        &moto.url,
        "route53-failover",
        "install-b",
        Duration::from_secs(5),
    )
    .await;
    owners_are_apart_but_claims_are_shared(&s, &b).await;

    // A table that is not ours, and one that does not exist: refused,
    // named.
    moto.create_table("other", "id").await;
    let other = dynamo_store(&moto.url, "other", "x", Duration::from_secs(5)).await;
    let err = other.describe().await.unwrap_err();
    assert_eq!(err.kind(), "refused");
    assert!(err.to_string().contains("sort key sk (S)"), "{err}");
    let missing = dynamo_store(&moto.url, "missing", "x", Duration::from_secs(5)).await;
    let err = missing.get(Space::Lease, "lease").await.unwrap_err();
    assert_eq!(err.kind(), "refused", "{err}");
}

fn dynamo_error(code: &str) -> String {
    format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"injected {code}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_faults_are_told_apart() {
    let moto = Moto::start().await;
    moto.create_table("route53-failover", "sk").await;
    let proxy = FaultProxy::start(&moto.url).await;
    let timeout = Duration::from_millis(500);
    let s = Arc::new(dynamo_store(&proxy.url, "route53-failover", "a", timeout).await);
    s.put(Space::Lease, "lease", "v", Condition::Any)
        .await
        .unwrap();

    for (status, code, kind) in [
        (400, "ThrottlingException", "throttled"),
        (400, "ProvisionedThroughputExceededException", "throttled"),
        (500, "InternalServerError", "unavailable"),
        (503, "ServiceUnavailable", "unavailable"),
        (400, "AccessDeniedException", "refused"),
    ] {
        let body = dynamo_error(code);
        proxy.answer(Arc::new(move |_| Some(Reply::Json(status, body.clone()))));
        let err = s.get(Space::Lease, "lease").await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert_eq!(err.transient(), kind != "refused", "{code}");
    }
    proxy.answer(Arc::new(|_| Some(Reply::Hang)));
    let started = Instant::now();
    let err = s
        .put(Space::Lease, "lease", "w", Condition::Any)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by call_timeout"
    );
    // Healed: what was there is there, the hung write did not land.
    proxy.answer(Arc::new(|_| None));
    let item = s.get(Space::Lease, "lease").await.unwrap().unwrap();
    assert_eq!(item.value, "v");
}
