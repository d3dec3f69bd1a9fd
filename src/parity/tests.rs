use super::compare::normalize;
use super::fetch::all_pages;
use super::*;

/// The same API as a region would hold it: ids, ARNs and hosts that name
/// the region or are made up by it.
fn served(region: &str, id: &str) -> Served {
    Served {
        endpoint_type: Some("REGIONAL".into()),
        security_policy: Some("TLS_1_2".into()),
        truststore_uri: None,
        mappings: vec![MappingFacts {
            key: String::new(),
            stage: "prod".into(),
            stage_facts: Some(StageFacts {
                auto_deploy: Some(true),
                throttling_burst: Some(100),
                throttling_rate: Some(50.0),
                last_updated: Some(1_700_000_000.0),
            }),
            routes: vec![
                RouteFacts {
                    key: "GET /orders".into(),
                    authorization_type: Some("JWT".into()),
                    authorizer_id: Some(format!("auth{id}")),
                    scopes: vec!["read".into(), "orders".into()],
                    api_key_required: Some(false),
                    target: Some(format!("integrations/int{id}")),
                },
                RouteFacts {
                    key: "GET /health".into(),
                    authorization_type: Some("NONE".into()),
                    target: Some(format!("integrations/lam{id}")),
                    ..Default::default()
                },
            ],
            authorizers: vec![AuthorizerFacts {
                id: format!("auth{id}"),
                name: "jwt".into(),
                authorizer_type: Some("JWT".into()),
                identity_source: vec!["$request.header.Authorization".into()],
                issuer: Some("https://auth.example.com/".into()),
                audience: vec!["a".into(), "b".into()],
                uri: None,
            }],
            integrations: vec![
                IntegrationFacts {
                    id: format!("int{id}"),
                    integration_type: Some("HTTP_PROXY".into()),
                    method: Some("ANY".into()),
                    uri: Some(format!(
                        "https://orders.{region}.internal.example.com/{{proxy}}"
                    )),
                    tls_server_name: Some("orders.example.com".into()),
                    timeout_ms: Some(30_000),
                    payload_format_version: Some("1.0".into()),
                    connection_type: Some("INTERNET".into()),
                },
                IntegrationFacts {
                    id: format!("lam{id}"),
                    integration_type: Some("AWS_PROXY".into()),
                    uri: Some(format!(
                        "arn:aws:lambda:{region}:123456789012:function:health"
                    )),
                    payload_format_version: Some("2.0".into()),
                    ..Default::default()
                },
            ],
            unread: Vec::new(),
        }],
    }
}

fn report(read: Vec<(&str, Served)>) -> ParityReport {
    ParityReport::new(
        1.0,
        read.into_iter()
            .map(|(r, s)| (r.to_string(), Ok(s)))
            .collect(),
        &[],
    )
}

fn lines(r: &ParityReport) -> Vec<&str> {
    r.differences.iter().map(|d| d.line.as_str()).collect()
}

#[test]
fn normalize_takes_the_region_out_of_arns_and_uris_only() {
    let table = [
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:f",
            "arn:aws:lambda:{region}:123456789012:function:f",
        ),
        (
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:1:function:f/invocations",
            "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:1:function:f/invocations",
        ),
        (
            "https://backend.eu-west-1.example.com/{proxy}",
            "https://backend.{region}.example.com/{proxy}",
        ),
        (
            "https://k3x9a1.execute-api.eu-west-1.amazonaws.com/prod",
            "https://{api}.execute-api.{region}.amazonaws.com/prod",
        ),
        // A region's own load balancer, listener and target group: by
        // type and name; a Cloud Map service: by type.
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/api-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
            "arn:aws:elasticloadbalancing:{region}:123456789012:listener/app/api-alb",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/api-nlb/7a1b2c3d4e5f6a7b/9c8d7e6f5a4b3c2d",
            "arn:aws:elasticloadbalancing:{region}:123456789012:listener/net/api-nlb",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/api-alb/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/app/api-alb",
        ),
        (
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-tg/73e2d6bc24d8a067",
            "arn:aws:elasticloadbalancing:{region}:123456789012:targetgroup/api-tg",
        ),
        (
            "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-e4anhexw6ajg3mtn",
            "arn:aws:servicediscovery:{region}:123456789012:service/{id}",
        ),
        // Not an ARN or a URI: a name that happens to hold the region stays.
        ("orders-eu-west-1", "orders-eu-west-1"),
        ("GET /eu-west-1/orders", "GET /eu-west-1/orders"),
    ];
    for (input, want) in table {
        assert_eq!(normalize("eu-west-1", input), want, "{input}");
    }
}

