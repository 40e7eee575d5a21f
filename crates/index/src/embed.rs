//! Embedding providers: the interface, and its OpenAI-compatible HTTP
//! implementation (`POST {base}/embeddings` with `model` and `input`).

use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding provider: {0}")]
    Provider(String),
    #[error("embedding provider answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// Turns texts into vectors, one per text, in order.
pub trait Embedder: Send + Sync {
    fn embed<'a>(&'a self, texts: &'a [String])
        -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>>;
    /// Texts sent in one request at most.
    fn batch_size(&self) -> usize {
        64
    }
}

/// Where an OpenAI-compatible provider is and how to call it.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// The API's base, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Dimensions asked of models that can shorten their vectors.
    pub dimensions: Option<usize>,
}

impl std::fmt::Debug for OpenAiConfig {
    // The key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    pub fn new(config: OpenAiConfig) -> Result<OpenAiEmbedder, EmbedError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| EmbedError::Provider(e.to_string()))?;
        Ok(OpenAiEmbedder { config, http })
    }

    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let mut body = serde_json::json!({"model": self.config.model, "input": texts});
        if let Some(dimensions) = self.config.dimensions {
            body["dimensions"] = dimensions.into();
        }
        let mut attempt = 0u32;
        loop {
            let mut request = self.http.post(&url).json(&body);
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let outcome = request.send().await;
            let retry = match outcome {
                Ok(response) if response.status().is_success() => {
                    let parsed: EmbeddingsResponse = response
                        .json()
                        .await
                        .map_err(|e| EmbedError::Provider(format!("unreadable answer: {e}")))?;
                    return order(parsed, texts.len());
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    let error = EmbedError::Status {
                        status,
                        body: text.chars().take(300).collect(),
                    };
                    if status == 429 || status >= 500 {
                        error
                    } else {
                        return Err(error);
                    }
                }
                Err(e) => EmbedError::Provider(e.to_string()),
            };
            attempt += 1;
            if attempt >= 4 {
                return Err(retry);
            }
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
    }
}

/// The vectors in input order, normalised to unit length (so that a dot
/// product is the cosine).
fn order(response: EmbeddingsResponse, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    if response.data.len() != expected {
        return Err(EmbedError::Provider(format!(
            "{} vectors for {expected} inputs",
            response.data.len()
        )));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
    for item in response.data {
        let slot = out
            .get_mut(item.index)
            .ok_or_else(|| EmbedError::Provider(format!("index {} out of range", item.index)))?;
        *slot = Some(normalize(item.embedding));
    }
    out.into_iter()
        .map(|v| v.ok_or_else(|| EmbedError::Provider("a vector is missing".into())))
        .collect()
}

pub fn normalize(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

impl Embedder for OpenAiEmbedder {
    fn embed<'a>(
        &'a self,
        texts: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(self.call(texts))
    }
}
