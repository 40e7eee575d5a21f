//! The server's configuration: a TOML file (every key optional), with the
//! OAuth app's secret preferably from the environment.
//!
//! Where confsync may send requests is decided here and only here: the
//! Atlassian endpoints (or the operator's replacements, such as the
//! simulator's) and the sites the operator names. A caller chooses among
//! them by subdomain or site name; it can never supply a host.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The store: absent or `sqlite://` the embedded SQLite store under
    /// `data_dir`; `postgres://user:password@host/db` PostgreSQL (the
    /// secret key then comes from `CONFSYNC_SECRET_KEY`). The
    /// environment's `CONFSYNC_DATABASE_URL` overrides it.
    pub database_url: Option<String>,
    /// The URL callers reach this server at (OAuth redirects come back to
    /// `{public_url}/integrations/confluence/oauth`); `http://{addr}` when unset.
    pub public_url: Option<String>,
    /// Sync jobs running at once.
    pub workers: usize,
    /// Hours between scheduled syncs unless a customer's setting says otherwise.
    pub sync_interval_hours: u32,
    /// How often the scheduler looks for due connections, in seconds.
    pub scheduler_tick_secs: u64,
    /// Minutes between polls of each synced connection for recent changes
    /// (one CQL request when nothing changed); 0 turns polling off.
    pub poll_interval_minutes: u64,
    /// The poll interval in seconds instead, when set (finer than a
    /// minute: for tests and benchmarks).
    pub poll_interval_secs: Option<u64>,
    /// How long a node holds a claimed sync job without renewing its
    /// lease (renewed every third of it): a node that dies holds its jobs
    /// this long, then another node takes them over.
    pub job_lease_secs: u64,
    /// Request bodies larger than this are refused (413).
    pub max_body_bytes: usize,
    /// How long an OAuth consent may take, from oauth_url to the callback.
    pub oauth_state_ttl_secs: u64,
    pub oauth: OAuthConfig,
    pub atlassian: AtlassianConfig,
    /// Sites the operator allows by name: a Data Center, or a stand-in for
    /// Confluence Cloud (the simulator).
    pub sites: Vec<SiteConfig>,
    pub webhooks: WebhookConfig,
    pub embeddings: Option<EmbeddingsConfig>,
    pub limits: LimitsConfig,
    pub cors: CorsConfig,
    pub console: ConsoleConfig,
}

/// The admin console's sessions and sign-in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// How long a session lasts from sign-in.
    pub session_hours: u64,
    /// Sign-in attempts per email per minute (the rest get 429).
    pub signin_attempts_per_minute: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_hours: 12,
            signin_attempts_per_minute: 5,
        }
    }
}

/// Which web pages may call the API from a browser (a file picker on the
/// developer's site, holding a customer token). None by default; `"*"`
/// allows any page. Credentials (cookies) are never allowed: the API
/// authenticates by header.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins as browsers send them: `https://app.example.com`, with a
    /// port where it is not the default; or `"*"`.
    pub allowed_origins: Vec<String>,
}

/// What one client, or one organisation, may cost the server: slow
/// clients are cut off, connections are capped, every request has a time
/// limit, and each organisation has a request rate (429 with Retry-After
/// past it), so that no tenant can slow the others.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// A client must send a request's headers within this time (an idle
    /// kept-alive connection is closed after it too).
    pub header_read_timeout_secs: u64,
    /// ... and its body within this time.
    pub body_read_timeout_secs: u64,
    /// A request is answered (503 `request_timeout`) within this time.
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Requests per second each organisation may make (its API key and
    /// its customers' tokens together), and the burst allowed above it.
    pub organisation_requests_per_second: u32,
    pub organisation_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            request_timeout_secs: 60,
            max_connections: 1024,
            organisation_requests_per_second: 100,
            organisation_burst: 200,
        }
    }
}

/// The default OAuth app (an organisation may bring its own through
/// /white_label).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    pub client_id: Option<String>,
    /// Prefer `CONFSYNC_OAUTH_CLIENT_SECRET`.
    pub client_secret: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AtlassianConfig {
    pub authorize_url: String,
    pub token_url: String,
    /// The API gateway (`{api_url}/ex/confluence/{cloudId}`) and home of
    /// `oauth/token/accessible-resources`.
    pub api_url: String,
    /// Cloud sites are `https://{subdomain}.{cloud_domain}`.
    pub cloud_domain: String,
    /// Scopes asked for at consent.
    pub scopes: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// What callers give as `subdomain` to choose this site.
    pub name: String,
    /// Its base URL (without the context path).
    pub base_url: String,
    #[serde(default = "default_context")]
    pub context_path: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Deliver to loopback and private addresses (tests, internal hooks);
    /// refused by default, so that a webhook cannot reach the operator's
    /// own network.
    pub allow_private_targets: bool,
    /// First retry after this many milliseconds, doubling after.
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    pub timeout_secs: u64,
    /// At most this many webhooks per organisation (Carbon allows 3).
    pub max_per_organisation: usize,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    pub url: String,
    #[serde(default = "default_model")]
    pub model: String,
}

