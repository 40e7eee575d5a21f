//! A typed client for the Confluence REST operations that syncing needs.
//!
//! It authenticates (API token, personal access token, OAuth with refresh),
//! pages through listings (as `Listing`s with absolute next URLs that a
//! caller can checkpoint, or as streams), retries what a retry can cure
//! (429, 5xx, timeouts, broken connections, truncated bodies) with backoff
//! and jitter, honours Retry-After up to a cap, and slows down when
//! Confluence says it is near its limit.
//!
//! It knows nothing of storage or of HTTP serving.

#![forbid(unsafe_code)]

mod auth;
mod error;
pub mod model;
mod retry;

pub use auth::{Credentials, OAuthApp, OAuthTokens, TokenStore};
pub use error::{Error, Result};
pub use retry::RetryPolicy;

use futures::Stream;
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use model::Listing;

/// Where a site's API lives.
#[derive(Clone, Debug)]
pub struct SiteUrl {
    /// Everything before the context path: `https://acme.atlassian.net`,
    /// `https://api.atlassian.com/ex/confluence/{cloudId}`, or a simulator's
    /// or Data Center's base URL.
    pub base: String,
    /// `/wiki` on Cloud; often empty on Data Center.
    pub context: String,
}

impl SiteUrl {
    pub fn cloud(base: &str) -> SiteUrl {
        SiteUrl {
            base: base.trim_end_matches('/').to_string(),
            context: "/wiki".into(),
        }
    }

    /// The gateway form that OAuth tokens require.
    pub fn gateway(gateway_base: &str, cloud_id: &str) -> SiteUrl {
        SiteUrl {
            base: format!(
                "{}/ex/confluence/{cloud_id}",
                gateway_base.trim_end_matches('/')
            ),
            context: "/wiki".into(),
        }
    }

    fn root(&self) -> String {
        format!("{}{}", self.base, self.context)
    }
}

/// Scheme, host and port (the default port made explicit).
type Origin = (String, String, u16);

fn origin_of(url: &str) -> Option<Origin> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The site's scheme, host and port: the only origin that requests
    /// (with their credentials) are sent to.
    origin: Origin,
    site: SiteUrl,
    credentials: Credentials,
    policy: RetryPolicy,
    governor: retry::Governor,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("site", &self.inner.site)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

const RESTRICTIONS: &str =
    "restrictions.read.restrictions.user,restrictions.read.restrictions.group";

