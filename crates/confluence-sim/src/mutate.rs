//! Changes to a site between syncs, as Confluence makes them: edit (a new
//! version), rename, move, trash, restore, purge, create, restrict and
//! unrestrict, delete a space, add a comment or an attachment.
//!
//! What changes the version follows Confluence: an edit or a rename makes a
//! new version; a move, a restriction change, a new comment or a new
//! attachment does not.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::generate::{ADMIN, FIRST_CONTENT_ID};
use crate::model::*;
use crate::text::{self, rng_for};

/// One change, as the library and `POST /_sim/mutate` take and report it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Edit {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    Rename {
        id: String,
        title: String,
    },
    Move {
        id: String,
        /// None moves the page to the top level of its space.
        parent_id: Option<String>,
    },
    Trash {
        id: String,
    },
    Restore {
        id: String,
    },
    Purge {
        id: String,
    },
    Create {
        /// Set by the simulator in what it reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        space_id: String,
        #[serde(default)]
        parent_id: Option<String>,
        title: String,
        #[serde(default)]
        blog_post: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    Restrict {
        id: String,
        /// Account ids admitted; the admin is always admitted.
        #[serde(default)]
        users: Vec<String>,
        /// Group names admitted.
        #[serde(default)]
        groups: Vec<String>,
    },
    Unrestrict {
        id: String,
    },
    DeleteSpace {
        space_id: String,
    },
    AddComment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        container_id: String,
    },
    AddAttachment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        container_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MutateError {
    #[error("no content with id {0}")]
    NoContent(String),
    #[error("no space with id {0}")]
    NoSpace(String),
    #[error("invalid change: {0}")]
    Invalid(String),
}

fn parse_id(text: &str) -> Result<u64, MutateError> {
    text.trim_start_matches("att")
        .parse()
        .map_err(|_| MutateError::Invalid(format!("not an id: {text:?}")))
}

impl Site {
    pub fn insert_content(&mut self, content: Content) {
        if let Some(parent) = content.parent_id {
            self.children.entry(parent).or_default().insert(content.id);
        }
        self.space_content
            .entry(content.space_id)
            .or_default()
            .insert(content.id);
        self.content.insert(content.id, content);
    }

    pub fn insert_attachment(&mut self, attachment: Attachment) {
        self.container_attachments
            .entry(attachment.container_id)
            .or_default()
            .insert(attachment.id);
        self.attachments.insert(attachment.id, attachment);
    }

    pub fn insert_comment(&mut self, comment: Comment) {
        self.container_comments
            .entry(comment.container_id)
            .or_default()
            .insert(comment.id);
        self.comments.insert(comment.id, comment);
    }

