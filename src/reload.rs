//! Live config reload. The file is read every 2 s (a mounted ConfigMap is
//! replaced by a symlink swap, which a content hash notices and inotify on
//! the path may not) and at once on SIGHUP. A new valid config replaces the
//! running one without a restart: the controller's tasks stop (an apply in
//! flight finishes), a new runtime takes over what the old one knew of the
//! members it keeps, and the tasks start again. The next reconcile
//! publishes new members and withdraws removed ones (records and checks).
//! An invalid config, or one that changes what needs a restart (`listen`,
//! `provider`, `ha`, `state_store`) or names a zone the provider does not have, is refused: the
//! old one keeps running, and status, metrics and logs say why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{self, Config};
use crate::controller::{self, Runtime};
use crate::provider::{Provider, ProviderError, RecordType, Zone};

/// How often the file is read.
const POLL: Duration = Duration::from_secs(2);

/// The config in force and the last reload, for status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigState {
    /// The file watched; null when the config was not read from a file (`demo`).
    pub path: Option<String>,
    /// sha256 of the file in force, 12 hex digits.
    pub hash: String,
    /// When it was loaded (unix seconds).
    pub loaded: f64,
    /// Why the last reload was refused; null once one succeeds.
    pub last_reload_error: Option<String>,
}

/// The runtime the HTTP handlers read, replaced on reload.
pub struct Current {
    rt: RwLock<Arc<Runtime>>,
    state: Mutex<ConfigState>,
}

fn unix_now() -> f64 {
    crate::time::unix_secs(SystemTime::now())
}

impl Current {
    pub fn new(rt: Arc<Runtime>, path: Option<&Path>, hash: String) -> Self {
        rt.metrics.config.info.with_label_values(&[&hash]).set(1);
        rt.metrics.config.last_reload_success.set(1);
        for result in ["ok", "error"] {
            rt.metrics.config.reloads_total.with_label_values(&[result]);
        }
        Current {
            rt: RwLock::new(rt),
            state: Mutex::new(ConfigState {
                path: path.map(|p| p.display().to_string()),
                hash,
                loaded: unix_now(),
                last_reload_error: None,
            }),
        }
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.rt.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn state(&self) -> ConfigState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut ConfigState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Runs the controller for the config in force, reloading it when the file
/// changes, until `shutdown`.
pub async fn supervise(
    current: Arc<Current>,
    provider: Arc<dyn Provider>,
    path: Option<PathBuf>,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    // A refused file is reported once, not at every poll.
    let mut refused: Option<String> = None;
    loop {
        let rt = current.runtime();
        let generation = shutdown.child_token();
        let run = controller::run(rt.clone(), provider.clone(), generation.clone());
        tokio::pin!(run);
        let next = loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let forced = tokio::select! {
                r = &mut run => return r,
                _ = tokio::time::sleep(POLL), if path.is_some() => false,
                _ = hangup => true,
            };
            let Some(path) = &path else {
                info!("SIGHUP: no config file to reload");
                continue;
            };
            if forced {
                info!(path = %path.display(), "SIGHUP: reloading the config");
                refused = None;
            }
            match candidate(path, &rt.config, &current, &mut refused, provider.as_ref()).await {
                Some(c) => break c,
                None => continue,
            }
        };
        generation.cancel();
        // Bounded: an apply in flight gets SHUTDOWN_GRACE.
        let _ = (&mut run).await;
        let (config, hash) = next;
        let new_rt = Arc::new(Runtime::reloaded(Arc::new(config), &rt));
        *current.rt.write().unwrap_or_else(|e| e.into_inner()) = new_rt;
        let old_hash = current.state().hash;
        let m = &rt.metrics.config;
        let _ = m.info.remove_label_values(&[&old_hash]);
        m.info.with_label_values(&[&hash]).set(1);
        m.reloads_total.with_label_values(&["ok"]).inc();
        m.last_reload_success.set(1);
        current.update(|s| {
            s.hash = hash.clone();
            s.loaded = unix_now();
            s.last_reload_error = None;
        });
        current.runtime().events.emit(
            crate::events::Event::new(
                crate::events::Kind::Reload,
                format!("config reloaded: {old_hash} → {hash}"),
            )
            .reason("ok"),
        );
    }
}

/// The file's new config, if it changed and can be applied; otherwise
/// `None`, with a refusal recorded once per file content.
async fn candidate(
    path: &Path,
    running: &Config,
    current: &Current,
    refused: &mut Option<String>,
    provider: &dyn Provider,
) -> Option<(Config, String)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let msg = format!("cannot read {}: {e}", path.display());
            refuse(current, refused, msg.clone(), msg);
            return None;
        }
    };
    let h = config::short_digest(&bytes);
    if h == current.state().hash {
        // Back to the config in force: nothing is refused any more.
        *refused = None;
        if current.state().last_reload_error.is_some() {
            current.update(|s| s.last_reload_error = None);
            current.runtime().metrics.config.last_reload_success.set(1);
        }
        return None;
    }
    if refused.as_deref() == Some(h.as_str()) {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes);
    let base = path.parent().unwrap_or(Path::new("."));
    let config = match config::parse(&text, base) {
        Ok(c) => c,
        Err(errors) => {
            refuse(current, refused, h, errors.to_string());
            return None;
        }
    };
    if let Some(why) = needs_restart(running, &config) {
        refuse(current, refused, h, why);
        return None;
    }
    if let Some(why) = moves_controls(running, &config, &current.runtime()) {
        refuse(current, refused, h, why);
        return None;
    }
    // The zones, as at start-up: each must exist, be named one way, and
    // hold no CNAME at its apex. The running config's are known already.
    let known: BTreeMap<String, Zone> = current
        .runtime()
        .zone_status()
        .into_iter()
        .filter_map(|(zone, z)| {
            Some((
                zone,
                Zone {
                    id: z.id?,
                    name: z.name?,
                },
            ))
        })
        .collect();
    // And those the state store knows (a reload in a control-plane outage).
    let mut known = known;
    if let Some(store) = current.runtime().store() {
        for (zone, z) in controller::known_zones(store.as_ref()).await {
            known.entry(zone).or_insert(z);
        }
    }
    if let Err(why) = check_zones(&config, provider, &known).await {
        refuse(current, refused, h, why);
        return None;
    }
    // Last, once nothing else refuses it: the switches it names are this
    // install's, or the reload is refused.
    if let Some(store) = current.runtime().store() {
        let switches = crate::lever::Owner::of(&config);
        let arns = switches.keys().map(String::as_str);
        if let Err(why) = crate::lever::claims::claim(store.as_ref(), &config.owner, arns).await {
            refuse(current, refused, h, why);
            return None;
        }
    }
    for w in &config.warnings {
        warn!("{w}");
    }
    Some((config, h))
}

