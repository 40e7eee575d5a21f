//! Webhook events as Carbon sends them: a body `{"payload": "<JSON text>"}`
//! whose payload names the event, the customer and the object, signed with
//! `Carbon-Signature: t=<unix>,v1=<hex HMAC-SHA256(key, "{t}.{body}")>`.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

pub use store::EventKind;

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One event, with its body. `additional_information` values are strings, as
/// Carbon's are; an empty one is the string "null". The object is under
/// `object` (Carbon's schema) and `obj` (Carbon's prose), identical.
pub fn body(
    kind: EventKind,
    customer_id: &str,
    object_type: &str,
    object_id: Value,
    info: &[(&str, String)],
) -> store::Event {
    let info: Value = if info.is_empty() {
        Value::String("null".into())
    } else {
        Value::Object(
            info.iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect(),
        )
    };
    let object = json!({
        "object_type": object_type,
        "object_id": object_id,
        "additional_information": info,
    });
    let payload = json!({
        "webhook_type": kind.as_str(),
        "customer_id": customer_id,
        "timestamp": unix_now().to_string(),
        "object": object,
        "obj": object,
    });
    store::Event {
        kind,
        body: json!({"payload": payload.to_string()}).to_string(),
    }
}

/// `t=...,v1=...` for a body.
pub fn signature(key: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Checks a `Carbon-Signature` header as a receiver would.
pub fn verify(key: &[u8], header: &str, body: &str) -> bool {
    let mut timestamp = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => given = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(given)) = (timestamp, given) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let key = b"0123456789abcdef";
        let body = body(
            EventKind::FileReady,
            "c1",
            "FILE",
            json!(42),
            &[("data_source_id", "7".into())],
        );
        let body = body.body;
        let header = signature(key, 1_700_000_000, &body);
        assert!(verify(key, &header, &body));
        assert!(!verify(b"another key", &header, &body));
        assert!(!verify(key, &header, &body.replace("42", "43")));
        assert!(!verify(key, "t=1,v1=zz", &body));
        // The payload is a JSON string holding the event.
        let outer: Value = serde_json::from_str(&body).unwrap();
        let inner: Value = serde_json::from_str(outer["payload"].as_str().unwrap()).unwrap();
        assert_eq!(inner["webhook_type"], "FILE_READY");
        assert_eq!(inner["object"]["object_id"], 42);
        assert_eq!(
            inner["object"]["additional_information"]["data_source_id"],
            "7"
        );
    }
}
