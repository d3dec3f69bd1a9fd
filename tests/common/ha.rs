//! Several `ha` instances of the daemon binary on one strict store, each
//! reaching it through a logging proxy of its own, so a test can tell which
//! instance sent what and when, and cut one off. The strict store is the
//! right peer: the lease's compare-and-swap needs an exact-value DELETE,
//! which moto does not enforce (docs/design.md, "Emulators").

use super::*;
use route53_failover::decide::lease::LeaseValue;

pub const ZONE: &str = "example.test";
pub const LEASE: &str = "_route53-failover-lease.example.test";
pub const VIEWS: &str = "_route53-failover-views.example.test";

pub struct Instance {
    pub id: &'static str,
    pub proxy: FaultProxy,
    pub daemon: Daemon,
}

impl Instance {
    /// Starts instance `id` on `store` through a proxy of its own; `config`
    /// makes its config from the `provider:` value that points at the proxy.
    pub async fn start(
        id: &'static str,
        store: &Store,
        how: Launch,
        config: impl FnOnce(&str) -> String,
    ) -> Instance {
        let proxy = FaultProxy::start(&store.url).await;
        let provider = format!(
            "{{kind: memory, endpoint_url: \"{}/\", max_requests_per_second: 50}}",
            proxy.url
        );
        let daemon = launch(&config(&provider), how).await;
        Instance { id, proxy, daemon }
    }

    pub async fn role(&self) -> String {
        self.daemon.status().await.lease.expect("ha is on").role
    }

    /// Writes this instance sent to the store (accepted or not), other
    /// than to the lease and to its own view (`decide::quorum`, unfenced
    /// by design): record batches and health check calls.
    pub fn writes(&self) -> Vec<Logged> {
        let own_view = format!("{}.{VIEWS}", self.id);
        let log = self.proxy.log();
        let views: Vec<&Logged> = log.iter().filter(|l| l.body.contains(VIEWS)).collect();
        assert!(
            views
                .iter()
                .all(|l| l.body.contains(&own_view) || l.method == "GET"),
            "{} wrote another instance's view: {views:?}",
            self.id
        );
        log.into_iter()
            .filter(|l| l.method != "GET" && !l.body.contains(LEASE) && !l.body.contains(VIEWS))
            .collect()
    }

    /// This instance's lease writes that the store accepted.
    pub fn lease_writes(&self) -> Vec<Logged> {
        self.proxy
            .log()
            .into_iter()
            .filter(|l| l.method == "POST" && l.body.contains(LEASE) && l.status == 200)
            .collect()
    }
}

/// The lease the store holds.
pub fn lease(store: &Store) -> Option<LeaseValue> {
    let records = store.store.records(ZONE).unwrap();
    let r = records
        .iter()
        .find(|r| r.name == LEASE && r.rtype == RecordType::Txt)?;
    LeaseValue::parse(&r.values[0])
}

/// The instances that say they lead. Every status is asked for at once,
/// so the answers are of one moment, as near as can be: asked one after
/// another, a leader read just before it stepped down and its successor
/// read just after it took over would look like two leaders at once.
pub async fn leaders(all: &[&Instance]) -> Vec<&'static str> {
    let mut asked = tokio::task::JoinSet::new();
    for (n, i) in all.iter().enumerate() {
        let url = format!("{}/status", i.daemon.base);
        asked.spawn(async move {
            let status: Status = reqwest::Client::new()
                .get(url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (n, status.lease.expect("ha is on").role == "leader")
        });
    }
    let mut leading = vec![false; all.len()];
    while let Some(answer) = asked.join_next().await {
        let (n, leader) = answer.unwrap();
        leading[n] = leader;
    }
    all.iter()
        .zip(leading)
        .filter(|(_, leader)| *leader)
        .map(|(i, _)| i.id)
        .collect()
}

/// No write lands from an instance after another's lease write: the last
/// lease write the store accepted before each accepted record or check
/// write is its sender's own.
pub fn assert_writes_fenced(all: &[&Instance]) {
    let leases: Vec<(Instant, &str)> = all
        .iter()
        .flat_map(|i| i.lease_writes().into_iter().map(move |l| (l.at, i.id)))
        .collect();
    for i in all {
        for w in i.writes().iter().filter(|w| w.status == 200) {
            let holder = leases
                .iter()
                .filter(|(at, _)| *at < w.at)
                .max_by_key(|(at, _)| *at)
                .map(|(_, id)| *id);
            assert_eq!(
                holder,
                Some(i.id),
                "{} wrote after {holder:?}'s lease write: {} {}",
                i.id,
                w.method,
                w.path
            );
        }
    }
}
