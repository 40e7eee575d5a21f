//! The v1 REST API under `/wiki/rest/api`: CQL search, restrictions, users,
//! attachment download, and the content and space reads that Data Center
//! and older clients use, with `expand` and start/limit paging.

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Instant;

use super::{iso, path_id, Api, ApiError, AppState, Cursor, Params, SortKey, Viewer};
use crate::cql;
use crate::model::*;

const API: Api = Api::V1;

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Deserialize)]
pub(crate) struct IdPath {
    id: String,
}

#[derive(Deserialize)]
pub(crate) struct KeyPath {
    key: String,
}

#[derive(Deserialize)]
pub(crate) struct DownloadRedirectPath {
    id: String,
    attachment: String,
}

#[derive(Deserialize)]
pub(crate) struct FilePath {
    container: String,
    filename: String,
}

/// The `expand` parameter, as a set of dotted paths.
struct Expand(HashSet<String>);

impl Expand {
    fn parse(params: &Params, name: &str, strip: Option<&str>) -> Expand {
        Expand(
            params
                .list(name)
                .into_iter()
                .filter_map(|e| match strip {
                    Some(prefix) => e.strip_prefix(prefix).map(str::to_string),
                    None => Some(e),
                })
                .collect(),
        )
    }

    fn has(&self, path: &str) -> bool {
        self.0
            .iter()
            .any(|e| e == path || e.starts_with(&format!("{path}.")))
    }

    fn wants_body(&self) -> bool {
        self.has("body")
    }
}

fn base(shared: &AppState) -> String {
    format!("{}/wiki", shared.base_url.read())
}

pub(crate) fn user_json(site: &Site, user: u16, base: &str) -> Value {
    let Some(u) = site.users.get(user as usize) else {
        return json!({"type": "unknown"});
    };
    json!({
        "type": "known",
        "accountId": u.account_id,
        "accountType": "atlassian",
        "email": u.email,
        "publicName": u.display_name,
        "displayName": u.display_name,
        "timeZone": u.time_zone,
        "profilePicture": {
            "path": format!("/wiki/aa-avatar/{}", u.account_id),
            "width": 48,
            "height": 48,
            "isDefault": false
        },
        "isExternalCollaborator": false,
        "externalCollaborator": false,
        "isGuest": u.groups.is_empty(),
        "_expandable": {"operations": "", "personalSpace": ""},
        "_links": {"self": format!("{base}/rest/api/user?accountId={}", u.account_id)},
    })
}

fn group_json(site: &Site, group: u16, base: &str) -> Value {
    let g = &site.groups[group as usize];
    json!({
        "type": "group",
        "name": g.name,
        "id": g.id,
        "_links": {"self": format!("{base}/rest/api/group/by-id?id={}", g.id)},
    })
}

fn space_json(site: &Site, space: &Space, expand: &Expand, base: &str) -> Value {
    let mut value = json!({
        "id": space.id,
        "key": space.key,
        "name": space.name,
        "type": space.space_type.as_str(),
        "status": space.status.as_str(),
        "_expandable": {
            "settings": format!("/rest/api/space/{}/settings", space.key),
            "metadata": "",
            "operations": "",
            "lookAndFeel": format!("/rest/api/settings/lookandfeel?spaceKey={}", space.key),
            "identifiers": "",
            "permissions": "",
            "icon": "",
            "description": "",
            "theme": format!("/rest/api/space/{}/theme", space.key),
            "history": "",
            "homepage": space.homepage_id.map(|h| format!("/rest/api/content/{h}")).unwrap_or_default(),
        },
        "_links": {
            "webui": format!("/spaces/{}", space.key),
            "self": format!("{base}/rest/api/space/{}", space.key),
        },
    });
    let map = value.as_object_mut().expect("object literal");
    let expandable = |map: &mut Map<String, Value>, key: &str| {
        if let Some(e) = map.get_mut("_expandable").and_then(Value::as_object_mut) {
            e.remove(key);
        }
    };
    if expand.has("description") {
        map.insert(
            "description".into(),
            json!({
                "plain": {"value": format!("The {} space.", space.name), "representation": "plain", "embeddedContent": []},
                "_expandable": {"view": ""}
            }),
        );
        expandable(map, "description");
    }
    if expand.has("history") {
        map.insert(
            "history".into(),
            json!({"createdDate": iso(space.created_at), "createdBy": user_json(site, space.author, base)}),
        );
        expandable(map, "history");
    }
    if expand.has("homepage") {
        if let Some(home) = space.homepage_id.and_then(|h| site.content.get(&h)) {
            map.insert(
                "homepage".into(),
                content_json(site, home, &Expand(HashSet::new()), base, None),
            );
            expandable(map, "homepage");
        }
    }
    value
}

