//! The sync queue's workers and the scheduler.
//!
//! Jobs live in the store (`sync_jobs`): a manual trigger, a connect or the
//! schedule queues one (a job already queued for the connection absorbs
//! the new one); workers claim them one connection at a time. A job left
//! running by a process that died is queued again at start, and the sync
//! resumes from its checkpoints. Each job records the files it started
//! from, so that the events it owes (created, ready, error, deleted) are
//! known after a restart too; they go to the webhook outbox in the same
//! transaction that finishes the job.

use crate::connection::{client_for, web_link, Scope};
use crate::events;
use crate::App;
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use store::SyncState;
use store::{JobKind, JobStatus, SyncJob};

/// Workers: claim, run, repeat; idle until nudged (or a few seconds).
pub async fn worker(app: Arc<App>) {
    loop {
        match app.store.claim_sync_job(&app.node_id, lease(&app)).await {
            Ok(Some(job)) => run(&app, job).await,
            Ok(None) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), app.jobs_ready.notified()).await;
            }
            Err(error) => {
                tracing::error!(%error, "claiming a sync job failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

type Snapshot = BTreeMap<i64, (i64, String)>;

async fn run(app: &Arc<App>, job: SyncJob) {
    let job_id = job.id;
    let connection = job.connection_id.clone();
    tracing::info!(job = job_id, %connection, kind = job.kind.as_str(), reason = %job.reason, "sync job started");
    // The job runs while its lease is renewed; a lost lease (this node was
    // too slow to renew it, and another took the job over) stops it where
    // it is, as a kill would: its checkpoints let the other node resume.
    let outcome = tokio::select! {
        outcome = run_job(app, job) => outcome,
        lost = keep_lease(app, job_id) => Err(lost),
    };
    match outcome {
        Ok(()) => {
            crate::metrics::record_job("done");
            tracing::info!(job = job_id, %connection, "sync job ended");
        }
        Err(error) => {
            crate::metrics::record_job(if matches!(error, store::Error::LeaseLost(_)) {
                "lost"
            } else {
                "failed"
            });
            tracing::error!(job = job_id, %connection, %error, "sync job failed to finish; it runs again (here after a restart, or on another node when its lease runs out)");
        }
    }
}

/// How long a claimed job is this node's without renewal
/// (`job_lease_secs`); renewed every third of it while the job runs.
fn lease(app: &App) -> Duration {
    Duration::from_secs(app.config.job_lease_secs.max(1))
}

/// Renews a job's lease until it cannot; returns why.
async fn keep_lease(app: &App, job_id: i64) -> store::Error {
    let lease = lease(app);
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        match app.store.renew_sync_job(job_id, &app.node_id, lease).await {
            Ok(true) => renewed = std::time::Instant::now(),
            Ok(false) => return store::Error::LeaseLost(job_id),
            // Not renewed for a whole lease (the database unreachable):
            // another node may hold the job by now, so this one stops.
            Err(error) if renewed.elapsed() >= lease => {
                tracing::warn!(job = job_id, %error, "a job's lease could not be renewed in time; stopping it");
                return store::Error::LeaseLost(job_id);
            }
            Err(error) => {
                tracing::warn!(job = job_id, %error, "renewing a job's lease failed; trying again");
            }
        }
    }
}

async fn run_job(app: &Arc<App>, job: SyncJob) -> Result<(), store::Error> {
    let store = &app.store;
    let connection = match store.connection(&job.connection_id).await {
        Ok(connection) => connection,
        // Disconnected while queued: nothing to do (the row went with it).
        Err(store::Error::NotFound(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    if job.kind == JobKind::Poll {
        let organisation_id = connection.organisation_id.clone();
        let (status, error, bodies) = match poll(app, &connection).await {
            Ok(bodies) => (JobStatus::Done, None, bodies),
            Err(error) => {
                tracing::warn!(job = job.id, connection = %connection.id, %error, "poll failed; the next poll or the full sync retries");
                (JobStatus::Failed, Some(error), Vec::new())
            }
        };
        let any = !bodies.is_empty();
        store
            .finish_sync_job(
                &job,
                status,
                error.as_deref(),
                &organisation_id,
                &mut bodies.into_iter(),
                None,
            )
            .await?;
        if any {
            app.outbox_ready.notify_one();
        }
        return Ok(());
    }
    if job.kind == JobKind::Items {
        let organisation_id = connection.organisation_id.clone();
        let (status, error) = if connection.revoked {
            (JobStatus::Done, None)
        } else {
            // A cancel stops the listing at once, even mid-request: each
            // space's items are written in a transaction of their own, so
            // what was listed stays whole.
            let listed = tokio::select! {
                listed = list_items(app, &connection) => listed,
                () = app.until_cancelled(job.id) => Ok(false),
            };
            // A cancel that came as it finished is forgotten with it.
            app.take_cancelled(job.id);
            match listed {
                Ok(true) => (JobStatus::Done, None),
                Ok(false) => (JobStatus::Cancelled, None),
                Err(error) => {
                    tracing::warn!(%error, "listing a site's items failed");
                    (JobStatus::Failed, Some(error))
                }
            }
        };
        return store
            .finish_sync_job(
                &job,
                status,
                error.as_deref(),
                &organisation_id,
                &mut std::iter::empty(),
                None,
            )
            .await;
    }
    let organisation = store.organisation(&connection.organisation_id).await?;
    let customer = customer_of(store, &connection).await?;
    if connection.revoked {
        return store
            .finish_sync_job(
                &job,
                JobStatus::Done,
                None,
                &organisation.id,
                &mut std::iter::empty(),
                None,
            )
            .await;
    }
    let before: Snapshot = match job
        .snapshot
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
    {
        Some(snapshot) => snapshot,
        None => {
            let snapshot = snapshot(store, &connection.id).await?;
            // Files asked for again (resync_file) are syncing now: the
            // snapshot and those events are written together.
            let syncing: Vec<store::Event> = snapshot
                .iter()
                .filter(|(_, (_, status))| status == "QUEUED_FOR_SYNC")
                .map(|(id, _)| {
                    events::body(
                        events::EventKind::FileSyncing,
                        &customer,
                        "FILE",
                        json!(id),
                        &[("data_source_id", connection.data_source_id.to_string())],
                    )
                })
                .collect();
            store
                .start_sync_job(
                    job.id,
                    &serde_json::to_string(&snapshot).unwrap_or_default(),
                    &organisation.id,
                    &syncing,
                )
                .await?;
            app.outbox_ready.notify_one();
            snapshot
        }
    };
    // What to sync with, or why not: an unreadable scope or no usable
    // credentials are the connection's error; an empty scope is nothing.
    let prepared: Result<Option<(Scope, confluence::Client)>, String> = match Scope::of(&connection)
    {
        Err(error) => Err(error),
        Ok(scope) if scope.is_empty() => Ok(None),
        Ok(scope) => client_for(app, &connection)
            .await
            .map(|client| Some((scope, client))),
    };
    let outcome: Result<(), String> = match prepared {
        Err(error) => {
            store
                .set_connection_status(
                    &connection.id,
                    store::ConnectionStatus::SyncError,
                    Some(&error),
                    false,
                )
                .await?;
            Err(error)
        }
        Ok(None) => {
            store
                .set_connection_status(&connection.id, store::ConnectionStatus::Ready, None, false)
                .await?;
            Ok(())
        }
        Ok(Some((scope, client))) => {
            let tags = scope.tags.clone();
            let options = sync_options(&connection, scope);
            let engine = sync::Engine::new(client, store.clone(), &connection.id, options)
                .with_commit_hook(app.follower.hook());
            let synced = match engine.run().await {
                Ok(report) => {
                    let total = report.total();
                    tracing::info!(
                        job = job.id,
                        connection = %connection.id,
                        added = total.added,
                        updated = total.updated,
                        deleted = total.deleted,
                        failed = total.failed,
                        spaces = report.spaces,
                        requests = report.requests,
                        retries = report.retries,
                        resumed = report.resumed,
                        elapsed_ms = report.elapsed_ms,
                        "sync finished"
                    );
                    crate::metrics::record_sync(&report);
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(
                        job = job.id,
                        connection = %connection.id,
                        retryable = error.is_retryable(),
                        %error,
                        "sync failed"
                    );
                    Err(error.to_string())
                }
            };
            // The tags chosen with files/sync, on what the sync wrote.
            if synced.is_ok() && !tags.is_empty() {
                store.apply_chosen_tags(&connection.id, &tags).await?;
            }
            synced
        }
    };
    // READY means searchable: the index has what the sync wrote.
    if let Err(error) = app.follower.flush().await {
        tracing::warn!(%error, "index not caught up after a sync; the next change retries");
    }
    let after = snapshot(store, &connection.id).await?;
    let ready = outcome.is_ok().then(|| {
        events::body(
            events::EventKind::DataSourceReady,
            &customer,
            "DATA_SOURCE",
            json!(connection.data_source_id),
            &[],
        )
    });
    let mut bodies =
        file_events(&before, &after, &customer, connection.data_source_id).chain(ready);
    let next_sync_at = if connection.auto_sync {
        // Read again: the customer's interval may have changed meanwhile.
        let user = match &connection.end_user_id {
            Some(id) => store.end_user_by_id(id).await?,
            None => None,
        };
        Some(next_run(app.sync_interval_hours(user.as_ref())))
    } else {
        None
    };
    let (status, error) = match &outcome {
        Ok(()) => (JobStatus::Done, None),
        Err(error) => (JobStatus::Failed, Some(error.as_str())),
    };
    store
        .finish_sync_job(
            &job,
            status,
            error,
            &organisation.id,
            &mut bodies,
            next_sync_at.as_deref(),
        )
        .await?;
    app.outbox_ready.notify_one();
    Ok(())
}

/// Lists the site's spaces and pages (metadata only) into the item tree.
/// Pages are listed for up to 100 spaces at once (`/pages?space-id=...`,
/// the documents' cap) and staged a listing page at a time, so that a
/// large site is never held whole and a hundred small spaces cost what
/// one space of as many pages does, not a request each. The complete
/// listing replaces the tree in one transaction (`finish_source_items`,
/// which settles which pages hang from their space and which items have
/// children): readers see the last complete tree until then.
async fn list_items(app: &App, connection: &store::Connection) -> Result<bool, String> {
    use futures::TryStreamExt;
    let client = client_for(app, connection).await?;
    let listing = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let spaces: Vec<confluence::model::Space> = client
        .stream::<confluence::model::Space>(client.spaces_url(&[]))
        .try_collect()
        .await
        .map_err(|e| format!("listing the site's spaces failed: {e}"))?;
    let spaces: Vec<&confluence::model::Space> = spaces
        .iter()
        .filter(|s| connection.allow_personal_spaces || s.space_type != "personal")
        .collect();
    let items: Vec<store::NewSourceItem> = spaces
        .iter()
        .map(|space| space_item(connection, space, false))
        .collect();
    app.store
        .write_source_items(&connection.id, &listing, &items)
        .await
        .map_err(|e| e.to_string())?;
    let keys: std::collections::HashMap<&str, &str> = spaces
        .iter()
        .map(|s| (s.id.as_str(), s.key.as_str()))
        .collect();
    for group in spaces.chunks(100) {
        let ids: Vec<&str> = group.iter().map(|s| s.id.as_str()).collect();
        let mut url = Some(client.content_in_spaces_url(false, &ids, false));
        while let Some(current) = url {
            let (pages, next) = client
                .listing::<confluence::model::Content>(&current)
                .await
                .map_err(|e| format!("listing the site's pages failed: {e}"))?;
            let items: Vec<store::NewSourceItem> = pages
                .into_iter()
                .filter_map(|page| {
                    let key = *keys.get(page.space_id.as_str())?;
                    Some(store::NewSourceItem {
                        external_url: web_link(connection, page.links.webui.as_deref()),
                        external_id: page.id,
                        item_type: "PAGE",
                        name: page.title,
                        parent_external_id: Some(page.parent_id.unwrap_or_else(|| key.to_string())),
                        root_external_id: Some(key.to_string()),
                        is_expandable: false,
                    })
                })
                .collect();
            app.store
                .write_source_items(&connection.id, &listing, &items)
                .await
                .map_err(|e| e.to_string())?;
            url = next;
        }
    }
    app.store
        .finish_source_items(&connection.id, &listing)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// A space as an item a picker shows (its id is its key).
pub(crate) fn space_item(
    connection: &store::Connection,
    space: &confluence::model::Space,
    expandable: bool,
) -> store::NewSourceItem {
    store::NewSourceItem {
        external_id: space.key.clone(),
        item_type: "SPACE",
        name: space.name.clone(),
        parent_external_id: None,
        root_external_id: Some(space.key.clone()),
        external_url: web_link(connection, Some(&format!("/spaces/{}", space.key))),
        is_expandable: expandable,
    }
}

/// What changed between two snapshots, as Carbon's events.
fn file_events<'a>(
    before: &'a Snapshot,
    after: &'a Snapshot,
    customer: &'a str,
    data_source_id: i64,
) -> impl Iterator<Item = store::Event> + Send + 'a {
    let info = move || vec![("data_source_id", data_source_id.to_string())];
    let created: Vec<i64> = after
        .keys()
        .filter(|id| !before.contains_key(id))
        .copied()
        .collect();
    let created = (!created.is_empty()).then(|| {
        events::body(
            events::EventKind::FilesCreated,
            customer,
            "FILE_LIST",
            json!(created),
            &info(),
        )
    });
    // Each body is built when it is taken: a first sync of a million
    // files has a million FILE_READY events, written as they come (and
    // not built at all when no webhook is active).
    let changed = after.iter().filter_map(move |(id, state)| {
        if before.get(id) == Some(state) {
            return None;
        }
        let kind = match state.1.as_str() {
            "READY" => events::EventKind::FileReady,
            "SYNC_ERROR" => events::EventKind::FileError,
            _ => return None,
        };
        Some(events::body(kind, customer, "FILE", json!(id), &info()))
    });
    let deleted = before
        .keys()
        .filter(move |id| !after.contains_key(id))
        .map(move |id| {
            events::body(
                events::EventKind::FileDeleted,
                customer,
                "FILE",
                json!(id),
                &info(),
            )
        });
    created.into_iter().chain(changed).chain(deleted)
}

/// When the next scheduled sync is due: the interval, less up to a tenth
/// of it at random, so that connections made together drift apart.
pub fn next_run(hours: i64) -> String {
    let interval = Duration::from_secs(hours.clamp(1, 24 * 30) as u64 * 3600);
    let jitter = rand::thread_rng().gen_range(0.0..0.1);
    let delay = interval.mul_f64(1.0 - jitter);
    (chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether an end user's settings let a source sync on schedule.
pub fn auto_sync_allowed(sources: Option<&serde_json::Value>) -> bool {
    match sources {
        None => true,
        Some(serde_json::Value::String(all)) => all == "ALL",
        Some(serde_json::Value::Array(list)) => list.iter().any(|s| s == "CONFLUENCE"),
        Some(_) => false,
    }
}

/// The scheduler: queues a sync of every connection that is due.
pub async fn scheduler(app: Arc<App>) {
    let mut tick = Duration::from_secs(app.config.scheduler_tick_secs.max(1));
    // A poll interval finer than the tick is kept.
    if let Some(poll) = app.config.poll_interval() {
        tick = tick.min(poll.max(Duration::from_millis(200)));
    }
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        if let Err(error) = schedule_due(&app).await {
            tracing::error!(%error, "scheduling failed");
        }
        if let Err(error) = schedule_polls(&app).await {
            tracing::error!(%error, "scheduling polls failed");
        }
        // Polls ended a day ago are forgotten, once an hour.
        if pruned.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            pruned = Some(std::time::Instant::now());
            let day_ago = (chrono::Utc::now() - chrono::Duration::days(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            if let Err(error) = app.store.prune_polls(&day_ago).await {
                tracing::warn!(%error, "forgetting old polls failed");
            }
        }
        tokio::time::sleep(tick).await;
    }
}

/// One pass: each due connection is queued once (a run missed while the
/// server was down runs once, at start) and its next run is set.
pub async fn schedule_due(app: &App) -> Result<usize, store::Error> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut queued = 0;
    for (connection, user) in app.store.due_connections(&now).await? {
        let hours = app.sync_interval_hours(user.as_ref());
        let allowed = auto_sync_allowed(user.as_ref().and_then(|u| u.auto_sync_sources.as_ref()));
        if allowed && Scope::wants_sync(&connection) {
            app.store.enqueue_sync(&connection.id, "scheduled").await?;
            queued += 1;
        }
        app.store
            .set_next_sync(&connection.id, Some(&next_run(hours)))
            .await?;
    }
    if queued > 0 {
        app.jobs_ready.notify_waiters();
    }
    Ok(queued)
}

/// Minutes a poll looks back beyond its last: Confluence's dates are
/// minute-granular, and its clock is not ours.
const POLL_OVERLAP_MINUTES: i64 = 2;

/// A poll for recent changes: from where the last poll looked (or the
/// last full sync started), less an overlap. One CQL request when nothing
/// changed; what changed is synced and announced as a sync's changes are.
/// Returns the events to deliver.
async fn poll(app: &Arc<App>, connection: &store::Connection) -> Result<Vec<store::Event>, String> {
    let store = &app.store;
    let fail = |e: store::Error| e.to_string();
    if connection.revoked || !Scope::wants_sync(connection) {
        return Ok(Vec::new());
    }
    let since = match &connection.polled_at {
        Some(at) => Some(at.clone()),
        None => store
            .jobs(&connection.id, 1)
            .await
            .map_err(fail)?
            .first()
            .map(|run| run.started_at.clone()),
    };
    let Some(since) = since.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok()) else {
        // Never synced: the full sync comes first.
        return Ok(Vec::new());
    };
    let started = chrono::Utc::now();
    let minutes = (started - since.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0)
        / 60
        + 1
        + POLL_OVERLAP_MINUTES;
    let scope = Scope::of(connection)?;
    let client = client_for(app, connection).await?;
    let engine = sync::Engine::new(
        client,
        store.clone(),
        &connection.id,
        sync_options(connection, scope),
    )
    .with_commit_hook(app.follower.hook());
    // Found first: a poll that finds nothing reads and writes nothing more.
    let found = engine
        .find_changes(minutes as u64)
        .await
        .map_err(|e| e.to_string())?;
    let customer = customer_of(store, connection).await.map_err(fail)?;
    let before: Snapshot = if found.is_empty() {
        Snapshot::new()
    } else {
        snapshot(store, &connection.id).await.map_err(fail)?
    };
    let polled = engine
        .apply_changes(found)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        connection = %connection.id,
        minutes,
        candidates = polled.candidates,
        changed = polled.changed,
        requests = polled.requests,
        skipped = polled.skipped,
        "poll finished"
    );
    if polled.skipped {
        return Ok(Vec::new());
    }
    store
        .set_polled_at(
            &connection.id,
            &started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await
        .map_err(fail)?;
    if polled.changed == 0 {
        return Ok(Vec::new());
    }
    crate::metrics::record_sync(&polled.report);
    if let Err(error) = app.follower.flush().await {
        tracing::warn!(%error, "index not caught up after a poll; the next change retries");
    }
    let after = snapshot(store, &connection.id).await.map_err(fail)?;
    Ok(file_events(&before, &after, &customer, connection.data_source_id).collect())
}

/// Queues a poll of each connection that is due one, every
/// `poll_interval` (polling off: nothing).
async fn schedule_polls(app: &App) -> Result<usize, store::Error> {
    let Some(interval) = app.config.poll_interval() else {
        return Ok(0);
    };
    let now = chrono::Utc::now();
    let next = now + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::minutes(5));
    let queued = app
        .store
        .enqueue_due_polls(
            &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            &next.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .await?;
    if !queued.is_empty() {
        app.jobs_ready.notify_waiters();
    }
    Ok(queued.len())
}

/// Carbon's customer id of a connection's end user (empty for the
/// organisation's own connections): whom its events are for.
async fn customer_of(
    store: &store::Store,
    connection: &store::Connection,
) -> Result<String, store::Error> {
    Ok(match &connection.end_user_id {
        Some(id) => store.end_user_by_id(id).await?.map(|u| u.customer_id),
        None => None,
    }
    .unwrap_or_default())
}

/// What a connection's sync or poll works from: its scope, settings and
/// content kinds.
fn sync_options(connection: &store::Connection, scope: Scope) -> sync::SyncOptions {
    let (spaces, pages) = if scope.all {
        (Vec::new(), Vec::new())
    } else {
        (scope.spaces, scope.pages)
    };
    sync::SyncOptions {
        spaces,
        pages,
        allow_personal_spaces: connection.allow_personal_spaces,
        download_concurrency: 8,
        space_concurrency: 2,
        link_base: connection.site_link.as_ref().map(|l| format!("{l}/wiki")),
        content: content_kinds(connection),
    }
}

/// Every file of a connection with its version and status: what file
/// events are computed from, before and after a run.
async fn snapshot(store: &store::Store, connection_id: &str) -> Result<Snapshot, store::Error> {
    Ok(store
        .file_versions(connection_id)
        .await?
        .into_iter()
        .map(|(id, version, status)| (id, (version, status)))
        .collect())
}

/// The kinds of content a connection syncs. The store holds only what
/// `ContentKinds::names` wrote; anything else syncs everything, said in
/// the log.
fn content_kinds(connection: &store::Connection) -> sync::ContentKinds {
    sync::ContentKinds::parse(&connection.content_kinds).unwrap_or_else(|error| {
        tracing::warn!(connection = %connection.id, %error, "unreadable content kinds; syncing all");
        sync::ContentKinds::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_snapshots() {
        let before: Snapshot = [
            (1, (1, "READY".into())),
            (2, (1, "READY".into())),
            (3, (-1, "QUEUED_FOR_SYNC".into())),
        ]
        .into_iter()
        .collect();
        let after: Snapshot = [
            (1, (1, "READY".into())),
            (3, (2, "READY".into())),
            (4, (1, "SYNC_ERROR".into())),
        ]
        .into_iter()
        .collect();
        let kinds: Vec<String> = file_events(&before, &after, "c", 9)
            .map(|b| {
                let outer: serde_json::Value = serde_json::from_str(&b.body).unwrap();
                let inner: serde_json::Value =
                    serde_json::from_str(outer["payload"].as_str().unwrap()).unwrap();
                format!(
                    "{} {}",
                    inner["webhook_type"].as_str().unwrap(),
                    inner["object"]["object_id"]
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "FILES_CREATED [4]",
                "FILE_READY 3",
                "FILE_ERROR 4",
                "FILE_DELETED 2"
            ]
        );
    }

    #[test]
    fn schedule_spreads_within_a_tenth() {
        let now = chrono::Utc::now();
        for _ in 0..100 {
            let next = chrono::DateTime::parse_from_rfc3339(&next_run(24)).unwrap();
            let hours = (next.with_timezone(&chrono::Utc) - now).num_minutes() as f64 / 60.0;
            assert!((21.5..=24.01).contains(&hours), "{hours}");
        }
        assert!(auto_sync_allowed(None));
        assert!(auto_sync_allowed(Some(&json!("ALL"))));
        assert!(auto_sync_allowed(Some(&json!(["CONFLUENCE"]))));
        assert!(!auto_sync_allowed(Some(&json!([]))));
        assert!(!auto_sync_allowed(Some(&json!(["NOTION"]))));
    }
}