#[test]
fn the_same_api_with_its_own_ids_in_each_region_is_in_sync() {
    let r = report(vec![
        ("us-east-1", served("us-east-1", "1")),
        ("eu-west-1", served("eu-west-1", "2")),
        ("ap-southeast-2", served("ap-southeast-2", "3")),
    ]);
    assert_eq!(lines(&r), Vec::<&str>::new());
    assert_eq!(r.state, ParityState::InSync);
    assert_eq!(
        r.headline(),
        "in sync (us-east-1, eu-west-1, ap-southeast-2)"
    );
}

#[test]
fn order_means_nothing_in_lists_routes_or_pages() {
    let a = served("us-east-1", "1");
    let mut b = served("eu-west-1", "2");
    let m = &mut b.mappings[0];
    m.routes.reverse();
    m.integrations.reverse();
    m.routes[1].scopes.reverse();
    m.authorizers[0].audience.reverse();
    let r = report(vec![("us-east-1", a), ("eu-west-1", b)]);
    assert_eq!(lines(&r), Vec::<&str>::new());
}

#[test]
fn each_difference_is_one_line_naming_the_regions_and_values() {
    type Edit = fn(&mut MappingFacts);
    let table: Vec<(Edit, &str, &str)> = vec![
        (
            |m| m.routes.retain(|r| r.key != "GET /health"),
            "route",
            r#"eu-west-1 lacks route "GET /health""#,
        ),
        (
            |m| m.authorizers[0].audience = vec!["a".into()],
            "authorizer",
            r#"authorizer "jwt" audience differs: us-east-1 [a, b], eu-west-1 [a]"#,
        ),
        (
            |m| {
                m.authorizers[0].issuer =
                    Some("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X".into())
            },
            "authorizer",
            r#"authorizer "jwt" issuer differs: us-east-1 https://auth.example.com/, eu-west-1 https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X"#,
        ),
        (
            |m| m.integrations[0].tls_server_name = Some("orders.eu.example.com".into()),
            "integration",
            r#"integration of route "GET /orders" tls server name differs: us-east-1 orders.example.com, eu-west-1 orders.eu.example.com"#,
        ),
        (
            |m| {
                m.integrations[1].uri =
                    Some("arn:aws:lambda:eu-west-1:123456789012:function:health-v2".into())
            },
            "integration",
            r#"integration of route "GET /health" uri differs: us-east-1 arn:aws:lambda:{region}:123456789012:function:health, eu-west-1 arn:aws:lambda:{region}:123456789012:function:health-v2"#,
        ),
        (
            |m| m.routes[0].authorization_type = Some("NONE".into()),
            "route",
            r#"route "GET /orders" authorization differs: us-east-1 JWT, eu-west-1 NONE"#,
        ),
        (
            |m| m.stage = "staging".into(),
            "mapping",
            r#"mapping "(none)" stage differs: us-east-1 prod, eu-west-1 staging"#,
        ),
        (
            |m| m.stage_facts = None,
            "stage",
            r#"eu-west-1 lacks stage of mapping "(none)""#,
        ),
        (
            |m| m.stage_facts.as_mut().unwrap().throttling_rate = Some(10.0),
            "stage",
            r#"stage of mapping "(none)" throttling differs: us-east-1 burst 100, rate 50, eu-west-1 burst 100, rate 10"#,
        ),
    ];
    for (edit, kind, want) in table {
        let mut b = served("eu-west-1", "2");
        edit(&mut b.mappings[0]);
        let r = report(vec![
            ("us-east-1", served("us-east-1", "1")),
            ("eu-west-1", b),
        ]);
        assert_eq!(lines(&r), vec![want]);
        assert_eq!(r.differences[0].kind, kind);
        assert_eq!(r.state, ParityState::Differs);
        assert_eq!(r.counts(), vec![(kind, 1)]);
    }
}

#[test]
fn the_domain_settings_are_compared() {
    let mut b = served("eu-west-1", "2");
    b.security_policy = Some("TLS_1_0".into());
    b.truststore_uri = Some("s3://truststores-eu-west-1/ca.pem".into());
    let mut a = served("us-east-1", "1");
    a.truststore_uri = Some("s3://truststores-us-east-1/ca.pem".into());
    let r = report(vec![("us-east-1", a), ("eu-west-1", b)]);
    assert_eq!(
        lines(&r),
        vec!["custom domain tls policy differs: us-east-1 TLS_1_2, eu-west-1 TLS_1_0"],
        "the same truststore, named after each region, is no difference"
    );
}

