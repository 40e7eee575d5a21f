//! The API's behaviour: pagination as Cloud does it, limits, what each
//! account may see, errors in Confluence's shapes, downloads, the gateway
//! form, and CQL's date rules.

use crate::common::start;
use confluence_sim::model::{ContentKind, Status};
use std::collections::BTreeSet;

#[tokio::test]
async fn cursor_pagination_walks_every_page_once_in_every_sort() {
    let t = start(3, 3, 400).await;
    let truth: BTreeSet<String> = t
        .sim
        .truth("admin@example.com")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "page")
        .map(|e| e.id)
        .collect();
    for sort in [
        "id",
        "-id",
        "title",
        "-title",
        "modified-date",
        "-modified-date",
        "created-date",
    ] {
        let ids = t
            .walk_ids(
                "admin@example.com",
                &format!("/wiki/api/v2/pages?limit=17&sort={sort}"),
            )
            .await;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(unique.len(), ids.len(), "sort {sort} returned duplicates");
        assert_eq!(unique, truth, "sort {sort} missed or added pages");
    }
    // Sorted orders really are sorted.
    let reply = t
        .get("/wiki/api/v2/pages?sort=-modified-date&limit=250")
        .await;
    let versions: Vec<String> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"]["createdAt"].as_str().unwrap().to_string())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn limits_default_clamp_and_reject() {
    let t = start(3, 2, 600).await;
    let reply = t.get("/wiki/api/v2/pages").await;
    assert_eq!(
        reply.body["results"].as_array().unwrap().len(),
        25,
        "default limit 25"
    );
    let reply = t.get("/wiki/api/v2/pages?limit=1000").await;
    assert_eq!(
        reply.body["results"].as_array().unwrap().len(),
        250,
        "at most 250"
    );
    let reply = t.get("/wiki/api/v2/attachments").await;
    let n = reply.body["results"].as_array().unwrap().len();
    assert!(
        n == 50 || reply.body["_links"]["next"].is_null(),
        "attachments default to 50, got {n}"
    );
    for bad in [
        "limit=0",
        "limit=-3",
        "limit=ten",
        "cursor=not-a-cursor",
        "sort=colour",
        "status=lost",
        "body-format=html",
        "depth=some",
    ] {
        let reply = t
            .get(&format!(
                "/wiki/api/v2/spaces/{}/pages?{bad}",
                first_space(&t)
            ))
            .await;
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(
            reply.body["errors"][0]["status"], 400,
            "{bad}: {}",
            reply.body
        );
        assert!(reply.body["errors"][0]["code"].is_string());
    }
    // `space-id` takes at most 100 ids, `id` at most 250 (the documents'
    // maxItems).
    let ids = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages?space-id={}", ids(100)))
            .await
            .status,
        200
    );
    let reply = t
        .get(&format!("/wiki/api/v2/blogposts?space-id={}", ids(101)))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages?id={}", ids(250)))
            .await
            .status,
        200
    );
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages?id={}", ids(251)))
            .await
            .status,
        400
    );
    let keys = (1..=251)
        .map(|i| format!("K{i}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        t.get(&format!("/wiki/api/v2/spaces?keys={keys}"))
            .await
            .status,
        400,
        "at most 250 keys"
    );
    // What clients send for "no body" and "every status" is understood.
    assert_eq!(
        t.get("/wiki/api/v2/pages?body-format=none").await.status,
        200
    );
    assert_eq!(t.get("/wiki/api/v2/pages?status=any").await.status, 200);
    // A cursor made for one sort is refused by another.
    let reply = t.get("/wiki/api/v2/pages?limit=5&sort=title").await;
    let next = reply.body["_links"]["next"].as_str().unwrap().to_string();
    let cursor = next.split("cursor=").nth(1).unwrap();
    let reply = t
        .get(&format!(
            "/wiki/api/v2/pages?limit=5&sort=id&cursor={cursor}"
        ))
        .await;
    assert_eq!(reply.status, 400);
    // The last page carries neither a next link nor a Link header.
    let reply = t.get("/wiki/api/v2/pages?id=1000000").await;
    assert!(reply.body["_links"]["next"].is_null());
    assert!(reply.headers.get("link").is_none());
}

