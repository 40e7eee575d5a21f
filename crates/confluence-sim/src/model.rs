//! The simulated site as data: spaces, content, attachments, comments,
//! users and groups, and the one rule that decides who may read what.
//!
//! Bodies and attachment files are not stored: they are pure functions of
//! the site seed, the object id and its version (see `body` and `files`),
//! so a 100,000-page site costs a few tens of megabytes, as a real server's
//! metadata cache would. Only bodies set explicitly through the library are
//! held as text.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    Page,
    BlogPost,
}

impl ContentKind {
    pub fn v1_type(self) -> &'static str {
        match self {
            ContentKind::Page => "page",
            ContentKind::BlogPost => "blogpost",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Current,
    Archived,
    Trashed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Archived => "archived",
            Status::Trashed => "trashed",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "current" => Some(Status::Current),
            "archived" => Some(Status::Archived),
            "trashed" => Some(Status::Trashed),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpaceType {
    Global,
    Personal,
}

impl SpaceType {
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceType::Global => "global",
            SpaceType::Personal => "personal",
        }
    }
}

/// A user or a group, as space permissions and page restrictions name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    User(u16),
    Group(u16),
}

#[derive(Clone, Debug)]
pub struct User {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub api_token: String,
    pub groups: Vec<u16>,
    /// A zone without daylight saving time, so that its offset is fixed.
    pub time_zone: &'static str,
    pub utc_offset_minutes: i32,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct Space {
    pub id: u64,
    pub key: String,
    pub name: String,
    pub space_type: SpaceType,
    pub status: Status,
    pub created_at: Millis,
    pub author: u16,
    pub homepage_id: Option<u64>,
    /// Who holds the space's `read` permission.
    pub readers: Vec<Principal>,
    /// The ids the generator gave this space's content, `[lo, hi)`: bodies
    /// link to pages by the titles those ids were generated with.
    pub generated_ids: (u64, u64),
}

/// Who asks to read: a user (or nobody signed in) and the groups it is in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reader {
    pub user: Option<u16>,
    pub groups: Vec<u16>,
}

impl Reader {
    fn holds(&self, principal: Principal) -> bool {
        match principal {
            Principal::User(user) => self.user == Some(user),
            Principal::Group(group) => self.groups.contains(&group),
        }
    }

    pub fn reads_space(&self, space: &Space) -> bool {
        space.readers.iter().any(|&p| self.holds(p))
    }

    pub fn admitted_by(&self, restriction: &Restriction) -> bool {
        self.user
            .is_some_and(|user| restriction.users.contains(&user))
            || restriction.groups.iter().any(|g| self.groups.contains(g))
    }
}

/// A read restriction: when present, only these users and the members of
/// these groups may read the content (and, for pages, its descendants).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restriction {
    pub users: Vec<u16>,
    pub groups: Vec<u16>,
}

#[derive(Clone, Debug)]
pub struct Content {
    pub id: u64,
    pub kind: ContentKind,
    pub space_id: u64,
    pub parent_id: Option<u64>,
    pub title: String,
    pub status: Status,
    pub version: u32,
    pub created_at: Millis,
    pub modified_at: Millis,
    pub author: u16,
    pub version_author: u16,
    pub position: i32,
    pub labels: Vec<String>,
    pub read_restriction: Option<Restriction>,
    /// Set only when a caller gave the body explicitly; otherwise the body
    /// is generated from (seed, id, version).
    pub custom_body: Option<Box<str>>,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: u64,
    pub container_id: u64,
    pub title: String,
    pub media_type: &'static str,
    pub file_size: u64,
    pub file_id: String,
    pub version: u32,
    pub status: Status,
    pub created_at: Millis,
    pub modified_at: Millis,
    pub author: u16,
}

impl Attachment {
    /// Attachment ids carry an `att` prefix on the wire, in v1 and v2 alike.
    pub fn wire_id(&self) -> String {
        format!("att{}", self.id)
    }
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: u64,
    pub container_id: u64,
    pub version: u32,
    pub status: Status,
    pub created_at: Millis,
    pub modified_at: Millis,
    pub author: u16,
    pub custom_body: Option<Box<str>>,
}

