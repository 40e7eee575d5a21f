//! Behaviour every backend must show alike: tenant scoping, the index
//! log, the queue, the outbox, ordering and pagination, case-insensitive
//! name filters, concurrent writers, and values read back as written.

use crate::ops::{connect, event, outbox};
use serde_json::json;
use std::time::Duration;
use store::{
    kind, Connected, EventKind, FileQuery, FileUpsert, IndexSource, ItemQuery, JobStatus,
    LogPosition, NewSourceItem, Store, SyncState, UserQuery,
};

/// An organisation with a webhook and one customer's connection.
pub(crate) async fn tenant(store: &Store, name: &str, customer: &str) -> (String, Connected) {
    let org = store.create_organisation(name).await.unwrap();
    store
        .add_webhook(&org.id, "https://hooks.example.com/", b"key")
        .await
        .unwrap();
    let (all, tags) = (json!({"all": true}), json!({}));
    let connected = store
        .connect(
            connect(&org.id, customer, "acct", None, &all, &tags),
            |_, _| vec![event(EventKind::Add, name)],
            |_| false,
        )
        .await
        .unwrap();
    (org.id, connected)
}

fn page(id: &str, title: &str, space: &str) -> FileUpsert {
    FileUpsert {
        kind: kind::PAGE,
        external_id: id.into(),
        space_id: Some(space.into()),
        title: title.into(),
        version: 1,
        labels: Some(vec!["howto".into()]),
        status: "READY",
        created_at: Some("2024-03-04T05:06:07.890Z".into()),
        body: Some(format!("<p>{title}</p>")),
        content_hash: Some(format!("h-{id}")),
        markdown: Some(title.into()),
        ..Default::default()
    }
}

async fn files_of(
    store: &Store,
    org: &str,
    end_user: &str,
    query: FileQuery,
) -> (Vec<String>, i64) {
    let (files, total) = store.api_files(org, end_user, &query).await.unwrap();
    (files.into_iter().map(|f| f.external_id).collect(), total)
}

pub async fn tenants_see_only_their_own(store: &Store) {
    let (a, conn_a) = tenant(store, "a", "alice").await;
    let (b, conn_b) = tenant(store, "b", "alice").await;
    let ca = &conn_a.connection;
    let cb = &conn_b.connection;
    store
        .write_batch(&ca.id, 1, &[page("1", "Alpha", "S")], &[], None)
        .await
        .unwrap();
    store
        .write_batch(&cb.id, 1, &[page("2", "Beta", "S")], &[], None)
        .await
        .unwrap();
    let alice_a = ca.end_user_id.clone().unwrap();
    let alice_b = cb.end_user_id.clone().unwrap();
    assert_ne!(alice_a, alice_b, "one customer id, two organisations");
    let all = || FileQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        files_of(store, &a, &alice_a, all()).await,
        (vec!["1".into()], 1)
    );
    assert_eq!(
        files_of(store, &b, &alice_b, all()).await,
        (vec!["2".into()], 1)
    );
    // Another organisation's end user, or data source, reads as nothing.
    assert_eq!(files_of(store, &a, &alice_b, all()).await.1, 0);
    assert!(store
        .data_source(&a, &alice_a, cb.data_source_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .data_source(&a, &alice_a, ca.data_source_id)
        .await
        .unwrap()
        .is_some());
    // Ids only go up, across organisations.
    assert!(cb.data_source_id > ca.data_source_id);
}