fn first_space(t: &crate::common::TestSim) -> u64 {
    t.sim.with_site(|site| *site.spaces.keys().next().unwrap())
}

#[tokio::test]
async fn errors_in_confluence_shapes() {
    let t = start(3, 2, 50).await;
    let reply = t.get_with("", "/wiki/api/v2/pages").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["errors"][0]["status"], 401);
    let reply = t
        .get_with(
            "Basic YWRtaW5AZXhhbXBsZS5jb206d3Jvbmc=",
            "/wiki/rest/api/search?cql=type=page",
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["statusCode"], 401);
    let reply = t.get("/wiki/api/v2/pages/999999999").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["errors"][0]["code"], "NOT_FOUND");
    let reply = t.get("/wiki/api/v2/pages/abc").await;
    assert_eq!(reply.status, 400);
    let reply = t.get("/wiki/rest/api/content/999999999").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["statusCode"], 404);
    let reply = t.get("/wiki/rest/api/search?cql=nonsense%20~~%20%22").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["statusCode"], 400);
    let reply = t.get("/wiki/rest/api/search").await;
    assert_eq!(reply.status, 400, "cql is required");
    let reply = t.get("/wiki/api/v2/no-such-operation").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn an_account_never_sees_what_it_may_not_read() {
    let t = start(11, 5, 800).await;
    // A restricted page that ben may not read, in a space ben may read.
    let (hidden, child_of_hidden, space_id) = t.sim.with_site(|site| {
        let ben = site.user_by_email("ben@example.com").unwrap();
        let page = site
            .content
            .values()
            .find(|c| {
                c.kind == ContentKind::Page
                    && c.status == Status::Current
                    && c.read_restriction.is_some()
                    && site.can_read_space(ben, &site.spaces[&c.space_id])
                    && !site.can_read(ben, c)
                    && site.children.get(&c.id).is_some_and(|s| !s.is_empty())
            })
            .or_else(|| {
                site.content.values().find(|c| {
                    c.kind == ContentKind::Page
                        && c.read_restriction.is_some()
                        && site.can_read_space(ben, &site.spaces[&c.space_id])
                        && !site.can_read(ben, c)
                })
            })
            .expect("a page restricted away from ben");
        let child = site
            .children
            .get(&page.id)
            .and_then(|s| s.iter().next().copied());
        (page.id, child, page.space_id)
    });
    let ben = "ben@example.com";
    assert_eq!(
        t.get_as(ben, &format!("/wiki/api/v2/pages/{hidden}"))
            .await
            .status,
        404
    );
    assert_eq!(
        t.get_as(ben, &format!("/wiki/rest/api/content/{hidden}"))
            .await
            .status,
        404
    );
    assert_eq!(
        t.get_as(ben, &format!("/wiki/api/v2/pages/{hidden}/attachments"))
            .await
            .status,
        404
    );
    assert_eq!(
        t.get_as(ben, &format!("/wiki/api/v2/pages/{hidden}/footer-comments"))
            .await
            .status,
        404
    );
    assert_eq!(
        t.get_as(ben, &format!("/wiki/rest/api/content/{hidden}/restriction"))
            .await
            .status,
        404
    );
    // Inherited: a child of a restricted page is hidden too, even unrestricted.
    if let Some(child) = child_of_hidden {
        assert_eq!(
            t.get_as(ben, &format!("/wiki/api/v2/pages/{child}"))
                .await
                .status,
            404
        );
    }
    let listed = t
        .walk_ids(
            ben,
            &format!("/wiki/api/v2/spaces/{space_id}/pages?limit=250"),
        )
        .await;
    assert!(!listed.contains(&hidden.to_string()));
    let everything = t.walk_ids(ben, "/wiki/api/v2/pages?limit=250").await;
    let truth: BTreeSet<String> = t
        .sim
        .truth(ben)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "page")
        .map(|e| e.id)
        .collect();
    assert_eq!(everything.into_iter().collect::<BTreeSet<_>>(), truth);
    let search = t
        .get_as(ben, &format!("/wiki/rest/api/search?cql=id%3D{hidden}"))
        .await;
    assert_eq!(search.body["totalSize"], 0);
    // The admin sees it.
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages/{hidden}")).await.status,
        200
    );
    // Spaces the account lacks permission on are invisible.
    let eli_spaces = t.walk_ids("eli@example.com", "/wiki/api/v2/spaces").await;
    let all_spaces = t.walk_ids("admin@example.com", "/wiki/api/v2/spaces").await;
    assert!(eli_spaces.len() < all_spaces.len());
}

