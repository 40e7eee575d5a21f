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
    #[serde(default)]
    pub metadata: Option<V1Metadata>,
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
    pub fn labels(&self) -> Vec<String> {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .map(|l| l.results.iter().map(|l| l.name.clone()).collect())
            .unwrap_or_default()
    }
}
