//! The v2 REST API under `/wiki/api/v2`: spaces, pages, blog posts,
//! attachments, footer comments, labels and space permissions, with
//! cursor pagination. An account never sees content it may not read.

use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::ops::Bound;

use super::{
    index_range, iso, paginate, path_id, v2_list, Api, ApiError, AppState, Cursor, Order, Params,
    SortKey, Viewer,
};
use crate::model::*;

const API: Api = Api::V2;

#[derive(Deserialize)]
pub(crate) struct IdPath {
    id: String,
}

type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn webui(site: &Site, content: &Content) -> String {
    let key = site
        .spaces
        .get(&content.space_id)
        .map(|s| s.key.as_str())
        .unwrap_or("");
    let slug: String = url::form_urlencoded::byte_serialize(content.title.as_bytes()).collect();
    match content.kind {
        ContentKind::Page => format!("/spaces/{key}/pages/{}/{slug}", content.id),
        ContentKind::BlogPost => format!("/spaces/{key}/blog/{}", content.id),
    }
}

fn account(site: &Site, user: u16) -> String {
    site.users
        .get(user as usize)
        .map(|u| u.account_id.clone())
        .unwrap_or_default()
}

fn version_json(site: &Site, number: u32, at: Millis, author: u16) -> Value {
    json!({
        "createdAt": iso(at),
        "message": "",
        "number": number,
        "minorEdit": false,
        "authorId": account(site, author),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Storage,
    AtlasDoc,
    View,
}

fn body_format(params: &Params, single: bool) -> Result<Option<BodyFormat>> {
    match params.get("body-format") {
        // Clients send `none` to ask for no body (atlassian-python-api does).
        None | Some("") | Some("none") => Ok(None),
        Some("storage") => Ok(Some(BodyFormat::Storage)),
        Some("atlas_doc_format") => Ok(Some(BodyFormat::AtlasDoc)),
        Some("view" | "export_view" | "styled_view" | "anonymous_export_view") if single => {
            Ok(Some(BodyFormat::View))
        }
        Some(other) => Err(ApiError::bad_request(
            API,
            format!("Invalid value '{other}' for 'body-format'"),
        )),
    }
}

fn body_json(site: &Site, storage: String, format: Option<BodyFormat>) -> Value {
    match format {
        None => json!({}),
        Some(BodyFormat::Storage) => {
            json!({"storage": {"representation": "storage", "value": storage}})
        }
        Some(BodyFormat::View) => json!({"view": {
            "representation": "view",
            "value": crate::body::view_from_storage(&storage, &site.users)
        }}),
        Some(BodyFormat::AtlasDoc) => {
            let doc = json!({
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [
                    {"type": "text", "text": crate::body::plain_text(&storage, &site.users)}
                ]}]
            });
            json!({"atlas_doc_format": {"representation": "atlas_doc_format", "value": doc.to_string()}})
        }
    }
}

fn content_json(site: &Site, content: &Content, format: Option<BodyFormat>) -> Value {
    let mut value = json!({
        "id": content.id.to_string(),
        "status": content.status.as_str(),
        "title": content.title,
        "spaceId": content.space_id.to_string(),
        "authorId": account(site, content.author),
        "createdAt": iso(content.created_at),
        "version": version_json(site, content.version, content.modified_at, content.version_author),
        "body": body_json(
            site,
            if format.is_some() { site.storage_of(content) } else { String::new() },
            format,
        ),
        "_links": {
            "webui": webui(site, content),
            "editui": format!("/pages/resumedraft.action?draftId={}", content.id),
            "tinyui": format!("/x/{}", tiny(content.id)),
        },
    });
    if content.kind == ContentKind::Page {
        let map = value.as_object_mut().expect("object literal");
        // A top-level page has neither parentId nor parentType.
        if let Some(parent) = content.parent_id {
            map.insert("parentId".into(), parent.to_string().into());
            map.insert("parentType".into(), "page".into());
        }
        map.insert("position".into(), content.position.into());
        map.insert("ownerId".into(), account(site, content.author).into());
        map.insert("lastOwnerId".into(), Value::Null);
    }
    value
}

fn tiny(id: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_le_bytes())
}