/// The whole site. Secondary indexes are kept in step by the mutation
/// methods in `mutate`; nothing else writes to the maps.
#[derive(Debug, Default)]
pub struct Site {
    pub seed: u64,
    pub cloud_id: String,
    pub site_name: String,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub spaces: BTreeMap<u64, Space>,
    pub content: BTreeMap<u64, Content>,
    pub attachments: BTreeMap<u64, Attachment>,
    pub comments: BTreeMap<u64, Comment>,
    /// Page id to the ids of its child pages (any status).
    pub children: HashMap<u64, BTreeSet<u64>>,
    /// Space id to the ids of all its pages and blog posts.
    pub space_content: HashMap<u64, BTreeSet<u64>>,
    /// Page or blog post id to its attachment ids.
    pub container_attachments: HashMap<u64, BTreeSet<u64>>,
    /// Page or blog post id to its footer comment ids.
    pub container_comments: HashMap<u64, BTreeSet<u64>>,
    pub next_content_id: u64,
    pub next_space_id: u64,
    /// The last timestamp handed out; mutations never go back in time.
    pub clock: Millis,
}

impl Site {
    pub fn user_by_email(&self, email: &str) -> Option<u16> {
        self.users
            .iter()
            .position(|user| user.email.eq_ignore_ascii_case(email))
            .map(|idx| idx as u16)
    }

    pub fn user_by_account_id(&self, account_id: &str) -> Option<u16> {
        self.users
            .iter()
            .position(|user| user.account_id == account_id)
            .map(|idx| idx as u16)
    }

    pub fn space_by_key(&self, key: &str) -> Option<&Space> {
        self.spaces.values().find(|space| space.key == key)
    }

    /// The principal an account acts as: itself and its groups.
    pub fn principal_of(&self, user: u16) -> Reader {
        Reader {
            user: Some(user),
            groups: self.users[user as usize].groups.clone(),
        }
    }

    pub fn can_read_space(&self, user: u16, space: &Space) -> bool {
        self.principal_of(user).reads_space(space)
    }

    pub fn restriction_admits(&self, user: u16, restriction: &Restriction) -> bool {
        self.principal_of(user).admitted_by(restriction)
    }

    /// The ids of a page's ancestors, the root first.
    pub fn ancestors(&self, content: &Content) -> Vec<u64> {
        let mut chain = Vec::new();
        let mut next = content.parent_id;
        while let Some(id) = next {
            // A cycle cannot be built through the mutation API; the bound
            // keeps a corrupted tree from hanging a request all the same.
            if chain.len() > 10_000 {
                break;
            }
            chain.push(id);
            next = self.content.get(&id).and_then(|parent| parent.parent_id);
        }
        chain.reverse();
        chain
    }

    /// The access rule: the space grants read, and every read restriction
    /// on the content and on each of its ancestors admits the user.
    /// Restrictions only narrow access; none widens it.
    pub fn can_read(&self, user: u16, content: &Content) -> bool {
        self.readable_by(&self.principal_of(user), content)
    }

    /// The access rule for any principal: a user (or none), with any set
    /// of groups, whether or not an account holds exactly those.
    pub fn readable_by(&self, reader: &Reader, content: &Content) -> bool {
        let Some(space) = self.spaces.get(&content.space_id) else {
            return false;
        };
        if !reader.reads_space(space) {
            return false;
        }
        let mut current = Some(content);
        let mut hops = 0;
        while let Some(item) = current {
            if let Some(restriction) = &item.read_restriction {
                if !reader.admitted_by(restriction) {
                    return false;
                }
            }
            hops += 1;
            if hops > 10_000 {
                return false;
            }
            current = item.parent_id.and_then(|id| self.content.get(&id));
        }
        true
    }

    pub fn can_read_id(&self, user: u16, id: u64) -> bool {
        self.content
            .get(&id)
            .is_some_and(|content| self.can_read(user, content))
    }

    /// Attachments and comments are readable when their container is, and
    /// the container is not in the trash.
    pub fn can_read_child_of(&self, user: u16, container_id: u64) -> bool {
        self.content
            .get(&container_id)
            .is_some_and(|c| c.status != Status::Trashed && self.can_read(user, c))
    }

    pub fn next_timestamp(&mut self, now: Millis) -> Millis {
        self.clock = now.max(self.clock + 1);
        self.clock
    }
}
