//! Deletes, disconnects and permission changes show in search at once.

use super::*;
use store::SyncState;
use store::{Segment, Visibility};

/// A page of the store that has a phrase and no restriction of its own
/// or above, so that everyone in its space reads it.
async fn open_page(f: &Fixture, viewer: &Viewer) -> (String, String) {
    let readable = readable(&f.sim, viewer);
    let files = f.store.files(&f.connection).await.unwrap();
    for file in files.iter().filter(|file| file.kind == kind::PAGE) {
        if !readable.contains(&file.external_id) {
            continue;
        }
        if let Some(phrase) = page_phrase(f, &file.external_id).await {
            let hits = search(f, viewer, &phrase, 200).await;
            if hits.iter().any(|h| h.external_id == file.external_id) {
                return (file.external_id.clone(), phrase);
            }
        }
    }
    panic!("no readable page with a phrase");
}

fn finds(hits: &[index::Hit], page: &str) -> bool {
    hits.iter()
        .any(|h| h.kind == kind::PAGE && h.external_id == page)
}

#[tokio::test]
async fn a_deleted_page_leaves_search_with_the_sync_that_saw_it_go() {
    let f = fixture(simulator(11, 2, 120).await, true, None).await;
    sync(&f).await;
    let admin = admin_viewer(&f.sim);
    let (page, phrase) = open_page(&f, &admin).await;
    f.sim.apply(Change::Trash { id: page.clone() }).unwrap();
    sync(&f).await;
    assert!(!finds(&search(&f, &admin, &phrase, 200).await, &page));

    // And a delete through the store (the API's delete_files).
    let (other, phrase) = open_page(&f, &admin).await;
    let file_id = f
        .store
        .file_id(&f.connection, kind::PAGE, &other)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.store
            .delete_files(&f.connection, &[file_id])
            .await
            .unwrap(),
        1
    );
    f.index.catch_up(&f.store).await.unwrap();
    assert!(!finds(&search(&f, &admin, &phrase, 200).await, &other));
}

#[tokio::test]
async fn a_disconnected_connection_is_gone_from_search_before_the_index_is_told() {
    let f = fixture(simulator(12, 2, 80).await, false, None).await;
    sync(&f).await;
    let viewer = Viewer::default();
    assert!(!search(&f, &viewer, "the", 10).await.is_empty());
    let chunks = f.index.num_chunks();
    assert!(chunks > 0);
    f.store.delete_connection(&f.connection).await.unwrap();
    // The store decides which spaces a search may reach: nothing, at once.
    assert!(search(&f, &viewer, "the", 10).await.is_empty());
    // And the index drops the chunks when it follows the log.
    f.index.catch_up(&f.store).await.unwrap();
    assert_eq!(f.index.num_chunks(), 0);
}

#[tokio::test]
async fn a_restriction_change_narrows_and_widens_search_with_the_next_sync() {
    let f = fixture(simulator(13, 2, 160).await, true, None).await;
    sync(&f).await;
    let cleo = viewer_of(&f.sim, "cleo@example.com");
    let ben = viewer_of(&f.sim, "ben@example.com");
    let (page, phrase) = open_page(&f, &cleo).await;
    assert!(finds(&search(&f, &cleo, &phrase, 200).await, &page));
    // A child of the page, to see the restriction inherited.
    let child = f.sim.with_site(|site| {
        site.children
            .get(&page.parse::<u64>().unwrap())
            .and_then(|c| c.iter().next().copied())
            .map(|c| c.to_string())
    });

    let ben_account = ben.confluence_account_id.clone().unwrap();
    f.sim
        .apply(Change::Restrict {
            id: page.clone(),
            users: vec![ben_account],
            groups: vec![],
        })
        .unwrap();
    sync(&f).await;
    assert!(
        !finds(&search(&f, &cleo, &phrase, 200).await, &page),
        "cleo still finds the restricted page"
    );
    if readable(&f.sim, &ben).contains(&page) {
        assert!(finds(&search(&f, &ben, &phrase, 200).await, &page));
    }
    if let Some(child) = &child {
        if let Some(child_phrase) = page_phrase(&f, child).await {
            assert!(
                !finds(&search(&f, &cleo, &child_phrase, 200).await, child),
                "the child does not inherit its parent's restriction"
            );
        }
    }

    f.sim
        .apply(Change::Unrestrict { id: page.clone() })
        .unwrap();
    sync(&f).await;
    assert!(finds(&search(&f, &cleo, &phrase, 200).await, &page));
}

#[tokio::test]
async fn a_space_visibility_change_takes_effect_without_reindexing() {
    let f = fixture(simulator(14, 2, 80).await, false, None).await;
    sync(&f).await;
    let anonymous = Viewer::default();
    let agent = Viewer {
        signed_in: true,
        agent: true,
        ..Viewer::default()
    };
    let spaces = f.store.spaces(&f.connection).await.unwrap();
    let staff = f
        .store
        .create_segment(
            &f.org,
            &Segment {
                id: String::new(),
                name: "Agents and admins".into(),
                user_type: "staff".into(),
                tags: vec![],
                or_tags: vec![],
                organization_ids: vec![],
                group_ids: vec![],
            },
        )
        .await
        .unwrap();
    for space in &spaces {
        f.store
            .set_space_visibility(
                &f.connection,
                &space.space_id,
                &Visibility::Segments {
                    segment_ids: vec![staff.id.clone()],
                },
            )
            .await
            .unwrap();
    }
    assert!(search(&f, &anonymous, "the", 10).await.is_empty());
    assert!(!search(&f, &agent, "the", 10).await.is_empty());
    // Eleven segments is one too many; a segment of nowhere is refused.
    let too_many = Visibility::Segments {
        segment_ids: vec![staff.id.clone(); 11],
    };
    assert!(f
        .store
        .set_space_visibility(&f.connection, &spaces[0].space_id, &too_many)
        .await
        .is_err());
    assert!(f
        .store
        .set_space_visibility(
            &f.connection,
            &spaces[0].space_id,
            &Visibility::Segments {
                segment_ids: vec!["seg_elsewhere".into()]
            }
        )
        .await
        .is_err());
    f.store
        .set_space_visibility(&f.connection, &spaces[0].space_id, &Visibility::Everyone)
        .await
        .unwrap();
    let hits = search(&f, &anonymous, "the", 50).await;
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.space_key == spaces[0].key));
}