    fn set_parent(&mut self, id: u64, parent: Option<u64>) {
        let Some(content) = self.content.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut content.parent_id, parent);
        if let Some(old) = old {
            if let Some(set) = self.children.get_mut(&old) {
                set.remove(&id);
            }
        }
        if let Some(new) = parent {
            self.children.entry(new).or_default().insert(id);
        }
    }

    fn remove_content(&mut self, id: u64) {
        let Some(content) = self.content.remove(&id) else {
            return;
        };
        if let Some(parent) = content.parent_id {
            if let Some(set) = self.children.get_mut(&parent) {
                set.remove(&id);
            }
        }
        self.children.remove(&id);
        if let Some(set) = self.space_content.get_mut(&content.space_id) {
            set.remove(&id);
        }
        for attachment in self.container_attachments.remove(&id).unwrap_or_default() {
            self.attachments.remove(&attachment);
        }
        for comment in self.container_comments.remove(&id).unwrap_or_default() {
            self.comments.remove(&comment);
        }
    }

    fn content_mut(&mut self, id: &str) -> Result<&mut Content, MutateError> {
        let key = parse_id(id)?;
        self.content
            .get_mut(&key)
            .ok_or_else(|| MutateError::NoContent(id.to_string()))
    }

    /// Applies one change at time `now` and returns it as applied (with the
    /// ids of what it created).
    pub fn apply(&mut self, change: Change, now: Millis) -> Result<Change, MutateError> {
        let at = self.next_timestamp(now);
        match change {
            Change::Edit { id, body } => {
                let content = self.content_mut(&id)?;
                content.version += 1;
                content.modified_at = at;
                content.version_author = ADMIN;
                content.custom_body = body.clone().map(String::into_boxed_str);
                Ok(Change::Edit { id, body })
            }
            Change::Rename { id, title } => {
                let content = self.content_mut(&id)?;
                content.version += 1;
                content.modified_at = at;
                content.title = title.clone();
                Ok(Change::Rename { id, title })
            }
            Change::Move { id, parent_id } => {
                let key = parse_id(&id)?;
                let content = self
                    .content
                    .get(&key)
                    .ok_or_else(|| MutateError::NoContent(id.clone()))?;
                if content.kind != ContentKind::Page {
                    return Err(MutateError::Invalid("only pages move".into()));
                }
                let new_parent = match &parent_id {
                    Some(parent) => {
                        let parent_key = parse_id(parent)?;
                        let target = self
                            .content
                            .get(&parent_key)
                            .ok_or_else(|| MutateError::NoContent(parent.clone()))?;
                        if target.space_id != content.space_id
                            || target.kind != ContentKind::Page
                            || parent_key == key
                            || self.ancestors(target).contains(&key)
                        {
                            return Err(MutateError::Invalid(
                                "a page moves under another page of its space, not its own descendant"
                                    .into(),
                            ));
                        }
                        Some(parent_key)
                    }
                    None => None,
                };
                self.set_parent(key, new_parent);
                Ok(Change::Move { id, parent_id })
            }
            Change::Trash { id } => {
                let key = parse_id(&id)?;
                let content = self.content_mut(&id)?;
                content.status = Status::Trashed;
                let parent = content.parent_id;
                // Confluence moves the children of a trashed page up a level.
                let children: Vec<u64> = self
                    .children
                    .get(&key)
                    .map(|set| set.iter().copied().collect())
                    .unwrap_or_default();
                for child in children {
                    self.set_parent(child, parent);
                }
                Ok(Change::Trash { id })
            }
            Change::Restore { id } => {
                let key = parse_id(&id)?;
                let parent = self.content_mut(&id)?.parent_id;
                let parent_alive = parent
                    .and_then(|p| self.content.get(&p))
                    .is_some_and(|p| p.status != Status::Trashed);
                if !parent_alive {
                    self.set_parent(key, None);
                }
                self.content_mut(&id)?.status = Status::Current;
                Ok(Change::Restore { id })
            }
            Change::Purge { id } => {
                let key = parse_id(&id)?;
                if self.content_mut(&id)?.status != Status::Trashed {
                    return Err(MutateError::Invalid(
                        "only trashed content is purged".into(),
                    ));
                }
                self.remove_content(key);
                Ok(Change::Purge { id })
            }
            Change::Create {
                space_id,
                parent_id,
                title,
                blog_post,
                body,
                ..
            } => {
                let space_key = parse_id(&space_id)?;
                if !self.spaces.contains_key(&space_key) {
                    return Err(MutateError::NoSpace(space_id));
                }
                let parent = match (&parent_id, blog_post) {
                    (Some(parent), false) => {
                        let parent_key = parse_id(parent)?;
                        match self.content.get(&parent_key) {
                            Some(p) if p.space_id == space_key && p.kind == ContentKind::Page => {
                                Some(parent_key)
                            }
                            _ => return Err(MutateError::NoContent(parent.clone())),
                        }
                    }
                    _ => None,
                };
                let id = self.next_content_id;
                self.next_content_id += 1;
                self.insert_content(Content {
                    id,
                    kind: if blog_post {
                        ContentKind::BlogPost
                    } else {
                        ContentKind::Page
                    },
                    space_id: space_key,
                    parent_id: parent,
                    title: title.clone(),
                    status: Status::Current,
                    version: 1,
                    created_at: at,
                    modified_at: at,
                    author: ADMIN,
                    version_author: ADMIN,
                    position: (id % 1000) as i32,
                    labels: Vec::new(),
                    read_restriction: None,
                    custom_body: body.clone().map(String::into_boxed_str),
                });
                Ok(Change::Create {
                    id: Some(id.to_string()),
                    space_id,
                    parent_id: parent.map(|p| p.to_string()),
                    title,
                    blog_post,
                    body,
                })
            }
            Change::Restrict { id, users, groups } => {
                let mut restriction = Restriction {
                    users: vec![ADMIN],
                    groups: Vec::new(),
                };
                for account in &users {
                    let user = self
                        .user_by_account_id(account)
                        .ok_or_else(|| MutateError::Invalid(format!("no user {account}")))?;
                    restriction.users.push(user);
                }
                for name in &groups {
                    let group = self
                        .groups
                        .iter()
                        .position(|g| &g.name == name)
                        .ok_or_else(|| MutateError::Invalid(format!("no group {name}")))?;
                    restriction.groups.push(group as u16);
                }
                restriction.users.sort();
                restriction.users.dedup();
                self.content_mut(&id)?.read_restriction = Some(restriction);
                Ok(Change::Restrict { id, users, groups })
            }
            Change::Unrestrict { id } => {
                self.content_mut(&id)?.read_restriction = None;
                Ok(Change::Unrestrict { id })
            }
            Change::DeleteSpace { space_id } => {
                let key = parse_id(&space_id)?;
                if self.spaces.remove(&key).is_none() {
                    return Err(MutateError::NoSpace(space_id));
                }
                for id in self.space_content.remove(&key).unwrap_or_default() {
                    self.remove_content(id);
                }
                Ok(Change::DeleteSpace { space_id })
            }
            Change::AddComment { container_id, .. } => {
                let container = parse_id(&container_id)?;
                if !self.content.contains_key(&container) {
                    return Err(MutateError::NoContent(container_id));
                }
                let id = self.next_content_id;
                self.next_content_id += 1;
                self.insert_comment(Comment {
                    id,
                    container_id: container,
                    version: 1,
                    status: Status::Current,
                    created_at: at,
                    modified_at: at,
                    author: ADMIN,
                    custom_body: None,
                });
                Ok(Change::AddComment {
                    id: Some(id.to_string()),
                    container_id,
                })
            }
            Change::AddAttachment {
                container_id,
                filename,
                ..
            } => {
                let container = parse_id(&container_id)?;
                if !self.content.contains_key(&container) {
                    return Err(MutateError::NoContent(container_id));
                }
                let id = self.next_content_id;
                self.next_content_id += 1;
                let mut rng = rng_for(self.seed, &[id, 0xadd]);
                let (media_type, extension) =
                    crate::files::MEDIA_TYPES[rng.gen_range(0..crate::files::MEDIA_TYPES.len())];
                let title = filename
                    .clone()
                    .unwrap_or_else(|| format!("{}-{id}.{extension}", text::word(&mut rng)));
                let media_type = crate::files::MEDIA_TYPES
                    .iter()
                    .find(|(_, ext)| title.ends_with(&format!(".{ext}")))
                    .map(|(media, _)| *media)
                    .unwrap_or(media_type);
                let file_size =
                    crate::files::render(self.seed, id, 1, media_type, &title).len() as u64;
                let file_id = hex::encode(rng.gen::<[u8; 16]>());
                self.insert_attachment(Attachment {
                    id,
                    container_id: container,
                    title,
                    media_type,
                    file_size,
                    file_id,
                    version: 1,
                    status: Status::Current,
                    created_at: at,
                    modified_at: at,
                    author: ADMIN,
                });
                Ok(Change::AddAttachment {
                    id: Some(format!("att{id}")),
                    container_id,
                    filename,
                })
            }
        }
    }

    /// Applies `count` random changes drawn from `seed`, cycling through
    /// every kind first so that thirteen changes cover them all.
    pub fn random_changes(&mut self, seed: u64, count: usize, now: Millis) -> Vec<Change> {
        let mut rng = rng_for(seed, &[self.next_content_id, 0x4d07]);
        let mut applied = Vec::with_capacity(count);
        // Trash comes twice in the first round: once for the purge that
        // follows it, once for the restore.
        const FIRST_ROUND: [usize; 13] = [0, 1, 2, 3, 5, 3, 4, 6, 7, 8, 9, 10, 11];
        for index in 0..count {
            let kind = match FIRST_ROUND.get(index) {
                Some(kind) => *kind,
                None => rng.gen_range(0..12),
            };
            for _attempt in 0..20 {
                let Some(change) = self.propose(&mut rng, kind) else {
                    continue;
                };
                if let Ok(done) = self.apply(change, now) {
                    applied.push(done);
                    break;
                }
            }
        }
        applied
    }

    fn random_content(
        &self,
        rng: &mut ChaCha8Rng,
        wanted: impl Fn(&Content) -> bool,
    ) -> Option<&Content> {
        if self.content.is_empty() {
            return None;
        }
        for _ in 0..64 {
            let start =
                rng.gen_range(FIRST_CONTENT_ID..self.next_content_id.max(FIRST_CONTENT_ID + 1));
            let found = self
                .content
                .range(start..)
                .next()
                .or_else(|| self.content.iter().next())
                .map(|(_, c)| c);
            if let Some(content) = found.filter(|c| wanted(c)) {
                return Some(content);
            }
        }
        self.content.values().find(|c| wanted(c))
    }

    fn propose(&self, rng: &mut ChaCha8Rng, kind: usize) -> Option<Change> {
        let live = |c: &Content| c.status == Status::Current;
        let live_page = |c: &Content| c.status == Status::Current && c.kind == ContentKind::Page;
        Some(match kind {
            0 => Change::Edit {
                id: self.random_content(rng, live)?.id.to_string(),
                body: None,
            },
            1 => {
                let content = self.random_content(rng, live)?;
                Change::Rename {
                    id: content.id.to_string(),
                    title: format!(
                        "{} (rev {})",
                        text::generated_title(self.seed, content.id),
                        content.version + 1
                    ),
                }
            }
            2 => {
                let page = self.random_content(rng, live_page)?;
                let space = page.space_id;
                let target = self.random_content(rng, |c| {
                    live_page(c) && c.space_id == space && c.id != page.id
                });
                Change::Move {
                    id: page.id.to_string(),
                    parent_id: target.map(|t| t.id.to_string()),
                }
            }
            3 => Change::Trash {
                id: self.random_content(rng, live)?.id.to_string(),
            },
            4 => Change::Restore {
                id: self
                    .random_content(rng, |c| c.status == Status::Trashed)?
                    .id
                    .to_string(),
            },
            5 => Change::Purge {
                id: self
                    .random_content(rng, |c| c.status == Status::Trashed)?
                    .id
                    .to_string(),
            },
            6 => {
                let parent = self.random_content(rng, live_page)?;
                let blog_post = rng.gen_bool(0.2);
                Change::Create {
                    id: None,
                    space_id: parent.space_id.to_string(),
                    parent_id: (!blog_post).then(|| parent.id.to_string()),
                    title: format!(
                        "{} {}",
                        text::capitalize(&text::words(rng, 3)),
                        self.next_content_id
                    ),
                    blog_post,
                    body: None,
                }
            }
            7 => {
                let content =
                    self.random_content(rng, |c| live(c) && c.read_restriction.is_none())?;
                let other = &self.users[rng.gen_range(1..self.users.len())];
                Change::Restrict {
                    id: content.id.to_string(),
                    users: vec![other.account_id.clone()],
                    groups: if rng.gen_bool(0.5) {
                        vec![self.groups[2 + rng.gen_range(0..self.groups.len() - 2)]
                            .name
                            .clone()]
                    } else {
                        Vec::new()
                    },
                }
            }
            8 => Change::Unrestrict {
                id: self
                    .random_content(rng, |c| c.read_restriction.is_some())?
                    .id
                    .to_string(),
            },
            9 => {
                // Never one of the last two spaces; the smallest space, so
                // that one change stays a small change.
                if self.spaces.len() <= 2 {
                    return None;
                }
                let smallest = self
                    .spaces
                    .keys()
                    .min_by_key(|id| self.space_content.get(id).map_or(0, |set| set.len()))?;
                Change::DeleteSpace {
                    space_id: smallest.to_string(),
                }
            }
            10 => Change::AddComment {
                id: None,
                container_id: self.random_content(rng, live)?.id.to_string(),
            },
            _ => Change::AddAttachment {
                id: None,
                container_id: self.random_content(rng, live)?.id.to_string(),
                filename: None,
            },
        })
    }
}
