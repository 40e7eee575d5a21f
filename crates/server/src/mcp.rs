//! The knowledge store for AI agents, over the Model Context Protocol
//! (the official SDK, `rmcp`): the tools `search`, `fetch` and
//! `list_spaces`, and every readable file as a resource
//! (`confsync://file/{id}`, Markdown).
//!
//! Served two ways by one handler, `Knowledge`:
//! - at `/mcp` on `confsync serve` (Streamable HTTP, stateless, so that any
//!   node answers any request), where every request is authenticated as
//!   the API's customer operations are (an API key with `customer-id`, or
//!   a customer token) and reaches only that customer's content, as the
//!   viewer a token was minted for (an API key's: anonymous);
//! - by `confsync mcp` over a data directory (stdio, for a desktop agent),
//!   with one audience fixed at start.
//!
//! Whatever the way, a search and a fetch see exactly what `/embeddings`
//! would let the same viewer see: the index's admission decides both.

use crate::error::ApiError;
use crate::extract::CustomerCaller;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use std::sync::Arc;
use store::IndexSource;

/// Whose content a caller reaches, and as which viewer.
#[derive(Clone, Debug)]
pub struct Audience {
    /// The organisations searched: the caller's, or (the operator's
    /// stdio server) every organisation of the data directory.
    pub organisations: Vec<String>,
    /// One customer's content only (an API caller).
    pub customer_id: Option<String>,
    pub viewer: index::Viewer,
}

/// Results a search returns at most.
const MAX_K: u64 = 50;
/// Resources listed a page.
const RESOURCES_PAGE: usize = 100;
const URI_PREFIX: &str = "confsync://file/";

/// The MCP server: tools and resources over the store and its index.
#[derive(Clone)]
pub struct Knowledge {
    store: store::Store,
    index: Arc<index::Index>,
    /// The stdio server's audience; over HTTP each request brings its own.
    fixed: Option<Audience>,
}

impl Knowledge {
    pub fn new(
        store: store::Store,
        index: Arc<index::Index>,
        fixed: Option<Audience>,
    ) -> Knowledge {
        Knowledge {
            store,
            index,
            fixed,
        }
    }

