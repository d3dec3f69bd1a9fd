//! What the failover path knows of the zone, kept in the state store, so
//! a restart or a reload during a Route53 control-plane outage starts
//! from it instead of waiting for reads that do not come: the zone's id,
//! and for each managed name its records (and ownership marker) and the
//! checks they carry (with their children: which member is wired to
//! which switch). Recalled as the stale view the switches are decided
//! from until the zone can be read (`pass::switches_from_stale`).
//!
//! Items of the `zones` space: `<zone>` holds the id and name,
//! `<zone>|<name>` one managed name's records and checks (one item per
//! name keeps each far under DynamoDB's 400 KB). Only the writer keeps
//! them, and only what changed is written: nothing in the steady state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::Reconciler;
use crate::decide::ownership::{marker_name, Observed};
use crate::provider::{HealthCheck, RecordSet, Zone};
use crate::store::{Condition, Space, StateStore};

/// One managed name as known.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Name {
    records: Vec<RecordSet>,
    checks: Vec<HealthCheck>,
}

fn name_item(zone: &str, name: &str) -> String {
    format!("{zone}|{name}")
}

/// The zones the store knows, by the config's zone name (for the start-up
/// and reload checks: a zone known here needs no Route53 call).
pub async fn known_zones(store: &dyn StateStore) -> BTreeMap<String, Zone> {
    let Ok(items) = store.list(Space::Zones).await else {
        return BTreeMap::new();
    };
    items
        .into_iter()
        .filter(|i| !i.name.contains('|'))
        .filter_map(|i| Some((i.name, serde_json::from_str(&i.value).ok()?)))
        .collect()
}

impl Reconciler {
    /// The names this zone's records manage.
    fn managed_names(&self) -> BTreeSet<String> {
        self.records
            .iter()
            .map(|&i| self.rt.config.records[i].name.clone())
            .collect()
    }

    /// At start: what the store knows of the zone becomes what was last
    /// known of it.
    pub(super) async fn recall(&mut self) {
        let Some(store) = self.rt.store() else {
            return;
        };
        let items = match store.list(Space::Zones).await {
            Ok(items) => items,
            Err(e) => {
                warn!(zone = %self.zone, error = %e, "cannot read what the state store knows of the zone");
                return;
            }
        };
        let names = self.managed_names();
        let (mut records, mut checks) = (Vec::new(), Vec::new());
        for item in items {
            if item.name == self.zone {
                if let Ok(z) = serde_json::from_str::<Zone>(&item.value) {
                    if self.zone_id.is_none() {
                        self.rt.zone_found(&self.zone, &z.id, &z.name);
                        self.zone_id = Some(z.id);
                    }
                }
                continue;
            }
            let Some(name) = item.name.strip_prefix(&format!("{}|", self.zone)) else {
                continue;
            };
            if !names.contains(name) {
                continue;
            }
            if let Ok(known) = serde_json::from_str::<Name>(&item.value) {
                self.known.insert(
                    item.name.clone(),
                    crate::config::short_digest(item.value.as_bytes()),
                );
                records.extend(known.records);
                checks.extend(known.checks);
            }
        }
        if records.is_empty() {
            return;
        }
        info!(zone = %self.zone, records = records.len(), checks = checks.len(),
            "recalled what the state store knows of the zone");
        checks.sort_by(|a: &HealthCheck, b| a.id.cmp(&b.id));
        checks.dedup_by(|a, b| a.id == b.id);
        if self.observed.is_none() && self.stale.is_none() {
            self.stale = Some(Observed::new(records));
            self.checks = checks;
        }
    }

    /// After a pass or a read: what changed of the zone since it was last
    /// kept is written (the writer's job; nothing when nothing changed).
    pub(super) async fn keep_knowledge(&mut self) {
        let (Some(store), Some(observed), Some(zone_id)) = (
            self.rt.store(),
            self.observed.as_ref(),
            self.zone_id.as_ref(),
        ) else {
            return;
        };
        if !self.rt.may_write() {
            return;
        }
        let mut items = Vec::new();
        if let Some(name) = self.rt.read_zone(&self.zone, |z| z.name.clone()).flatten() {
            let zone = Zone {
                id: zone_id.clone(),
                name,
            };
            items.push((
                self.zone.clone(),
                serde_json::to_string(&zone).expect("serializes"),
            ));
        }
        for name in self.managed_names() {
            let marker = marker_name(&name);
            let records: Vec<RecordSet> = observed
                .records
                .values()
                .filter(|r| r.name == name || r.name == marker)
                .cloned()
                .collect();
            let mut carried: BTreeSet<&str> = records
                .iter()
                .filter_map(|r| r.health_check_id.as_deref())
                .collect();
            for c in &self.checks {
                if carried.contains(c.id.as_str()) {
                    carried.extend(c.config.child_health_checks.iter().map(String::as_str));
                }
            }
            let checks: Vec<HealthCheck> = self
                .checks
                .iter()
                .filter(|c| carried.contains(c.id.as_str()))
                .cloned()
                .collect();
            let value = serde_json::to_string(&Name { records, checks }).expect("serializes");
            items.push((name_item(&self.zone, &name), value));
        }
        for (item, value) in items {
            let digest = crate::config::short_digest(value.as_bytes());
            if self.known.get(&item) == Some(&digest) {
                continue;
            }
            match store.put(Space::Zones, &item, &value, Condition::Any).await {
                Ok(_) => {
                    debug!(zone = %self.zone, item = %item, "zone knowledge kept");
                    self.known.insert(item, digest);
                }
                Err(e) => {
                    warn!(zone = %self.zone, error = %e, "cannot keep the zone knowledge in the state store; tried again after the next pass");
                    return;
                }
            }
        }
    }
}