fn version_json(site: &Site, number: u32, at: Millis, author: u16, base: &str) -> Value {
    json!({
        "by": user_json(site, author, base),
        "when": iso(at),
        "friendlyWhen": iso(at),
        "message": "",
        "number": number,
        "minorEdit": false,
        "contentTypeModified": false,
        "_expandable": {"content": ""},
        "_links": {},
    })
}

fn content_links(site: &Site, content: &Content, base: &str) -> Value {
    json!({
        "webui": super::v2::webui(site, content),
        "edit": format!("/pages/resumedraft.action?draftId={}", content.id),
        "tinyui": format!("/x/{}", content.id),
        "self": format!("{base}/rest/api/content/{}", content.id),
    })
}

/// A page or blog post in v1's shape, with what `expand` asks for and the
/// rest listed under `_expandable`.
fn content_json(
    site: &Site,
    content: &Content,
    expand: &Expand,
    base: &str,
    at_version: Option<u32>,
) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), content.id.to_string().into());
    map.insert("type".into(), content.kind.v1_type().into());
    map.insert("status".into(), content.status.as_str().into());
    map.insert("title".into(), content.title.clone().into());
    let mut expandable = Map::new();
    let space = site.spaces.get(&content.space_id);
    let space_key = space.map(|s| s.key.clone()).unwrap_or_default();
    let version = at_version.unwrap_or(content.version);

    if expand.has("space") {
        if let Some(space) = space {
            map.insert(
                "space".into(),
                space_json(site, space, &Expand(HashSet::new()), base),
            );
        }
    } else {
        expandable.insert(
            "space".into(),
            format!("/rest/api/space/{space_key}").into(),
        );
    }
    if expand.has("history") {
        map.insert(
            "history".into(),
            json!({
                "latest": version == content.version,
                "createdBy": user_json(site, content.author, base),
                "createdDate": iso(content.created_at),
                "_expandable": {"lastUpdated": "", "previousVersion": "", "contributors": "", "nextVersion": ""},
                "_links": {"self": format!("{base}/rest/api/content/{}/history", content.id)},
            }),
        );
    } else {
        expandable.insert(
            "history".into(),
            format!("/rest/api/content/{}/history", content.id).into(),
        );
    }
    if expand.has("version") {
        map.insert(
            "version".into(),
            version_json(
                site,
                version,
                content.modified_at,
                content.version_author,
                base,
            ),
        );
    } else {
        expandable.insert("version".into(), "".into());
    }
    if expand.has("ancestors") {
        let ancestors: Vec<Value> = site
            .ancestors(content)
            .iter()
            .filter_map(|id| site.content.get(id))
            .map(|a| {
                json!({
                    "id": a.id.to_string(),
                    "type": a.kind.v1_type(),
                    "status": a.status.as_str(),
                    "title": a.title,
                    "_expandable": {"space": format!("/rest/api/space/{space_key}"), "version": "", "history": ""},
                    "_links": content_links(site, a, base),
                })
            })
            .collect();
        map.insert("ancestors".into(), ancestors.into());
    } else {
        expandable.insert("ancestors".into(), "".into());
    }
    if expand.wants_body() {
        let storage = if version == content.version {
            site.storage_of(content)
        } else {
            let mut old = content.clone();
            old.version = version;
            old.custom_body = None;
            site.storage_of(&old)
        };
        let mut body = Map::new();
        let mut body_expandable = Map::new();
        for representation in [
            "storage",
            "view",
            "export_view",
            "styled_view",
            "editor",
            "atlas_doc_format",
        ] {
            if expand.has(&format!("body.{representation}")) {
                let value = match representation {
                    "storage" | "editor" => storage.clone(),
                    "atlas_doc_format" => {
                        json!({"type": "doc", "version": 1, "content": []}).to_string()
                    }
                    _ => crate::body::view_from_storage(&storage, &site.users),
                };
                body.insert(
                    representation.into(),
                    json!({
                        "value": value,
                        "representation": representation,
                        "embeddedContent": [],
                        "_expandable": {"content": format!("/rest/api/content/{}", content.id)},
                    }),
                );
            } else {
                body_expandable.insert(
                    representation.into(),
                    format!(
                        "/rest/api/content/{}?expand=body.{representation}",
                        content.id
                    )
                    .into(),
                );
            }
        }
        body.insert("_expandable".into(), body_expandable.into());
        map.insert("body".into(), body.into());
    } else {
        expandable.insert("body".into(), "".into());
    }
    if expand.has("metadata") {
        let labels: Vec<Value> = content
            .labels
            .iter()
            .map(|name| {
                let id = super::v2::label_id(name).to_string();
                json!({"prefix": "global", "name": name, "id": id, "label": name})
            })
            .collect();
        let size = labels.len();
        map.insert(
            "metadata".into(),
            json!({"labels": {"results": labels, "start": 0, "limit": 200, "size": size, "_links": {}}}),
        );
    } else {
        expandable.insert("metadata".into(), "".into());
    }
    if expand.has("container") {
        if let Some(space) = space {
            map.insert(
                "container".into(),
                space_json(site, space, &Expand(HashSet::new()), base),
            );
        }
    } else {
        expandable.insert(
            "container".into(),
            format!("/rest/api/space/{space_key}").into(),
        );
    }
    if expand.has("restrictions.read") {
        map.insert(
            "restrictions".into(),
            json!({
                "read": restriction_json(site, content, "read", base),
                "_expandable": {"update": ""},
                "_links": {"self": format!("{base}/rest/api/content/{}/restriction/byOperation", content.id)},
            }),
        );
    } else {
        expandable.insert(
            "restrictions".into(),
            format!("/rest/api/content/{}/restriction/byOperation", content.id).into(),
        );
    }
    for (key, link) in [
        ("childTypes", String::new()),
        ("operations", String::new()),
        (
            "children",
            format!("/rest/api/content/{}/child", content.id),
        ),
        (
            "descendants",
            format!("/rest/api/content/{}/descendant", content.id),
        ),
    ] {
        expandable.insert(key.into(), link.into());
    }
    if content.kind == ContentKind::Page {
        map.insert("extensions".into(), json!({"position": content.position}));
    }
    map.insert("_expandable".into(), expandable.into());
    map.insert("_links".into(), content_links(site, content, base));
    map.into()
}

