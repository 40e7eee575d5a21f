//! A Confluence Cloud simulator: an HTTP server that answers the v2 and v1
//! REST operations a connector uses, exactly as Atlassian's published API
//! documents describe them (paths, parameters, JSON, cursors, Link headers,
//! errors, rate-limit headers), with Atlassian's OAuth 2.0 (3LO) server
//! beside it.
//!
//! It generates sites of any size from a seed (`generate`), changes them
//! between syncs (`mutate`), injects faults (`faults`), counts requests and
//! publishes the ground truth (`GET /_sim/truth`) so that tests can say
//! exactly what a sync cost and whether it got everything right.
//!
//! It knows nothing of confsync's own code: it stands in for Confluence,
//! and only for Confluence.

#![forbid(unsafe_code)]

pub mod body;
pub mod cql;
pub mod faults;
pub mod files;
pub mod generate;
mod http;
pub mod model;
pub mod mutate;
pub mod oauth;
pub mod text;
pub mod webhooks;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use faults::{FaultConfig, FaultKind, RateLimitConfig};
pub use generate::SiteConfig;
pub use model::Site;
pub use mutate::{Change, MutateError};

/// Everything the simulator can be told at start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub site: SiteConfig,
    pub access_token_ttl: Duration,
    pub refresh_grace: Duration,
    pub faults: FaultConfig,
    pub rate_limit: Option<RateLimitConfig>,
    /// Answer an expired OAuth access token as Cloud does in the field:
    /// 404 on v2 and 403 on v1, rather than 401.
    pub expired_token_quirk: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            site: SiteConfig::default(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(600),
            faults: FaultConfig::default(),
            rate_limit: None,
            expired_token_quirk: true,
        }
    }
}

/// Requests counted per operation (`GET /wiki/api/v2/pages`), with the
/// faults injected and the requests refused by the rate limit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub operations: BTreeMap<String, u64>,
    pub faults_injected: u64,
    pub rate_limited: u64,
    pub refresh_token_reuses: u64,
}

/// One page or blog post of the ground truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct TruthEntry {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub space_key: String,
    pub title: String,
    pub version: u32,
    pub parent_id: Option<String>,
    pub body_sha256: String,
}

/// The first line `confsync sim` prints, and what `GET /_sim/info` answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub base_url: String,
    pub cloud_id: String,
    pub email: String,
    pub api_token: String,
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub email: String,
    pub account_id: String,
    pub display_name: String,
    pub api_token: String,
    pub groups: Vec<String>,
}

pub(crate) struct Shared {
    pub site: RwLock<Site>,
    pub oauth: Mutex<oauth::OAuthServer>,
    pub faults: Mutex<faults::FaultState>,
    pub limiter: Mutex<faults::RateLimiter>,
    pub stats: Mutex<Stats>,
    pub base_url: RwLock<String>,
    pub expired_token_quirk: bool,
    /// Data Center's webhooks, as registered through the API.
    pub webhooks: Mutex<Vec<webhooks::Webhook>>,
}

/// A handle on a simulated site; cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

pub fn now_millis() -> model::Millis {
    chrono::Utc::now().timestamp_millis()
}

