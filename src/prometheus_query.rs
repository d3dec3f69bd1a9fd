//! Asking a Prometheus server one instant query through its HTTP API
//! (`GET /api/v1/query`), for practice runs' blocking and outcome
//! condition (`decide::practice::Query`). The value is the query's
//! largest sample: a scalar, or the largest of a vector's series; `None`
//! when the vector is empty (no series).

use std::time::Duration;

use serde::Deserialize;

/// How long one query may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar((f64, String)),
    // Read only to be refused.
    Matrix(#[allow(dead_code)] serde::de::IgnoredAny),
    String(#[allow(dead_code)] serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Sample {
    value: (f64, String),
}

/// The value of `expr` now, at the server at `url`; the error says what
/// went wrong (no answer, an HTTP status, Prometheus's own error).
pub async fn ask(client: &reqwest::Client, url: &str, expr: &str) -> Result<Option<f64>, String> {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let resp = client
        .get(&endpoint)
        .query(&[("query", expr)])
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = resp.status();
    let answer: Answer = resp
        .json()
        .await
        .map_err(|e| format!("{endpoint} answered {status}, not a query result: {e}"))?;
    if answer.status != "success" {
        return Err(format!(
            "Prometheus: {}",
            answer.error.unwrap_or_else(|| answer.status.clone())
        ));
    }
    let number = |s: &str| {
        s.parse::<f64>()
            .map_err(|_| format!("Prometheus answered {s:?}, not a number"))
    };
    match answer.data {
        Some(Data::Scalar((_, v))) => number(&v).map(Some),
        Some(Data::Vector(samples)) => {
            let mut max: Option<f64> = None;
            for s in samples {
                let v = number(&s.value.1)?;
                max = Some(max.map_or(v, |m: f64| m.max(v)));
            }
            Ok(max)
        }
        Some(Data::Matrix(_) | Data::String(_)) | None => Err(
            "the query must give a number or an instant vector (not a range or a string)".into(),
        ),
    }
}