fn statuses(params: &Params, allowed: &[&str]) -> Result<Vec<Status>> {
    let requested = params.list("status");
    if requested.is_empty() {
        return Ok(vec![Status::Current, Status::Archived]);
    }
    let mut out = Vec::new();
    if requested.iter().any(|s| s == "any") {
        return Ok(vec![Status::Current, Status::Archived, Status::Trashed]);
    }
    for text in requested {
        if !allowed.contains(&text.as_str()) {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid value '{text}' for 'status'"),
            ));
        }
        // `deleted` content is gone from the simulator (purged).
        if let Some(status) = Status::parse(&text) {
            out.push(status);
        }
    }
    Ok(out)
}

/// A list of ids in a query parameter. The documents cap each list
/// (`maxItems`): 250 content ids, 100 space ids.
fn id_list(params: &Params, name: &str) -> Result<Option<Vec<u64>>> {
    let list = params.list(name);
    if list.is_empty() {
        return Ok(None);
    }
    let max = if name == "space-id" { 100 } else { 250 };
    if list.len() > max {
        return Err(ApiError::bad_request(
            API,
            format!("Too many values for '{name}' (at most {max})"),
        ));
    }
    list.iter()
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                ApiError::bad_request(API, format!("Invalid value '{text}' for '{name}'"))
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn cursor(params: &Params, order: &Order) -> Result<Option<Cursor>> {
    params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::decode(API, c, &order.name))
        .transpose()
}

fn content_key(content: &Content, field: &str) -> SortKey {
    match field {
        "created-date" => SortKey::Int(content.created_at),
        "modified-date" => SortKey::Int(content.modified_at),
        "title" => SortKey::Text(content.title.clone()),
        _ => SortKey::Int(content.id as i64),
    }
}

/// The shared listing of pages or blog posts, site-wide or in one space.
fn list_content(
    shared: &AppState,
    viewer: Viewer,
    raw: Option<String>,
    path: &str,
    kind: ContentKind,
    space: Option<u64>,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(
        API,
        params.get("sort"),
        &["id", "created-date", "modified-date", "title"],
        "id",
    )?;
    let cursor = cursor(&params, &order)?;
    let allowed_status: &[&str] = if kind == ContentKind::Page {
        &["current", "archived", "deleted", "trashed"]
    } else {
        &["current", "deleted", "trashed"]
    };
    let statuses = statuses(&params, allowed_status)?;
    let format = body_format(&params, false)?;
    let ids = id_list(&params, "id")?;
    let space_ids = id_list(&params, "space-id")?;
    let title = params.get("title").map(str::to_string);
    let root_only = match params.get("depth") {
        None | Some("all") | Some("") => false,
        Some("root") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid value '{other}' for 'depth'"),
            ))
        }
    };
    let site = shared.site.read();
    if let Some(space_id) = space {
        match site.spaces.get(&space_id) {
            Some(s) if site.can_read_space(viewer.0, s) => {}
            _ => return Err(ApiError::not_found(API)),
        }
    }
    let keep = |id: u64| -> bool {
        let Some(c) = site.content.get(&id) else {
            return false;
        };
        c.kind == kind
            && statuses.contains(&c.status)
            && space_ids.as_ref().is_none_or(|s| s.contains(&c.space_id))
            && ids.as_ref().is_none_or(|s| s.contains(&c.id))
            && title.as_ref().is_none_or(|t| *t == c.title)
            && (!root_only || c.parent_id.is_none())
            && site.can_read(viewer.0, c)
    };
    let key_of = |id: u64| {
        site.content
            .get(&id)
            .map(|c| content_key(c, &order.field))
            .unwrap_or(SortKey::Int(0))
    };
    let range = index_range(space.map(|id| site.space_content.get(&id)), &site.content);
    let (page, next) = paginate(&*range, &keep, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| site.content.get(id))
        .map(|c| content_json(&site, c, format))
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, path, &params, results, next))
}

pub(crate) async fn pages(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    list_content(
        &shared,
        viewer,
        raw,
        "/api/v2/pages",
        ContentKind::Page,
        None,
    )
}

pub(crate) async fn blogposts(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    list_content(
        &shared,
        viewer,
        raw,
        "/api/v2/blogposts",
        ContentKind::BlogPost,
        None,
    )
}

