//! The console's pages, rendered by maud (every value escaped unless
//! marked otherwise: only the index's snippets, which it escapes itself).

use super::{Resource, Session};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use store::{ConnectionStatus, ConsoleSite};

/// Which part of the console a page belongs to (the navigation's mark).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Connections,
    Preview,
    Customers,
    Account,
    None,
}

fn layout(session: Option<&Session>, title: &str, nav: Nav, body: Markup) -> Markup {
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · confsync" }
                link rel="stylesheet" href="/admin/assets/console.css";
                script src="/admin/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/admin" { "confsync" span.muted { " · Knowledge admin" } }
                    @if let Some(session) = session {
                        nav aria-label="Console" {
                            ul {
                                li { a href="/admin" aria-current=[current(Nav::Connections)] { "Connections" } }
                                li { a href="/admin/preview" aria-current=[current(Nav::Preview)] { "Preview as" } }
                                li { a href="/admin/customers" aria-current=[current(Nav::Customers)] { "API customers" } }
                            }
                        }
                        div.who {
                            a href="/admin/account" aria-current=[current(Nav::Account)] { (session.admin.name) }
                            form method="post" action="/admin/signout" {
                                (csrf(session))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// 422 when the page says what was wrong with a form, else 200.
fn status_for(problem: Option<&str>) -> StatusCode {
    if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    }
}

fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

fn notice(kind: &str, text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            div class={ "notice " (kind) } role=(if kind == "error" { "alert" } else { "status" }) { (text) }
        }
    }
}

/// A page that only says something (an error, a refusal).
pub fn message(
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    page(
        status,
        layout(
            None,
            title,
            Nav::None,
            html! {
                h1 { (title) }
                p { (text) }
                @if let Some((href, label)) = link { p { a href=(href) { (label) } } }
            },
        ),
    )
}

pub fn signin(next: &str, email: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let kind = if status.is_success() { "" } else { "error" };
    page(
        status,
        layout(
            None,
            "Sign in",
            Nav::None,
            html! {
                h1 { "Sign in to the knowledge admin" }
                (notice(kind, problem))
                form.stack method="post" action="/admin/signin" {
                    input type="hidden" name="next" value=(next);
                    label { "Email" input type="email" name="email" autocomplete="username" required value=(email); }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    div { button.primary type="submit" { "Sign in" } }
                }
                p.hint { "No password yet? Use the sign-in link the operator gave you (" code { "confsync admin create-admin" } ")." }
            },
        ),
    )
}

pub fn link(admin: &store::Admin) -> Response {
    page(
        StatusCode::OK,
        layout(
            None,
            "Sign in",
            Nav::None,
            html! {
                h1 { "Sign in as " (admin.name) }
                p { "This link signs you in once, as " strong { (admin.email) } ". You can set a password afterwards under your name." }
                form method="post" {
                    button.primary type="submit" { "Sign in" }
                }
            },
        ),
    )
}

pub fn account(session: &Session, problem: Option<&str>, done: Option<&str>) -> Response {
    page(
        status_for(problem),
        layout(
            Some(session),
            "Account",
            Nav::Account,
            html! {
                h1 { "Your account" }
                dl.details {
                    dt { "Name" } dd { (session.admin.name) }
                    dt { "Email" } dd { (session.admin.email) }
                }
                h2 { "Set a password" }
                (notice("error", problem))
                (notice("ok", done))
                form.stack method="post" action="/admin/account" {
                    (csrf(session))
                    label { "New password" span.hint { "At least 12 characters." }
                        input type="password" name="password" autocomplete="new-password" required minlength="12"; }
                    label { "The same password again" input type="password" name="confirm" autocomplete="new-password" required minlength="12"; }
                    div { button.primary type="submit" { "Set password" } }
                }
            },
        ),
    )
}

/// A status as the console shows it.
struct Status {
    label: &'static str,
    class: &'static str,
    reason: Option<String>,
    busy: bool,
}

fn connection_status(connection: &store::Connection, chosen: usize) -> Status {
    let status = |label, class, reason: Option<String>, busy| Status {
        label,
        class,
        reason,
        busy,
    };
    match connection.status {
        ConnectionStatus::QueuedForSyncing | ConnectionStatus::Syncing => {
            status("Syncing", "syncing", None, true)
        }
        ConnectionStatus::Ready => status("Synced", "synced", None, false),
        ConnectionStatus::SyncError => status(
            "Error",
            "error",
            Some(
                connection
                    .error
                    .clone()
                    .unwrap_or_else(|| "the last sync failed".into()),
            ),
            false,
        ),
        ConnectionStatus::NeedsReauthorization => status(
            "Error",
            "error",
            Some("Confluence refused the credentials: connect the site again.".into()),
            false,
        ),
        ConnectionStatus::Connected if chosen == 0 => status(
            "No spaces yet",
            "waiting",
            Some("Add content to choose spaces.".into()),
            false,
        ),
        ConnectionStatus::Connected => status("Waiting", "waiting", None, true),
    }
}

fn space_status(connection: &store::Connection, synced: bool) -> Status {
    let overall = connection_status(connection, 1);
    if overall.class == "synced" && !synced {
        return Status {
            label: "Error",
            class: "error",
            reason: Some("The site has no such space, or the account cannot read it.".into()),
            busy: false,
        };
    }
    overall
}

fn status_badge(status: &Status) -> Markup {
    html! {
        span class={ "status " (status.class) } data-busy=[status.busy.then_some("1")] { (status.label) }
        @if let Some(reason) = &status.reason { span.reason { (reason) } }
    }
}

fn when(at: Option<&str>) -> String {
    match at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        None => "Never".into(),
    }
}