#[test]
fn what_sits_under_a_missing_mapping_or_route_is_not_repeated() {
    let mut a = served("us-east-1", "1");
    let mut v2 = a.mappings[0].clone();
    v2.key = "v2".into();
    a.mappings.push(v2);
    let mut b = served("eu-west-1", "2");
    b.mappings[0].routes.retain(|r| r.key != "GET /orders");
    let r = report(vec![("us-east-1", a), ("eu-west-1", b)]);
    assert_eq!(
        lines(&r),
        vec![
            r#"eu-west-1 lacks mapping "v2""#,
            r#"eu-west-1 lacks route "GET /orders""#,
        ],
        "neither the v2 mapping's routes nor the missing route's integration are listed again"
    );
}

#[test]
fn a_region_that_cannot_be_read_is_shown_not_taken_for_drift() {
    let r = ParityReport::new(
        1.0,
        vec![
            ("us-east-1".into(), Ok(served("us-east-1", "1"))),
            ("eu-west-1".into(), Ok(served("eu-west-1", "2"))),
            (
                "ap-southeast-2".into(),
                Err("GetRoutes api3: AccessDeniedException".into()),
            ),
        ],
        &[],
    );
    assert_eq!(r.state, ParityState::Unknown);
    assert!(r.differences.is_empty());
    assert_eq!(r.regions, vec!["us-east-1", "eu-west-1"]);
    assert_eq!(
        r.summary(),
        "unknown (compared: us-east-1, eu-west-1); ap-southeast-2 not read: GetRoutes api3: AccessDeniedException"
    );
}

#[test]
fn ignore_rules_parse_and_match_by_kind_field_and_subject() {
    let mut b = served("eu-west-1", "2");
    b.mappings[0].routes.retain(|r| r.key != "GET /health");
    b.mappings[0].stage_facts.as_mut().unwrap().auto_deploy = Some(false);
    let read = || {
        vec![
            ("us-east-1".to_string(), Ok(served("us-east-1", "1"))),
            ("eu-west-1".to_string(), Ok(b.clone())),
        ]
    };
    let table: [(&[&str], usize); 6] = [
        (&[], 2),
        (&["route"], 1),
        (&["route.missing:GET /health"], 1),
        (&["route.missing:GET /h*"], 1),
        (&["route.missing:GET /orders"], 2),
        (&["route.authorization", "stage.auto_deploy"], 1),
    ];
    for (rules, left) in table {
        let rules: Vec<IgnoreRule> = rules
            .iter()
            .map(|s| IgnoreRule::parse(s).unwrap())
            .collect();
        let r = ParityReport::new(1.0, read(), &rules);
        assert_eq!(r.differences.len(), left, "{rules:?}");
        assert_eq!(r.ignored, 2 - left);
    }
    for (bad, why) in [
        ("routes", "no kind of difference \"routes\""),
        ("route.audience", "route has no field \"audience\""),
        ("route.missing:", "the subject after ':' is empty"),
    ] {
        let e = IgnoreRule::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[tokio::test]
async fn pages_are_merged_in_order_and_a_token_loop_is_refused() {
    let pages = |token: Option<String>| async move {
        Ok::<_, String>(match token.as_deref() {
            None => (vec![1, 2], Some("b".to_string())),
            Some("b") => (vec![3], Some("c".to_string())),
            Some("c") => (vec![4, 5], Some(String::new())),
            Some(t) => panic!("unexpected token {t}"),
        })
    };
    assert_eq!(all_pages(pages).await.unwrap(), vec![1, 2, 3, 4, 5]);

    let looping = |token: Option<String>| async move {
        Ok::<_, String>((
            vec![0],
            Some(if token.is_none() { "x" } else { "y" }.to_string()),
        ))
    };
    let e = all_pages(looping).await.unwrap_err();
    assert!(e.contains("repeats its page token \"y\""), "{e}");

    let failing = |token: Option<String>| async move {
        match token {
            None => Ok((vec![1], Some("next".to_string()))),
            Some(_) => Err("GetRoutes api1: TooManyRequestsException".to_string()),
        }
    };
    assert_eq!(
        all_pages(failing).await.unwrap_err(),
        "GetRoutes api1: TooManyRequestsException",
        "a failed page fails the listing: half a listing would read as drift"
    );
}

proptest::proptest! {
    /// Whatever routes each of three regions has, the same API never
    /// differs from itself, and each region lacking a route another has is
    /// exactly one `missing` line (nothing under it repeated), in any order
    /// the pages came in.
    #[test]
    fn missing_routes_are_counted_once_each(
        have in proptest::collection::vec(proptest::collection::btree_set(0usize..6, 0..6), 3),
        reverse in proptest::prelude::any::<bool>(),
    ) {
        let regions = ["us-east-1", "eu-west-1", "ap-southeast-2"];
        let build = |i: usize, keys: &std::collections::BTreeSet<usize>| {
            let mut s = served(regions[i], &i.to_string());
            let m = &mut s.mappings[0];
            let template = m.routes[1].clone();
            m.routes = keys
                .iter()
                .map(|k| RouteFacts { key: format!("GET /r{k}"), ..template.clone() })
                .collect();
            if reverse && i == 1 {
                m.routes.reverse();
            }
            (regions[i], s)
        };
        let same = report(vec![build(0, &have[0]), build(1, &have[0])]);
        proptest::prop_assert!(same.differences.is_empty(), "{:?}", lines(&same));

        let read = (0..3).map(|i| build(i, &have[i])).collect();
        let r = report(read);
        let all: std::collections::BTreeSet<usize> = have.iter().flatten().copied().collect();
        let want: usize = have.iter().map(|keys| all.len() - keys.len()).sum();
        proptest::prop_assert_eq!(r.differences.len(), want, "{:?}", lines(&r));
        proptest::prop_assert!(r.differences.iter().all(|d| d.kind == "route" && d.field == "missing"));
    }
}

#[test]
fn a_listing_that_cannot_be_read_leaves_only_its_kind_out() {
    // eu-west-1's authorizers cannot be read (an IAM policy without
    // GetAuthorizers; moto answers 500) and it lacks a route.
    let mut west = served("eu-west-1", "2");
    let m = &mut west.mappings[0];
    m.authorizers.clear();
    m.unread = vec![(Kind::Authorizer, "GetAuthorizers api2: 500".into())];
    m.routes.retain(|r| r.key != "GET /health");
    let r = report(vec![
        ("us-east-1", served("us-east-1", "1")),
        ("eu-west-1", west),
    ]);
    assert_eq!(
        lines(&r),
        vec!["eu-west-1 lacks route \"GET /health\""],
        "routes and integrations compared; no authorizer counted missing, no route's authorizer counted different"
    );
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].region, "eu-west-1");
    assert!(r.errors[0].error.contains("GetAuthorizers"));
    assert_eq!(r.state, ParityState::Differs);
    // Nothing else differs: the state says it could not tell.
    let mut west = served("eu-west-1", "2");
    west.mappings[0].authorizers.clear();
    west.mappings[0].unread = vec![(Kind::Authorizer, "GetAuthorizers api2: 500".into())];
    let r = report(vec![
        ("us-east-1", served("us-east-1", "1")),
        ("eu-west-1", west),
    ]);
    assert!(r.differences.is_empty(), "{:?}", r.differences);
    assert_eq!(r.state, ParityState::Unknown);
    // Routes unread: their integrations are unread with them.
    let mut west = served("eu-west-1", "2");
    west.mappings[0].routes.clear();
    west.mappings[0].unread = vec![(Kind::Route, "GetRoutes api2: AccessDenied".into())];
    let r = report(vec![
        ("us-east-1", served("us-east-1", "1")),
        ("eu-west-1", west),
    ]);
    assert!(r.differences.is_empty(), "{:?}", r.differences);
}

