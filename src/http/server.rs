//! The listener, bounded so that no client can hurt the prober: the probes
//! and the listen port share one process and one descriptor table, and a
//! probe that cannot open a socket observes nothing of its member.
//!
//! - At most [`Limits::max_connections`] connections are open at once;
//!   past that the listener stops accepting (the kernel's backlog holds
//!   the rest) instead of spending descriptors the probes need.
//! - A client has [`HEADER_READ_TIMEOUT`] to send a request's headers,
//!   whether it is new, idle between requests or sending a byte at a time
//!   (slowloris); then the connection is closed.
//! - A connection lives at most [`MAX_CONNECTION_AGE`]: a client that does
//!   not read its answer cannot hold a descriptor for long.
//! - At start the soft descriptor limit is raised to the hard one, as
//!   servers do ([`raise_descriptor_limit`]), and the connection cap is
//!   taken from what is left once the probes have their share.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus::IntGauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long a client has to send a request's headers (also between two
/// requests on one connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection stays open; it is then closed after the
/// request in flight (or 5 s later, whatever it does).
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// Most connections served at once, whatever the descriptor limit allows.
pub const MAX_CONNECTIONS: usize = 256;

/// What the listener may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
}

impl Limits {
    /// The cap for a process allowed `descriptors` open files that probes
    /// `members` members: each probe holds a socket (all of a region's at
    /// once when it fails together), and the provider's client, token
    /// fetches and the resolver need some. The listener gets at most half
    /// of what is left, and never more than [`MAX_CONNECTIONS`].
    pub fn for_process(descriptors: u64, members: usize) -> Limits {
        let reserve = members as u64 + 128;
        let room = descriptors.saturating_sub(reserve) / 2;
        // A floor that keeps /healthz answering beside a few slow clients.
        let max = room.clamp(16, MAX_CONNECTIONS as u64) as usize;
        if room < 16 {
            warn!(
                descriptors,
                members, "the descriptor limit leaves little room for probes; raise it (ulimit -n)"
            );
        }
        Limits {
            max_connections: max,
        }
    }
}

/// Raises the soft limit on open descriptors to the hard limit; returns
/// the soft limit in force.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Serves `app` on `listener` within `limits` until `shutdown`; `open`
/// counts the connections open (`route53_failover_http_connections`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    open: IntGauge,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut accept_errors = 0u32;
    loop {
        // A slot first: at the cap, nothing more is accepted.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => return Ok(()),
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let stream = match stream {
            Ok((s, _)) => {
                accept_errors = 0;
                s
            }
            Err(e) => {
                // No descriptor left (EMFILE), the peer gone before accept:
                // wait a moment rather than spin, and say so now and then.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    warn!(error = %e, errors = accept_errors, "cannot accept a connection");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _slot = slot;
            open.inc();
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let closing = tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(error = %e, "connection ended");
                    }
                    false
                }
                _ = tokio::time::sleep(MAX_CONNECTION_AGE) => true,
                _ = stop.cancelled() => true,
            };
            if closing {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
            }
            open.dec();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_the_probes_their_descriptors() {
        // (descriptor limit, members) → cap
        let cases = [
            (1024, 3, 256),
            (1024, 600, 148),
            (1024, 3000, 16),
            (1_048_576, 3000, 256),
            (64, 3, 16),
        ];
        for (descriptors, members, want) in cases {
            let got = Limits::for_process(descriptors, members).max_connections;
            assert_eq!(got, want, "limit {descriptors}, {members} members");
            if want > 16 {
                assert!(
                    got as u64 + members as u64 + 128 <= descriptors,
                    "the listener never takes the probes' share"
                );
            }
        }
    }
}