fn site_name(connection: &store::Connection) -> String {
    super::site_label(connection)
}

/// The spaces of a console connection, in its scope's order: name, key and
/// what the store holds of each (`None`: not synced yet).
fn site_spaces(site: &ConsoleSite) -> Vec<(String, String, Option<&store::ConsoleSpace>)> {
    let mut rows: Vec<(String, String, Option<&store::ConsoleSpace>)> =
        super::chosen_spaces(&site.connection)
            .into_iter()
            .map(|key| {
                let space = site.spaces.iter().find(|s| s.key == key);
                let name = space
                    .map(|s| s.name.clone())
                    .or_else(|| {
                        site.listed_names
                            .iter()
                            .find(|(k, _)| k == &key)
                            .map(|(_, n)| n.clone())
                    })
                    .unwrap_or_else(|| key.clone());
                (name, key, space)
            })
            .collect();
    rows.sort_by(|a, b| {
        a.0.to_lowercase()
            .cmp(&b.0.to_lowercase())
            .then(a.1.cmp(&b.1))
    });
    rows
}

pub fn connections_table(session: &Session, sites: &[ConsoleSite]) -> Markup {
    html! {
        @if sites.is_empty() {
            p.notice { "No Confluence site is connected yet. " a href="/admin/connections/new" { "Create a connection" } " to start." }
        } @else {
            table {
                caption.visually-hidden { "Confluence sites and their spaces" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Items" } th scope="col" { "Status" }
                    th scope="col" { "Last synced" } th scope="col" { span.visually-hidden { "Options" } }
                } }
                @for site in sites {
                    @let connection = &site.connection;
                    @let ds = connection.data_source_id;
                    @let spaces = site_spaces(site);
                    @let name = site_name(connection);
                    tbody {
                        tr.site data-site=(name) {
                            td { (name) br; span.hint { "Confluence · connected by " (site.connected_by.as_deref().unwrap_or("the API")) } }
                            td { (spaces.iter().filter_map(|s| s.2).map(|s| s.items).sum::<i64>()) }
                            td { (status_badge(&connection_status(connection, spaces.len()))) }
                            td { (when(connection.last_synced_at.as_deref())) }
                            td {
                                details.menu {
                                    summary aria-label={ "Options for " (name) } { "Options" }
                                    ul {
                                        li { a href={ "/admin/connections/" (ds) "/spaces" } { "Add content" } }
                                        li { form method="post" action={ "/admin/connections/" (ds) "/sync" } {
                                            (csrf(session)) button type="submit" { "Sync again" } } }
                                        li { a href={ "/admin/connections/" (ds) "/remove" } { "Remove connection" } }
                                    }
                                }
                            }
                        }
                        @for (space_name, key, space) in &spaces {
                            tr.space data-space=(key) {
                                td { a href={ "/admin/connections/" (ds) "/spaces/" (key) } { (space_name) } " " span.hint { (key) } }
                                td { (space.map(|s| s.items).unwrap_or(0)) }
                                td { (status_badge(&space_status(connection, space.is_some()))) }
                                td { (when(connection.last_synced_at.as_deref())) }
                                td {
                                    details.menu {
                                        summary aria-label={ "Options for " (space_name) } { "Options" }
                                        ul {
                                            li { a href={ "/admin/connections/" (ds) "/spaces/" (key) } { "Manage" } }
                                            li { form method="post" action={ "/admin/connections/" (ds) "/spaces/" (key) "/sync" } {
                                                (csrf(session)) button type="submit" { "Sync again" } } }
                                            li { a href={ "/admin/connections/" (ds) "/spaces/" (key) "/remove" } { "Remove connection" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn connections(
    session: &Session,
    sites: &[ConsoleSite],
    actions: &[store::AdminAction],
) -> Response {
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "Connections",
            Nav::Connections,
            html! {
                div.bar {
                    h1 { "External content connections" }
                    a.button.primary href="/admin/connections/new" { "Create connection" }
                }
                div #connections data-poll="/admin/connections/table" aria-live="polite" {
                    (connections_table(session, sites))
                }
                @if !actions.is_empty() {
                    h2 { "Recent activity" }
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } } }
                        tbody {
                            @for action in actions {
                                tr { td { (when(Some(&action.at))) } td { (action.admin_name) } td { (action.action) ": " (action.target) } }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// What the token form held, to show it again after a refusal (never the
/// token).
#[derive(Default)]
pub struct TokenForm {
    pub kind: String,
    pub site: String,
    pub email: String,
}

pub fn new_connection(
    session: &Session,
    oauth: bool,
    problem: Option<&str>,
    values: &TokenForm,
) -> Response {
    page(
        status_for(problem),
        layout(
            Some(session),
            "Create connection",
            Nav::Connections,
            html! {
                h1 { "Create connection" }
                (notice("error", problem))
                div.cards {
                    section.card aria-labelledby="confluence-card" {
                        h2 #confluence-card { "Confluence" }
                        p { "Search and cite your Confluence spaces. Pages, blog posts, attachments and comments are synced every 24 hours, and when you ask." }
                        @if oauth {
                            form method="post" action="/admin/connect/oauth" {
                                (csrf(session))
                                button.primary type="submit" { "Connect with Atlassian" }
                            }
                            p.hint { "You sign in at Atlassian and allow read access; then you choose the site and its spaces." }
                        } @else {
                            p.hint { "Atlassian sign-in (OAuth) is not configured on this server: connect with a token below." }
                        }
                    }
                }
                h2 { "Connect with a token" }
                p.hint { "For sites without OAuth: a Confluence Cloud API token, or a Data Center personal access token." }
                form.stack method="post" action="/admin/connect/token" {
                    (csrf(session))
                    fieldset {
                        legend { "Token type" }
                        label.check { input type="radio" name="kind" value="api_token" checked[values.kind != "pat"]; "API token (Confluence Cloud)" }
                        label.check { input type="radio" name="kind" value="pat" checked[values.kind == "pat"]; "Personal access token (Data Center)" }
                    }
                    label { "Site"
                        span.hint { "The subdomain (acme for acme.atlassian.net), or the name of a site the operator configured." }
                        input type="text" name="site" required value=(values.site) autocomplete="off"; }
                    label { "Email" span.hint { "The account's email (API tokens only)." }
                        input type="email" name="email" value=(values.email) autocomplete="off"; }
                    label { "Token" input type="password" name="token" required autocomplete="off"; }
                    div { button.primary type="submit" { "Connect" } }
                }
            },
        ),
    )
}

pub fn choose_site(
    session: &Session,
    consent: &str,
    resources: &[Resource],
    problem: Option<&str>,
) -> Response {
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "Choose the site",
            Nav::Connections,
            html! {
                h1 { "Choose the Confluence site" }
                (notice("error", problem))
                @if resources.is_empty() {
                    p { "The account you allowed reaches no Confluence site. " a href="/admin/connections/new" { "Connect again" } " with another account." }
                } @else {
                    form.stack method="post" action="/admin/connect/site" {
                        (csrf(session))
                        input type="hidden" name="consent" value=(consent);
                        label { "Confluence site"
                            select name="site" required {
                                @for resource in resources {
                                    option value=(resource.id) { (if resource.name.is_empty() { &resource.url } else { &resource.name }) " (" (resource.url) ")" }
                                }
                            }
                        }
                        div { button.primary type="submit" { "Continue" } }
                    }
                }
            },
        ),
    )
}

pub fn spaces(
    session: &Session,
    connection: &store::Connection,
    chosen: &[String],
    options: &[store::SpaceOption],
    query: &str,
    problem: Option<&str>,
) -> Response {
    let ds = connection.data_source_id;
    let action = format!("/admin/connections/{ds}/spaces");
    page(
        if problem.is_some() && options.is_empty() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        layout(
            Some(session),
            "Choose spaces",
            Nav::Connections,
            html! {
                h1 { "Add content from " (site_name(connection)) }
                (notice("error", problem))
                @if !chosen.is_empty() {
                    p { "Already synced: " (chosen.join(", ")) "." }
                }
                p.hint { "Personal spaces are not offered." }
                // Without script: search, then tick spaces among the first 20 found.
                form #spaces-search method="get" action=(action) class="nojs-only" {
                    label { "Search spaces" input type="search" name="q" value=(query); }
                    button type="submit" { "Search" }
                }
                form.stack method="post" action=(action) {
                    (csrf(session))
                    div.combo data-combo={ (action) "/options" } data-tags="chosen-spaces" data-fallback="spaces-fallback" hidden {
                        label for="space-search" { "Spaces" }
                        span.hint #space-hint { "Type to search; the first 20 spaces are listed in alphabetical order." }
                        input #space-search type="text" role="combobox" aria-autocomplete="list" aria-expanded="false"
                            aria-controls="space-list" aria-describedby="space-hint" autocomplete="off";
                        ul #space-list role="listbox" aria-label="Spaces" hidden {}
                    }
                    ul.tags #chosen-spaces aria-label="Chosen spaces" {}
                    fieldset #spaces-fallback {
                        legend { "Spaces" }
                        @if options.is_empty() { p.muted { "No space matches." } }
                        @for option in options {
                            label.check { input type="checkbox" name="space" value=(option.key); (option.name) " (" (option.key) ")" }
                        }
                    }
                    div { button.primary type="submit" { "Sync" } " " a href="/admin" { "Cancel" } }
                }
            },
        ),
    )
}

fn item_count(site: &ConsoleSite, key: Option<&str>) -> i64 {
    site.spaces
        .iter()
        .filter(|s| key.is_none_or(|k| s.key == k))
        .map(|s| s.items)
        .sum()
}

pub fn remove_site(session: &Session, site: &ConsoleSite) -> Response {
    let name = site_name(&site.connection);
    let spaces = site_spaces(site);
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "Remove connection",
            Nav::Connections,
            html! {
                h1 { "Remove the connection to " (name) "?" }
                p { "Its " (spaces.len()) " spaces and " (item_count(site, None)) " items leave search at once, and nothing more is synced from this site:" }
                ul { @for (space_name, key, _) in &spaces { li { (space_name) " (" (key) ")" } } }
                form method="post" {
                    (csrf(session))
                    button.danger type="submit" { "Remove connection" } " " a href="/admin" { "Cancel" }
                }
                p.hint { "The credentials are deleted too. Nothing is changed in Confluence." }
            },
        ),
    )
}

pub fn remove_space(session: &Session, site: &ConsoleSite, key: &str) -> Response {
    let name = site_spaces(site)
        .into_iter()
        .find(|s| s.1 == key)
        .map(|s| s.0)
        .unwrap_or_else(|| key.to_string());
    let others = site_spaces(site).len().saturating_sub(1);
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "Remove space",
            Nav::Connections,
            html! {
                h1 { "Remove " (name) " from search?" }
                p { "Its " (item_count(site, Some(key))) " items leave search at once. "
                    @if others > 0 { "The other " (others) " spaces of " (site_name(&site.connection)) " stay." }
                    @else { "It is the connection's only space; the connection stays, with nothing chosen." } }
                form method="post" {
                    (csrf(session))
                    button.danger type="submit" { "Remove space" } " " a href="/admin" { "Cancel" }
                }
            },
        ),
    )
}

/// What the Manage page of a space shows.
pub struct Manage {
    pub key: String,
    pub space: Option<store::ConsoleSpace>,
    pub visibility: Option<store::Visibility>,
    pub segments: Vec<store::Segment>,
    pub site: ConsoleSite,
}

fn describe(segment: &store::Segment) -> String {
    let mut parts = vec![match segment.user_type.as_str() {
        "staff" => "Agents and admins".to_string(),
        _ => "Signed-in users".to_string(),
    }];
    if !segment.tags.is_empty() {
        parts.push(format!("with all tags {}", segment.tags.join(", ")));
    }
    if !segment.or_tags.is_empty() {
        parts.push(format!("with any tag of {}", segment.or_tags.join(", ")));
    }
    if !segment.organization_ids.is_empty() {
        parts.push(format!(
            "in organisation {}",
            segment.organization_ids.join(" or ")
        ));
    }
    if !segment.group_ids.is_empty() {
        parts.push(format!("in group {}", segment.group_ids.join(" or ")));
    }
    parts.join(" ")
}

pub fn manage(
    session: &Session,
    data: &Manage,
    problem: Option<&str>,
    done: Option<&str>,
) -> Response {
    let connection = &data.site.connection;
    let ds = connection.data_source_id;
    let here = format!("/admin/connections/{ds}/spaces/{}", data.key);
    let name = data
        .space
        .as_ref()
        .map(|s| s.name.clone())
        .unwrap_or_else(|| data.key.clone());
    let (everyone, chosen): (bool, Vec<String>) = match &data.visibility {
        Some(store::Visibility::Segments { segment_ids }) => (false, segment_ids.clone()),
        _ => (true, Vec::new()),
    };
    let link = super::web_link(connection, Some(&format!("/spaces/{}", data.key)));
    page(
        status_for(problem),
        layout(
            Some(session),
            &name,
            Nav::Connections,
            html! {
                p { a href="/admin" { "Connections" } " › " (site_name(connection)) }
                h1 { (name) }
                (notice("error", problem))
                (notice("ok", done))
                dl.details {
                    dt { "Created" } dd { (when(Some(&connection.created_at))) }
                    dt { "Connected by" } dd { (data.site.connected_by.as_deref().unwrap_or("the API")) }
                    dt { "Items" } dd { (data.space.as_ref().map(|s| s.items).unwrap_or(0)) }
                    dt { "Status" } dd { (status_badge(&space_status(connection, data.space.is_some()))) }
                    dt { "Last synced" } dd { (when(connection.last_synced_at.as_deref())) }
                    dt { "Connection" } dd {
                        @if let Some(link) = &link { a href=(link) rel="noreferrer" { (data.key) " on " (site_name(connection)) } }
                        @else { (data.key) }
                    }
                }
                h2 #permissions { "Viewing permissions" }
                form.stack method="post" action=(here) {
                    (csrf(session))
                    fieldset {
                        legend { "Who can see this space's content in search" }
                        label.check { input type="radio" name="visibility" value="everyone" checked[everyone]; "Visible to everyone" }
                        label.check { input type="radio" name="visibility" value="segments" checked[!everyone]; "Only visible to selected user segments (up to 10)" }
                    }
                    fieldset {
                        legend { "User segments" }
                        @for segment in &data.segments {
                            label.check {
                                input type="checkbox" name="segment" value=(segment.id) checked[chosen.contains(&segment.id)];
                                (segment.name) span.hint { " — " (describe(segment)) }
                            }
                        }
                    }
                    div { button.primary type="submit" { "Save" } }
                }
                details {
                    summary { "Create a user segment" }
                    form.stack method="post" action="/admin/segments" {
                        (csrf(session))
                        input type="hidden" name="back" value=(here);
                        label { "Name" input type="text" name="name" required maxlength="100"; }
                        label { "User type"
                            select name="user_type" {
                                option value="signed_in" { "Signed-in users" }
                                option value="staff" { "Agents and admins" }
                            }
                        }
                        label { "Tags" span.hint { "Users with all of these tags (comma-separated)." } input type="text" name="tags"; }
                        label { "Any of these tags" span.hint { "Users with at least one of them." } input type="text" name="or_tags"; }
                        label { "Organisations" span.hint { "Users in one of these organisations (ids)." } input type="text" name="organizations"; }
                        label { "Groups" span.hint { "Users in one of these groups (ids)." } input type="text" name="groups"; }
                        div { button type="submit" { "Create segment" } }
                    }
                }
            },
        ),
    )
}

pub fn preview(
    session: &Session,
    query: &str,
    audience: &str,
    custom: &[&store::Segment],
    searched: bool,
    hits: &[index::Hit],
    problem: Option<&str>,
) -> Response {
    let audience = if audience.is_empty() {
        "anonymous"
    } else {
        audience
    };
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "Preview as",
            Nav::Preview,
            html! {
                h1 { "Preview as" }
                p.hint { "Search your connections' content as an audience sees it, before telling anyone." }
                form.stack method="get" action="/admin/preview" role="search" {
                    label { "Audience"
                        select name="audience" {
                            option value="anonymous" selected[audience == "anonymous"] { "Anonymous users" }
                            option value="signed_in" selected[audience == "signed_in"] { "Signed-in users" }
                            option value="agent" selected[audience == "agent"] { "Agents and admins" }
                            @for segment in custom {
                                @let value = format!("segment:{}", segment.id);
                                option value=(value) selected[audience == value] { "Segment: " (segment.name) }
                            }
                        }
                    }
                    label { "Search" input type="search" name="q" value=(query) required; }
                    div { button.primary type="submit" { "Search" } }
                }
                (notice("error", problem))
                @if searched && problem.is_none() {
                    h2 { (hits.len()) " results" }
                    @if hits.is_empty() { p.muted { "This audience finds nothing for this search." } }
                    ol.results {
                        @for hit in hits {
                            li {
                                @if let Some(url) = &hit.url { a href=(url) rel="noreferrer" { strong { (hit.title) } } }
                                @else { strong { (hit.title) } }
                                " " span.hint { (hit.space_key) " · " (hit.kind) }
                                p { (PreEscaped(&hit.snippet)) }
                            }
                        }
                    }
                }
            },
        ),
    )
}

pub fn customers(session: &Session, rows: &[(String, store::Connection)]) -> Response {
    page(
        StatusCode::OK,
        layout(
            Some(session),
            "API customers",
            Nav::Customers,
            html! {
                h1 { "API customers' connections" }
                p.hint { "Connections your application's users made through the API. You can sync them again; they change only through the API." }
                @if rows.is_empty() { p.muted { "No API customer has connected a site." } }
                @else {
                    table {
                        thead { tr {
                            th scope="col" { "Customer" } th scope="col" { "Data source" } th scope="col" { "Site" }
                            th scope="col" { "Status" } th scope="col" { "Last synced" } th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody {
                            @for (customer, connection) in rows {
                                tr {
                                    td { (customer) }
                                    td { (connection.data_source_id) }
                                    td { (site_name(connection)) }
                                    td { (status_badge(&connection_status(connection, 1))) }
                                    td { (when(connection.last_synced_at.as_deref())) }
                                    td {
                                        @if !connection.revoked {
                                            form method="post" action={ "/admin/customers/" (connection.data_source_id) "/sync" } {
                                                (csrf(session))
                                                button type="submit" aria-label={ "Sync again data source " (connection.data_source_id) } { "Sync again" }
                                            }
                                        } @else { span.muted { "Revoked" } }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}
