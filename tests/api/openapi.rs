//! `openapi.yaml` describes exactly what the server serves.

use std::collections::BTreeSet;

use lephi::error::ErrorCode;
use lephi::http::ROUTES;

fn spec() -> serde_yaml::Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("openapi.yaml parses")
}

#[test]
fn every_served_route_is_documented_and_nothing_else() {
    let spec = spec();
    assert_eq!(
        spec["openapi"].as_str().unwrap_or_default().get(..3),
        Some("3.1")
    );
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["get", "post", "put", "patch", "delete"].contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served, documented);
}

#[test]
fn every_error_code_is_documented() {
    let spec = spec();
    let documented: BTreeSet<&str> =
        spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
            .as_sequence()
            .expect("Error.code lists its values")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    let used: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(used, documented);
}