fn attachment_content_json(
    site: &Site,
    attachment: &Attachment,
    expand: &Expand,
    base: &str,
) -> Value {
    let download = super::v2::download_link(site, attachment);
    let mut value = json!({
        "id": attachment.wire_id(),
        "type": "attachment",
        "status": attachment.status.as_str(),
        "title": attachment.title,
        "metadata": {"mediaType": attachment.media_type, "comment": ""},
        "extensions": {
            "mediaType": attachment.media_type,
            "fileSize": attachment.file_size,
            "comment": "",
            "fileId": attachment.file_id,
        },
        "_expandable": {"container": format!("/rest/api/content/{}", attachment.container_id), "space": "", "history": ""},
        "_links": {
            "webui": format!("/pages/viewpageattachments.action?pageId={}&preview=%2F{}%2F{}", attachment.container_id, attachment.container_id, attachment.wire_id()),
            "download": download,
            "self": format!("{base}/rest/api/content/{}", attachment.wire_id()),
        },
    });
    if expand.has("version") {
        value.as_object_mut().expect("object literal").insert(
            "version".into(),
            version_json(
                site,
                attachment.version,
                attachment.modified_at,
                attachment.author,
                base,
            ),
        );
    }
    value
}

/// The context v1 list responses carry in `_links`.
fn list_links(base: &str, next: Option<String>) -> Value {
    let mut links = json!({"base": base, "context": "/wiki"});
    if let Some(next) = next {
        links
            .as_object_mut()
            .expect("object literal")
            .insert("next".into(), next.into());
    }
    links
}

fn order_key(content: &Content, field: &str) -> SortKey {
    match field {
        "lastmodified" => SortKey::Int(content.modified_at),
        "created" => SortKey::Int(content.created_at),
        "title" => SortKey::Text(content.title.to_lowercase()),
        _ => SortKey::Int(content.id as i64),
    }
}