pub(crate) async fn space_pages(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    list_content(
        &shared,
        viewer,
        raw,
        &format!("/api/v2/spaces/{id}/pages"),
        ContentKind::Page,
        Some(id),
    )
}

pub(crate) async fn space_blogposts(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    list_content(
        &shared,
        viewer,
        raw,
        &format!("/api/v2/spaces/{id}/blogposts"),
        ContentKind::BlogPost,
        Some(id),
    )
}

fn single_content(
    shared: &AppState,
    viewer: Viewer,
    id: &str,
    raw: Option<String>,
    kind: ContentKind,
) -> Result<Response> {
    let id = path_id(API, id)?;
    let params = Params::parse(raw.as_deref());
    let format = body_format(&params, true)?;
    let wanted = statuses(
        &params,
        &[
            "current",
            "archived",
            "trashed",
            "deleted",
            "historical",
            "draft",
        ],
    )?;
    let site = shared.site.read();
    let content = site
        .content
        .get(&id)
        .filter(|c| c.kind == kind && wanted.contains(&c.status) && site.can_read(viewer.0, c))
        .ok_or_else(|| ApiError::not_found(API))?;
    let mut value = content_json(&site, content, format);
    let map = value.as_object_mut().expect("object literal");
    if params.get("include-labels") == Some("true") {
        let labels: Vec<Value> = content.labels.iter().map(|l| label_json(l)).collect();
        map.insert(
            "labels".into(),
            json!({"results": labels, "meta": {"hasMore": false, "cursor": ""}, "_links": {}}),
        );
    }
    if let Some(links) = map.get_mut("_links").and_then(Value::as_object_mut) {
        links.insert(
            "base".into(),
            format!("{}/wiki", shared.base_url.read()).into(),
        );
    }
    Ok(Json(value).into_response())
}

pub(crate) async fn page(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    single_content(&shared, viewer, &path.id, raw, ContentKind::Page)
}

pub(crate) async fn blogpost(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    single_content(&shared, viewer, &path.id, raw, ContentKind::BlogPost)
}

fn space_json(site: &Site, space: &Space, params: &Params) -> Value {
    let mut value = json!({
        "id": space.id.to_string(),
        "key": space.key,
        "name": space.name,
        "type": space.space_type.as_str(),
        "status": space.status.as_str(),
        "authorId": account(site, space.author),
        "createdAt": iso(space.created_at),
        "currentActiveAlias": space.key,
        "_links": {"webui": format!("/spaces/{}", space.key)},
    });
    let map = value.as_object_mut().expect("object literal");
    if let Some(home) = space.homepage_id {
        map.insert("homepageId".into(), home.to_string().into());
    }
    if space.space_type == SpaceType::Personal {
        map.insert("spaceOwnerId".into(), account(site, space.author).into());
    }
    match params.get("description-format") {
        Some("plain") => {
            map.insert(
                "description".into(),
                json!({"plain": {"representation": "plain", "value": format!("The {} space.", space.name)}}),
            );
        }
        Some("view") => {
            map.insert(
                "description".into(),
                json!({"view": {"representation": "view", "value": format!("<p>The {} space.</p>", space.name)}}),
            );
        }
        _ => {}
    }
    if params.get("include-icon") == Some("true") {
        map.insert(
            "icon".into(),
            json!({"path": "/images/logo/default-space-logo.svg", "apiDownloadLink": "/download/attachments/space-logo.svg"}),
        );
    }
    value
}

