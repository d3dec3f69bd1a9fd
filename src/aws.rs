//! What every AWS client here starts from: the SDK's configuration for one
//! region from the default credential chain, sent to an emulator's
//! `endpoint_url` when one is configured. Each client adds its own
//! settings on top (retries off, attempt timeouts, test credentials).

use std::collections::HashMap;

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};

/// The loader for `region`, talking to `endpoint_url` when given.
pub fn loader(region: &str, endpoint_url: Option<&str>) -> ConfigLoader {
    let loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    match endpoint_url {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
}

/// One client for each distinct region of `regions`, made by `client` from
/// that region's [`loader`].
pub async fn per_region<'a, C>(
    regions: impl IntoIterator<Item = &'a str>,
    endpoint_url: Option<&str>,
    client: impl Fn(&SdkConfig) -> C,
) -> HashMap<String, C> {
    let mut clients = HashMap::new();
    for region in regions {
        if !clients.contains_key(region) {
            let shared = loader(region, endpoint_url).load().await;
            clients.insert(region.to_string(), client(&shared));
        }
    }
    clients
}
