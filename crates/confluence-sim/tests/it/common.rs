//! Helpers: a simulator on port 0, an HTTP client acting as any account,
//! and the OpenAPI documents turned into JSON Schema validators.

use base64::Engine;
use confluence_sim::{RunningSimulator, SimConfig, SiteConfig};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct TestSim {
    pub sim: RunningSimulator,
    pub client: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn start(seed: u64, spaces: u32, pages: u32) -> TestSim {
    start_with(SimConfig {
        site: SiteConfig {
            seed,
            spaces,
            pages,
        },
        ..Default::default()
    })
    .await
}

pub async fn start_with(config: SimConfig) -> TestSim {
    let sim = confluence_sim::Simulator::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator binds a free port");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestSim { sim, client }
}

impl TestSim {
    pub fn base(&self) -> String {
        self.sim.base_url()
    }

    pub fn basic_for(&self, email: &str) -> String {
        let account = self
            .sim
            .accounts()
            .into_iter()
            .find(|a| a.email == email)
            .expect("known account");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", account.email, account.api_token))
        )
    }

    /// GET `path` (relative to the base URL) as the admin account.
    pub async fn get(&self, path: &str) -> Reply {
        self.get_as("admin@example.com", path).await
    }

    pub async fn get_as(&self, email: &str, path: &str) -> Reply {
        let auth = self.basic_for(email);
        self.get_with(&auth, path).await
    }

    pub async fn get_with(&self, authorization: &str, path: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}{}", self.base(), path))
            .header("authorization", authorization)
            .send()
            .await
            .expect("request reaches the simulator");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Follows `_links.next` from `path` to the end; every id once.
    pub async fn walk_ids(&self, email: &str, path: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(path) = next {
            let reply = self.get_as(email, &path).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            for item in reply.body["results"].as_array().unwrap() {
                ids.push(item["id"].as_str().unwrap().to_string());
            }
            next = reply.body["_links"]["next"].as_str().map(str::to_string);
            // The Link header and _links.next agree.
            let link = reply
                .headers
                .get("link")
                .map(|v| v.to_str().unwrap().to_string());
            match (&next, link) {
                (Some(n), Some(l)) => assert!(l.contains(&format!("<{n}>; rel=\"next\""))),
                (None, Some(l)) => assert!(!l.contains("rel=\"next\""), "{l}"),
                (Some(n), None) => panic!("next {n} without a Link header"),
                (None, None) => {}
            }
            pages += 1;
            assert!(pages < 10_000, "pagination does not end");
        }
        ids
    }

    pub async fn control_post(&self, path: &str, body: Value) -> Reply {
        let response = self
            .client
            .post(format!("{}{}", self.base(), path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// Where ../shared is: beside the repository, or CONFSYNC_SHARED_DIR.
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CONFSYNC_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Doc {
    V1,
    V2,
}

pub struct Schemas {
    v1: Value,
    v2: Value,
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let load = |name: &str| -> Value {
            let path = shared_dir().join("confluence-api").join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let mut doc: Value = serde_json::from_str(&text).unwrap();
            openapi_to_json_schema(&mut doc);
            doc
        };
        Schemas {
            v1: load("confluence-v1.openapi.json"),
            v2: load("confluence-v2.openapi.json"),
        }
    })
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: rewrite it so that
/// null is allowed where the document says so, and nowhere else.
fn openapi_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                openapi_to_json_schema(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                    if let Some(Value::Array(e)) = map.get_mut("enum") {
                        e.push(Value::Null);
                    }
                } else {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), serde_json::json!([inner, {"type": "null"}]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

impl Schemas {
    fn doc(&self, doc: Doc) -> &Value {
        match doc {
            Doc::V1 => &self.v1,
            Doc::V2 => &self.v2,
        }
    }

    /// The JSON schema of an operation's response, as the document gives it.
    pub fn response(&self, doc: Doc, path: &str, status: u16) -> Value {
        let schema = &self.doc(doc)["paths"][path]["get"]["responses"][status.to_string()]
            ["content"]["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "{doc:?} document has no {status} JSON schema for GET {path}"
        );
        schema.clone()
    }

    pub fn component(&self, name: &str) -> Value {
        assert!(
            !self.v1["components"]["schemas"][name].is_null(),
            "no component {name}"
        );
        serde_json::json!({"$ref": format!("#/components/schemas/{name}")})
    }

    /// Validates `instance` against `schema`, which may refer to the
    /// document's components; returns every violation.
    pub fn check(&self, doc: Doc, schema: Value, instance: &Value) -> Result<(), String> {
        let mut root = schema;
        if let Value::Object(map) = &mut root {
            map.insert("components".into(), self.doc(doc)["components"].clone());
        }
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("schema does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .take(10)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }
}
