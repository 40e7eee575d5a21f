//! The parts of Confluence's JSON that syncing reads. Every field is
//! optional in Atlassian's documents; what a sync cannot do without is
//! required here, and the rest defaults.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub base: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Listing<T> {
    pub results: Vec<T>,
    #[serde(rename = "_links", default)]
    pub links: Option<Links>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Space {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(rename = "type", default)]
    pub space_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub homepage_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub number: u32,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub author_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BodyValue {
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub storage: Option<BodyValue>,
}

/// The storage-format value of an optional body.
fn storage_of(body: &Option<Body>) -> Option<&str> {
    body.as_ref()
        .and_then(|b| b.storage.as_ref())
        .map(|s| s.value.as_str())
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct WebLinks {
    #[serde(default)]
    pub webui: Option<String>,
}

/// A page or a blog post (v2).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub status: String,
    pub space_id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub author_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    pub version: Version,
    #[serde(default)]
    pub body: Option<Body>,
    #[serde(rename = "_links", default)]
    pub links: WebLinks,
}

impl Content {
    pub fn storage(&self) -> Option<&str> {
        storage_of(&self.body)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub media_type: String,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub page_id: Option<String>,
    #[serde(default)]
    pub blog_post_id: Option<String>,
    #[serde(default)]
    pub download_link: Option<String>,
    pub version: Version,
    #[serde(default)]
    pub webui_link: Option<String>,
}

impl Attachment {
    pub fn container_id(&self) -> Option<&str> {
        self.page_id.as_deref().or(self.blog_post_id.as_deref())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FooterComment {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub page_id: Option<String>,
    #[serde(default)]
    pub blog_post_id: Option<String>,
    pub version: Version,
    #[serde(default)]
    pub body: Option<Body>,
}

impl FooterComment {
    pub fn container_id(&self) -> Option<&str> {
        self.page_id.as_deref().or(self.blog_post_id.as_deref())
    }

    pub fn storage(&self) -> Option<&str> {
        storage_of(&self.body)
    }
}

/// v1 content as CQL search returns it, with `metadata.labels` expanded.
#[derive(Clone, Debug, Deserialize)]
pub struct V1Content {
    pub id: String,
    /// `page`, `blogpost`, `comment` or `attachment`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// With `expand=version`.
    #[serde(default)]
    pub version: Option<V1Version>,
    #[serde(default)]
    pub metadata: Option<V1Metadata>,
    #[serde(default)]
    pub restrictions: Option<V1Restrictions>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Version {
    pub number: u64,
}

/// `restrictions` as v1 expands it (`restrictions.read.restrictions.user`
/// and `...group`).
#[derive(Clone, Debug, Deserialize)]
pub struct V1Restrictions {
    #[serde(default)]
    pub read: Option<V1Restriction>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Restriction {
    pub restrictions: V1RestrictionSets,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1RestrictionSets {
    #[serde(default)]
    pub user: Option<V1Results<V1User>>,
    #[serde(default)]
    pub group: Option<V1Results<V1Group>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Results<T> {
    pub results: Vec<T>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1User {
    #[serde(rename = "accountId", default)]
    pub account_id: Option<String>,
}

/// A user as v1's `user/current` and `user/bulk` describe one: Cloud
/// names it by `accountId`, Data Center by `userKey` and `username`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CurrentUser {
    pub account_id: Option<String>,
    pub user_key: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub public_name: Option<String>,
}

impl CurrentUser {
    /// The id mentions use: the account id on Cloud, the user key on Data Center.
    pub fn id(&self) -> Option<&str> {
        [&self.account_id, &self.user_key, &self.username]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|v| !v.is_empty())
    }

    /// How a person reads the account: display name, public name or email.
    pub fn name(&self) -> Option<&str> {
        [&self.display_name, &self.public_name, &self.email]
            .into_iter()
            .flatten()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Group {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A content's own read restriction: the users and groups it admits.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ReadRestriction {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// What a listing says of a content's read restriction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestrictionState {
    /// Anyone the space admits may read it (as far as this content goes).
    Open,
    Restricted(ReadRestriction),
    /// The listing did not say, or said it incompletely (a truncated
    /// principal list): whoever relies on it must deny.
    Unknown,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Metadata {
    #[serde(default)]
    pub labels: Option<V1Labels>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Labels {
    pub results: Vec<V1Label>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct V1Label {
    pub name: String,
}

impl V1Content {
    /// The read restriction as expanded; `Unknown` when it was not
    /// expanded or a principal list was cut short by its own limit.
    pub fn read_restriction(&self) -> RestrictionState {
        let Some(read) = self.restrictions.as_ref().and_then(|r| r.read.as_ref()) else {
            return RestrictionState::Unknown;
        };
        fn complete<T>(list: &Option<V1Results<T>>) -> bool {
            list.as_ref()
                .is_none_or(|l| l.size.is_none_or(|size| size as usize <= l.results.len()))
        }
        let sets = &read.restrictions;
        if !complete(&sets.user) || !complete(&sets.group) {
            return RestrictionState::Unknown;
        }
        let mut restriction = ReadRestriction {
            users: sets
                .user
                .iter()
                .flat_map(|l| l.results.iter().filter_map(|u| u.account_id.clone()))
                .collect(),
            groups: sets
                .group
                .iter()
                .flat_map(|l| {
                    l.results
                        .iter()
                        .filter_map(|g| g.id.clone().or(g.name.clone()))
                })
                .collect(),
        };
        if restriction.users.is_empty() && restriction.groups.is_empty() {
            return RestrictionState::Open;
        }
        restriction.users.sort();
        restriction.groups.sort();
        RestrictionState::Restricted(restriction)
    }

    pub fn labels(&self) -> Vec<String> {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .map(|l| l.results.iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default()
    }
}

/// One space permission assignment (v2 `/spaces/{id}/permissions`).
#[derive(Clone, Debug, Deserialize)]
pub struct SpacePermission {
    pub principal: PermissionPrincipal,
    pub operation: PermissionOperation,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PermissionPrincipal {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PermissionOperation {
    pub key: String,
    #[serde(rename = "targetType")]
    pub target_type: String,
}
