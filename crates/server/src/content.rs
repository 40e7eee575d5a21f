//! Content out of the store without search, as a RAG application reads it:
//! a file's Markdown and its raw body through short-lived signed links
//! (Carbon's presigned URLs: `GET /parsed_file/{id}`, `/raw_file/{id}`),
//! and its chunks with their vectors (`/text_chunks`,
//! `/list_chunks_and_embeddings`).
//!
//! A link is `{public_url}/file_contents/{id}/{parsed|raw}?expires=..&signature=..`,
//! an HMAC-SHA256 over the file, the kind and the expiry with a key derived
//! from the store's secret key: it works without credentials until it
//! expires, as an S3 presigned URL does, and names one file only. What it
//! serves comes from Confluence pages and attachments, so it is served as
//! a download, sandboxed, never rendered as confsync's own page.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, CustomerCaller};
use crate::model::*;
use crate::routes::{caller_file, end_user, file_query, page, path_id};
use crate::{App, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use store::SyncState;

/// How long a link works.
const LINK_SECONDS: i64 = 3600;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Part {
    /// The Markdown (a page's) or extracted text (an attachment's).
    Parsed,
    /// The storage-format body (a page's), or the attachment's bytes.
    Raw,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Parsed => "parsed",
            Part::Raw => "raw",
        }
    }
}

fn signature(key: &[u8], file_id: i64, part: Part, expires: i64) -> Hmac<sha2::Sha256> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(format!("{file_id}:{}:{expires}", part.name()).as_bytes());
    mac
}

/// A link to one part of a file, working for an hour.
pub fn presigned_url(app: &App, file_id: i64, part: Part) -> String {
    let expires = chrono::Utc::now().timestamp() + LINK_SECONDS;
    let signature = hex::encode(
        signature(&app.link_key, file_id, part, expires)
            .finalize()
            .into_bytes(),
    );
    format!(
        "{}/file_contents/{file_id}/{}?expires={expires}&signature={signature}",
        app.config.public_url().trim_end_matches('/'),
        part.name()
    )
}

/// GET /parsed_file/{file_id}
pub async fn parsed_file(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Path(file_id): Path<String>,
) -> ApiResult<Json<PresignedUrlResponse>> {
    link(&app, &caller, &file_id, Part::Parsed).await
}

/// GET /raw_file/{file_id}
pub async fn raw_file(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Path(file_id): Path<String>,
) -> ApiResult<Json<PresignedUrlResponse>> {
    link(&app, &caller, &file_id, Part::Raw).await
}

/// A link to a part of the caller's file (404 for anyone else's).
async fn link(
    app: &App,
    caller: &CustomerCaller,
    file_id: &str,
    part: Part,
) -> ApiResult<Json<PresignedUrlResponse>> {
    let file_id = path_id("file_id", file_id)?;
    caller_file(app, caller, file_id).await?;
    Ok(Json(PresignedUrlResponse {
        presigned_url: presigned_url(app, file_id, part),
    }))
}

#[derive(Deserialize)]
pub struct Signed {
    // Strings, read here: a malformed link gets confsync's JSON error.
    expires: Option<String>,
    signature: Option<String>,
}