#[tokio::test]
async fn gateway_form_and_site_form_answer_the_same() {
    let t = start(5, 2, 60).await;
    let cloud_id = t.sim.credentials().cloud_id;
    let site = t
        .get("/wiki/api/v2/pages?limit=5&body-format=storage")
        .await;
    let gateway = t
        .get(&format!(
            "/ex/confluence/{cloud_id}/wiki/api/v2/pages?limit=5&body-format=storage"
        ))
        .await;
    assert_eq!(site.status, 200);
    assert_eq!(site.body, gateway.body);
    let v1 = t
        .get(&format!("/ex/confluence/{cloud_id}/wiki/rest/api/space"))
        .await;
    assert_eq!(v1.status, 200);
    let wrong = t
        .get("/ex/confluence/00000000-0000-0000-0000-000000000000/wiki/api/v2/pages")
        .await;
    assert_eq!(wrong.status, 404);
}

#[tokio::test]
async fn attachments_download_through_v1_redirect_and_v2_link() {
    let t = start(9, 2, 200).await;
    let (page, attachment, title, size, media) = t.sim.with_site(|site| {
        let a = site
            .attachments
            .values()
            .find(|a| a.media_type == "application/pdf")
            .or_else(|| site.attachments.values().next())
            .unwrap();
        (
            a.container_id,
            a.wire_id(),
            a.title.clone(),
            a.file_size,
            a.media_type,
        )
    });
    let reply = t
        .get(&format!(
            "/wiki/rest/api/content/{page}/child/attachment/{attachment}/download"
        ))
        .await;
    assert_eq!(reply.status, 302);
    let location = reply.headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&t.base()));
    let bytes = t
        .client
        .get(&location)
        .header("authorization", t.basic_for("admin@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.headers()["content-type"].to_str().unwrap(), media);
    let body = bytes.bytes().await.unwrap();
    assert_eq!(body.len() as u64, size, "{title}");
    // The v2 downloadLink is relative to /wiki and serves the same bytes.
    let meta = t
        .get(&format!("/wiki/api/v2/attachments/{attachment}"))
        .await;
    let link = meta.body["downloadLink"].as_str().unwrap();
    let again = t
        .client
        .get(format!("{}/wiki{link}", t.base()))
        .header("authorization", t.basic_for("admin@example.com"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, again);
    // Without auth, nothing.
    let anonymous = t.client.get(&location).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn generated_files_are_real_documents() {
    let t = start(9, 2, 400).await;
    t.sim.with_site(|site| {
        let mut kinds = BTreeSet::new();
        for attachment in site.attachments.values() {
            let bytes = site.attachment_bytes(attachment, attachment.version);
            assert_eq!(bytes.len() as u64, attachment.file_size);
            let lines =
                confluence_sim::files::file_lines(site.seed, attachment.id, attachment.version);
            match attachment.media_type {
                "application/pdf" => {
                    assert!(bytes.starts_with(b"%PDF-1.4") && bytes.ends_with(b"%%EOF\n"));
                    // startxref points at the cross-reference table.
                    let tail = String::from_utf8_lossy(&bytes[bytes.len() - 40..]).into_owned();
                    let xref_at: usize = tail
                        .rsplit("startxref\n")
                        .next()
                        .unwrap()
                        .lines()
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!(bytes[xref_at..].starts_with(b"xref"));
                    let text = String::from_utf8_lossy(&bytes);
                    assert!(text.contains(&lines[0].replace('(', "\\(").replace(')', "\\)")));
                }
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
                    let mut document = String::new();
                    std::io::Read::read_to_string(
                        &mut zip.by_name("word/document.xml").unwrap(),
                        &mut document,
                    )
                    .unwrap();
                    assert!(document.contains(&lines[0]));
                }
                "image/png" => assert!(bytes.starts_with(b"\x89PNG")),
                _ => assert!(String::from_utf8(bytes).unwrap().contains(&lines[0])),
            }
            kinds.insert(attachment.media_type);
        }
        assert!(
            kinds.len() >= 6,
            "every kind of file is generated: {kinds:?}"
        );
    });
}

#[tokio::test]
async fn v1_offset_paging_and_next_links_from_the_site_root() {
    let t = start(4, 1, 130).await;
    let key = t
        .sim
        .with_site(|s| s.spaces.values().next().unwrap().key.clone());
    let mut ids = Vec::new();
    let mut path = format!("/wiki/rest/api/content?spaceKey={key}&limit=40&expand=version");
    loop {
        let reply = t.get(&path).await;
        assert_eq!(reply.status, 200, "{path}");
        ids.extend(
            reply.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        assert_eq!(reply.body["_links"]["context"], "/wiki");
        match reply.body["_links"]["next"].as_str() {
            // Next links are relative to _links.base (the /wiki context).
            Some(next) => path = format!("/wiki{next}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 130);
    // Clients that join next links to the site root are answered as well.
    assert_eq!(t.get("/rest/api/content?limit=1").await.status, 200);
}

#[tokio::test]
async fn cql_dates_are_minute_granular_in_the_accounts_time_zone() {
    let t = start(2, 1, 30).await;
    let (id, modified, offset_ben) = t.sim.with_site(|site| {
        let c = site
            .content
            .values()
            .find(|c| c.modified_at % 60_000 > 1_000)
            .unwrap();
        let ben = site.user_by_email("ben@example.com").unwrap();
        (
            c.id,
            c.modified_at,
            site.users[ben as usize].utc_offset_minutes,
        )
    });
    assert_ne!(offset_ben, 0, "ben's zone is not UTC");
    let id_text = id.to_string();
    let query = |email: &'static str, cql: String| {
        let t = &t;
        let id_text = id_text.clone();
        async move {
            let encoded: String = url::form_urlencoded::byte_serialize(cql.as_bytes()).collect();
            let reply = t
                .get_as(
                    email,
                    &format!("/wiki/rest/api/search?cql={encoded}&limit=250"),
                )
                .await;
            assert_eq!(reply.status, 200, "{cql}: {}", reply.body);
            reply.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["content"]["id"].as_str() == Some(id_text.as_str()))
        }
    };
    let utc_minute = confluence_sim::cql::format_local(modified, 0);
    // The page was modified during this minute, after its start: yet
    // `lastmodified > minute` misses it, because CQL compares minutes.
    assert!(
        !query(
            "admin@example.com",
            format!("id = {id} AND lastmodified > \"{utc_minute}\"")
        )
        .await
    );
    assert!(
        query(
            "admin@example.com",
            format!("id = {id} AND lastmodified >= \"{utc_minute}\"")
        )
        .await
    );
    // The same literal means another instant for an account in another zone.
    let ben_minute = confluence_sim::cql::format_local(modified, offset_ben);
    assert!(
        query(
            "ben@example.com",
            format!("id = {id} AND lastmodified >= \"{ben_minute}\"")
        )
        .await
            || !query("ben@example.com", format!("id = {id}")).await
    );
    assert!(
        query(
            "admin@example.com",
            format!("id = {id} AND lastmodified < now(\"+1d\") AND created > \"2020/01/01\"")
        )
        .await
    );
    assert!(
        query(
            "admin@example.com",
            format!("id IN ({id}, 1) AND NOT type = blogpost ORDER BY lastmodified DESC")
        )
        .await
    );
}

#[tokio::test]
async fn space_keys_are_unique_and_each_user_has_one_personal_space() {
    // Thirty spaces ask for six personal ones; there are five users
    // besides the admin, so the sixth is a global space.
    let t = start(5, 30, 300).await;
    let (keys, personal) = t.sim.with_site(|site| {
        let keys: Vec<String> = site.spaces.values().map(|s| s.key.clone()).collect();
        let personal: Vec<String> = site
            .spaces
            .values()
            .filter(|s| s.key.starts_with('~'))
            .map(|s| s.name.clone())
            .collect();
        (keys, personal)
    });
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "duplicate space keys: {keys:?}");
    let owners: BTreeSet<&String> = personal.iter().collect();
    assert_eq!(personal.len(), 5, "{personal:?}");
    assert_eq!(owners.len(), 5, "one personal space per user: {personal:?}");
    // Going space by key finds every space once.
    for key in &keys {
        let reply = t.get(&format!("/wiki/api/v2/spaces?keys={key}")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["results"].as_array().unwrap().len(), 1, "{key}");
    }
}

#[tokio::test]
async fn view_renders_code_in_pre_mentions_as_names_and_keeps_words_apart() {
    use confluence_sim::model::User;
    let users = vec![User {
        account_id: "5b10ac8d82e05b22cc7d4ef5".into(),
        email: "cleo@example.com".into(),
        display_name: "Cleo Writer".into(),
        api_token: String::new(),
        groups: vec![],
        time_zone: "UTC",
        utc_offset_minutes: 0,
    }];
    let storage = concat!(
        "<p>before<ac:structured-macro ac:name=\"info\"><ac:parameter ac:name=\"title\">T</ac:parameter>",
        "<ac:rich-text-body><p>inside</p></ac:rich-text-body></ac:structured-macro>after</p>",
        "<ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">rust</ac:parameter>",
        "<ac:plain-text-body><![CDATA[fn a() -> u8 { 1 < 2 }]]></ac:plain-text-body></ac:structured-macro>",
        "<p>Owner: <ac:link><ri:user ri:account-id=\"5b10ac8d82e05b22cc7d4ef5\" /></ac:link>.</p>",
        "<p>See<ac:link><ri:page ri:content-title=\"Runbook\" /><ac:plain-text-link-body><![CDATA[the runbook]]></ac:plain-text-link-body></ac:link>now",
        " and <ac:link><ri:page ri:content-title=\"Glossary\" /></ac:link>.</p>",
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>incomplete</ac:task-status>",
        "<ac:task-body>ship it</ac:task-body></ac:task></ac:task-list>",
    );
    let view = confluence_sim::body::view_from_storage(storage, &users);
    assert!(
        view.contains("<pre class=\"syntaxhighlighter-pre\">fn a() -&gt; u8 { 1 &lt; 2 }</pre>"),
        "{view}"
    );
    assert!(view.contains("Owner: <a>Cleo Writer</a>."), "{view}");
    assert!(
        view.contains("<a>the runbook</a>"),
        "link body, not the title: {view}"
    );
    assert!(!view.contains("Runbook"), "{view}");
    assert!(view.contains("<a>Glossary</a>"), "{view}");
    assert!(
        !view.contains("incomplete") && !view.contains(">T<"),
        "{view}"
    );
    let text = confluence_sim::body::plain_text(storage, &users);
    for joined in ["beforeinside", "insideafter", "Seethe", "runbooknow"] {
        assert!(!text.contains(joined), "{joined} in {text}");
    }
    assert!(text.contains("ship it"), "{text}");
}

#[tokio::test]
async fn stats_count_requests_to_paths_that_do_not_exist() {
    let t = start(3, 2, 20).await;
    t.sim.reset_stats();
    assert_eq!(t.get("/wiki/api/v2/no-such-operation").await.status, 404);
    assert_eq!(t.get("/wiki/rest/api/nothing/here").await.status, 404);
    assert_eq!(t.get("/wiki/api/v2/pages?limit=1").await.status, 200);
    let stats = t.sim.stats();
    assert_eq!(stats.total, 3, "{:?}", stats.operations);
    assert_eq!(stats.operations.get("GET (no such path)"), Some(&2));
}