pub(crate) async fn spaces(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(API, params.get("sort"), &["id", "key", "name"], "id")?;
    let cursor = cursor(&params, &order)?;
    let ids = id_list(&params, "ids")?;
    let keys = params.list("keys");
    if keys.len() > 250 {
        return Err(ApiError::bad_request(
            API,
            "Too many values for 'keys' (at most 250)",
        ));
    }
    let space_type = match params.get("type") {
        None | Some("") => None,
        Some("global") => Some(SpaceType::Global),
        Some("personal") => Some(SpaceType::Personal),
        // Kinds the simulator does not generate: nothing matches.
        Some("collaboration" | "knowledge_base") => {
            return empty_list(&shared, &params, "/api/v2/spaces")
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid value '{other}' for 'type'"),
            ))
        }
    };
    let status = match params.get("status") {
        None | Some("") => None,
        Some("current") => Some(Status::Current),
        Some("archived") => Some(Status::Archived),
        Some(other) => {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid value '{other}' for 'status'"),
            ))
        }
    };
    let site = shared.site.read();
    let keep = |id: u64| {
        site.spaces.get(&id).is_some_and(|s| {
            site.can_read_space(viewer.0, s)
                && ids.as_ref().is_none_or(|ids| ids.contains(&s.id))
                && (keys.is_empty() || keys.contains(&s.key))
                && space_type.is_none_or(|t| t == s.space_type)
                && status.is_none_or(|t| t == s.status)
        })
    };
    let key_of = |id: u64| match site.spaces.get(&id) {
        Some(s) if order.field == "key" => SortKey::Text(s.key.clone()),
        Some(s) if order.field == "name" => SortKey::Text(s.name.clone()),
        _ => SortKey::Int(id as i64),
    };
    let range = |lo: Bound<u64>, hi: Bound<u64>| {
        Box::new(site.spaces.range((lo, hi)).map(|(id, _)| *id))
            as Box<dyn DoubleEndedIterator<Item = u64>>
    };
    let (page, next) = paginate(&range, &keep, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| site.spaces.get(id))
        .map(|s| space_json(&site, s, &params))
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, "/api/v2/spaces", &params, results, next))
}

fn empty_list(shared: &AppState, params: &Params, path: &str) -> Result<Response> {
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, path, params, Vec::new(), None))
}

pub(crate) async fn space(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let site = shared.site.read();
    let space = site
        .spaces
        .get(&id)
        .filter(|s| site.can_read_space(viewer.0, s))
        .ok_or_else(|| ApiError::not_found(API))?;
    let mut value = space_json(&site, space, &params);
    if let Some(links) = value.get_mut("_links").and_then(Value::as_object_mut) {
        links.insert(
            "base".into(),
            format!("{}/wiki", shared.base_url.read()).into(),
        );
    }
    Ok(Json(value).into_response())
}

pub(crate) async fn space_permissions(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(API, None, &["id"], "id")?;
    let cursor = cursor(&params, &order)?;
    let site = shared.site.read();
    let space = site
        .spaces
        .get(&id)
        .filter(|s| site.can_read_space(viewer.0, s))
        .ok_or_else(|| ApiError::not_found(API))?;
    // Every reader holds read; site admins also administer.
    let mut assignments: Vec<(Principal, &str)> =
        space.readers.iter().map(|p| (*p, "read")).collect();
    assignments.push((Principal::Group(1), "administer"));
    let principal_json = |p: Principal| match p {
        Principal::User(u) => json!({"type": "user", "id": account(&site, u)}),
        Principal::Group(g) => json!({"type": "group", "id": site.groups[g as usize].id}),
    };
    let n = assignments.len() as u64;
    let range = |lo: Bound<u64>, hi: Bound<u64>| {
        let lo = match lo {
            Bound::Excluded(x) => x + 1,
            Bound::Included(x) => x,
            Bound::Unbounded => 1,
        };
        let hi = match hi {
            Bound::Excluded(x) => x,
            Bound::Included(x) => x + 1,
            Bound::Unbounded => n + 1,
        };
        Box::new(lo..hi.min(n + 1)) as Box<dyn DoubleEndedIterator<Item = u64>>
    };
    let (page, next) = paginate(
        &range,
        &|_| true,
        &|id| SortKey::Int(id as i64),
        &order,
        cursor.as_ref(),
        limit,
    );
    let results = page
        .iter()
        .map(|&n| {
            let (principal, operation) = assignments[(n - 1) as usize];
            json!({
                "id": format!("{}{n:03}", space.id),
                "principal": principal_json(principal),
                "operation": {"key": operation, "targetType": "space"},
            })
        })
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(
        &base,
        &format!("/api/v2/spaces/{id}/permissions"),
        &params,
        results,
        next,
    ))
}

