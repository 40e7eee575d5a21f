//! Who may read what: the viewer a search is made as, user segments,
//! spaces' viewer permissions and Confluence's own permissions.
//!
//! Two layers, both applied inside the index query:
//! - per space (viewer permissions and Confluence's space permissions):
//!   decided from the store at query time, so a change takes effect at
//!   once without re-indexing; the query admits only the (connection,
//!   space) pairs that pass;
//! - per file (page restrictions, inherited): indexed with every chunk as
//!   tokens, because there are too many files to decide at query time.
//!
//! A file's restriction chain (its own, then each ancestor's) becomes
//! levels: level `i` restricted is the token `r{i}`, with one token per
//! principal it admits (`{i}:u:{account}`, `{i}:g:{group}`). A viewer is
//! excluded from a chunk when some level is restricted and admits none of
//! the viewer's principals. Restricted chunks are few, so the exclusion
//! reads short posting lists; open chunks carry no token at all.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use store::{ReadRestriction, ScopeRow, Segment, Visibility};

/// Restricted levels indexed per chunk; a longer chain is narrowed into
/// the last level (see `levels`).
pub const MAX_LEVELS: usize = 16;

/// Who a search is made as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewer {
    /// Signed in to the application (Zendesk's "signed-in users").
    #[serde(default)]
    pub signed_in: bool,
    /// An agent or admin (Zendesk's "agents and admins"); implies signed in.
    #[serde(default)]
    pub agent: bool,
    /// The viewer's tags, organisations and groups, as user segments test
    /// them.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub organization_ids: Vec<String>,
    #[serde(default)]
    pub group_ids: Vec<String>,
    /// The viewer's Confluence identity, for connections that enforce
    /// Confluence's permissions: an account id and group ids.
    #[serde(default)]
    pub confluence_account_id: Option<String>,
    #[serde(default)]
    pub confluence_groups: Vec<String>,
}

impl Viewer {
    /// Whether this viewer may see no more than `other`: every rule here
    /// (segments, space permissions, page restrictions) admits a viewer for
    /// what it holds, so holding a subset of `other`'s attributes never
    /// sees more. A customer token's search may narrow its viewer this way.
    pub fn within(&self, other: &Viewer) -> bool {
        let subset = |mine: &[String], theirs: &[String]| mine.iter().all(|m| theirs.contains(m));
        (!self.signed_in || other.signed_in || other.agent)
            && (!self.agent || other.agent)
            && subset(&self.tags, &other.tags)
            && subset(&self.organization_ids, &other.organization_ids)
            && subset(&self.group_ids, &other.group_ids)
            && (self.confluence_account_id.is_none()
                || self.confluence_account_id == other.confluence_account_id)
            && subset(&self.confluence_groups, &other.confluence_groups)
    }

    /// Zendesk's rule: the user type first (staff segments admit agents
    /// only), then every condition that is set: all of `tags`, at least
    /// one of `or_tags`, of `organization_ids` and of `group_ids`.
    pub fn in_segment(&self, segment: &Segment) -> bool {
        let user_type = match segment.user_type.as_str() {
            "signed_in" => self.signed_in || self.agent,
            "staff" => self.agent,
            _ => false,
        };
        let any = |wanted: &[String], held: &[String]| {
            wanted.is_empty() || wanted.iter().any(|w| held.contains(w))
        };
        user_type
            && segment.tags.iter().all(|t| self.tags.contains(t))
            && any(&segment.or_tags, &self.tags)
            && any(&segment.organization_ids, &self.organization_ids)
            && any(&segment.group_ids, &self.group_ids)
    }

    /// Whether the viewer may read a space: its viewer permissions admit
    /// the viewer and, where the connection enforces Confluence's
    /// permissions, a space permission grants the viewer read.
    pub fn may_read_space(&self, scope: &ScopeRow, segments: &[Segment]) -> bool {
        let visible = match &scope.visibility {
            Visibility::Everyone => true,
            Visibility::Segments { segment_ids } => segments
                .iter()
                .filter(|s| segment_ids.contains(&s.id))
                .any(|s| self.in_segment(s)),
        };
        if !visible {
            return false;
        }
        if !scope.enforce_permissions {
            return true;
        }
        let Some(principals) = &scope.read_principals else {
            return false;
        };
        principals.anonymous
            || self
                .confluence_account_id
                .as_ref()
                .is_some_and(|a| principals.users.contains(a))
            || self
                .confluence_groups
                .iter()
                .any(|g| principals.groups.contains(g))
    }