pub async fn files_sync_and_the_index_log_follows(store: &Store) {
    let (_, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    let before = store.index_head().await.unwrap();
    store
        .write_batch(
            &c.id,
            1,
            &[page("10", "Parent", "S"), page("11", "Child", "S")],
            &[],
            Some(("step", "one")),
        )
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint(&c.id, "step").await.unwrap().as_deref(),
        Some("one")
    );
    let changes = changes_after(store, before, 2).await;
    assert_eq!(changes.len(), 2);
    assert!(
        changes.iter().all(|c| c.subtree),
        "a new page asks for its subtree"
    );
    let head = store.index_head().await.unwrap();
    assert!(head >= changes.last().unwrap().position);
    // Unchanged: no entry. Changed title: one, without subtree.
    store
        .write_batch(&c.id, 2, &[page("10", "Parent", "S")], &[], None)
        .await
        .unwrap();
    assert!(store.index_changes(head, 100).await.unwrap().is_empty());
    store
        .write_batch(&c.id, 2, &[page("10", "Renamed", "S")], &[], None)
        .await
        .unwrap();
    let renamed = changes_after(store, head, 1).await;
    assert_eq!(renamed.len(), 1);
    assert!(!renamed[0].subtree);
    // What is in the index log, in order, never renumbered by a prune.
    // Pruned below every live replica's cursor, and only there.
    store
        .set_index_cursor("one", renamed[0].position)
        .await
        .unwrap();
    store.set_index_cursor("two", head).await.unwrap();
    assert_eq!(store.prune_index_log(LIVE).await.unwrap(), head);
    assert_eq!(store.index_changes(head, 100).await.unwrap(), renamed);
    store
        .set_index_cursor("two", renamed[0].position)
        .await
        .unwrap();
    assert_eq!(
        store.prune_index_log(LIVE).await.unwrap(),
        renamed[0].position
    );
    assert!(store
        .index_changes(LogPosition::default(), 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.index_floor().await.unwrap(), renamed[0].position);
    // Deleting what a run did not see logs each file.
    let gone = store
        .delete_unseen_files(&c.id, kind::PAGE, None, 3, None)
        .await
        .unwrap();
    assert_eq!(gone, 2);
    let deleted = changes_after(store, renamed[0].position, 2).await;
    assert_eq!(deleted.len(), 2);
    assert!(deleted.windows(2).all(|w| w[0].position < w[1].position));
    let indexable = store
        .indexable(&deleted.iter().map(|d| d.file_id).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(indexable.is_empty(), "deleted files are not indexable");
}

const LEASE: Duration = Duration::from_secs(60);
/// The log's changes after `after`, once there are `n` of them. On
/// PostgreSQL a change is readable once every transaction begun before it
/// (in any database of the server: the test's neighbours too) has ended.
async fn changes_after(store: &Store, after: LogPosition, n: usize) -> Vec<store::IndexChange> {
    let started = std::time::Instant::now();
    loop {
        let changes = store.index_changes(after, 1000).await.unwrap();
        if changes.len() >= n || started.elapsed() > Duration::from_secs(10) {
            return changes;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const LIVE: Duration = Duration::from_secs(600);

pub async fn the_queue_runs_one_job_per_connection(store: &Store) {
    let (org, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    let (first, new) = store.enqueue_sync(&c.id, "manual").await.unwrap();
    assert!(new);
    let (absorbed, new) = store.enqueue_sync(&c.id, "again").await.unwrap();
    assert_eq!(
        (absorbed, new),
        (first, false),
        "a queued job absorbs another"
    );
    let job = store
        .claim_sync_job("a", LEASE)
        .await
        .unwrap()
        .expect("queued");
    assert_eq!(job.id, first);
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(store.sync_state(&c.id).await.unwrap(), (false, true));
    // Queued behind the running one, and not claimable while it runs.
    let (second, _) = store.enqueue_sync(&c.id, "later").await.unwrap();
    assert!(second > first);
    assert!(store.claim_sync_job("a", LEASE).await.unwrap().is_none());
    assert!(store.claim_sync_job("b", LEASE).await.unwrap().is_none());
    // Renewed by its holder only.
    assert!(store.renew_sync_job(job.id, "a", LEASE).await.unwrap());
    assert!(!store.renew_sync_job(job.id, "b", LEASE).await.unwrap());
    store
        .finish_sync_job(
            &job,
            JobStatus::Done,
            None,
            &org,
            &mut [event(EventKind::FilesCreated, "done")].into_iter(),
            Some("2099-01-02T03:04:05.000Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .connection(&c.id)
            .await
            .unwrap()
            .next_sync_at
            .as_deref(),
        Some("2099-01-02T03:04:05.000Z")
    );
    assert!(outbox(store).await.iter().any(|b| b.contains("done")));
    let next = store
        .claim_sync_job("a", Duration::ZERO)
        .await
        .unwrap()
        .expect("the second");
    assert_eq!(next.id, second);
    // Its lease runs out (node a died): node b takes the job over, and a
    // can no longer renew or finish it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let taken = store
        .claim_sync_job("b", LEASE)
        .await
        .unwrap()
        .expect("taken over");
    assert_eq!((taken.id, taken.locked_by.as_deref()), (second, Some("b")));
    assert!(!store.renew_sync_job(second, "a", LEASE).await.unwrap());
    assert!(matches!(
        store.finish_sync_job(&next, JobStatus::Done, None, &org, &mut std::iter::empty(), None).await,
        Err(store::Error::LeaseLost(id)) if id == second
    ));
    // A node restarting gives back its own jobs only.
    assert_eq!(store.requeue_running_jobs("a").await.unwrap(), 0);
    assert_eq!(store.requeue_running_jobs("b").await.unwrap(), 1);
    assert_eq!(store.sync_state(&c.id).await.unwrap(), (true, false));
}

pub async fn the_outbox_delivers_and_retries(store: &Store) {
    let (org, _) = tenant(store, "a", "alice").await;
    let due = store.claim_deliveries("a", 10, LEASE).await.unwrap();
    assert_eq!(due.len(), 1, "the connect's event");
    assert_eq!(due[0].signing_key, b"key");
    store
        .emit_events(&org, &[event(EventKind::Add, "second")])
        .await
        .unwrap();
    // Claimed deliveries are a's until its lease runs out: b gets only
    // the new one, and a's again once a gives them back.
    let due = store.claim_deliveries("b", 10, LEASE).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(due[0].body.contains("second"));
    assert_eq!(store.release_deliveries("a").await.unwrap(), 1);
    assert_eq!(store.release_deliveries("b").await.unwrap(), 1);
    assert_eq!(store.outbox_depth().await.unwrap(), 2);
    let due = store.claim_deliveries("a", 10, LEASE).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(due[0].id < due[1].id, "oldest first");
    store.delivery_succeeded(due[0].id).await.unwrap();
    // Retried later: not due now; given up: never again.
    store
        .delivery_failed(due[1].id, "503", Some("2099-01-01T00:00:00.000Z"))
        .await
        .unwrap();
    assert!(store
        .claim_deliveries("a", 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    store
        .delivery_failed(due[1].id, "503", Some("2000-01-01T00:00:00.000Z"))
        .await
        .unwrap();
    let retry = store.claim_deliveries("a", 10, LEASE).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 2);
    store
        .delivery_failed(retry[0].id, "gone", None)
        .await
        .unwrap();
    assert!(store
        .claim_deliveries("a", 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .prune_outbox("2999-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        2
    );
}

/// Many events at once (a first sync's FILE_READY for each file): every
/// active webhook of the organisation gets each, in the events' order,
/// across the statements they are written in; another organisation's
/// webhook gets none, and an organisation without webhooks writes nothing.
pub async fn many_events_reach_each_webhook_in_order(store: &Store) {
    let org = store.create_organisation("many").await.unwrap();
    let first = store
        .add_webhook(&org.id, "https://hooks.example.com/1", b"one")
        .await
        .unwrap();
    let second = store
        .add_webhook(&org.id, "https://hooks.example.com/2", b"two")
        .await
        .unwrap();
    let other = store.create_organisation("other").await.unwrap();
    let theirs = store
        .add_webhook(&other.id, "https://hooks.example.com/other", b"three")
        .await
        .unwrap();
    let quiet = store.create_organisation("quiet").await.unwrap();
    let events: Vec<_> = (0..1203)
        .map(|i| event(EventKind::Add, &format!("file {i}")))
        .collect();
    store.emit_events(&quiet.id, &events).await.unwrap();
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        0,
        "no webhook, no rows"
    );
    store.emit_events(&org.id, &events).await.unwrap();
    let due = store.claim_deliveries("test", 10_000, LEASE).await.unwrap();
    assert_eq!(due.len(), 2 * events.len());
    assert!(due.iter().all(|d| d.webhook_id != theirs.id));
    for (i, pair) in due.chunks(2).enumerate() {
        assert_eq!(pair[0].body, events[i].body, "event {i} in its place");
        assert_eq!(pair[1].body, events[i].body);
        let mut hooks = [pair[0].webhook_id, pair[1].webhook_id];
        hooks.sort();
        assert_eq!(hooks, [first.id, second.id], "event {i} to both webhooks");
    }
    assert!(due.windows(2).all(|w| w[0].id < w[1].id));
}

/// A batch is written a few statements at a time (`upsert_files`), and
/// each file ends as it would written alone, in order: labels not known
/// this time keep the stored ones, a hash not known keeps the stored one,
/// and a file named twice ends as its second.
pub async fn a_batch_writes_as_its_files_one_by_one(store: &Store) {
    let (_, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    // 300 pages (two statements) and an attachment whose labels are not
    // known (another statement).
    let mut first: Vec<FileUpsert> = (0..300)
        .map(|i| page(&format!("p{i}"), &format!("Page {i}"), "S"))
        .collect();
    first.push(FileUpsert {
        kind: kind::ATTACHMENT,
        external_id: "a1".into(),
        container_id: Some("p0".into()),
        title: "a.pdf".into(),
        version: 1,
        status: "READY",
        ..Default::default()
    });
    store
        .write_batch(&c.id, 1, &first, &[], None)
        .await
        .unwrap();
    let mut unknown = page("p1", "Renamed", "S");
    unknown.labels = None;
    unknown.content_hash = None;
    let once = page("p2", "First", "S");
    let mut twice = page("p2", "Second", "S");
    twice.labels = Some(vec!["new".into()]);
    store
        .write_batch(&c.id, 2, &[unknown, once, twice], &[], None)
        .await
        .unwrap();
    let files = store.files(&c.id).await.unwrap();
    assert_eq!(files.len(), 301);
    let by = |id: &str| files.iter().find(|f| f.external_id == id).unwrap();
    assert_eq!(by("p1").title, "Renamed");
    assert_eq!(by("p1").labels, ["howto"]);
    assert_eq!(by("p1").content_hash.as_deref(), Some("h-p1"));
    assert_eq!(by("p2").title, "Second");
    assert_eq!(by("p2").labels, ["new"]);
    assert_eq!(by("p299").title, "Page 299");
    assert_eq!(by("p299").version, 1);
    assert!(by("a1").labels.is_empty());
}

pub async fn lists_page_in_order_and_names_match_any_case(store: &Store) {
    let (org, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    let end_user = c.end_user_id.clone().unwrap();
    let pages: Vec<FileUpsert> = (0..25)
        .map(|i| page(&format!("{i}"), &format!("Guide {i:02}"), "S"))
        .collect();
    store
        .write_batch(&c.id, 1, &pages, &[], None)
        .await
        .unwrap();
    let by_name = |offset, descending| FileQuery {
        order_by: store::FileOrder::Name,
        descending,
        limit: 10,
        offset,
        ..Default::default()
    };
    let mut seen = Vec::new();
    for offset in [0, 10, 20] {
        let (ids, total) = files_of(store, &org, &end_user, by_name(offset, false)).await;
        assert_eq!(total, 25);
        seen.extend(ids);
    }
    let expected: Vec<String> = (0..25).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
    let (first, _) = files_of(store, &org, &end_user, by_name(0, true)).await;
    assert_eq!(first[0], "24");
    // Names match whatever the case, and % and _ are literal.
    let named = |name: &str| FileQuery {
        name: Some(name.into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        files_of(store, &org, &end_user, named("gUIDE 1")).await.1,
        10
    );
    assert_eq!(
        files_of(store, &org, &end_user, named("guide_1")).await.1,
        0
    );
    assert_eq!(files_of(store, &org, &end_user, named("%")).await.1, 0);
    // Tags: a string matches only a string.
    store
        .set_file_tags(
            store
                .api_files(&org, &end_user, &named("Guide 03"))
                .await
                .unwrap()
                .0[0]
                .id,
            &[
                ("team".to_string(), json!("docs")),
                ("n".to_string(), json!(3)),
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    let tagged = |key: &str, value: serde_json::Value| FileQuery {
        tags: [(key.to_string(), value)].into_iter().collect(),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        files_of(store, &org, &end_user, tagged("team", json!("docs")))
            .await
            .0,
        vec!["3"]
    );
    assert_eq!(
        files_of(store, &org, &end_user, tagged("n", json!(3)))
            .await
            .0,
        vec!["3"]
    );
    assert_eq!(
        files_of(store, &org, &end_user, tagged("n", json!("3")))
            .await
            .1,
        0
    );
    assert_eq!(
        files_of(store, &org, &end_user, tagged("missing", json!(null)))
            .await
            .1,
        0
    );
    // End users page by creation; items and spaces by name, any case.
    for customer in ["carol", "bob"] {
        store.ensure_end_user(&org, customer).await.unwrap();
    }
    let (users, total) = store
        .list_end_users(
            &org,
            &UserQuery {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        users
            .iter()
            .map(|u| u.customer_id.as_str())
            .collect::<Vec<_>>(),
        ["alice", "carol"]
    );
    let space = |key: &str, name: &str| NewSourceItem {
        external_id: key.into(),
        item_type: "SPACE",
        name: name.into(),
        parent_external_id: None,
        root_external_id: None,
        external_url: None,
        is_expandable: true,
    };
    store
        .replace_space_options(
            &c.id,
            &[
                space("ENG", "engineering"),
                space("OPS", "Operations"),
                space("ZZ", "Archive"),
            ],
        )
        .await
        .unwrap();
    let options = store.space_options(&c.id, "", 10).await.unwrap();
    assert_eq!(
        options.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["ZZ", "ENG", "OPS"],
        "alphabetical whatever the case"
    );
    assert_eq!(
        store.space_options(&c.id, "OPER", 10).await.unwrap().len(),
        1
    );
    let (items, n) = store
        .source_items(
            &c.id,
            &ItemQuery {
                name: Some("ENGIN".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((n, items[0].external_id.as_str()), (1, "ENG"));
}

pub async fn concurrent_writers_lose_nothing(store: &Store) {
    let (org, connected) = tenant(store, "a", "alice").await;
    let c = connected.connection.clone();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = store.clone();
        let (c, org) = (c.clone(), org.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let id = format!("{writer}-{round}");
                store
                    .write_batch(&c.id, 1, &[page(&id, &id, "S")], &[], None)
                    .await
                    .unwrap();
                store
                    .emit_events(&org, &[event(EventKind::Add, &id)])
                    .await
                    .unwrap();
                store.enqueue_sync(&c.id, "poll").await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.files(&c.id).await.unwrap().len(), 80);
    let changes = changes_after(store, LogPosition::default(), 80).await;
    assert_eq!(changes.len(), 80);
    let mut seqs: Vec<LogPosition> = changes.iter().map(|c| c.position).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 80, "every change its own position");
    // 80 events plus the connect's.
    assert_eq!(outbox(store).await.len(), 81);
    assert_eq!(store.sync_state(&c.id).await.unwrap(), (true, false));
}

pub async fn times_and_json_read_back_as_written(store: &Store) {
    let (org, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    // Times: the store's RFC 3339 to the millisecond, in UTC, both ways.
    let org_row = store.organisation(&org).await.unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&org_row.created_at).is_ok()
            && org_row.created_at.ends_with('Z')
            && org_row.created_at.len() == 24,
        "{}",
        org_row.created_at
    );
    store
        .write_batch(&c.id, 1, &[page("1", "One", "S")], &[], None)
        .await
        .unwrap();
    let end_user = c.end_user_id.clone().unwrap();
    let (files, _) = store
        .api_files(
            &org,
            &end_user,
            &FileQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        files[0].created_at.as_deref(),
        Some("2024-03-04T05:06:07.890Z")
    );
    assert_eq!(store.files(&c.id).await.unwrap()[0].labels, vec!["howto"]);
    // JSON: a scope and tags as given.
    let scope = json!({"all": false, "spaces": ["ENG"], "pages": ["1"]});
    store.set_scope(&c.id, &scope).await.unwrap();
    assert_eq!(store.connection(&c.id).await.unwrap().scope, scope);
    let body = store.file_body(&c.id, kind::PAGE, "1").await.unwrap();
    assert_eq!(body.as_deref(), Some("<p>One</p>"));
    // Sealed credentials open again.
    assert_eq!(
        store.credentials(&c.id).await.unwrap(),
        br#"{"email":"me@example.com","api_token":"t"}"#
    );
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

/// A customer with two connections: the count kept by the store's triggers
/// matches the files as they come and go, and pages in date order merge
/// both connections' files whatever the offset.
pub async fn counts_and_pages_span_a_customers_connections(store: &Store) {
    let (org, first) = tenant(store, "a", "alice").await;
    let (all, tags) = (json!({"all": true}), json!({}));
    let second = store
        .connect(
            connect(&org, "alice", "acct-2", None, &all, &tags),
            |_, _| Vec::new(),
            |_| false,
        )
        .await
        .unwrap();
    let end_user = first.connection.end_user_id.clone().unwrap();
    // Interleaved creation times: even minutes on the first connection,
    // odd ones on the second.
    let dated = |n: usize| {
        let mut p = page(&format!("p{n:02}"), &format!("Page {n:02}"), "S");
        p.created_at = Some(format!("2024-03-04T05:{n:02}:00.000Z"));
        p
    };
    let even: Vec<FileUpsert> = (0..30).step_by(2).map(dated).collect();
    let odd: Vec<FileUpsert> = (1..30).step_by(2).map(dated).collect();
    store
        .write_batch(&first.connection.id, 1, &even, &[], None)
        .await
        .unwrap();
    store
        .write_batch(&second.connection.id, 1, &odd, &[], None)
        .await
        .unwrap();
    let by_date = |offset, descending| FileQuery {
        order_by: store::FileOrder::CreatedAt,
        descending,
        limit: 7,
        offset,
        ..Default::default()
    };
    let every_status = FileQuery {
        statuses: vec!["READY".into(), "SYNC_ERROR".into()],
        limit: 1,
        ..Default::default()
    };
    let mut seen = Vec::new();
    for offset in (0..35).step_by(7) {
        let (ids, total) = files_of(store, &org, &end_user, by_date(offset, false)).await;
        assert_eq!(total, 30, "the kept count");
        seen.extend(ids);
    }
    let expected: Vec<String> = (0..30).map(|n| format!("p{n:02}")).collect();
    assert_eq!(
        seen, expected,
        "both connections' files, merged in date order"
    );
    let (newest, _) = files_of(store, &org, &end_user, by_date(3, true)).await;
    assert_eq!(newest[0], "p26");
    assert_eq!(
        files_of(store, &org, &end_user, every_status.clone())
            .await
            .1,
        30
    );
    // One data source alone.
    let (_, one) = files_of(
        store,
        &org,
        &end_user,
        FileQuery {
            data_source_ids: vec![second.connection.data_source_id],
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(one, 15);
    // Files deleted by the caller and by a sync that no longer sees them.
    let (files, _) = store
        .api_files(&org, &end_user, &by_date(0, false))
        .await
        .unwrap();
    store
        .delete_files(&first.connection.id, &[files[0].id, files[2].id])
        .await
        .unwrap();
    store
        .write_batch(&second.connection.id, 2, &odd[..5], &[], None)
        .await
        .unwrap();
    store
        .delete_unseen_files(&second.connection.id, kind::PAGE, None, 2, None)
        .await
        .unwrap();
    let (_, total) = files_of(store, &org, &end_user, by_date(0, false)).await;
    assert_eq!(total, 15 - 2 + 5);
    assert_eq!(
        files_of(store, &org, &end_user, every_status).await.1,
        total
    );
}

/// What a listing shows of a file's parent and chunks is kept on the file's
/// row as things are written: a child stored before its page finds it when
/// the page comes, a moved file follows its new parent, a deleted page
/// leaves its children without one, and a file's chunk count is the count
/// of its latest chunks.
pub async fn listings_read_parents_and_chunk_counts_as_written(store: &Store) {
    let (org, connected) = tenant(store, "a", "alice").await;
    let c = &connected.connection;
    let end_user = c.end_user_id.clone().unwrap();
    let listed = || async {
        let query = FileQuery {
            order_by: store::FileOrder::Id,
            limit: 100,
            ..Default::default()
        };
        let (files, _) = store.api_files(&org, &end_user, &query).await.unwrap();
        files
            .into_iter()
            .map(|f| (f.external_id, (f.id, f.parent_file_id, f.chunks)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let chunks = |n: usize| {
        (0..n)
            .map(|i| store::NewChunk {
                text: format!("chunk {i}"),
                heading_path: Vec::new(),
                start: i * 10,
                end: i * 10 + 7,
                tokens: 2,
            })
            .collect::<Vec<_>>()
    };
    // Children first: a page under "1", a comment on it, an attachment
    // in "2" (its container wins over its parent).
    let child = FileUpsert {
        parent_id: Some("1".into()),
        chunks: Some(chunks(3)),
        ..page("3", "Child", "S")
    };
    let comment = FileUpsert {
        kind: kind::COMMENT,
        container_id: Some("1".into()),
        ..page("4", "A comment", "S")
    };
    let attachment = FileUpsert {
        kind: kind::ATTACHMENT,
        parent_id: Some("1".into()),
        container_id: Some("2".into()),
        ..page("5", "file.pdf", "S")
    };
    store
        .write_batch(&c.id, 1, &[child.clone(), comment, attachment], &[], None)
        .await
        .unwrap();
    let files = listed().await;
    assert!(files.values().all(|(_, parent, _)| parent.is_none()));
    assert_eq!(files["3"].2, 3);
    store
        .write_batch(
            &c.id,
            1,
            &[page("1", "One", "S"), page("2", "Two", "S")],
            &[],
            None,
        )
        .await
        .unwrap();
    let files = listed().await;
    let (one, two) = (files["1"].0, files["2"].0);
    assert_eq!(files["3"].1, Some(one));
    assert_eq!(files["4"].1, Some(one));
    assert_eq!(files["5"].1, Some(two), "the container is the parent");
    assert_eq!(files["1"].1, None);
    // The parent filter reads the same parent.
    let under_one = FileQuery {
        parent_file_ids: vec![one],
        limit: 100,
        ..Default::default()
    };
    assert_eq!(
        files_of(store, &org, &end_user, under_one.clone()).await,
        (vec!["3".to_string(), "4".to_string()], 2)
    );
    // Moved under "2", with new chunks: the row follows.
    let moved = FileUpsert {
        parent_id: Some("2".into()),
        version: 2,
        chunks: Some(chunks(1)),
        ..child
    };
    store
        .write_batch(&c.id, 2, &[moved], &[], None)
        .await
        .unwrap();
    let files = listed().await;
    assert_eq!(files["3"].1, Some(two));
    assert_eq!(files["3"].2, 1);
    assert_eq!(files_of(store, &org, &end_user, under_one).await.1, 1);
    // Page "2" deleted: what it held has no parent; "1"'s keep theirs.
    store.delete_files(&c.id, &[two]).await.unwrap();
    let files = listed().await;
    assert!(!files.contains_key("2"));
    assert_eq!(files["3"].1, None);
    assert_eq!(files["5"].1, None);
    assert_eq!(files["4"].1, Some(one));
}
