//! The store's domain operations, each one transaction: the change, the
//! webhook events it causes and the sync it queues are written together,
//! and an operation that fails writes nothing.

use crate::Dir;
use serde_json::json;
use store::{Audiences, Connect, Event, EventKind, JobStatus, Store, SyncState};

pub fn event(kind: EventKind, text: &str) -> Event {
    Event {
        kind,
        body: json!({"kind": kind.as_str(), "text": text}).to_string(),
    }
}

pub fn connect<'a>(
    organisation: &'a str,
    customer: &'a str,
    account: &'a str,
    reconnect: Option<i64>,
    scope: &'a serde_json::Value,
    tags: &'a serde_json::Value,
) -> Connect<'a> {
    Connect {
        organisation_id: organisation,
        customer_id: Some(customer),
        connected_by: None,
        allow_personal_spaces: true,
        site_url: "https://acme.atlassian.net",
        context_path: "/wiki",
        site_link: None,
        auth_kind: "api_token",
        account,
        account_label: Some("me@example.com"),
        credentials: br#"{"email":"me@example.com","api_token":"t"}"#,
        chunk_size: 1500,
        chunk_overlap: 20,
        tags,
        enforce_permissions: None,
        content_kinds: None,
        new_scope: scope,
        reconnect,
        list_items: false,
        next_sync_at: "2099-01-01T00:00:00.000Z",
    }
}

