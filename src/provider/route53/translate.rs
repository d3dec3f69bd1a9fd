//! Translation at the SDK's edge: records, changes and health checks
//! between the SDK's types and the daemon's, names between Route53's form
//! and ours, and SDK errors into what the reconciler does with them.

use aws_sdk_route53 as r53;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use r53::types::{
    AliasTarget as SdkAlias, ResourceRecord, ResourceRecordSet, ResourceRecordSetRegion, RrType,
};

use crate::provider::{
    normalize_name, AliasTarget, ChangeStatus, HealthCheck, HealthCheckConfig, HealthCheckType,
    ProviderError, RecordSet, RecordType,
};

/// Sorts an SDK error into what the reconciler does with it.
pub(super) fn classify<E, R>(err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let text = || {
        let msg = err.message().map(str::to_string);
        msg.unwrap_or_else(|| aws_sdk_route53::error::DisplayErrorContext(&err).to_string())
    };
    match &err {
        SdkError::TimeoutError(_) => ProviderError::Timeout(text()),
        SdkError::DispatchFailure(d) if d.is_timeout() => ProviderError::Timeout(text()),
        SdkError::ServiceError(_) => match err.code() {
            Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
                ProviderError::Throttling(text())
            }
            Some("PriorRequestNotComplete") => ProviderError::PriorRequestNotComplete(text()),
            Some("InvalidChangeBatch") => ProviderError::InvalidChangeBatch(text()),
            Some("NoSuchHostedZone") => ProviderError::NoSuchHostedZone(text()),
            Some("AccessDenied" | "AccessDeniedException") => ProviderError::AccessDenied(text()),
            Some("NoSuchHealthCheck") => ProviderError::NoSuchHealthCheck(text()),
            Some("HealthCheckAlreadyExists") => ProviderError::HealthCheckAlreadyExists(text()),
            Some("HealthCheckVersionMismatch") => ProviderError::HealthCheckVersionMismatch(text()),
            Some("HealthCheckInUse") => ProviderError::HealthCheckInUse(text()),
            Some("InvalidInput" | "TooManyHealthChecks" | "InvalidArgument") => {
                ProviderError::InvalidInput(format!("{}: {}", err.code().unwrap_or(""), text()))
            }
            code => ProviderError::Service(format!("{}: {}", code.unwrap_or("error"), text())),
        },
        _ => ProviderError::Service(text()),
    }
}

/// `/hostedzone/Z123` → `Z123`; `/change/C123` → `C123`.
pub(super) fn bare_id(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_string()
}