/// Runs a CQL query for the viewer: the matching ids in order, one page of
/// them after the cursor (or the start offset), and the next cursor.
struct SearchPage {
    ids: Vec<u64>,
    start: usize,
    total: usize,
    next: Option<Cursor>,
}

fn run_cql(site: &Site, viewer: Viewer, params: &Params, limit: usize) -> Result<SearchPage> {
    let cql_text = params
        .get("cql")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(API, "The 'cql' parameter is required"))?;
    let query = cql::parse(cql_text).map_err(|e| ApiError::bad_request(API, e.to_string()))?;
    let user = &site.users[viewer.0 as usize];
    let body_text = |c: &Content| crate::body::plain_text(&site.storage_of(c), &site.users);
    let ctx = cql::EvalContext {
        site,
        utc_offset_minutes: user.utc_offset_minutes,
        now: crate::now_millis(),
        body_text: &body_text,
    };
    let expr = query.expr.as_ref().expect("parse requires a condition");
    let mut error = None;
    let mut hits: Vec<(Vec<SortKey>, u64)> = Vec::new();
    let candidates: Box<dyn Iterator<Item = &Content>> = match cql::candidate_ids(expr) {
        Some(mut ids) => {
            ids.sort_unstable();
            ids.dedup();
            Box::new(ids.into_iter().filter_map(|id| site.content.get(&id)))
        }
        None => Box::new(site.content.values()),
    };
    for content in candidates {
        if content.status != Status::Current || !site.can_read(viewer.0, content) {
            continue;
        }
        match cql::matches(expr, content, &ctx) {
            Ok(true) => {
                let keys = query
                    .order
                    .iter()
                    .map(|(field, ascending)| {
                        let key = order_key(content, field);
                        if *ascending {
                            key
                        } else {
                            match key {
                                SortKey::Int(n) => SortKey::Int(-n),
                                // Descending text: compare complemented chars.
                                SortKey::Text(t) => SortKey::Text(
                                    t.chars()
                                        .map(|c| char::from_u32(0x10FFFF - c as u32).unwrap_or(c))
                                        .collect(),
                                ),
                            }
                        }
                    })
                    .collect();
                hits.push((keys, content.id));
            }
            Ok(false) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if let Some(e) = error {
        return Err(ApiError::bad_request(API, e.to_string()));
    }
    hits.sort();
    let total = hits.len();
    let order_name = "cql".to_string();
    let start = match params.get("cursor").filter(|c| !c.is_empty()) {
        Some(text) => {
            let cursor = Cursor::decode(API, text, &order_name)?;
            let SortKey::Int(position) = cursor.key else {
                return Err(ApiError::bad_request(API, "Invalid cursor"));
            };
            // The cursor holds the position and the id found there; if the
            // results shifted, resume after that id where it is now.
            hits.iter()
                .position(|(_, id)| *id == cursor.id)
                .map(|p| p + 1)
                .unwrap_or(position.max(0) as usize)
        }
        None => params.start(API)?,
    };
    let ids: Vec<u64> = hits
        .iter()
        .skip(start)
        .take(limit)
        .map(|(_, id)| *id)
        .collect();
    let end = start + ids.len();
    let next = (end < total).then(|| Cursor {
        sort: order_name,
        key: SortKey::Int(end as i64),
        id: hits[end - 1].1,
    });
    Ok(SearchPage {
        ids,
        start,
        total,
        next,
    })
}

fn next_link(path: &str, params: &Params, cursor: &Cursor, limit: usize) -> String {
    let rest = params.encode_without(&["cursor", "next", "start", "limit"]);
    format!(
        "{path}?next=true&cursor={}&limit={limit}&{rest}",
        cursor.encode()
    )
}

/// With a body expanded, Cloud caps a page of results at 50.
fn search_limit(params: &Params, expand: &Expand) -> Result<usize> {
    let max = if expand.wants_body() { 50 } else { 250 };
    params.limit(API, 25, max)
}

pub(crate) async fn search(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let started = Instant::now();
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", Some("content."));
    let limit = search_limit(&params, &expand)?;
    let base = base(&shared);
    let site = shared.site.read();
    let page = run_cql(&site, viewer, &params, limit)?;
    let results: Vec<Value> = page
        .ids
        .iter()
        .filter_map(|id| site.content.get(id))
        .map(|c| {
            let space = site.spaces.get(&c.space_id);
            let text = crate::body::plain_text(&site.storage_of(c), &site.users);
            let excerpt: String = text.chars().take(200).collect();
            json!({
                "content": content_json(&site, c, &expand, &base, None),
                "title": c.title,
                "excerpt": excerpt,
                "url": super::v2::webui(&site, c),
                "resultGlobalContainer": {
                    "title": space.map(|s| s.name.clone()).unwrap_or_default(),
                    "displayUrl": format!("/spaces/{}", space.map(|s| s.key.clone()).unwrap_or_default()),
                },
                "breadcrumbs": [],
                "entityType": "content",
                "iconCssClass": format!("aui-icon content-type-{}", c.kind.v1_type()),
                "lastModified": iso(c.modified_at),
                "friendlyLastModified": iso(c.modified_at),
                "score": 0.0,
            })
        })
        .collect();
    let size = results.len();
    let next = page
        .next
        .as_ref()
        .map(|cursor| next_link("/rest/api/search", &params, cursor, limit));
    Ok(Json(json!({
        "results": results,
        "start": page.start,
        "limit": limit,
        "size": size,
        "totalSize": page.total,
        "cqlQuery": params.get("cql").unwrap_or(""),
        "searchDuration": started.elapsed().as_millis() as u64,
        "archivedResultCount": 0,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

pub(crate) async fn content_search(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let mut expand = Expand::parse(&params, "expand", None);
    expand
        .0
        .extend(Expand::parse(&params, "contentExpand", None).0);
    let limit = search_limit(&params, &expand)?;
    let base = base(&shared);
    let site = shared.site.read();
    let page = run_cql(&site, viewer, &params, limit)?;
    let results: Vec<Value> = page
        .ids
        .iter()
        .filter_map(|id| site.content.get(id))
        .map(|c| content_json(&site, c, &expand, &base, None))
        .collect();
    let size = results.len();
    let next = page
        .next
        .as_ref()
        .map(|cursor| next_link("/rest/api/content/search", &params, cursor, limit));
    Ok(Json(json!({
        "results": results,
        "start": page.start,
        "limit": limit,
        "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

/// Offset paging as Data Center does it: `start` and `limit`, and a
/// `_links.next` while more remain.
fn offset_page<T: Copy>(
    items: impl Iterator<Item = T>,
    params: &Params,
    default_limit: usize,
    max_limit: usize,
) -> Result<(Vec<T>, usize, usize, bool)> {
    let start = params.start(API)?;
    let limit = params.limit(API, default_limit, max_limit)?;
    let mut page: Vec<T> = items.skip(start).take(limit + 1).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    Ok((page, start, limit, more))
}

fn offset_next(path: &str, params: &Params, start: usize, limit: usize) -> String {
    let rest = params.encode_without(&["start", "limit"]);
    let sep = if rest.is_empty() { "" } else { "&" };
    format!("{path}?{rest}{sep}limit={limit}&start={}", start + limit)
}

pub(crate) async fn content_list(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", None);
    let kind = match params.get("type").unwrap_or("page") {
        "page" => ContentKind::Page,
        "blogpost" => ContentKind::BlogPost,
        other => {
            return Err(ApiError::bad_request(
                API,
                format!("Invalid content type '{other}'"),
            ))
        }
    };
    let statuses: Vec<Status> = match params.get("status").unwrap_or("current") {
        "any" => vec![Status::Current, Status::Archived, Status::Trashed],
        text => vec![Status::parse(text)
            .ok_or_else(|| ApiError::bad_request(API, format!("Invalid status '{text}'")))?],
    };
    let base = base(&shared);
    let site = shared.site.read();
    let space = match params.get("spaceKey") {
        Some(key) => Some(
            site.space_by_key(key)
                .filter(|s| site.can_read_space(viewer.0, s))
                .ok_or_else(|| ApiError::not_found(API))?
                .id,
        ),
        None => None,
    };
    let title = params.get("title");
    let empty = std::collections::BTreeSet::new();
    let ids: Box<dyn Iterator<Item = u64>> = match space {
        Some(space) => Box::new(
            site.space_content
                .get(&space)
                .unwrap_or(&empty)
                .iter()
                .copied(),
        ),
        None => Box::new(site.content.keys().copied()),
    };
    let matching = ids.filter(|id| {
        site.content.get(id).is_some_and(|c| {
            c.kind == kind
                && statuses.contains(&c.status)
                && title.is_none_or(|t| t == c.title)
                && site.can_read(viewer.0, c)
        })
    });
    let max = if expand.wants_body() { 100 } else { 250 };
    let (page, start, limit, more) = offset_page(matching, &params, 25, max)?;
    let results: Vec<Value> = page
        .iter()
        .filter_map(|id| site.content.get(id))
        .map(|c| content_json(&site, c, &expand, &base, None))
        .collect();
    let size = results.len();
    let next = more.then(|| offset_next("/rest/api/content", &params, start, limit));
    Ok(Json(json!({
        "results": results, "start": start, "limit": limit, "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

fn readable_content<'s>(site: &'s Site, viewer: Viewer, id: &str) -> Result<&'s Content> {
    let id = path_id(API, id)?;
    site.content
        .get(&id)
        .filter(|c| site.can_read(viewer.0, c))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                API,
                "NOT_FOUND",
                format!("No content found with id: ContentId{{id={id}}}"),
            )
        })
}

pub(crate) async fn content_one(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", None);
    let base = base(&shared);
    let site = shared.site.read();
    let content = readable_content(&site, viewer, &path.id)?;
    let status_ok = match params.get("status") {
        None | Some("") => content.status != Status::Trashed,
        Some("any") => true,
        Some(list) => list.split(',').any(|s| s.trim() == content.status.as_str()),
    };
    if !status_ok {
        return Err(ApiError::not_found(API));
    }
    let version = match params.get("version") {
        None | Some("") => None,
        Some(text) => match text.parse::<u32>() {
            Ok(v) if v >= 1 && v <= content.version => Some(v),
            Ok(_) => return Err(ApiError::not_found(API)),
            Err(_) => {
                return Err(ApiError::bad_request(
                    API,
                    format!("Invalid version '{text}'"),
                ))
            }
        },
    };
    Ok(Json(content_json(&site, content, &expand, &base, version)).into_response())
}

fn restriction_json(site: &Site, content: &Content, operation: &str, base: &str) -> Value {
    let (users, groups): (Vec<Value>, Vec<Value>) = match (&content.read_restriction, operation) {
        (Some(r), "read") => (
            r.users.iter().map(|u| user_json(site, *u, base)).collect(),
            r.groups
                .iter()
                .map(|g| group_json(site, *g, base))
                .collect(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let (n_users, n_groups) = (users.len(), groups.len());
    json!({
        "operation": operation,
        "restrictions": {
            "user": {"results": users, "start": 0, "limit": 200, "size": n_users},
            "group": {"results": groups, "start": 0, "limit": 200, "size": n_groups},
        },
        "_expandable": {"content": format!("/rest/api/content/{}", content.id)},
        "_links": {"self": format!("{base}/rest/api/content/{}/restriction/byOperation/{operation}", content.id)},
    })
}

pub(crate) async fn restrictions(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
) -> Result<Response> {
    let base = base(&shared);
    let site = shared.site.read();
    let content = readable_content(&site, viewer, &path.id)?;
    let results = vec![
        restriction_json(&site, content, "read", &base),
        restriction_json(&site, content, "update", &base),
    ];
    let hash = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(
            format!("{:?}", content.read_restriction).as_bytes(),
        ))
    };
    Ok(Json(json!({
        "results": results,
        "start": 0,
        "limit": 100,
        "size": 2,
        "restrictionsHash": hash,
        "_links": list_links(&base, None),
    }))
    .into_response())
}

pub(crate) async fn restrictions_by_operation(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
) -> Result<Response> {
    let base = base(&shared);
    let site = shared.site.read();
    let content = readable_content(&site, viewer, &path.id)?;
    Ok(Json(json!({
        "read": restriction_json(&site, content, "read", &base),
        "update": restriction_json(&site, content, "update", &base),
    }))
    .into_response())
}

pub(crate) async fn child_attachments(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<IdPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", None);
    let base = base(&shared);
    let site = shared.site.read();
    let content = readable_content(&site, viewer, &path.id)?;
    let filename = params.get("filename");
    let media_type = params.get("mediaType");
    let empty = std::collections::BTreeSet::new();
    let ids = site
        .container_attachments
        .get(&content.id)
        .unwrap_or(&empty)
        .iter()
        .copied()
        .filter(|id| {
            site.attachments.get(id).is_some_and(|a| {
                a.status == Status::Current
                    && filename.is_none_or(|f| f == a.title)
                    && media_type.is_none_or(|m| m == a.media_type)
            })
        });
    let (page, start, limit, more) = offset_page(ids, &params, 50, 200)?;
    let results: Vec<Value> = page
        .iter()
        .filter_map(|id| site.attachments.get(id))
        .map(|a| attachment_content_json(&site, a, &expand, &base))
        .collect();
    let size = results.len();
    let next = more.then(|| {
        offset_next(
            &format!("/rest/api/content/{}/child/attachment", content.id),
            &params,
            start,
            limit,
        )
    });
    Ok(Json(json!({
        "results": results, "start": start, "limit": limit, "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

/// v1's download answers 302 to the file, as Cloud does.
pub(crate) async fn download_redirect(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<DownloadRedirectPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let container = path_id(API, &path.id)?;
    let attachment_id = path_id(API, path.attachment.trim_start_matches("att"))?;
    let site = shared.site.read();
    let attachment = site
        .attachments
        .get(&attachment_id)
        .filter(|a| a.container_id == container && site.can_read_child_of(viewer.0, container))
        .ok_or_else(|| ApiError::not_found(API))?;
    let version = match params.get("version") {
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1 && *v <= attachment.version)
            .ok_or_else(|| ApiError::bad_request(API, format!("Invalid version '{text}'")))?,
        None => attachment.version,
    };
    let name: String = url::form_urlencoded::byte_serialize(attachment.title.as_bytes()).collect();
    let location = format!(
        "{}/download/attachments/{container}/{name}?version={version}&modificationDate={}&api=v2",
        base(&shared),
        attachment.modified_at
    );
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}

pub(crate) async fn download_file(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<FilePath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let container = path_id(API, &path.container)?;
    let site = shared.site.read();
    if !site.can_read_child_of(viewer.0, container) {
        return Err(ApiError::not_found(API));
    }
    let attachment = site
        .container_attachments
        .get(&container)
        .into_iter()
        .flatten()
        .filter_map(|id| site.attachments.get(id))
        .find(|a| a.title == path.filename && a.status == Status::Current)
        .ok_or_else(|| ApiError::not_found(API))?;
    let version = params
        .get("version")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| *v >= 1 && *v <= attachment.version)
        .unwrap_or(attachment.version);
    let bytes = site.attachment_bytes(attachment, version);
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        url::form_urlencoded::byte_serialize(attachment.title.as_bytes()).collect::<String>()
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, attachment.media_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) async fn space_list(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", None);
    let keys = params.list("spaceKey");
    let space_type = params.get("type").map(str::to_string);
    let status = params.get("status").map(str::to_string);
    let base = base(&shared);
    let site = shared.site.read();
    let matching = site.spaces.values().filter(|s| {
        site.can_read_space(viewer.0, s)
            && (keys.is_empty() || keys.contains(&s.key))
            && space_type
                .as_deref()
                .is_none_or(|t| t == s.space_type.as_str())
            && status.as_deref().is_none_or(|t| t == s.status.as_str())
    });
    let (page, start, limit, more) = offset_page(matching, &params, 25, 250)?;
    let results: Vec<Value> = page
        .iter()
        .map(|s| space_json(&site, s, &expand, &base))
        .collect();
    let size = results.len();
    let next = more.then(|| offset_next("/rest/api/space", &params, start, limit));
    Ok(Json(json!({
        "results": results, "start": start, "limit": limit, "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

pub(crate) async fn space_one(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(path): Path<KeyPath>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let expand = Expand::parse(&params, "expand", None);
    let base = base(&shared);
    let site = shared.site.read();
    let space = site
        .space_by_key(&path.key)
        .filter(|s| site.can_read_space(viewer.0, s))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                API,
                "NOT_FOUND",
                format!("No space with key : {}", path.key),
            )
        })?;
    Ok(Json(space_json(&site, space, &expand, &base)).into_response())
}

pub(crate) async fn user(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let account = params
        .get("accountId")
        .ok_or_else(|| ApiError::bad_request(API, "The 'accountId' parameter is required"))?;
    let base = base(&shared);
    let site = shared.site.read();
    let user = site
        .user_by_account_id(account)
        .ok_or_else(|| ApiError::not_found(API))?;
    Ok(Json(user_json(&site, user, &base)).into_response())
}

/// `GET /rest/api/user/bulk`: the users among the ids asked for (repeated
/// or comma-separated), at most 100 (the rest are dropped, as Cloud
/// says); ids of no user are left out.
pub(crate) async fn user_bulk(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let ids = params.list("accountId");
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            API,
            "The 'accountId' parameter is required",
        ));
    }
    let base = base(&shared);
    let site = shared.site.read();
    let results: Vec<Value> = ids
        .iter()
        .take(100)
        .filter_map(|id| site.user_by_account_id(id))
        .map(|user| user_json(&site, user, &base))
        .collect();
    let size = results.len();
    Ok(Json(json!({
        "results": results, "start": 0, "limit": 100, "size": size,
        "_links": list_links(&base, None),
    }))
    .into_response())
}

/// `GET /rest/api/group`: every group, by name, offset-paged.
pub(crate) async fn groups(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let base = base(&shared);
    let site = shared.site.read();
    let mut order: Vec<u16> = (0..site.groups.len() as u16).collect();
    order.sort_by(|a, b| {
        site.groups[*a as usize]
            .name
            .cmp(&site.groups[*b as usize].name)
    });
    let (page, start, limit, more) = offset_page(order.into_iter(), &params, 200, 1000)?;
    let results: Vec<Value> = page.iter().map(|g| group_json(&site, *g, &base)).collect();
    let size = results.len();
    let next = more.then(|| offset_next("/rest/api/group", &params, start, limit));
    Ok(Json(json!({
        "results": results, "start": start, "limit": limit, "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

pub(crate) async fn current_user(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response> {
    let base = base(&shared);
    let site = shared.site.read();
    Ok(Json(user_json(&site, viewer.0, &base)).into_response())
}

pub(crate) async fn member_of(
    State(shared): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let params = Params::parse(raw.as_deref());
    let account = params
        .get("accountId")
        .ok_or_else(|| ApiError::bad_request(API, "The 'accountId' parameter is required"))?;
    let base = base(&shared);
    let site = shared.site.read();
    let user = site
        .user_by_account_id(account)
        .ok_or_else(|| ApiError::not_found(API))?;
    let groups = site.users[user as usize].groups.clone();
    let (page, start, limit, more) = offset_page(groups.into_iter(), &params, 200, 1000)?;
    let results: Vec<Value> = page.iter().map(|g| group_json(&site, *g, &base)).collect();
    let size = results.len();
    let next = more.then(|| offset_next("/rest/api/user/memberof", &params, start, limit));
    Ok(Json(json!({
        "results": results, "start": start, "limit": limit, "size": size,
        "_links": list_links(&base, next),
    }))
    .into_response())
}

/// `POST /rest/api/webhooks` (Data Center): registers a webhook. Confluence
/// administrators only.
pub(crate) async fn create_webhook(
    State(shared): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let admin = {
        let site = shared.site.read();
        site.users.get(viewer.0 as usize).is_some_and(|u| {
            u.groups
                .iter()
                .any(|g| site.groups[*g as usize].name == "site-admins")
        })
    };
    if !admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            API,
            "FORBIDDEN",
            "Only Confluence administrators can manage webhooks",
        ));
    }
    let new: crate::webhooks::NewWebhook = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(API, format!("Invalid webhook: {e}")))?;
    let url_ok = url::Url::parse(&new.url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !url_ok || new.name.trim().is_empty() || new.events.is_empty() {
        return Err(ApiError::bad_request(
            API,
            "A webhook needs a name, an http(s) url and at least one event",
        ));
    }
    if let Some(unknown) = new
        .events
        .iter()
        .find(|e| !crate::webhooks::EVENTS.contains(&e.as_str()))
    {
        return Err(ApiError::bad_request(
            API,
            format!("Unknown event: {unknown}"),
        ));
    }
    let hook = crate::Simulator {
        shared: shared.clone(),
    }
    .add_webhook(new);
    Ok((StatusCode::CREATED, Json(hook.json())).into_response())
}

/// `GET /rest/api/webhooks` (Data Center): the registered webhooks.
pub(crate) async fn list_webhooks(State(shared): State<AppState>) -> Result<Response> {
    let hooks: Vec<Value> = shared.webhooks.lock().iter().map(|h| h.json()).collect();
    Ok(
        Json(json!({"results": hooks, "start": 0, "limit": hooks.len(), "size": hooks.len()}))
            .into_response(),
    )
}