/// Bodies waiting in the outbox (one row per event per active webhook).
pub async fn outbox(store: &Store) -> Vec<String> {
    let due = store
        .claim_deliveries("test", 1000, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    store.release_deliveries("test").await.unwrap();
    due.into_iter().map(|d| d.body).collect()
}

pub async fn each_operation_writes_its_change_events_and_job_together(store: &Store) {
    let org = store.create_organisation("org").await.unwrap();
    store
        .add_webhook(&org.id, "https://hooks.example.com/a", b"key")
        .await
        .unwrap();
    let all = json!({"all": true});
    let tags = json!({});

    // Connect: the customer, the connection, its event and its first sync.
    let connected = store
        .connect(
            connect(&org.id, "alice", "acct-1", None, &all, &tags),
            |c, created| {
                vec![event(
                    EventKind::Add,
                    &format!("{} {created}", c.data_source_id),
                )]
            },
            |_| true,
        )
        .await
        .unwrap();
    assert!(connected.created && connected.queued);
    let connection = connected.connection;
    let user = store.end_user(&org.id, "alice").await.unwrap().unwrap();
    assert_eq!(connection.end_user_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(
        store.sync_state(&connection.id).await.unwrap(),
        (true, false)
    );
    let written = outbox(store).await;
    assert_eq!(written.len(), 1);
    assert!(written[0].contains(&format!("{} true", connection.data_source_id)));

    // The same site and account again: the same connection, no ADD.
    let again = store
        .connect(
            connect(&org.id, "alice", "acct-1", None, &all, &tags),
            |_, created| {
                assert!(!created);
                Vec::new()
            },
            |_| true,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.connection.id, connection.id);
    assert_eq!(
        again.connection.content_kinds, "pages,blogposts,comments,attachments",
        "every kind by default"
    );
    assert_eq!(outbox(store).await.len(), 1);

    // A reconnect of a data source that is not the customer's writes
    // nothing at all: not even the new customer it would have created.
    let failed = store
        .connect(
            connect(
                &org.id,
                "mallory",
                "acct-2",
                Some(connection.data_source_id),
                &all,
                &tags,
            ),
            |_, _| vec![event(EventKind::Add, "never")],
            |_| true,
        )
        .await;
    assert!(matches!(failed, Err(store::Error::NotFound(_))));
    assert!(store.end_user(&org.id, "mallory").await.unwrap().is_none());
    assert_eq!(outbox(store).await.len(), 1);

    // The job runs; files are written.
    let job = store
        .claim_sync_job("test", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Running);
    let run = store.start_job(&connection.id, "sync").await.unwrap();
    let files: Vec<store::FileUpsert> = (0..3)
        .map(|i| store::FileUpsert {
            kind: store::kind::PAGE,
            external_id: format!("{i}"),
            title: format!("Page {i}"),
            version: 1,
            status: "READY",
            body: Some("<p>x</p>".into()),
            ..Default::default()
        })
        .collect();
    store
        .write_batch(&connection.id, run, &files, &[], None)
        .await
        .unwrap();
    store
        .finish_sync_job(
            &job,
            JobStatus::Done,
            None,
            &org.id,
            &mut [event(EventKind::DataSourceReady, "ready")].into_iter(),
            Some("2099-02-01T00:00:00.000Z"),
        )
        .await
        .unwrap();
    assert_eq!(outbox(store).await.len(), 2);
    assert_eq!(
        store
            .connection(&connection.id)
            .await
            .unwrap()
            .next_sync_at
            .as_deref(),
        Some("2099-02-01T00:00:00.000Z")
    );

    // Choose scope: the scope, the event and the sync.
    store
        .choose_scope(
            &org.id,
            &connection.id,
            &json!({"all": false, "spaces": ["ENG"], "pages": []}),
            &["ENG".to_string()],
            Some((800, 10)),
            Some("pages,blogposts"),
            &[event(EventKind::Update, "scope")],
            None,
        )
        .await
        .unwrap();
    let chosen = store.connection(&connection.id).await.unwrap();
    assert_eq!(chosen.scope["spaces"], json!(["ENG"]));
    assert_eq!((chosen.chunk_size, chosen.chunk_overlap), (800, 10));
    assert_eq!(chosen.content_kinds, "pages,blogposts");
    assert_eq!(
        store.sync_state(&connection.id).await.unwrap(),
        (true, false)
    );
    assert_eq!(outbox(store).await.len(), 3);

    // Delete files: the files and their events; another organisation's
    // connection id matches nothing.
    let other = store.create_organisation("other").await.unwrap();
    let ids: Vec<i64> = store
        .file_versions(&connection.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(ids.len(), 3);
    let removed = store
        .delete_files_of(&other.id, &[(connection.id.clone(), ids.clone())], &[])
        .await
        .unwrap();
    assert_eq!(removed, 0);
    let removed = store
        .delete_files_of(
            &org.id,
            &[(connection.id.clone(), ids[..2].to_vec())],
            &[
                event(EventKind::FileDeleted, "a"),
                event(EventKind::FileDeleted, "b"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(store.file_versions(&connection.id).await.unwrap().len(), 1);
    assert_eq!(outbox(store).await.len(), 5);

    // Revoke: credentials gone, queued sync dropped, its event.
    store
        .revoke(
            &org.id,
            &connection.id,
            &[event(EventKind::Revoke, "revoke")],
            None,
        )
        .await
        .unwrap();
    let revoked = store.connection(&connection.id).await.unwrap();
    assert!(revoked.revoked);
    assert_eq!(
        store.sync_state(&connection.id).await.unwrap(),
        (false, false)
    );
    assert_eq!(outbox(store).await.len(), 6);

    // Delete customers: the customer, everything of theirs, the event.
    let removed = store
        .delete_customers(
            &org.id,
            &["alice".into()],
            &[event(EventKind::OrganizationUserDeleted, "alice")],
        )
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(store.end_user(&org.id, "alice").await.unwrap().is_none());
    assert!(store.connection(&connection.id).await.is_err());
    assert_eq!(outbox(store).await.len(), 7);
    let kinds: Vec<String> = outbox(store)
        .await
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ADD",
            "DATA_SOURCE_READY",
            "UPDATE",
            "FILE_DELETED",
            "FILE_DELETED",
            "REVOKE",
            "ORGANIZATION_USER_DELETED"
        ]
    );
}

#[test]
fn job_statuses_read_back_and_unknown_ones_never_run() {
    for status in [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
    ] {
        assert_eq!(JobStatus::parse(status.as_str()), status);
    }
    assert_eq!(JobStatus::parse("garbled"), JobStatus::Failed);
}

/// A segment whose stored conditions do not read admits nobody: read as
/// empty lists, its conditions would have admitted everyone (issue 11's
/// review of defaults on stored data). SQLite only: PostgreSQL's jsonb
/// column cannot hold text that is not JSON.
#[tokio::test]
async fn unreadable_segment_conditions_admit_nobody() {
    let dir = Dir::new("segments");
    let store = Store::open(&dir.0).await.unwrap();
    let org = store.create_organisation("org").await.unwrap();
    let segment = store
        .create_segment(
            &org.id,
            &store::Segment {
                id: String::new(),
                name: "engineers".into(),
                user_type: "signed_in".into(),
                tags: vec!["engineering".into()],
                or_tags: Vec::new(),
                organization_ids: Vec::new(),
                group_ids: vec!["g1".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.segments(&org.id).await.unwrap()[0].user_type,
        "signed_in"
    );
    // Damaged on disk (a bad restore, a hand edit).
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.0.join("confsync.db").display()))
            .await
            .unwrap();
    sqlx::query("UPDATE segments SET tags = 'not json' WHERE id = ?")
        .bind(&segment.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let read = store.segments(&org.id).await.unwrap();
    assert_eq!(read[0].user_type, "unreadable");
    assert!(read[0].tags.is_empty() && read[0].group_ids.is_empty());
}

/// The console's operations: an organisation's own connection (no
/// customer, no events), its spaces removed one at a time with their
/// files, every action recorded with the admin, and another
/// organisation's admin reaching none of it.
pub async fn console_operations_are_the_organisations_own_and_recorded(store: &Store) {
    let org = store.create_organisation("acme").await.unwrap();
    let other = store.create_organisation("other").await.unwrap();
    let admin = store
        .create_admin(&org.id, "Kim@Acme.com", "Kim", None)
        .await
        .unwrap();
    assert_eq!(admin.email, "kim@acme.com");
    assert!(store
        .create_admin(&other.id, "kim@acme.com", "Kim again", None)
        .await
        .is_err());
    let scope = json!({"all": false, "spaces": ["ENG", "OPS"], "pages": []});
    let tags = json!({});
    let mut op = connect(&org.id, "unused", "account-1", None, &scope, &tags);
    op.customer_id = None;
    op.connected_by = Some((&admin).into());
    op.allow_personal_spaces = false;
    let connected = store
        .connect(op, |_, _| Vec::new(), |_| false)
        .await
        .unwrap();
    let connection = connected.connection;
    assert!(connection.end_user_id.is_none());
    assert!(!connection.allow_personal_spaces);
    let number = connection.data_source_id;
    assert!(store
        .org_connection(&org.id, number, true)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .org_connection(&org.id, number, false)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .org_connection(&other.id, number, true)
        .await
        .unwrap()
        .is_none());

    // Two spaces with a page each.
    let spaces: Vec<store::SpaceRow> = ["ENG", "OPS"]
        .iter()
        .enumerate()
        .map(|(i, key)| store::SpaceRow {
            space_id: format!("{}", 100 + i),
            key: key.to_string(),
            name: format!("{key} space"),
            space_type: "global".into(),
            status: "current".into(),
            homepage_id: None,
        })
        .collect();
    store
        .upsert_spaces(&connection.id, &spaces, 1)
        .await
        .unwrap();
    let page = |id: &str, space: &str| store::FileUpsert {
        kind: store::kind::PAGE,
        external_id: id.into(),
        space_id: Some(space.into()),
        parent_id: None,
        container_id: None,
        title: format!("Page {id}"),
        url: None,
        version: 1,
        media_type: None,
        size_bytes: None,
        labels: None,
        status: "READY",
        error: None,
        created_at: None,
        body: None,
        content_hash: None,
        markdown: None,
        chunks: None,
        read_restriction: None,
    };
    store
        .write_batch(
            &connection.id,
            1,
            &[page("1", "100"), page("2", "101")],
            &[],
            None,
        )
        .await
        .unwrap();
    let sites = store.console_sites(&org.id).await.unwrap();
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].connected_by.as_deref(), Some("Kim"));
    assert_eq!(
        sites[0]
            .spaces
            .iter()
            .map(|s| (s.key.as_str(), s.items))
            .collect::<Vec<_>>(),
        [("ENG", 1), ("OPS", 1)]
    );
    assert!(store.console_sites(&other.id).await.unwrap().is_empty());

    // Another organisation cannot remove it, nor sync it.
    let kept = json!({"all": false, "spaces": ["OPS"], "pages": []});
    assert!(store
        .remove_space(
            &other.id,
            &connection.id,
            "ENG",
            &kept,
            Some((&admin).into())
        )
        .await
        .is_err());
    assert!(store
        .queue_sync(&other.id, &connection.id, "x", None, "x")
        .await
        .is_err());
    // Its own admin removes one space: its files and row go, the other stays.
    let removed = store
        .remove_space(&org.id, &connection.id, "ENG", &kept, Some((&admin).into()))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let sites = store.console_sites(&org.id).await.unwrap();
    assert_eq!(sites[0].connection.scope, kept);
    assert_eq!(
        sites[0]
            .spaces
            .iter()
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>(),
        ["OPS"]
    );
    // A sync that was running (its spaces read before the removal) writes
    // nothing of the removed space back...
    store
        .upsert_spaces(&connection.id, &spaces, 2)
        .await
        .unwrap();
    store
        .write_batch(&connection.id, 2, &[page("3", "100")], &[], None)
        .await
        .unwrap();
    let count = |sites: Vec<store::ConsoleSite>| -> Vec<(String, i64)> {
        sites[0]
            .spaces
            .iter()
            .map(|s| (s.key.clone(), s.items))
            .collect()
    };
    assert_eq!(
        count(store.console_sites(&org.id).await.unwrap()),
        [("ENG".to_string(), 0), ("OPS".to_string(), 1)]
    );
    // ...until it is chosen again.
    store
        .choose_scope(
            &org.id,
            &connection.id,
            &scope,
            &["ENG".to_string()],
            None,
            None,
            &[],
            None,
        )
        .await
        .unwrap();
    store
        .write_batch(&connection.id, 3, &[page("3", "100")], &[], None)
        .await
        .unwrap();
    assert_eq!(
        count(store.console_sites(&org.id).await.unwrap()),
        [("ENG".to_string(), 1), ("OPS".to_string(), 1)]
    );
    assert!(!store
        .queue_sync(
            &org.id,
            &connection.id,
            "console",
            Some((&admin).into()),
            "OPS"
        )
        .await
        .unwrap());
    store
        .remove_connection(&org.id, &connection.id, Some((&admin).into()), "acme")
        .await
        .unwrap();
    assert!(store.console_sites(&org.id).await.unwrap().is_empty());
    let actions: Vec<(String, String)> = store
        .admin_actions(&org.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.target))
        .collect();
    assert_eq!(
        actions,
        [
            ("Remove connection".to_string(), "acme".to_string()),
            ("Sync again".into(), "OPS".into()),
            ("Remove space".into(), "ENG".into()),
            ("Connect".into(), "https://acme.atlassian.net".into()),
        ]
    );
    assert!(store.admin_actions(&other.id, 10).await.unwrap().is_empty());
}

/// Issue 17: a connection's polls are queued once each interval, only
/// once it has synced; they are not "syncing" in its data source's state;
/// they are forgotten once they have ended a while ago.
pub async fn polls_are_background_work(store: &Store) {
    let org = store.create_organisation("polls").await.unwrap();
    let (all, tags) = (json!({"all": true}), json!({}));
    let connection = store
        .connect(
            connect(&org.id, "c", "acct-poll", None, &all, &tags),
            |_, _| Vec::new(),
            |_| false,
        )
        .await
        .unwrap()
        .connection;
    let at = |minute: u32| format!("2030-01-01T00:{minute:02}:00.000Z");
    // Never synced: no poll.
    assert!(store
        .enqueue_due_polls(&at(0), &at(5))
        .await
        .unwrap()
        .is_empty());
    store
        .set_connection_status(&connection.id, store::ConnectionStatus::Ready, None, true)
        .await
        .unwrap();
    // Synced: its first poll comes one interval on, then once an interval.
    assert!(store
        .enqueue_due_polls(&at(1), &at(6))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.enqueue_due_polls(&at(6), &at(11)).await.unwrap(),
        vec![connection.id.clone()]
    );
    assert!(store
        .enqueue_due_polls(&at(7), &at(12))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.sync_state(&connection.id).await.unwrap(),
        (false, false)
    );
    let job = store
        .claim_sync_job("n", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.kind, store::JobKind::Poll);
    assert_eq!(
        store.sync_state(&connection.id).await.unwrap(),
        (false, false)
    );
    store
        .finish_sync_job(
            &job,
            JobStatus::Done,
            None,
            &org.id,
            &mut std::iter::empty(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.prune_polls("2000-01-01T00:00:00.000Z").await.unwrap(),
        0
    );
    assert_eq!(
        store.prune_polls("2999-01-01T00:00:00.000Z").await.unwrap(),
        1
    );
}