    /// Who is asking: the fixed audience, or the one `authenticate` put on
    /// this HTTP request. Neither is an error (never "everyone").
    fn audience(&self, context: &RequestContext<RoleServer>) -> Result<Audience, McpError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Audience>())
            .cloned()
            .ok_or_else(|| McpError::invalid_request("not authenticated", None))
    }

    fn tools() -> Vec<Tool> {
        let schema = |value: Value| -> Arc<serde_json::Map<String, Value>> {
            Arc::new(value.as_object().cloned().unwrap_or_default())
        };
        vec![
            Tool::new(
                "search",
                "Search the synced Confluence pages, blog posts, comments and attachments. \
                 Returns the best passages, one per page, with each page's id (for fetch), \
                 title, URL and space.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "What to look for; quotes make a phrase."},
                        "spaces": {"type": "array", "items": {"type": "string"}, "description": "Only these space keys."},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 5, "description": "How many results."}
                    },
                    "required": ["query"]
                })),
            ),
            Tool::new(
                "fetch",
                "A page or file in full, as Markdown, with its title, URL, space, labels and \
                 last modification. Takes the id that search gives (or a confsync://file/ URI).",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": ["integer", "string"], "description": "The file's id from search."}
                    },
                    "required": ["id"]
                })),
            ),
            Tool::new(
                "list_spaces",
                "The Confluence spaces whose content this caller can search.",
                schema(json!({"type": "object", "properties": {}})),
            ),
        ]
    }

    async fn search(&self, audience: &Audience, arguments: &Value) -> Result<Value, McpError> {
        let query = arguments["query"].as_str().unwrap_or("").trim();
        if query.is_empty() || query.chars().count() > 10_000 {
            return Err(McpError::invalid_params(
                "query must be 1 to 10000 characters",
                None,
            ));
        }
        let k = match &arguments["k"] {
            Value::Null => 5,
            value => value
                .as_u64()
                .filter(|k| (1..=MAX_K).contains(k))
                .ok_or_else(|| McpError::invalid_params(format!("k must be 1 to {MAX_K}"), None))?,
        } as usize;
        let spaces: Vec<String> = match &arguments["spaces"] {
            Value::Null => Vec::new(),
            Value::Array(items) if items.len() <= 100 => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| McpError::invalid_params("spaces are space keys", None))?,
            _ => {
                return Err(McpError::invalid_params(
                    "spaces is a list of at most 100 space keys",
                    None,
                ))
            }
        };
        let mut hits = Vec::new();
        for organisation in &audience.organisations {
            let request = index::SearchRequest {
                organisation_id: organisation.clone(),
                customer_id: audience.customer_id.clone(),
                viewer: audience.viewer.clone(),
                query: query.to_string(),
                k,
                filters: index::Filters {
                    space_keys: spaces.clone(),
                    ..Default::default()
                },
                per_file: Some(1),
                ..Default::default()
            };
            hits.extend(self.index.search(&self.store, &request).await.map_err(
                |error| match error {
                    index::Error::Invalid(message) => McpError::invalid_params(message, None),
                    other => internal(other),
                },
            )?);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k);
        let results: Vec<Value> = hits
            .iter()
            .map(|hit| {
                json!({
                    "id": hit.file_id,
                    "uri": format!("{URI_PREFIX}{}", hit.file_id),
                    "title": hit.title,
                    "url": hit.url,
                    "space": hit.space_key,
                    "kind": hit.kind,
                    "heading_path": hit.heading_path,
                    "text": hit.content,
                    "score": hit.score,
                })
            })
            .collect();
        Ok(json!({ "results": results }))
    }

    /// A file the audience may read, or the same "no such file" whether it
    /// does not exist or is not theirs (no oracle).
    async fn readable_file(
        &self,
        audience: &Audience,
        file_id: i64,
    ) -> Result<store::FileContent, McpError> {
        let missing = || McpError::resource_not_found(format!("no file {file_id}"), None);
        let content = self
            .store
            .file_content(file_id)
            .await
            .map_err(internal)?
            .ok_or_else(missing)?;
        for organisation in &audience.organisations {
            let readable = self
                .index
                .readable(
                    &self.store,
                    organisation,
                    audience.customer_id.as_deref(),
                    &audience.viewer,
                    &[file_id],
                )
                .await
                .map_err(internal)?;
            if readable.contains(&file_id) {
                return Ok(content);
            }
        }
        Err(missing())
    }

    async fn fetch(&self, audience: &Audience, arguments: &Value) -> Result<String, McpError> {
        let file_id = file_id_of(&arguments["id"])
            .ok_or_else(|| McpError::invalid_params("id is a file id from search", None))?;
        let file = self.readable_file(audience, file_id).await?;
        Ok(document(&file))
    }

    async fn list_spaces(&self, audience: &Audience) -> Result<Value, McpError> {
        use store::SyncState;
        let mut spaces = Vec::new();
        for organisation in &audience.organisations {
            let scopes = index::readable_scopes(
                &self.store,
                organisation,
                audience.customer_id.as_deref(),
                &audience.viewer,
            )
            .await
            .map_err(internal)?;
            let mut names = std::collections::HashMap::new();
            for scope in &scopes {
                if !names.contains_key(&scope.connection_id) {
                    let rows = self
                        .store
                        .spaces(&scope.connection_id)
                        .await
                        .map_err(internal)?;
                    names.insert(
                        scope.connection_id.clone(),
                        rows.into_iter()
                            .map(|r| (r.space_id, r.name))
                            .collect::<std::collections::HashMap<_, _>>(),
                    );
                }
                let name = names[&scope.connection_id]
                    .get(&scope.space_id)
                    .cloned()
                    .unwrap_or_default();
                spaces.push(json!({
                    "key": scope.space_key,
                    "name": name,
                    "connection": scope.connection_id,
                }));
            }
        }
        Ok(json!({ "spaces": spaces }))
    }

    /// A page of the files the audience may read, after `cursor` (a file id).
    async fn resources(
        &self,
        audience: &Audience,
        cursor: Option<&str>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut after = match cursor {
            None => 0,
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| McpError::invalid_params("not a cursor of this server", None))?,
        };
        let mut resources = Vec::new();
        // Whether the store may hold more after `after`.
        let mut more = true;
        'batches: loop {
            let ids = self.store.file_ids(after, 500).await.map_err(internal)?;
            if ids.is_empty() {
                more = false;
                break;
            }
            let mut readable = std::collections::HashSet::new();
            for organisation in &audience.organisations {
                readable.extend(
                    self.index
                        .readable(
                            &self.store,
                            organisation,
                            audience.customer_id.as_deref(),
                            &audience.viewer,
                            &ids,
                        )
                        .await
                        .map_err(internal)?,
                );
            }
            for id in ids {
                after = id;
                if !readable.contains(&id) {
                    continue;
                }
                if let Some(file) = self.store.file_content(id).await.map_err(internal)? {
                    let mut resource =
                        Resource::new(format!("{URI_PREFIX}{id}"), file.title.clone())
                            .with_mime_type("text/markdown");
                    if let Some(space) = &file.space_key {
                        resource = resource.with_description(format!("{} in {space}", file.kind));
                    }
                    resources.push(resource);
                }
                if resources.len() == RESOURCES_PAGE {
                    break 'batches;
                }
            }
        }
        let mut result = ListResourcesResult::with_all_items(resources);
        if more {
            result.next_cursor = Some(after.to_string());
        }
        Ok(result)
    }
}