/// GET /file_contents/{file_id}/{part}: what a presigned link serves.
pub async fn download(
    State(app): State<AppState>,
    Path((file_id, part)): Path<(String, String)>,
    Query(signed): Query<Signed>,
) -> ApiResult<Response> {
    let file_id = path_id("file_id", &file_id)?;
    let part = match part.as_str() {
        "parsed" => Part::Parsed,
        "raw" => Part::Raw,
        _ => return Err(ApiError::not_found("file part")),
    };
    let invalid = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "link_invalid",
            "this link is not one confsync signed",
        )
    };
    let expires = signed.expires.and_then(|e| e.parse::<i64>().ok());
    let (Some(expires), Some(given)) = (expires, signed.signature) else {
        return Err(invalid());
    };
    let given = hex::decode(given).map_err(|_| invalid())?;
    signature(&app.link_key, file_id, part, expires)
        .verify_slice(&given)
        .map_err(|_| invalid())?;
    if expires < chrono::Utc::now().timestamp() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "link_expired",
            "this link has expired: ask for a new one",
        ));
    }
    let content = app
        .store
        .file_content(file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let attachment = content.kind == "attachment";
    let stem = file_name(&content.title);
    match part {
        Part::Parsed => {
            let text = if attachment {
                content.markdown.or(content.body)
            } else {
                content.markdown
            }
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no_parsed_text",
                    "this file has no text (an attachment of a kind confsync does not read)",
                )
            })?;
            let (kind, name) = if attachment {
                ("text/plain; charset=utf-8", format!("{stem}.txt"))
            } else {
                ("text/markdown; charset=utf-8", format!("{stem}.md"))
            };
            Ok(served(text.into_bytes(), kind, &name))
        }
        Part::Raw if !attachment => {
            let body = content
                .body
                .ok_or_else(|| ApiError::not_found("file body"))?;
            Ok(served(
                body.into_bytes(),
                "application/xml; charset=utf-8",
                &format!("{stem}.xml"),
            ))
        }
        Part::Raw => {
            // The attachment's bytes are not kept: they are fetched from
            // Confluence with the connection's credentials (on its origin
            // only, as every request of a connection is).
            let connection = app.store.connection(&content.connection_id).await?;
            if connection.revoked {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "access_revoked",
                    "this file's data source was revoked",
                ));
            }
            let client = crate::connection::client_for(&app, &connection)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "confluence_error", e))?;
            let confluence = |e: confluence::Error| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "confluence_error",
                    format!("Confluence did not give the attachment: {e}"),
                )
            };
            if !content
                .external_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ApiError::not_found("attachment"));
            }
            let meta: confluence::model::Attachment = client
                .get_json(&client.v2(&format!("/attachments/{}", content.external_id)))
                .await
                .map_err(confluence)?;
            let link = meta
                .download_link
                .as_deref()
                .ok_or_else(|| ApiError::not_found("attachment download"))?;
            let bytes = client
                .get_bytes(&client.resolve(link))
                .await
                .map_err(confluence)?;
            let kind = content
                .media_type
                .filter(|m| HeaderValue::from_str(m).is_ok() && m.contains('/'))
                .unwrap_or_else(|| "application/octet-stream".into());
            Ok(served(bytes.to_vec(), &kind, &content.title))
        }
    }
}

/// Bytes from Confluence, as a download that no browser runs as
/// confsync's page.
fn served(bytes: Vec<u8>, kind: &str, name: &str) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        file_name(name).replace('"', "'"),
        rfc5987(name)
    );
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// RFC 5987's encoding of a UTF-8 file name.
fn rfc5987(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A title as an ASCII file name (the UTF-8 one goes in `filename*`).
fn file_name(title: &str) -> String {
    let name: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    let name = name.trim().to_string();
    if name.is_empty() {
        "file".into()
    } else {
        name
    }
}

fn chunk_out(file_id: i64, chunk: store::Chunk, vectors: bool) -> ChunkOut {
    ChunkOut {
        user_file_id: file_id,
        chunk_index: Some(chunk.idx),
        source_content: chunk.text,
        embedding: if vectors { chunk.vector } else { None },
        content_metadata: Some(json!({ "heading_path": chunk.heading_path })),
    }
}

/// POST /text_chunks: one file's chunks.
pub async fn text_chunks(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<TextChunksRequest>,
) -> ApiResult<Json<ChunksResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    let file_id = request.filters.user_file_id;
    caller_file(&app, &caller, file_id).await?;
    let (chunks, count) = app.store.chunk_page(&[file_id], limit, offset).await?;
    Ok(Json(ChunksResponse {
        results: chunks
            .into_iter()
            .map(|(file, chunk)| chunk_out(file, chunk, request.include_vectors))
            .collect(),
        count,
    }))
}

/// At most this many files' chunks are listed by one request's filters.
const MAX_FILES: i64 = 10_000;

/// POST /list_chunks_and_embeddings: the chunks of the files the filters
/// match (as user_files_v2 matches them).
pub async fn list_chunks_and_embeddings(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<ChunksRequest>,
) -> ApiResult<Json<ChunksResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    let query = file_query(&request.filters)?;
    let (Some(user), Some(mut query)) = (end_user(&app, &caller).await?, query) else {
        return Ok(Json(ChunksResponse {
            results: Vec::new(),
            count: 0,
        }));
    };
    query.limit = MAX_FILES;
    query.order_by = store::FileOrder::Id;
    let (files, matched) = app
        .store
        .api_files(&caller.organisation.id, &user.id, &query)
        .await?;
    if matched > MAX_FILES {
        return Err(ApiError::field(
            &["filters"],
            format!("the filters match {matched} files; narrow them to at most {MAX_FILES}"),
        ));
    }
    let ids: Vec<i64> = files.iter().map(|f| f.id).collect();
    let (chunks, count) = app.store.chunk_page(&ids, limit, offset).await?;
    Ok(Json(ChunksResponse {
        results: chunks
            .into_iter()
            .map(|(file, chunk)| chunk_out(file, chunk, request.include_vectors))
            .collect(),
        count,
    }))
}