fn default_context() -> String {
    "/wiki".into()
}

fn default_model() -> String {
    "text-embedding-3-small".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("confsync-data"),
            database_url: None,
            public_url: None,
            workers: 2,
            sync_interval_hours: 24,
            scheduler_tick_secs: 30,
            poll_interval_minutes: 5,
            poll_interval_secs: None,
            job_lease_secs: 30,
            max_body_bytes: 1 << 20,
            oauth_state_ttl_secs: 15 * 60,
            oauth: OAuthConfig::default(),
            atlassian: AtlassianConfig::default(),
            sites: Vec::new(),
            webhooks: WebhookConfig::default(),
            embeddings: None,
            limits: LimitsConfig::default(),
            cors: CorsConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

impl Default for AtlassianConfig {
    fn default() -> Self {
        AtlassianConfig {
            authorize_url: "https://auth.atlassian.com/authorize".into(),
            token_url: "https://auth.atlassian.com/oauth/token".into(),
            api_url: "https://api.atlassian.com".into(),
            cloud_domain: "atlassian.net".into(),
            scopes: [
                "read:confluence-space.summary",
                "read:confluence-content.all",
                "read:confluence-content.summary",
                "read:confluence-content.permission",
                "read:confluence-user",
                "read:confluence-groups",
                "search:confluence",
                "offline_access",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private_targets: false,
            retry_base_ms: 1000,
            max_attempts: 6,
            timeout_secs: 10,
            max_per_organisation: 3,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(store::redact_url),
            )
            .field("public_url", &self.public_url)
            .field("workers", &self.workers)
            .field("oauth_client_id", &self.oauth.client_id)
            .field(
                "sites",
                &self.sites.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads a TOML file; the OAuth secret may come from the environment.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                toml::from_str::<Config>(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Config::default(),
        };
        if let Ok(secret) = std::env::var("CONFSYNC_OAUTH_CLIENT_SECRET") {
            config.oauth.client_secret = Some(secret);
        }
        if let Ok(url) = std::env::var("CONFSYNC_DATABASE_URL") {
            config.database_url = Some(url);
        }
        config.validate()?;
        Ok(config)
    }

    /// How often each connection is polled for changes; `None`: never.
    pub fn poll_interval(&self) -> Option<std::time::Duration> {
        let secs = self
            .poll_interval_secs
            .unwrap_or(self.poll_interval_minutes.saturating_mul(60));
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    /// Settings that are allowed but probably not what was meant, said at
    /// start so that they are not found out at a user's first connect.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        match (set(&self.oauth.client_id), set(&self.oauth.client_secret)) {
            (true, false) => out.push(
                "[oauth] client_id is set without a client secret (client_secret, or \
                 CONFSYNC_OAUTH_CLIENT_SECRET): connecting with OAuth will fail at the token exchange"
                    .into(),
            ),
            (false, true) => out.push(
                "an OAuth client secret is set without [oauth] client_id: OAuth connects are off".into(),
            ),
            _ => {}
        }
        out
    }

    pub fn validate(&self) -> Result<(), String> {
        for url in [
            &self.atlassian.authorize_url,
            &self.atlassian.token_url,
            &self.atlassian.api_url,
        ] {
            check_http_url(url)?;
        }
        for site in &self.sites {
            check_http_url(&site.base_url)?;
            if site.name.is_empty() || site.name.len() > 63 {
                return Err(format!(
                    "site name {:?} must be 1 to 63 characters",
                    site.name
                ));
            }
        }
        if let Some(public) = &self.public_url {
            check_http_url(public)?;
        }
        if !(1..=24 * 30).contains(&self.sync_interval_hours) {
            return Err("sync_interval_hours must be between 1 and 720".into());
        }
        if self.poll_interval_minutes > 24 * 60 {
            return Err("poll_interval_minutes must be between 0 (off) and 1440".into());
        }
        if self.poll_interval_secs == Some(0) {
            return Err("poll_interval_secs must be at least 1 (poll_interval_minutes = 0 turns polling off)".into());
        }
        if self.workers == 0 {
            return Err("workers must be at least 1".into());
        }
        for origin in &self.cors.allowed_origins {
            if origin != "*" {
                let parsed = url::Url::parse(origin)
                    .map_err(|_| format!("cors: {origin:?} is not an origin"))?;
                let canonical = parsed.origin().ascii_serialization();
                if !matches!(parsed.scheme(), "http" | "https") || canonical != *origin {
                    return Err(format!(
                        "cors: {origin:?} is not an origin (scheme://host[:port], no path): {canonical:?}?"
                    ));
                }
            }
        }
        let l = &self.limits;
        if l.header_read_timeout_secs == 0
            || l.body_read_timeout_secs == 0
            || l.request_timeout_secs == 0
        {
            return Err("limits: timeouts must be at least 1 second".into());
        }
        if l.max_connections == 0 {
            return Err("limits.max_connections must be at least 1".into());
        }
        if l.organisation_requests_per_second == 0 || l.organisation_burst == 0 {
            return Err("limits: the organisation rate and burst must be at least 1".into());
        }
        Ok(())
    }

    /// Points Atlassian's endpoints (consent, tokens, gateway,
    /// accessible-resources) and a site called `name` at one stand-in for
    /// Atlassian: the simulator, in the demo and the tests.
    pub fn stand_in(&mut self, name: &str, base_url: &str, client_id: &str, client_secret: &str) {
        let base = base_url.trim_end_matches('/');
        self.sites.retain(|s| s.name != name);
        self.sites.push(SiteConfig {
            name: name.into(),
            base_url: base.into(),
            context_path: "/wiki".into(),
        });
        self.atlassian.authorize_url = format!("{base}/authorize");
        self.atlassian.token_url = format!("{base}/oauth/token");
        self.atlassian.api_url = base.into();
        self.oauth.client_id = Some(client_id.into());
        self.oauth.client_secret = Some(client_secret.into());
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn callback_url(&self) -> String {
        format!("{}/integrations/confluence/oauth", self.public_url())
    }

    pub fn accessible_resources_url(&self) -> String {
        format!(
            "{}/oauth/token/accessible-resources",
            self.atlassian.api_url.trim_end_matches('/')
        )
    }
}

fn check_http_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} must be an http(s) URL with a host"));
    }
    Ok(())
}