    /// The principal tokens the viewer holds at one level.
    pub fn tokens(&self, level: usize) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .confluence_groups
            .iter()
            .map(|g| format!("{level}:g:{g}"))
            .collect();
        if let Some(account) = &self.confluence_account_id {
            tokens.push(format!("{level}:u:{account}"));
        }
        tokens
    }
}

/// The restricted levels of a chain: open links dropped, repeated
/// restrictions kept once, at most `MAX_LEVELS` (the excess narrowed into the
/// last by intersection, which never admits anyone the chain would not).
/// `None`: some link is unknown, nobody may read.
pub fn levels(chain: &[ReadRestriction]) -> Option<Vec<(BTreeSet<String>, BTreeSet<String>)>> {
    let mut levels: Vec<(BTreeSet<String>, BTreeSet<String>)> = Vec::new();
    for link in chain {
        match link {
            ReadRestriction::Open => {}
            ReadRestriction::Unknown => return None,
            ReadRestriction::Only { users, groups } => {
                let level = (
                    users.iter().cloned().collect(),
                    groups.iter().cloned().collect(),
                );
                if !levels.contains(&level) {
                    levels.push(level);
                }
            }
        }
    }
    while levels.len() > MAX_LEVELS {
        let (users, groups) = levels.pop().unwrap_or_default();
        if let Some(last) = levels.last_mut() {
            last.0 = last.0.intersection(&users).cloned().collect();
            last.1 = last.1.intersection(&groups).cloned().collect();
        }
    }
    Some(levels)
}

/// The tokens a chunk is indexed with.
pub fn tokens(enforce: bool, chain: &[ReadRestriction]) -> Vec<String> {
    if !enforce {
        return Vec::new();
    }
    let Some(levels) = levels(chain) else {
        // Restricted at level 0 to nobody.
        return vec!["r0".to_string()];
    };
    let mut tokens = Vec::new();
    for (i, (users, groups)) in levels.iter().enumerate() {
        tokens.push(format!("r{i}"));
        tokens.extend(users.iter().map(|u| format!("{i}:u:{u}")));
        tokens.extend(groups.iter().map(|g| format!("{i}:g:{g}")));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(users: &[&str], groups: &[&str]) -> ReadRestriction {
        ReadRestriction::Only {
            users: users.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn open_chains_carry_no_tokens_and_unknown_denies() {
        assert!(tokens(true, &[ReadRestriction::Open, ReadRestriction::Open]).is_empty());
        assert!(tokens(false, &[ReadRestriction::Unknown]).is_empty());
        assert_eq!(
            tokens(true, &[ReadRestriction::Open, ReadRestriction::Unknown]),
            vec!["r0"]
        );
    }

    #[test]
    fn identical_levels_merge_and_long_chains_narrow() {
        let a = only(&["u1"], &["g1"]);
        assert_eq!(levels(&[a.clone(), a.clone()]).unwrap().len(), 1);
        let chain: Vec<ReadRestriction> = (0..MAX_LEVELS + 3)
            .map(|i| only(&["u1", &format!("x{i}")], &["g1", "g2"]))
            .collect();
        let narrowed = levels(&chain).unwrap();
        assert_eq!(narrowed.len(), MAX_LEVELS);
        let last = narrowed.last().unwrap();
        assert_eq!(last.0.iter().collect::<Vec<_>>(), vec!["u1"]);
        assert_eq!(last.1.len(), 2);
    }

    #[test]
    fn segments_follow_zendesk_rules() {
        let segment = Segment {
            id: "s".into(),
            name: "VIP".into(),
            user_type: "signed_in".into(),
            tags: vec!["vip".into(), "paid".into()],
            or_tags: vec!["eu".into(), "us".into()],
            organization_ids: vec![],
            group_ids: vec![],
        };
        let mut viewer = Viewer {
            signed_in: true,
            tags: vec!["vip".into(), "paid".into(), "eu".into()],
            ..Viewer::default()
        };
        assert!(viewer.in_segment(&segment));
        viewer.tags.retain(|t| t != "paid");
        assert!(!viewer.in_segment(&segment), "all tags must match");
        viewer.tags = vec!["vip".into(), "paid".into()];
        assert!(!viewer.in_segment(&segment), "one of or_tags must match");
        viewer.tags.push("us".into());
        viewer.signed_in = false;
        assert!(
            !viewer.in_segment(&segment),
            "anonymous viewers are in no segment"
        );
        let staff = Segment {
            user_type: "staff".into(),
            tags: vec![],
            or_tags: vec![],
            ..segment
        };
        viewer.signed_in = true;
        assert!(!viewer.in_segment(&staff));
        viewer.agent = true;
        assert!(viewer.in_segment(&staff));
    }
}