fn internal(error: impl std::fmt::Display) -> McpError {
    tracing::error!(%error, "mcp: a request failed");
    McpError::internal_error("the request failed; see the server's log", None)
}

/// A file id as a tool argument: a number, a numeric string, or its URI.
fn file_id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.strip_prefix(URI_PREFIX).unwrap_or(s).parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

/// A file as an agent reads it: a heading, what it is and where, then its
/// Markdown.
fn document(file: &store::FileContent) -> String {
    let mut out = format!("# {}\n\n", file.title);
    if let Some(url) = &file.url {
        out.push_str(&format!("- URL: {url}\n"));
    }
    match (&file.space_key, &file.space_name) {
        (Some(key), Some(name)) if !name.is_empty() => {
            out.push_str(&format!("- Space: {key} ({name})\n"))
        }
        (Some(key), _) => out.push_str(&format!("- Space: {key}\n")),
        _ => {}
    }
    out.push_str(&format!("- Kind: {}\n", file.kind));
    if !file.labels.is_empty() {
        out.push_str(&format!("- Labels: {}\n", file.labels.join(", ")));
    }
    out.push_str(&format!("- Last modified: {}\n\n---\n\n", file.updated_at));
    out.push_str(
        file.markdown
            .as_deref()
            .or(file.body.as_deref())
            .unwrap_or(""),
    );
    out
}

impl ServerHandler for Knowledge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("confsync", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Confluence content synced by confsync. Use `search` to find passages (one per \
             page), `fetch` with a result's id to read the whole page as Markdown, and \
             `list_spaces` to see which spaces are searchable.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let audience = self.audience(&context)?;
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let text = match request.name.as_ref() {
            "search" => self.search(&audience, &arguments).await?.to_string(),
            "fetch" => self.fetch(&audience, &arguments).await?,
            "list_spaces" => self.list_spaces(&audience).await?.to_string(),
            other => {
                return Err(McpError::invalid_params(
                    format!("no tool {other:?}: search, fetch or list_spaces"),
                    None,
                ))
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let audience = self.audience(&context)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        self.resources(&audience, cursor).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let audience = self.audience(&context)?;
        let file_id = request
            .uri
            .strip_prefix(URI_PREFIX)
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or_else(|| {
                McpError::resource_not_found(format!("no resource {}", request.uri), None)
            })?;
        let file = self.readable_file(&audience, file_id).await?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            document(&file),
            request.uri.clone(),
        )
        .with_mime_type("text/markdown")])
        .into())
    }
}

/// `/mcp`: Streamable HTTP, stateless (no session to keep on one node).
/// Every request carries the API's credentials.
pub fn routes(app: AppState) -> axum::Router<AppState> {
    use rmcp::transport::streamable_http_server::{
        session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
    };
    let knowledge = Knowledge::new(app.store.clone(), app.index.clone(), None);
    let service = StreamableHttpService::new(
        move || Ok(knowledge.clone()),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            // Every request is authenticated, so a page a browser was
            // tricked into calling gets nothing: the Host check (against
            // DNS rebinding of a local server) would only refuse the
            // server's own public name.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(1 << 20),
    );
    axum::Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(app, authenticate))
}

/// The header in which an API key's caller says who the viewer is (as
/// `/embeddings` takes `viewer` in its body): JSON, as `index::Viewer`.
pub const VIEWER_HEADER: &str = "confsync-viewer";

/// Puts the caller's `Audience` on the request, or answers as the API
/// does for bad credentials (401/400 with a stable code). The viewer is as
/// on `/embeddings`: an API key's caller names it (`confsync-viewer`,
/// anonymous when absent); a customer token searches as the viewer it was
/// minted for, or a narrower one it names, never a wider one.
async fn authenticate(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match CustomerCaller::from_request_parts(&mut parts, &app).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let asked: Option<index::Viewer> = match parts.headers.get(VIEWER_HEADER) {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|text| serde_json::from_str(text).ok())
        {
            Some(viewer) => Some(viewer),
            None => {
                return ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_viewer",
                    format!("the {VIEWER_HEADER} header is not a viewer (JSON)"),
                )
                .into_response()
            }
        },
    };
    let viewer = match (&caller.token_viewer, asked) {
        (None, asked) => asked.unwrap_or_default(),
        (Some(granted), None) => granted.clone(),
        (Some(granted), Some(asked)) if asked.within(granted) => asked,
        (Some(_), Some(_)) => {
            return ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "viewer_not_allowed",
                "a customer token searches as the viewer it was minted for, or a narrower one",
            )
            .into_response()
        }
    };
    parts.extensions.insert(Audience {
        organisations: vec![caller.organisation.id.clone()],
        customer_id: Some(caller.customer_id.clone()),
        viewer,
    });
    next.run(Request::from_parts(parts, body)).await
}