/// Where a subdomain (or site name) leads: a site the operator named, or
/// a Cloud site under the Cloud domain. Anything else is refused.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedSite {
    pub base_url: String,
    pub context_path: String,
    /// A site the operator configured (Data Center, simulator).
    pub configured: bool,
}

impl Config {
    pub fn resolve_site(&self, subdomain: &str) -> Result<ResolvedSite, String> {
        if let Some(site) = self.sites.iter().find(|s| s.name == subdomain) {
            return Ok(ResolvedSite {
                base_url: site.base_url.trim_end_matches('/').to_string(),
                context_path: site.context_path.trim_end_matches('/').to_string(),
                configured: true,
            });
        }
        let label = subdomain.to_ascii_lowercase();
        let valid = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(
                "must be the site's subdomain (acme for https://acme.atlassian.net): letters, digits and hyphens"
                    .into(),
            );
        }
        Ok(ResolvedSite {
            base_url: format!("https://{label}.{}", self.atlassian.cloud_domain),
            context_path: "/wiki".into(),
            configured: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_cannot_point_elsewhere() {
        let config = Config {
            sites: vec![SiteConfig {
                name: "sim".into(),
                base_url: "http://127.0.0.1:9999/".into(),
                context_path: "/wiki".into(),
            }],
            ..Config::default()
        };
        assert_eq!(
            config.resolve_site("acme").unwrap().base_url,
            "https://acme.atlassian.net"
        );
        assert_eq!(
            config.resolve_site("ACME").unwrap().base_url,
            "https://acme.atlassian.net"
        );
        assert_eq!(
            config.resolve_site("sim").unwrap().base_url,
            "http://127.0.0.1:9999"
        );
        for evil in [
            "evil.com",
            "acme.atlassian.net.evil.com",
            "evil.com/",
            "127.0.0.1",
            "acme@evil.com",
            "acme:80",
            "acme/../x",
            "",
            "-acme",
            "a b",
            "acme#",
            "ac\u{0}me",
            "xn--80ak6aa92e.com",
            &"a".repeat(64),
        ] {
            let resolved = config.resolve_site(evil);
            if let Ok(site) = &resolved {
                // Only a plain label under the Cloud domain gets through.
                assert!(
                    site.base_url.ends_with(".atlassian.net")
                        && !site.base_url[8..].contains(['/', '@', ':']),
                    "{evil:?} resolved to {}",
                    site.base_url
                );
                assert_eq!(site.base_url.matches('.').count(), 2, "{evil:?}");
            }
        }
        assert!(config.resolve_site("evil.com").is_err());
        assert!(config.resolve_site("acme@evil.com").is_err());
    }
}