/// Checks the config's zones against the provider: each must exist, one
/// hosted zone must not be named two ways (by name and by id: two
/// reconcilers would undo each other's writes), and no record may be a
/// CNAME at its zone's apex (the zone's name is known only now when the
/// config gives an id). `known` are zones already found. A zone that
/// cannot be looked up now (network, throttling) is left to the
/// reconciler, which retries. The error names the key and the value.
pub async fn check_zones(
    config: &Config,
    provider: &dyn Provider,
    known: &BTreeMap<String, Zone>,
) -> Result<(), String> {
    let mut by_id: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (zone, idxs) in config.records_by_zone() {
        let found = match known.get(&zone) {
            Some(z) => Ok(Ok(z.clone())),
            None => tokio::time::timeout(Duration::from_secs(10), provider.find_zone(&zone)).await,
        };
        let z = match found {
            Ok(Ok(z)) => z,
            Ok(Err(ProviderError::NoSuchHostedZone(msg))) => {
                return Err(format!("records[{}].zone: {zone:?}: {msg}", idxs[0]))
            }
            Ok(Err(e)) => {
                warn!(zone = %zone, error = %e, "cannot check the zone now; retrying later");
                continue;
            }
            Err(_) => {
                warn!(zone = %zone, "the zone check timed out; retrying later");
                continue;
            }
        };
        if let Some((other, i)) = by_id.get(&z.id) {
            return Err(format!(
                "records[{}].zone: {zone:?} names the same hosted zone ({}, {}) as records[{i}].zone {other:?}: name it one way",
                idxs[0], z.id, z.name
            ));
        }
        by_id.insert(z.id.clone(), (zone.clone(), idxs[0]));
        for &i in &idxs {
            let r = &config.records[i];
            if r.rtype == RecordType::Cname && r.name == z.name {
                return Err(format!(
                    "records[{i}].type: CNAME at the apex of {} ({zone:?}): Route53 refuses it; use type A or AAAA with an alias target",
                    z.name
                ));
            }
        }
        info!(zone = %zone, id = %z.id, "zone found");
    }
    Ok(())
}

/// On-call's drains and freezes live in one zone (`Config::control_zone`).
/// A reload that would move them (a zone added that sorts first, another
/// `admin.zone`) while some are in force would leave them behind, and a
/// drained member would come back: it is refused, naming the key that
/// keeps them where they are.
fn moves_controls(running: &Config, new: &Config, rt: &Runtime) -> Option<String> {
    let (from, to) = (running.control_zone(), new.control_zone());
    if running.admin.is_none() || new.admin.is_none() || from == to {
        return None;
    }
    let in_force = rt.controls.snapshot().in_force(SystemTime::now()).count();
    (in_force > 0).then(|| {
        format!(
            "admin.zone: on-call's {in_force} control(s) in force are kept in {from:?}, and this config would look for them in {to:?}; set admin.zone: {from} to keep them where they are (or end them first)"
        )
    })
}

fn needs_restart(running: &Config, new: &Config) -> Option<String> {
    if running.listen != new.listen {
        return Some(format!(
            "listen: {} → {} needs a restart",
            running.listen, new.listen
        ));
    }
    if running.health_listen != new.health_listen {
        return Some("health_listen: a change of it needs a restart".into());
    }
    if running.provider != new.provider {
        return Some("provider: a change of the provider needs a restart".into());
    }
    if running.ha != new.ha {
        return Some("ha: a change of the HA lease settings needs a restart".into());
    }
    if running.state_store != new.state_store {
        return Some("state_store: a change of the state store needs a restart".into());
    }
    None
}

fn refuse(current: &Current, refused: &mut Option<String>, key: String, why: String) {
    if refused.as_deref() == Some(key.as_str()) {
        return;
    }
    let rt = current.runtime();
    rt.events.emit(
        crate::events::Event::new(
            crate::events::Kind::Reload,
            format!("config reload refused; the running config stays in force: {why}"),
        )
        .reason("refused"),
    );
    rt.metrics
        .config
        .reloads_total
        .with_label_values(&["error"])
        .inc();
    rt.metrics.config.last_reload_success.set(0);
    current.update(|s| s.last_reload_error = Some(why));
    *refused = Some(key);
}