pub(crate) async fn ancestors(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let site = shared.site.read();
    let content = site
        .content
        .get(&id)
        .filter(|c| c.kind == ContentKind::Page && site.can_read(viewer.0, c))
        .ok_or_else(|| ApiError::not_found(API))?;
    let chain = site.ancestors(content);
    // The nearest `limit` ancestors, top to bottom; the caller asks again
    // with the highest one's id for the rest, as the documentation says.
    let skip = chain.len().saturating_sub(limit);
    let results = chain[skip..]
        .iter()
        .map(|id| json!({"id": id.to_string(), "type": "page"}))
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, "", &params, results, None))
}

pub(crate) async fn direct_children(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(
        API,
        params.get("sort"),
        &[
            "id",
            "created-date",
            "modified-date",
            "title",
            "child-position",
        ],
        "id",
    )?;
    let cursor = cursor(&params, &order)?;
    let site = shared.site.read();
    site.content
        .get(&id)
        .filter(|c| c.kind == ContentKind::Page && site.can_read(viewer.0, c))
        .ok_or_else(|| ApiError::not_found(API))?;
    let empty = std::collections::BTreeSet::new();
    let set = site.children.get(&id).unwrap_or(&empty);
    let keep = |child: u64| {
        site.content.get(&child).is_some_and(|c| {
            matches!(c.status, Status::Current | Status::Archived) && site.can_read(viewer.0, c)
        })
    };
    let key_of = |child: u64| {
        site.content
            .get(&child)
            .map(|c| match order.field.as_str() {
                "child-position" => SortKey::Int(c.position as i64),
                field => content_key(c, field),
            })
            .unwrap_or(SortKey::Int(0))
    };
    let range = |lo: Bound<u64>, hi: Bound<u64>| {
        Box::new(set.range((lo, hi)).copied()) as Box<dyn DoubleEndedIterator<Item = u64>>
    };
    let (page, next) = paginate(&range, &keep, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| site.content.get(id))
        .map(|c| {
            json!({
                "id": c.id.to_string(),
                "status": c.status.as_str(),
                "title": c.title,
                "type": "page",
                "spaceId": c.space_id.to_string(),
                "childPosition": c.position,
            })
        })
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(
        &base,
        &format!("/api/v2/pages/{id}/direct-children"),
        &params,
        results,
        next,
    ))
}

pub(crate) fn download_link(site: &Site, attachment: &Attachment) -> String {
    let name: String = url::form_urlencoded::byte_serialize(attachment.title.as_bytes()).collect();
    let _ = site;
    format!(
        "/download/attachments/{}/{}?version={}&modificationDate={}&cacheVersion=1&api=v2",
        attachment.container_id, name, attachment.version, attachment.modified_at
    )
}

fn attachment_json(site: &Site, attachment: &Attachment) -> Value {
    let container = site.content.get(&attachment.container_id);
    let container_webui = container.map(|c| webui(site, c)).unwrap_or_default();
    let mut value = json!({
        "id": attachment.wire_id(),
        "status": attachment.status.as_str(),
        "title": attachment.title,
        "createdAt": iso(attachment.created_at),
        "mediaType": attachment.media_type,
        "mediaTypeDescription": crate::files::media_type_description(attachment.media_type),
        "comment": "",
        "fileId": attachment.file_id,
        "fileSize": attachment.file_size,
        "webuiLink": format!("{container_webui}?preview=/{}/{}/{}", attachment.container_id, attachment.wire_id(), attachment.title),
        "downloadLink": download_link(site, attachment),
        "version": version_json(site, attachment.version, attachment.modified_at, attachment.author),
        "_links": {
            "webui": format!("{container_webui}?preview=/{}/{}", attachment.container_id, attachment.wire_id()),
            "download": download_link(site, attachment),
        },
    });
    let field = match container.map(|c| c.kind) {
        Some(ContentKind::BlogPost) => "blogPostId",
        _ => "pageId",
    };
    value
        .as_object_mut()
        .expect("object literal")
        .insert(field.into(), attachment.container_id.to_string().into());
    value
}