impl Client {
    pub fn new(site: SiteUrl, credentials: Credentials, policy: RetryPolicy) -> Result<Client> {
        let origin = origin_of(&site.base)
            .ok_or_else(|| Error::Config(format!("not an http(s) URL: {}", site.base)))?;
        let allowed = origin.clone();
        // Redirects are followed on the site's own origin only; any other
        // stops at the 3xx, which `once` turns into `ForeignOrigin`.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if origin_of(attempt.url().as_str()).as_ref() == Some(&allowed) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .redirect(redirects)
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("confsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                origin,
                site,
                credentials,
                governor: retry::Governor::default(),
                policy,
                requests: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        })
    }

    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Whether a URL is on the site's own origin, where the site's
    /// credentials may be sent.
    pub fn on_site(&self, url: &str) -> bool {
        origin_of(url).as_ref() == Some(&self.inner.origin)
    }

    pub fn site(&self) -> &SiteUrl {
        &self.inner.site
    }

    /// Resolves a link from a response: v2 next links are site-relative
    /// (`/wiki/api/v2/...`), v1 next links and download links are relative
    /// to the context path (`/rest/api/...`, `/download/...`).
    pub fn resolve(&self, link: &str) -> String {
        if link.starts_with("http://") || link.starts_with("https://") {
            return link.to_string();
        }
        let site = &self.inner.site;
        if !site.context.is_empty() && link.starts_with(&format!("{}/", site.context)) {
            format!("{}{}", site.base, link)
        } else {
            format!("{}{}", site.root(), link)
        }
    }

    pub fn v2(&self, path_and_query: &str) -> String {
        format!("{}/api/v2{}", self.inner.site.root(), path_and_query)
    }

    pub fn v1(&self, path_and_query: &str) -> String {
        format!("{}/rest/api{}", self.inner.site.root(), path_and_query)
    }

    /// GETs a JSON document, retrying what can be retried (a truncated
    /// body included).
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let bytes = retry::run(self, url, true).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    /// GETs bytes (a file), retrying what can be retried.
    pub async fn get_bytes(&self, url: &str) -> Result<bytes::Bytes> {
        retry::run(self, url, false).await
    }

    /// One page of a listing and the absolute URL of the next, if any.
    pub async fn listing<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(Vec<T>, Option<String>)> {
        let bytes = retry::run(self, url, true).await?;
        let listing: Listing<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: url.to_string(),
            message: e.to_string(),
        })?;
        let next = listing
            .links
            .and_then(|l| l.next)
            .filter(|n| !n.is_empty())
            .map(|n| self.resolve(&n));
        // A next link with nothing on this page and the same URL would loop
        // forever (Data Center does send such links): stop there.
        let next = next.filter(|n| !(listing.results.is_empty() && n == url));
        Ok((listing.results, next))
    }

    /// Every item of a listing, page after page.
    pub fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        first_url: String,
    ) -> impl Stream<Item = Result<T>> + Send + 'static {
        let client = self.clone();
        let pages = futures::stream::try_unfold(Some(first_url), move |url| {
            let client = client.clone();
            async move {
                let Some(url) = url else {
                    return Ok(None);
                };
                let (items, next) = client.listing::<T>(&url).await?;
                Ok(Some((
                    futures::stream::iter(items.into_iter().map(Ok)),
                    next,
                )))
            }
        });
        futures::TryStreamExt::try_flatten(pages)
    }

    /// Who the credentials are, in one request and without retries: a
    /// check to make before anything else, so that a wrong address,
    /// context path or credential is said at once and plainly
    /// (`Unreachable`, `NotFound` naming the URL, `Unauthorized`).
    pub async fn current_user(&self) -> Result<model::CurrentUser> {
        let url = self.v1("/user/current");
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let bytes = match retry::once(self, &url, true).await {
            // An OAuth token we believed valid: refresh once.
            Err(Error::Unauthorized(_))
                if self.inner.credentials.refresh_now(&self.inner.http).await? =>
            {
                self.inner.requests.fetch_add(1, Ordering::Relaxed);
                retry::once(self, &url, true).await?
            }
            other => other?,
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url,
            message: e.to_string(),
        })
    }

    /// Display names of accounts (Cloud's `user/bulk`, up to 100 ids a
    /// request); ids Confluence does not know are left out.
    pub async fn users(&self, account_ids: &[String]) -> Result<Vec<model::CurrentUser>> {
        let mut out = Vec::new();
        for batch in account_ids.chunks(100) {
            let query: String = batch
                .iter()
                .map(|id| format!("accountId={}", encode(id)))
                .collect::<Vec<_>>()
                .join("&");
            let url = self.v1(&format!("/user/bulk?{query}"));
            let page: model::V1Results<model::CurrentUser> = self.get_json(&url).await?;
            out.extend(page.results);
        }
        Ok(out)
    }

    // Operation URLs.

    pub fn spaces_url(&self, keys: &[String]) -> String {
        let mut url = self.v2("/spaces?limit=250");
        if !keys.is_empty() {
            url.push_str("&keys=");
            url.push_str(&encode(&keys.join(",")));
        }
        url
    }

    pub fn space_pages_url(&self, space_id: &str, with_body: bool) -> String {
        let body = body_format(with_body);
        self.v2(&format!("/spaces/{space_id}/pages?limit=250{body}"))
    }

    pub fn space_blogposts_url(&self, space_id: &str, with_body: bool) -> String {
        let body = body_format(with_body);
        self.v2(&format!("/spaces/{space_id}/blogposts?limit=250{body}"))
    }

    /// Pages (or blog posts) of several spaces in one listing (the v2
    /// documents allow at most 100 space ids a request): one space's
    /// partial last page of 250 is not paid again for every space.
    pub fn content_in_spaces_url(
        &self,
        blog_posts: bool,
        space_ids: &[&str],
        with_body: bool,
    ) -> String {
        let kind = if blog_posts { "blogposts" } else { "pages" };
        let body = body_format(with_body);
        self.v2(&format!(
            "/{kind}?limit=250{body}&space-id={}",
            encode(&space_ids.join(","))
        ))
    }

    /// Pages (or blog posts) by id, with their bodies or not: at most 250
    /// ids a request.
    pub fn content_by_ids_url(&self, blog_posts: bool, ids: &[String], with_body: bool) -> String {
        let kind = if blog_posts { "blogposts" } else { "pages" };
        let body = body_format(with_body);
        self.v2(&format!(
            "/{kind}?limit=250{body}&id={}",
            encode(&ids.join(","))
        ))
    }

    pub fn attachments_url(&self) -> String {
        self.v2("/attachments?limit=250")
    }

    pub fn footer_comments_url(&self) -> String {
        self.v2("/footer-comments?limit=250&body-format=storage")
    }

    /// CQL over content with labels and read restrictions expanded.
    pub fn cql_labels_url(&self, cql: &str) -> String {
        self.v1(&format!(
            "/content/search?limit=250&expand=metadata.labels,{RESTRICTIONS}&cql={}",
            encode(cql)
        ))
    }

    /// CQL over content with versions expanded: what a poll compares.
    pub fn cql_versions_url(&self, cql: &str) -> String {
        self.v1(&format!(
            "/content/search?limit=250&expand=version&cql={}",
            encode(cql)
        ))
    }

    /// CQL over content with only read restrictions expanded.
    pub fn cql_restrictions_url(&self, cql: &str) -> String {
        self.v1(&format!(
            "/content/search?limit=250&expand={RESTRICTIONS}&cql={}",
            encode(cql)
        ))
    }

    pub fn space_permissions_url(&self, space_id: &str) -> String {
        self.v2(&format!("/spaces/{space_id}/permissions?limit=250"))
    }
}

/// The query parameter that asks a v2 listing for storage-format bodies.
fn body_format(with_body: bool) -> &'static str {
    if with_body {
        "&body-format=storage"
    } else {
        ""
    }
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
