//! Sites are deterministic, changes between syncs behave as Confluence's,
//! and the ground truth follows them.

use crate::common::start;
use confluence_sim::{Change, SiteConfig};
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn the_same_seed_gives_the_same_site() {
    let config = SiteConfig {
        seed: 77,
        spaces: 4,
        pages: 500,
    };
    let a = confluence_sim::Simulator::new(confluence_sim::SimConfig {
        site: config.clone(),
        ..Default::default()
    });
    let b = confluence_sim::Simulator::new(confluence_sim::SimConfig {
        site: config,
        ..Default::default()
    });
    assert_eq!(a.truth("admin@example.com"), b.truth("admin@example.com"));
    let c = confluence_sim::Simulator::new(confluence_sim::SimConfig {
        site: SiteConfig {
            seed: 78,
            spaces: 4,
            pages: 500,
        },
        ..Default::default()
    });
    assert_ne!(a.truth("admin@example.com"), c.truth("admin@example.com"));
    // The shape a sync must handle: deep trees, personal spaces, restrictions.
    a.with_site(|site| {
        let depth = site
            .content
            .values()
            .map(|c| site.ancestors(c).len())
            .max()
            .unwrap();
        assert!(depth >= 4, "trees several levels deep, got {depth}");
        assert!(
            site.spaces.values().any(|s| s.key.starts_with('~')),
            "a personal space"
        );
        assert!(site.content.values().any(|c| c.read_restriction.is_some()));
        assert!(site
            .content
            .values()
            .any(|c| c.kind == confluence_sim::model::ContentKind::BlogPost));
        assert!(site.content.values().any(|c| !c.labels.is_empty()));
        assert!(!site.comments.is_empty());
        let body = site.storage_of(site.content.values().next().unwrap());
        assert!(body.contains("<h1>"));
    });
}

#[test]
fn bodies_use_every_element_kind() {
    let sim = confluence_sim::Simulator::new(confluence_sim::SimConfig {
        site: SiteConfig {
            seed: 5,
            spaces: 2,
            pages: 300,
        },
        ..Default::default()
    });
    let all: String =
        sim.with_site(|site| site.content.values().map(|c| site.storage_of(c)).collect());
    for needle in [
        "<h2>",
        "<strong>",
        "<em>",
        "<ul>",
        "<ol>",
        "<table",
        "<th>",
        "colspan",
        "ac:name=\"code\"",
        "ac:name=\"info\"",
        "ac:name=\"warning\"",
        "ac:name=\"expand\"",
        "ri:page",
        "ri:attachment",
        "ri:user",
        "<ac:task-list>",
        "<ac:layout>",
        "<ac:emoticon",
        "ac:name=\"status\"",
        "ac:name=\"jira\"",
        "ac:name=\"roadmap-planner\"",
        "<![CDATA[",
        "&nbsp;",
        "<ac:image",
        "ac:name=\"toc\"",
    ] {
        assert!(all.contains(needle), "no generated body contains {needle}");
    }
}