fn attachment_list(
    shared: &AppState,
    viewer: Viewer,
    raw: Option<String>,
    path: &str,
    container: Option<u64>,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 50, 250)?;
    let order = Order::parse(
        API,
        params.get("sort"),
        &["id", "created-date", "modified-date"],
        "id",
    )?;
    let cursor = cursor(&params, &order)?;
    let statuses = statuses(&params, &["current", "archived", "trashed"])?;
    let media_type = params.get("mediaType").map(str::to_string);
    let filename = params.get("filename").map(str::to_string);
    let site = shared.site.read();
    if let Some(container) = container {
        if !site.can_read_child_of(viewer.0, container) {
            return Err(ApiError::not_found(API));
        }
    }
    let keep = |id: u64| {
        site.attachments.get(&id).is_some_and(|a| {
            statuses.contains(&a.status)
                && media_type.as_ref().is_none_or(|m| m == a.media_type)
                && filename.as_ref().is_none_or(|f| *f == a.title)
                && site.can_read_child_of(viewer.0, a.container_id)
        })
    };
    let key_of = |id: u64| match site.attachments.get(&id) {
        Some(a) if order.field == "created-date" => SortKey::Int(a.created_at),
        Some(a) if order.field == "modified-date" => SortKey::Int(a.modified_at),
        _ => SortKey::Int(id as i64),
    };
    let range = index_range(
        container.map(|id| site.container_attachments.get(&id)),
        &site.attachments,
    );
    let (page, next) = paginate(&*range, &keep, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| site.attachments.get(id))
        .map(|a| attachment_json(&site, a))
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, path, &params, results, next))
}

pub(crate) async fn attachments(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    attachment_list(&shared, viewer, raw, "/api/v2/attachments", None)
}

pub(crate) async fn container_attachments(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
    uri: axum::http::Uri,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let kind = if uri.path().contains("/blogposts/") {
        ContentKind::BlogPost
    } else {
        ContentKind::Page
    };
    if shared
        .site
        .read()
        .content
        .get(&id)
        .is_none_or(|c| c.kind != kind)
    {
        return Err(ApiError::not_found(API));
    }
    let segment = if kind == ContentKind::Page {
        "pages"
    } else {
        "blogposts"
    };
    attachment_list(
        &shared,
        viewer,
        raw,
        &format!("/api/v2/{segment}/{id}/attachments"),
        Some(id),
    )
}

pub(crate) async fn attachment(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
) -> Result<Response> {
    let id = path_id(API, path.id.trim_start_matches("att"))?;
    let site = shared.site.read();
    let attachment = site
        .attachments
        .get(&id)
        .filter(|a| site.can_read_child_of(viewer.0, a.container_id))
        .ok_or_else(|| ApiError::not_found(API))?;
    let mut value = attachment_json(&site, attachment);
    if let Some(links) = value.get_mut("_links").and_then(Value::as_object_mut) {
        links.insert(
            "base".into(),
            format!("{}/wiki", shared.base_url.read()).into(),
        );
    }
    Ok(Json(value).into_response())
}

fn comment_json(site: &Site, comment: &Comment, format: Option<BodyFormat>) -> Value {
    let container = site.content.get(&comment.container_id);
    let title = container
        .map(|c| format!("Re: {}", c.title))
        .unwrap_or_default();
    let mut value = json!({
        "id": comment.id.to_string(),
        "status": comment.status.as_str(),
        "title": title,
        "version": version_json(site, comment.version, comment.modified_at, comment.author),
        "body": body_json(
            site,
            if format.is_some() { site.comment_storage(comment) } else { String::new() },
            format,
        ),
        "_links": {
            "webui": format!(
                "{}?focusedCommentId={}",
                container.map(|c| webui(site, c)).unwrap_or_default(),
                comment.id
            ),
        },
    });
    let field = match container.map(|c| c.kind) {
        Some(ContentKind::BlogPost) => "blogPostId",
        _ => "pageId",
    };
    value
        .as_object_mut()
        .expect("object literal")
        .insert(field.into(), comment.container_id.to_string().into());
    value
}