#[tokio::test]
async fn filters_narrow_and_another_organisation_sees_nothing() {
    let f = fixture(simulator(15, 3, 90).await, false, None).await;
    sync(&f).await;
    let viewer = Viewer::default();
    let spaces = f.store.spaces(&f.connection).await.unwrap();
    let mut req = request(&f, &viewer, "the", 100);
    req.filters = Filters {
        space_keys: vec![spaces[1].key.clone()],
        ..Filters::default()
    };
    let hits = f.index.search(&f.store, &req).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.space_key == spaces[1].key));

    req.filters = Filters {
        kinds: vec![kind::COMMENT.into()],
        ..Filters::default()
    };
    let hits = f.index.search(&f.store, &req).await.unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h.kind == kind::COMMENT));

    // Labels and tags.
    let labelled = f
        .store
        .files(&f.connection)
        .await
        .unwrap()
        .into_iter()
        .find(|file| file.kind == kind::PAGE && !file.labels.is_empty())
        .unwrap();
    req.query = String::new();
    req.query = "the".into();
    req.filters = Filters {
        labels: vec![labelled.labels[0].clone()],
        ..Filters::default()
    };
    let hits = f.index.search(&f.store, &req).await.unwrap();
    assert!(hits.iter().all(|h| h.labels.contains(&labelled.labels[0])));
    let file_id = f
        .store
        .file_id(&f.connection, kind::PAGE, &labelled.external_id)
        .await
        .unwrap()
        .unwrap();
    let mut tags = BTreeMap::new();
    tags.insert("team".to_string(), serde_json::json!(["docs", "support"]));
    f.store.set_file_tags(file_id, &tags).await.unwrap();
    f.index.catch_up(&f.store).await.unwrap();
    let mut wanted = BTreeMap::new();
    wanted.insert("team".to_string(), serde_json::json!("support"));
    req.query = String::new();
    req.query = labelled.title.clone();
    req.filters = Filters {
        tags: wanted,
        ..Filters::default()
    };
    let hits = f.index.search(&f.store, &req).await.unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h.file_id == file_id));
    req.filters = Filters {
        file_ids: vec![file_id],
        ..Filters::default()
    };
    assert!(f
        .index
        .search(&f.store, &req)
        .await
        .unwrap()
        .iter()
        .all(|h| h.file_id == file_id));

    // Snippets mark what matched, HTML-escaped.
    let hit = &search(&f, &viewer, "the", 1).await[0];
    assert!(hit.snippet.contains("<mark>"), "{}", hit.snippet);

    // Another organisation, or another customer, reaches nothing.
    let other = f.store.ensure_organisation("other").await.unwrap();
    let mut req = request(&f, &viewer, "the", 10);
    req.organisation_id = other;
    assert!(f.index.search(&f.store, &req).await.unwrap().is_empty());
    let mut req = request(&f, &viewer, "the", 10);
    req.customer_id = Some("someone-else".into());
    assert!(f.index.search(&f.store, &req).await.unwrap().is_empty());
    // Which query text is odd does not matter: no error, no panic.
    for odd in [
        "\"unclosed",
        "title:",
        "a AND OR",
        "((",
        "*",
        "-",
        "🙂",
        "x\u{0}y",
    ] {
        search(&f, &viewer, odd, 5).await;
    }
    let mut req = request(&f, &viewer, "the", 0);
    assert!(f.index.search(&f.store, &req).await.is_err());
    req.k = 5;
    req.hybrid = Some(HybridWeights {
        weight_a: 0.9,
        weight_b: 0.9,
    });
    assert!(f.index.search(&f.store, &req).await.is_err());
}

#[tokio::test]
async fn phrases_over_common_words_match_exactly() {
    let f = fixture(simulator(16, 1, 30).await, false, None).await;
    let page = f
        .sim
        .with_site(|site| site.content.keys().nth(4).map(|id| id.to_string()))
        .unwrap();
    f.sim
        .apply(Change::Edit {
            id: page.clone(),
            body: Some("<p>This is how to reset the password of the account.</p>".into()),
        })
        .unwrap();
    sync(&f).await;
    let viewer = Viewer::default();
    for phrase in [
        "\"reset the password\"",
        "\"of the\"",
        "\"how to reset\"",
        "\"the password of the account\"",
    ] {
        let hits = search(&f, &viewer, phrase, 50).await;
        assert!(
            hits.iter().any(|h| h.external_id == page),
            "{phrase} does not find the page"
        );
    }
    for phrase in [
        "\"the reset password\"",
        "\"password the\"",
        "\"of the password\"",
    ] {
        let hits = search(&f, &viewer, phrase, 50).await;
        assert!(
            !hits.iter().any(|h| h.external_id == page),
            "{phrase} finds the page"
        );
    }
    // The snippet marks the phrase.
    let hits = search(&f, &viewer, "\"reset the password\"", 50).await;
    let hit = hits.iter().find(|h| h.external_id == page).unwrap();
    assert!(hit.snippet.contains("<mark>"), "{}", hit.snippet);
}