/// Route53 escapes some characters in names as `\NNN` (octal).
pub(super) fn decode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3 && digits.chars().all(|d| d.is_digit(8)) {
                if let Ok(code) = u8::from_str_radix(&digits, 8) {
                    out.push(code as char);
                    for _ in 0..3 {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        out.push(c);
    }
    normalize_name(&out)
}

pub(super) fn from_sdk(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: decode_name(r.name()),
        rtype: RecordType::from(r.r#type().as_str().to_string()),
        set_identifier: r.set_identifier().map(str::to_string),
        region: r.region().map(|x| x.as_str().to_string()),
        ttl: r.ttl().and_then(|t| u32::try_from(t).ok()),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| AliasTarget {
            dns_name: normalize_name(a.dns_name()),
            hosted_zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        health_check_id: r.health_check_id().map(str::to_string),
    }
}

pub(super) fn to_sdk(r: &RecordSet) -> Result<ResourceRecordSet, ProviderError> {
    let mut b = ResourceRecordSet::builder()
        .name(format!("{}.", r.name))
        .r#type(RrType::from(r.rtype.to_string().as_str()))
        .set_set_identifier(r.set_identifier.clone())
        .set_region(r.region.as_deref().map(ResourceRecordSetRegion::from))
        .set_ttl(r.ttl.map(i64::from))
        .set_health_check_id(r.health_check_id.clone());
    for v in &r.values {
        let rr = ResourceRecord::builder()
            .value(v)
            .build()
            .map_err(|e| ProviderError::Service(e.to_string()))?;
        b = b.resource_records(rr);
    }
    if let Some(a) = &r.alias {
        let alias = SdkAlias::builder()
            .dns_name(format!("{}.", a.dns_name))
            .hosted_zone_id(&a.hosted_zone_id)
            .evaluate_target_health(a.evaluate_target_health)
            .build()
            .map_err(|e| ProviderError::Service(e.to_string()))?;
        b = b.alias_target(alias);
    }
    b.build().map_err(|e| ProviderError::Service(e.to_string()))
}

/// ChangeResourceRecordSets and GetChange both answer with a ChangeInfo.
pub(super) fn change_info(
    info: Option<&r53::types::ChangeInfo>,
) -> Result<&r53::types::ChangeInfo, ProviderError> {
    info.ok_or_else(|| ProviderError::Service("no ChangeInfo in the answer".into()))
}

pub(super) fn status(s: &r53::types::ChangeStatus) -> ChangeStatus {
    match s {
        r53::types::ChangeStatus::Insync => ChangeStatus::Insync,
        _ => ChangeStatus::Pending,
    }
}

pub(super) fn build_err(e: r53::error::BuildError) -> ProviderError {
    ProviderError::Service(e.to_string())
}

pub(super) fn check_to_sdk(
    c: &HealthCheckConfig,
) -> Result<r53::types::HealthCheckConfig, ProviderError> {
    if let Some(arn) = &c.routing_control_arn {
        // A RECOVERY_CONTROL check takes the routing control alone.
        return r53::types::HealthCheckConfig::builder()
            .r#type(r53::types::HealthCheckType::RecoveryControl)
            .routing_control_arn(arn)
            .build()
            .map_err(build_err);
    }
    if c.kind == HealthCheckType::Calculated {
        // A CALCULATED check takes its children and threshold alone.
        return r53::types::HealthCheckConfig::builder()
            .r#type(r53::types::HealthCheckType::Calculated)
            .set_child_health_checks(Some(c.child_health_checks.clone()))
            .health_threshold(c.health_threshold as i32)
            .build()
            .map_err(build_err);
    }
    r53::types::HealthCheckConfig::builder()
        .r#type(r53::types::HealthCheckType::from(c.kind.as_str()))
        .set_ip_address(c.ip_address.clone())
        .set_fully_qualified_domain_name(c.fqdn.clone())
        .port(i32::from(c.port))
        .resource_path(&c.resource_path)
        .set_search_string(c.search_string.clone())
        .request_interval(c.request_interval as i32)
        .failure_threshold(c.failure_threshold as i32)
        .measure_latency(c.measure_latency)
        .enable_sni(c.enable_sni)
        .set_regions(sdk_regions(&c.regions))
        .build()
        .map_err(build_err)
}

pub(super) fn sdk_regions(regions: &[String]) -> Option<Vec<r53::types::HealthCheckRegion>> {
    (!regions.is_empty()).then(|| {
        regions
            .iter()
            .map(|r| r53::types::HealthCheckRegion::from(r.as_str()))
            .collect()
    })
}

pub(super) fn check_from_sdk(h: &r53::types::HealthCheck) -> HealthCheck {
    let c = h.health_check_config();
    let mut regions: Vec<String> = c
        .map(|c| c.regions().iter().map(|r| r.as_str().to_string()).collect())
        .unwrap_or_default();
    regions.sort();
    let num = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    HealthCheck {
        id: h.id().to_string(),
        caller_reference: h.caller_reference().to_string(),
        version: h.health_check_version(),
        config: only_own_fields(HealthCheckConfig {
            kind: HealthCheckType::from(
                c.map(|c| c.r#type().as_str().to_string())
                    .unwrap_or_default(),
            ),
            ip_address: c.and_then(|c| c.ip_address()).map(str::to_string),
            fqdn: c
                .and_then(|c| c.fully_qualified_domain_name())
                .map(str::to_string),
            port: c
                .and_then(|c| c.port())
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            resource_path: c
                .and_then(|c| c.resource_path())
                .unwrap_or_default()
                .to_string(),
            search_string: c.and_then(|c| c.search_string()).map(str::to_string),
            request_interval: num(c.and_then(|c| c.request_interval())),
            failure_threshold: num(c.and_then(|c| c.failure_threshold())),
            measure_latency: c.and_then(|c| c.measure_latency()).unwrap_or(false),
            enable_sni: c.and_then(|c| c.enable_sni()).unwrap_or(false),
            regions,
            routing_control_arn: c.and_then(|c| c.routing_control_arn()).map(str::to_string),
            child_health_checks: {
                let mut children: Vec<String> = c
                    .map(|c| c.child_health_checks().to_vec())
                    .unwrap_or_default();
                children.sort();
                children
            },
            health_threshold: num(c.and_then(|c| c.health_threshold())),
        }),
    }
}

/// What a `RECOVERY_CONTROL` or `CALCULATED` check is, whatever else
/// Route53 answers with for it (defaults it fills in): only its own
/// fields, so it compares equal to the config it was made with.
fn only_own_fields(mut c: HealthCheckConfig) -> HealthCheckConfig {
    match c.kind {
        HealthCheckType::RecoveryControl => HealthCheckConfig {
            kind: c.kind,
            routing_control_arn: c.routing_control_arn.take(),
            ..crate::decide::health_check::recovery_control("")
        },
        HealthCheckType::Calculated => {
            let mut own = crate::decide::health_check::recovery_control("");
            own.kind = c.kind;
            own.routing_control_arn = None;
            own.child_health_checks = std::mem::take(&mut c.child_health_checks);
            own.health_threshold = c.health_threshold;
            own
        }
        _ => c,
    }
}

pub(super) fn created(h: Option<&r53::types::HealthCheck>) -> Result<HealthCheck, ProviderError> {
    h.map(check_from_sdk)
        .ok_or_else(|| ProviderError::Service("no HealthCheck in the answer".into()))
}