fn comment_list(
    shared: &AppState,
    viewer: Viewer,
    raw: Option<String>,
    path: &str,
    container: Option<u64>,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(
        API,
        params.get("sort"),
        &["id", "created-date", "modified-date"],
        "id",
    )?;
    let cursor = cursor(&params, &order)?;
    let format = body_format(&params, false)?;
    let statuses = statuses(
        &params,
        &[
            "current",
            "archived",
            "trashed",
            "deleted",
            "historical",
            "draft",
        ],
    )?;
    let site = shared.site.read();
    if let Some(container) = container {
        if !site.can_read_child_of(viewer.0, container) {
            return Err(ApiError::not_found(API));
        }
    }
    let keep = |id: u64| {
        site.comments.get(&id).is_some_and(|c| {
            statuses.contains(&c.status) && site.can_read_child_of(viewer.0, c.container_id)
        })
    };
    let key_of = |id: u64| match site.comments.get(&id) {
        Some(c) if order.field == "created-date" => SortKey::Int(c.created_at),
        Some(c) if order.field == "modified-date" => SortKey::Int(c.modified_at),
        _ => SortKey::Int(id as i64),
    };
    let range = index_range(
        container.map(|id| site.container_comments.get(&id)),
        &site.comments,
    );
    let (page, next) = paginate(&*range, &keep, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| site.comments.get(id))
        .map(|c| comment_json(&site, c, format))
        .collect();
    let base = shared.base_url.read().clone();
    Ok(v2_list(&base, path, &params, results, next))
}

pub(crate) async fn footer_comments(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    comment_list(&shared, viewer, raw, "/api/v2/footer-comments", None)
}

pub(crate) async fn container_comments(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
    uri: axum::http::Uri,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let segment = if uri.path().contains("/blogposts/") {
        "blogposts"
    } else {
        "pages"
    };
    comment_list(
        &shared,
        viewer,
        raw,
        &format!("/api/v2/{segment}/{id}/footer-comments"),
        Some(id),
    )
}

pub(crate) async fn footer_comment(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let format = body_format(&params, true)?;
    let site = shared.site.read();
    let comment = site
        .comments
        .get(&id)
        .filter(|c| site.can_read_child_of(viewer.0, c.container_id))
        .ok_or_else(|| ApiError::not_found(API))?;
    let mut value = comment_json(&site, comment, format);
    if let Some(links) = value.get_mut("_links").and_then(Value::as_object_mut) {
        links.insert(
            "base".into(),
            format!("{}/wiki", shared.base_url.read()).into(),
        );
    }
    Ok(Json(value).into_response())
}

pub(crate) fn label_id(name: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8])) % 1_000_000_000
}

fn label_json(name: &str) -> Value {
    json!({"id": label_id(name).to_string(), "name": name, "prefix": "global"})
}

pub(crate) async fn labels(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
    uri: axum::http::Uri,
) -> Result<Response> {
    let id = path_id(API, &path.id)?;
    let params = Params::parse(raw.as_deref());
    let limit = params.limit(API, 25, 250)?;
    let order = Order::parse(
        API,
        params.get("sort"),
        &["id", "name", "created-date"],
        "id",
    )?;
    let cursor = cursor(&params, &order)?;
    let prefix = params.get("prefix").map(str::to_string);
    if let Some(p) = &prefix {
        if !["my", "team", "global", "system"].contains(&p.as_str()) {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid value '{p}' for 'prefix'"),
            ));
        }
    }
    let site = shared.site.read();
    let content = site
        .content
        .get(&id)
        .filter(|c| c.status != Status::Trashed && site.can_read(viewer.0, c))
        .ok_or_else(|| ApiError::not_found(API))?;
    let by_id: std::collections::BTreeMap<u64, &String> = content
        .labels
        .iter()
        .filter(|_| prefix.as_deref().is_none_or(|p| p == "global"))
        .map(|l| (label_id(l), l))
        .collect();
    let range = |lo: Bound<u64>, hi: Bound<u64>| {
        Box::new(by_id.range((lo, hi)).map(|(id, _)| *id))
            as Box<dyn DoubleEndedIterator<Item = u64>>
    };
    let key_of = |id: u64| match by_id.get(&id) {
        Some(name) if order.field == "name" => SortKey::Text((*name).clone()),
        _ => SortKey::Int(id as i64),
    };
    let (page, next) = paginate(&range, &|_| true, &key_of, &order, cursor.as_ref(), limit);
    let results = page
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|name| label_json(name))
        .collect();
    let segment = if uri.path().contains("/blogposts/") {
        "blogposts"
    } else {
        "pages"
    };
    let base = shared.base_url.read().clone();
    Ok(v2_list(
        &base,
        &format!("/api/v2/{segment}/{id}/labels"),
        &params,
        results,
        next,
    ))
}