impl Simulator {
    /// Generates the site. Nothing is served until `serve` or `spawn`.
    pub fn new(config: SimConfig) -> Simulator {
        let site = generate::generate(&config.site);
        let oauth = oauth::OAuthServer::new(
            config.site.seed,
            config.access_token_ttl,
            config.refresh_grace,
        );
        Simulator {
            shared: Arc::new(Shared {
                site: RwLock::new(site),
                oauth: Mutex::new(oauth),
                faults: Mutex::new(faults::FaultState::new(config.faults)),
                limiter: Mutex::new(faults::RateLimiter::new(config.rate_limit)),
                stats: Mutex::new(Stats::default()),
                base_url: RwLock::new(String::new()),
                expired_token_quirk: config.expired_token_quirk,
                webhooks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Binds `addr` and serves in a background task. The returned handle
    /// knows the base URL (with the port chosen when `addr` has port 0).
    pub async fn spawn(config: SimConfig, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let simulator = Simulator::new(config);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        *simulator.shared.base_url.write() = format!("http://{local}");
        let shared = simulator.shared.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = http::serve(shared, listener).await {
                tracing::error!(%error, "simulator stopped serving");
            }
        });
        Ok(RunningSimulator {
            simulator,
            addr: local,
            task,
        })
    }

    pub fn base_url(&self) -> String {
        self.shared.base_url.read().clone()
    }

    pub fn credentials(&self) -> Credentials {
        let (oauth_client_id, oauth_client_secret) = {
            let oauth = self.shared.oauth.lock();
            (oauth.client_id.clone(), oauth.client_secret.clone())
        };
        let site = self.shared.site.read();
        let admin = &site.users[generate::ADMIN as usize];
        Credentials {
            base_url: self.base_url(),
            cloud_id: site.cloud_id.clone(),
            email: admin.email.clone(),
            api_token: admin.api_token.clone(),
            oauth_client_id,
            oauth_client_secret,
        }
    }

    pub fn accounts(&self) -> Vec<Account> {
        let site = self.shared.site.read();
        site.users
            .iter()
            .map(|user| Account {
                email: user.email.clone(),
                account_id: user.account_id.clone(),
                display_name: user.display_name.clone(),
                api_token: user.api_token.clone(),
                groups: user
                    .groups
                    .iter()
                    .map(|g| site.groups[*g as usize].name.clone())
                    .collect(),
            })
            .collect()
    }

    /// Reads the site under its lock.
    pub fn with_site<T>(&self, read: impl FnOnce(&Site) -> T) -> T {
        read(&self.shared.site.read())
    }

    pub fn apply(&self, change: Change) -> Result<Change, MutateError> {
        let now = now_millis();
        let (applied, events) = {
            let mut site = self.shared.site.write();
            let applied = site.apply(change, now)?;
            let events = webhooks::events_of(&site, &applied, now);
            (applied, events)
        };
        webhooks::send(self.shared.webhooks.lock().clone(), events);
        Ok(applied)
    }

    pub fn random_changes(&self, seed: u64, count: usize) -> Vec<Change> {
        let now = now_millis();
        let (applied, events) = {
            let mut site = self.shared.site.write();
            let applied = site.random_changes(seed, count, now);
            let events: Vec<_> = applied
                .iter()
                .flat_map(|change| webhooks::events_of(&site, change, now))
                .collect();
            (applied, events)
        };
        webhooks::send(self.shared.webhooks.lock().clone(), events);
        applied
    }

    /// Registers a webhook, as an administrator does in Data Center.
    pub fn add_webhook(&self, new: webhooks::NewWebhook) -> webhooks::Webhook {
        let mut hooks = self.shared.webhooks.lock();
        let hook = webhooks::Webhook {
            id: hooks.len() as u64 + 1,
            name: new.name,
            url: new.url,
            events: new.events,
            secret: new.configuration.and_then(|c| c.secret),
            active: new.active,
        };
        hooks.push(hook.clone());
        hook
    }

    pub fn set_faults(&self, config: FaultConfig) {
        *self.shared.faults.lock() = faults::FaultState::new(config);
    }

    pub fn set_rate_limit(&self, config: Option<RateLimitConfig>) {
        self.shared.limiter.lock().set(config);
    }

    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.shared.oauth.lock().access_token_ttl = ttl;
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.stats.lock().clone();
        stats.faults_injected = self.shared.faults.lock().injected;
        stats.rate_limited = self.shared.limiter.lock().limited;
        stats.refresh_token_reuses = self.shared.oauth.lock().refresh_reuses;
        stats
    }

    pub fn reset_stats(&self) {
        *self.shared.stats.lock() = Stats::default();
    }

    /// Every current page and blog post that the account may read.
    pub fn truth(&self, email: &str) -> Option<Vec<TruthEntry>> {
        let site = self.shared.site.read();
        let user = site.user_by_email(email)?;
        Some(truth_of(&site, user))
    }

    /// Every current page and blog post that a principal may read: an
    /// account id (or none) with any groups (by id), whether or not an
    /// account holds exactly those groups. Unknown ids hold nothing.
    pub fn truth_for(&self, account_id: Option<&str>, group_ids: &[String]) -> Vec<TruthEntry> {
        let site = self.shared.site.read();
        let reader = model::Reader {
            user: account_id.and_then(|a| site.user_by_account_id(a)),
            groups: site
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| group_ids.contains(&g.id))
                .map(|(i, _)| i as u16)
                .collect(),
        };
        truth_where(&site, |c| site.readable_by(&reader, c))
    }

    /// The site's groups as (id, name).
    pub fn groups(&self) -> Vec<(String, String)> {
        let site = self.shared.site.read();
        site.groups
            .iter()
            .map(|g| (g.id.clone(), g.name.clone()))
            .collect()
    }
}

pub(crate) fn truth_of(site: &Site, user: u16) -> Vec<TruthEntry> {
    truth_where(site, |c| site.can_read(user, c))
}

fn truth_where(site: &Site, readable: impl Fn(&model::Content) -> bool) -> Vec<TruthEntry> {
    site.content
        .values()
        .filter(|c| c.status == model::Status::Current && readable(c))
        .map(|c| TruthEntry {
            id: c.id.to_string(),
            kind: c.kind.v1_type().to_string(),
            space_key: site
                .spaces
                .get(&c.space_id)
                .map(|s| s.key.clone())
                .unwrap_or_default(),
            title: c.title.clone(),
            version: c.version,
            parent_id: c.parent_id.map(|p| p.to_string()),
            body_sha256: hex::encode(Sha256::digest(site.storage_of(c).as_bytes())),
        })
        .collect()
}

impl Site {
    /// The storage-format body of a page or blog post at its current version.
    pub fn storage_of(&self, content: &model::Content) -> String {
        if let Some(body) = &content.custom_body {
            return body.to_string();
        }
        let space = self.spaces.get(&content.space_id);
        let attachment_names: Vec<String> = generate::initial_attachments(self.seed, content.id)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        body::storage_body(&body::BodyContext {
            seed: self.seed,
            id: content.id,
            version: content.version,
            space_key: space.map(|s| s.key.as_str()).unwrap_or(""),
            sibling_ids: space.map(|s| s.generated_ids).unwrap_or((0, 0)),
            users: &self.users,
            attachment_names: &attachment_names,
        })
    }

    pub fn comment_storage(&self, comment: &model::Comment) -> String {
        if let Some(body) = &comment.custom_body {
            return body.to_string();
        }
        body::comment_body(self.seed, comment.id, comment.version, &self.users)
    }

    pub fn attachment_bytes(&self, attachment: &model::Attachment, version: u32) -> Vec<u8> {
        files::render(
            self.seed,
            attachment.id,
            version,
            attachment.media_type,
            &attachment.title,
        )
    }
}

/// A simulator serving in the background; dropping it stops the server.
pub struct RunningSimulator {
    pub simulator: Simulator,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSimulator {
    pub fn base_url(&self) -> String {
        self.simulator.base_url()
    }

    pub fn credentials(&self) -> Credentials {
        self.simulator.credentials()
    }
}

impl std::ops::Deref for RunningSimulator {
    type Target = Simulator;
    fn deref(&self) -> &Simulator {
        &self.simulator
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