#[tokio::test]
async fn random_changes_cover_every_kind_and_the_truth_follows() {
    let t = start(21, 5, 1000).await;
    let before: BTreeMap<String, confluence_sim::TruthEntry> = t
        .sim
        .truth("admin@example.com")
        .unwrap()
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let reply = t
        .control_post(
            "/_sim/mutate",
            serde_json::json!({"seed": 4, "random_changes": 24}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let changes: Vec<Change> = serde_json::from_value(reply.body["changes"].clone()).unwrap();
    let kinds: BTreeSet<&str> = reply.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "edit",
        "rename",
        "move",
        "trash",
        "restore",
        "purge",
        "create",
        "restrict",
        "unrestrict",
        "delete_space",
        "add_comment",
        "add_attachment",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    let after: BTreeMap<String, confluence_sim::TruthEntry> = t
        .sim
        .truth("admin@example.com")
        .unwrap()
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    for change in &changes {
        match change {
            Change::Edit { id, .. } if after.contains_key(id) => {
                assert!(
                    after[id].version > before[id].version,
                    "an edit makes a new version"
                );
                assert_ne!(
                    after[id].body_sha256, before[id].body_sha256,
                    "and a new body"
                );
            }
            Change::Rename { id, title } if after.contains_key(id) => {
                assert_eq!(&after[id].title, title);
            }
            Change::Create { id: Some(id), .. } => {
                assert!(after.contains_key(id) || !before.contains_key(id))
            }
            _ => {}
        }
    }
    assert_ne!(before, after);
}

#[tokio::test]
async fn explicit_changes_behave_as_confluence() {
    let t = start(21, 3, 300).await;
    let (page, child, space) = t.sim.with_site(|site| {
        let parent = site
            .content
            .values()
            .find(|c| site.children.get(&c.id).is_some_and(|s| !s.is_empty()))
            .unwrap();
        (
            parent.id,
            *site.children[&parent.id].iter().next().unwrap(),
            parent.space_id,
        )
    });
    let version_of = |id: u64| t.sim.with_site(|s| s.content[&id].version);
    let v = version_of(page);
    // A move keeps the version; a restriction too.
    t.sim
        .apply(Change::Move {
            id: child.to_string(),
            parent_id: None,
        })
        .unwrap();
    assert_eq!(t.sim.with_site(|s| s.content[&child].parent_id), None);
    t.sim
        .apply(Change::Restrict {
            id: page.to_string(),
            users: vec![],
            groups: vec![],
        })
        .unwrap();
    assert_eq!(version_of(page), v);
    assert!(t
        .sim
        .truth("ben@example.com")
        .unwrap()
        .iter()
        .all(|e| e.id != page.to_string()));
    t.sim
        .apply(Change::Unrestrict {
            id: page.to_string(),
        })
        .unwrap();
    // Trash moves children up; purge needs the trash first.
    assert!(t
        .sim
        .apply(Change::Purge {
            id: page.to_string()
        })
        .is_err());
    t.sim
        .apply(Change::Trash {
            id: page.to_string(),
        })
        .unwrap();
    assert!(t
        .sim
        .truth("admin@example.com")
        .unwrap()
        .iter()
        .all(|e| e.id != page.to_string()));
    let trashed = t
        .get(&format!("/wiki/api/v2/pages?status=trashed&id={page}"))
        .await;
    assert_eq!(trashed.body["results"].as_array().unwrap().len(), 1);
    t.sim
        .apply(Change::Restore {
            id: page.to_string(),
        })
        .unwrap();
    t.sim
        .apply(Change::Trash {
            id: page.to_string(),
        })
        .unwrap();
    t.sim
        .apply(Change::Purge {
            id: page.to_string(),
        })
        .unwrap();
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages/{page}?status=trashed"))
            .await
            .status,
        404
    );
    // A move cannot make a cycle.
    let other = t.sim.with_site(|s| {
        s.content
            .values()
            .find(|c| c.parent_id.is_some() && c.kind == confluence_sim::model::ContentKind::Page)
            .unwrap()
            .id
    });
    let parent = t.sim.with_site(|s| s.content[&other].parent_id.unwrap());
    assert!(t
        .sim
        .apply(Change::Move {
            id: parent.to_string(),
            parent_id: Some(other.to_string())
        })
        .is_err());
    // Creating and deleting.
    let created = t
        .sim
        .apply(Change::Create {
            id: None,
            space_id: space.to_string(),
            parent_id: None,
            title: "Fresh page".into(),
            blog_post: false,
            body: Some("<p>hello &amp; welcome</p>".into()),
        })
        .unwrap();
    let Change::Create {
        id: Some(new_id), ..
    } = created
    else {
        panic!()
    };
    let page_json = t
        .get(&format!("/wiki/api/v2/pages/{new_id}?body-format=storage"))
        .await;
    assert_eq!(
        page_json.body["body"]["storage"]["value"],
        "<p>hello &amp; welcome</p>"
    );
    t.sim
        .apply(Change::DeleteSpace {
            space_id: space.to_string(),
        })
        .unwrap();
    assert_eq!(
        t.get(&format!("/wiki/api/v2/spaces/{space}")).await.status,
        404
    );
    assert_eq!(
        t.get(&format!("/wiki/api/v2/pages/{new_id}")).await.status,
        404
    );
    // Bad changes are refused over HTTP with a clear error.
    let reply = t
        .control_post(
            "/_sim/mutate",
            serde_json::json!({"changes": [{"kind": "edit", "id": "nope"}]}),
        )
        .await;
    assert_eq!(reply.status, 422);
    let reply = t
        .control_post("/_sim/mutate", serde_json::json!({"chaos": true}))
        .await;
    assert_eq!(reply.status, 400);
}
