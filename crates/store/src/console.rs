//! The admin console's accounts, sessions and reads, and its domain
//! operations (one transaction each, every one recorded with the admin
//! who did it). The console's connections belong to the organisation
//! itself: `end_user_id` is NULL.

use crate::Connection;

/// A knowledge administrator of an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    pub id: String,
    pub organisation_id: String,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

/// Who did an action, for the record.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub admin_id: &'a str,
    pub admin_name: &'a str,
}

impl<'a> From<&'a Admin> for Actor<'a> {
    fn from(admin: &'a Admin) -> Self {
        Actor {
            admin_id: &admin.id,
            admin_name: &admin.name,
        }
    }
}

/// One recorded console action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminAction {
    pub admin_name: String,
    pub action: String,
    pub target: String,
    pub at: String,
}

/// A space of a console connection: what the store holds of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSpace {
    pub space_id: String,
    pub key: String,
    pub name: String,
    /// Pages and blog posts synced.
    pub items: i64,
}

/// One of an organisation's own connections with its synced spaces.
#[derive(Clone, Debug)]
pub struct ConsoleSite {
    pub connection: Connection,
    /// The admin who connected it, by name (`None`: not recorded).
    pub connected_by: Option<String>,
    pub spaces: Vec<ConsoleSpace>,
    /// Names of spaces the item listing knows (key -> name), for spaces
    /// chosen but not synced yet.
    pub listed_names: Vec<(String, String)>,
}

/// A space the admin may choose.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpaceOption {
    pub key: String,
    pub name: String,
}

/// A session to open: its token's hash, its CSRF token and its expiry.
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub csrf: &'a str,
    pub expires_at: &'a str,
}
