//! Every response body of every implemented operation validates against
//! the schemas of Atlassian's published OpenAPI documents.

use crate::common::{schemas, start, Doc};
use confluence_sim::model::{ContentKind, Status};

/// Ids of content with the features each operation needs, so that the
/// validated lists are not empty.
struct Ids {
    page_with_attachments: u64,
    attachment: String,
    page_with_comments: u64,
    comment: u64,
    page_with_labels: u64,
    deep_page: u64,
    parent_page: u64,
    blog_post: u64,
    restricted_page: u64,
    space: u64,
    space_key: String,
    account_id: String,
}

fn find_ids(sim: &confluence_sim::Simulator) -> Ids {
    sim.with_site(|site| {
        let pages = || {
            site.content
                .values()
                .filter(|c| c.kind == ContentKind::Page && c.status == Status::Current)
        };
        let page_with_attachments = pages()
            .find(|c| {
                site.container_attachments
                    .get(&c.id)
                    .is_some_and(|s| !s.is_empty())
            })
            .expect("a page with attachments")
            .id;
        let attachment = site.container_attachments[&page_with_attachments]
            .iter()
            .next()
            .map(|id| format!("att{id}"))
            .unwrap();
        let page_with_comments = pages()
            .find(|c| {
                site.container_comments
                    .get(&c.id)
                    .is_some_and(|s| !s.is_empty())
            })
            .expect("a page with comments")
            .id;
        let comment = *site.container_comments[&page_with_comments]
            .iter()
            .next()
            .unwrap();
        let deep_page = pages()
            .find(|c| site.ancestors(c).len() >= 3)
            .expect("a page three levels deep")
            .id;
        let parent_page = pages()
            .find(|c| site.children.get(&c.id).is_some_and(|s| s.len() >= 2))
            .expect("a page with children")
            .id;
        let space = *site.spaces.keys().next().unwrap();
        Ids {
            page_with_attachments,
            attachment,
            page_with_comments,
            comment,
            page_with_labels: pages().find(|c| !c.labels.is_empty()).unwrap().id,
            deep_page,
            parent_page,
            // A blog post with attachments, comments and labels if one exists.
            blog_post: site
                .content
                .values()
                .filter(|c| c.kind == ContentKind::BlogPost)
                .max_by_key(|c| {
                    site.container_attachments
                        .get(&c.id)
                        .map_or(0, |s| s.len().min(1))
                        + site
                            .container_comments
                            .get(&c.id)
                            .map_or(0, |s| s.len().min(1))
                        + c.labels.len().min(1)
                })
                .unwrap()
                .id,
            restricted_page: pages()
                .find(|c| {
                    c.read_restriction
                        .as_ref()
                        .is_some_and(|r| r.users.len() + r.groups.len() > 1)
                })
                .expect("a restricted page")
                .id,
            space,
            space_key: site.spaces[&space].key.clone(),
            account_id: site.users[1].account_id.clone(),
        }
    })
}

