//! Claims on switches, in the state store's `claims` space, which every
//! install of the table sees: a routing control is set by one install
//! only. Two installs naming one switch (staging pointed at production's
//! ARN, a blue/green pair) would otherwise set it back and forth at every
//! read. A claim is taken at start and at each reload for every switch
//! the config names; one held by another owner refuses the start (exit 2)
//! or the reload, naming that owner. A claim stays until it is deleted
//! from the table (`docs/design.md#the-state-store`).

use tracing::warn;

use crate::store::{Condition, Space, StateStore, StoreError};

/// Claims every switch of `arns` for `owner`. `Err`: one is another
/// owner's (the message names both). A store that does not answer now is
/// no reason to hold failover back: warned, and taken again at the next
/// reload or start.
pub async fn claim<'a>(
    store: &dyn StateStore,
    owner: &str,
    arns: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let arns: Vec<&str> = arns.into_iter().collect();
    // Every claim read first: a refusal takes none.
    let mut free = Vec::new();
    for &arn in &arns {
        match store.get(Space::Claims, arn).await {
            Ok(Some(item)) if item.value == owner => {}
            Ok(Some(item)) => return Err(held(arn, &item.value, owner)),
            Ok(None) => free.push(arn),
            Err(e) => return unanswered(arn, e),
        }
    }
    for arn in free {
        match claim_one(store, owner, arn).await {
            Ok(()) => {}
            Err(Held(by)) => return Err(held(arn, &by, owner)),
            Err(Failed(e)) => return unanswered(arn, e),
        }
    }
    Ok(())
}

fn held(arn: &str, by: &str, owner: &str) -> String {
    format!(
        "routing control {arn} is claimed by owner {by:?} (in the state store's claims); \
         this install is {owner:?}: give each install its own switches"
    )
}

/// The store did not answer: no reason to hold failover back.
fn unanswered(arn: &str, e: StoreError) -> Result<(), String> {
    warn!(routing_control = %arn, error = %e, "cannot claim the switch now; taken again at the next start or reload");
    Ok(())
}

enum Refused {
    Held(String),
    Failed(StoreError),
}
use Refused::{Failed, Held};

async fn claim_one(store: &dyn StateStore, owner: &str, arn: &str) -> Result<(), Refused> {
    // Twice at most: a claim taken between the read and the write is read
    // again.
    for _ in 0..2 {
        match store.get(Space::Claims, arn).await.map_err(Failed)? {
            Some(item) if item.value == owner => return Ok(()),
            Some(item) => return Err(Held(item.value)),
            None => match store
                .put(Space::Claims, arn, owner, Condition::Absent)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(Failed(e)),
            },
        }
    }
    Err(Failed(StoreError::Conflict(format!(
        "claims/{arn} keeps changing"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_switch_is_claimed_once_and_another_owner_is_refused_by_name() {
        let prod = MemoryStore::new("prod");
        let staging = prod.for_owner("staging");
        let arns = ["arn:a", "arn:b"];
        claim(&prod, "prod", arns).await.unwrap();
        // Again, as at a restart: its own claims are no conflict.
        claim(&prod, "prod", arns).await.unwrap();
        let err = claim(&staging, "staging", ["arn:c", "arn:b"])
            .await
            .unwrap_err();
        assert!(err.contains("arn:b is claimed by owner \"prod\""), "{err}");
        assert!(err.contains("\"staging\""), "{err}");
        // A refused claim takes nothing: not even the switch that was free.
        assert_eq!(staging.get(Space::Claims, "arn:c").await.unwrap(), None);
        let kept = staging.get(Space::Claims, "arn:b").await.unwrap().unwrap();
        assert_eq!(kept.value, "prod");
    }
}