#[test]
fn integrations_through_each_regions_own_alb_are_in_sync() {
    let alb = |region: &str, lb: &str, listener: &str| {
        format!("arn:aws:elasticloadbalancing:{region}:123456789012:listener/app/api-alb/{lb}/{listener}")
    };
    let mut east = served("us-east-1", "1");
    let mut west = served("eu-west-1", "2");
    for (s, uri) in [
        (
            &mut east,
            alb("us-east-1", "50dc6c495c0c9188", "f2f7dc8efc522ab2"),
        ),
        (
            &mut west,
            alb("eu-west-1", "9a8b7c6d5e4f3a2b", "1c2d3e4f5a6b7c8d"),
        ),
    ] {
        let i = &mut s.mappings[0].integrations[0];
        i.uri = Some(uri);
        i.connection_type = Some("VPC_LINK".into());
    }
    let r = report(vec![("us-east-1", east.clone()), ("eu-west-1", west)]);
    assert!(r.differences.is_empty(), "{:?}", lines(&r));
    // Another load balancer by name is a difference all the same.
    let mut other = served("eu-west-1", "2");
    let i = &mut other.mappings[0].integrations[0];
    i.uri = Some(
        alb("eu-west-1", "9a8b7c6d5e4f3a2b", "1c2d3e4f5a6b7c8d").replace("api-alb", "old-alb"),
    );
    i.connection_type = Some("VPC_LINK".into());
    let r = report(vec![("us-east-1", east), ("eu-west-1", other)]);
    assert_eq!(r.differences.len(), 1, "{:?}", lines(&r));
    assert!(r.differences[0].line.contains("uri differs"));
}