#[tokio::test]
async fn every_implemented_operation_matches_the_documents() {
    let t = start(7, 5, 600).await;
    let ids = find_ids(&t.sim);
    let Ids {
        page_with_attachments: pa,
        attachment: att,
        page_with_comments: pc,
        comment,
        page_with_labels: pl,
        deep_page: deep,
        parent_page: parent,
        blog_post: blog,
        restricted_page: restricted,
        space,
        space_key: key,
        account_id: account,
    } = ids;
    let v2 = |template: &str, concrete: String| {
        (
            Doc::V2,
            template.to_string(),
            format!("/wiki/api/v2{concrete}"),
            true,
        )
    };
    let v1 = |template: &str, concrete: String, nonempty: bool| {
        (Doc::V1, template.to_string(), concrete, nonempty)
    };
    let cases = vec![
        v2("/spaces", "/spaces?limit=3&description-format=plain&include-icon=true".into()),
        v2("/spaces", "/spaces?sort=-name&type=personal".into()),
        v2("/spaces/{id}", format!("/spaces/{space}?description-format=view")),
        v2("/spaces/{id}/pages", format!("/spaces/{space}/pages?depth=root&body-format=storage")),
        v2("/spaces/{id}/pages", format!("/spaces/{space}/pages?sort=-modified-date&limit=5")),
        v2("/spaces/{id}/blogposts", format!("/spaces/{space}/blogposts?body-format=storage")),
        v2("/spaces/{id}/permissions", format!("/spaces/{space}/permissions")),
        v2("/pages", "/pages?body-format=storage&limit=30".into()),
        v2("/pages", "/pages?sort=modified-date&body-format=atlas_doc_format&limit=5".into()),
        v2("/pages", format!("/pages?id={pa},{pc}&space-id={space}")),
        v2("/pages/{id}", format!("/pages/{pl}?body-format=storage&include-labels=true")),
        v2("/pages/{id}", format!("/pages/{deep}?body-format=view")),
        v2("/pages/{id}/ancestors", format!("/pages/{deep}/ancestors")),
        v2("/pages/{id}/direct-children", format!("/pages/{parent}/direct-children")),
        v2("/pages/{id}/attachments", format!("/pages/{pa}/attachments")),
        v2("/pages/{id}/footer-comments", format!("/pages/{pc}/footer-comments?body-format=storage")),
        v2("/pages/{id}/labels", format!("/pages/{pl}/labels")),
        v2("/blogposts", "/blogposts?body-format=storage".into()),
        v2("/blogposts", format!("/blogposts?space-id={space},1&limit=250")),
        v2("/blogposts/{id}", format!("/blogposts/{blog}?body-format=storage")),
        v2("/blogposts/{id}/attachments", format!("/blogposts/{blog}/attachments")),
        v2("/blogposts/{id}/footer-comments", format!("/blogposts/{blog}/footer-comments?body-format=storage")),
        v2("/blogposts/{id}/labels", format!("/blogposts/{blog}/labels")),
        v2("/attachments", "/attachments?limit=10".into()),
        v2("/attachments/{id}", format!("/attachments/{att}")),
        v2("/footer-comments", "/footer-comments?body-format=storage".into()),
        v2("/footer-comments/{comment-id}", format!("/footer-comments/{comment}?body-format=storage")),
        v1("/wiki/rest/api/search", "/wiki/rest/api/search?cql=type%3Dpage&limit=5&expand=content.body.storage,content.version,content.space,content.ancestors".into(), true),
        v1("/wiki/rest/api/content/search", format!("/wiki/rest/api/content/search?cql=space%3D{key}&expand=body.storage,version,history,metadata.labels"), true),
        v1("/wiki/rest/api/content/search", "/wiki/rest/api/content/search?cql=type%3Dpage&limit=250&expand=version,metadata.labels,restrictions.read.restrictions.user,restrictions.read.restrictions.group".into(), true),
        v1("/wiki/rest/api/content/{id}/restriction", format!("/wiki/rest/api/content/{restricted}/restriction"), true),
        v1("/wiki/rest/api/content/{id}/restriction/byOperation", format!("/wiki/rest/api/content/{restricted}/restriction/byOperation"), false),
        v1("/wiki/rest/api/user", format!("/wiki/rest/api/user?accountId={account}"), false),
        v1("/wiki/rest/api/user/current", "/wiki/rest/api/user/current".into(), false),
        v1("/wiki/rest/api/user/memberof", format!("/wiki/rest/api/user/memberof?accountId={account}"), true),
        v1("/wiki/rest/api/user/bulk", format!("/wiki/rest/api/user/bulk?accountId={account}&accountId=nobody"), true),
        v1("/wiki/rest/api/group", "/wiki/rest/api/group?limit=3".into(), true),
    ];
    // A blog post need not have attachments, comments or labels.
    let cases: Vec<_> = cases
        .into_iter()
        .map(|(doc, template, path, nonempty)| {
            let optional = template.starts_with("/blogposts/{id}/");
            (doc, template, path, nonempty && !optional)
        })
        .collect();
    let mut failures = Vec::new();
    for (doc, template, path, nonempty) in &cases {
        let reply = t.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        if *nonempty {
            if let Some(results) = reply.body.get("results") {
                assert!(
                    !results.as_array().unwrap().is_empty(),
                    "GET {path} returned no results to validate"
                );
            }
        }
        let schema = schemas().response(*doc, template, 200);
        if let Err(e) = schemas().check(*doc, schema, &reply.body) {
            failures.push(format!("GET {path} ({template}):\n{e}"));
        }
    }
    // The Data Center reads that the Cloud v1 document no longer lists are
    // validated against the document's own component schemas.
    let dc_cases = [
        ("ContentArray", format!("/wiki/rest/api/content?spaceKey={key}&expand=body.storage,version,ancestors,space&limit=10")),
        ("ContentArray", "/wiki/rest/api/content?type=blogpost&expand=body.view,body.export_view".to_string()),
        ("Content", format!("/wiki/rest/api/content/{deep}?expand=body.storage,body.view,body.export_view,version,ancestors,space,history")),
        ("SpaceArray", "/wiki/rest/api/space?limit=2&expand=description.plain,homepage".to_string()),
        ("Space", format!("/wiki/rest/api/space/{key}?expand=description.plain,history")),
        ("ContentArray", format!("/wiki/rest/api/content/{pa}/child/attachment?expand=version")),
    ];
    for (component, path) in &dc_cases {
        let reply = t.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        if let Err(e) = schemas().check(Doc::V1, schemas().component(component), &reply.body) {
            failures.push(format!("GET {path} ({component}):\n{e}"));
        }
    }
    // byOperation's document schema is loose; each operation's value must
    // also be a ContentRestriction.
    let by_operation = t
        .get(&format!(
            "/wiki/rest/api/content/{restricted}/restriction/byOperation"
        ))
        .await;
    for operation in ["read", "update"] {
        let schema = schemas().component("ContentRestriction");
        if let Err(e) = schemas().check(Doc::V1, schema, &by_operation.body[operation]) {
            failures.push(format!("byOperation.{operation}:\n{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} responses do not match the documents:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn the_validator_rejects_what_the_documents_forbid() {
    // A check that cannot fail proves nothing: wrong types must be caught.
    let schema = schemas().response(Doc::V2, "/pages", 200);
    let bad = serde_json::json!({"results": [{"id": 5, "version": {"number": "one"}}]});
    assert!(schemas().check(Doc::V2, schema.clone(), &bad).is_err());
    let bad_date = serde_json::json!({"results": [{"createdAt": "yesterday"}]});
    assert!(schemas().check(Doc::V2, schema, &bad_date).is_err());
    let content = schemas().component("Content");
    assert!(
        schemas()
            .check(Doc::V1, content, &serde_json::json!({"id": "1"}))
            .is_err(),
        "Content requires type and status"
    );
}
