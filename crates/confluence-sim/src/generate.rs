//! Builds a site from a seed: users, groups, global and personal spaces,
//! page trees several levels deep, blog posts, attachments, footer
//! comments, labels, space permissions and page restrictions.
//!
//! The same `SiteConfig` always yields the same site. Generation stores
//! metadata only; bodies and files are rendered on request.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::files::MEDIA_TYPES;
use crate::model::*;
use crate::text::{self, rng_for};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteConfig {
    pub seed: u64,
    pub spaces: u32,
    pub pages: u32,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            seed: 1,
            spaces: 5,
            pages: 200,
        }
    }
}

/// 2023-01-01T00:00:00Z: generated content is dated from here on.
const EPOCH: Millis = 1_672_531_200_000;
const DAY: Millis = 86_400_000;

pub const FIRST_SPACE_ID: u64 = 98_304;
pub const FIRST_CONTENT_ID: u64 = 1_000_000;

/// The fixed cast of users: (name, email local part, groups, zone, offset).
/// Zones without daylight saving time keep CQL's time-zone arithmetic exact.
const USERS: &[(&str, &str, &[u16], &str, i32)] = &[
    ("Ada Admin", "admin", &[0, 1, 2, 3, 4], "UTC", 0),
    ("Ben Builder", "ben", &[0, 2], "Asia/Tokyo", 540),
    ("Cleo Writer", "cleo", &[0, 3], "America/Phoenix", -420),
    ("Dana Ops", "dana", &[0, 2, 4], "Asia/Kolkata", 330),
    ("Eli Guest", "eli", &[], "Asia/Kathmandu", 345),
    ("Fay Finance", "fay", &[0, 4], "Africa/Lagos", 60),
];

const GROUPS: &[&str] = &[
    "confluence-users",
    "site-admins",
    "engineering",
    "marketing",
    "finance",
];

pub const ADMIN: u16 = 0;
const SITE_ADMINS: u16 = 1;

pub fn generate(config: &SiteConfig) -> Site {
    let seed = config.seed;
    let mut rng = rng_for(seed, &[0x517e]);
    let mut site = Site {
        seed,
        cloud_id: text::uuid(&mut rng),
        site_name: format!("sim-{seed}"),
        next_content_id: FIRST_CONTENT_ID,
        next_space_id: FIRST_SPACE_ID,
        ..Site::default()
    };
    for (name, local, groups, zone, offset) in USERS {
        let account_hex = hex::encode(rng.gen::<[u8; 12]>());
        site.users.push(User {
            account_id: format!("5b10{}", &account_hex[4..]),
            email: format!("{local}@example.com"),
            display_name: (*name).to_string(),
            api_token: format!("ATATT3x{}", hex::encode(rng.gen::<[u8; 20]>())),
            groups: groups.to_vec(),
            time_zone: zone,
            utc_offset_minutes: *offset,
        });
    }
    for name in GROUPS {
        site.groups.push(Group {
            id: text::uuid(&mut rng),
            name: (*name).to_string(),
        });
    }

    let n_spaces = config.spaces.max(1);
    let mut clock = EPOCH;
    for space_index in 0..n_spaces {
        let n_pages = config.pages / n_spaces + u32::from(space_index < config.pages % n_spaces);
        let last = generate_space(&mut site, &mut rng, space_index, n_pages);
        clock = clock.max(last);
    }
    site.clock = clock;
    site
}

fn generate_space(
    site: &mut Site,
    rng: &mut rand_chacha::ChaCha8Rng,
    space_index: u32,
    n_pages: u32,
) -> Millis {
    let seed = site.seed;
    let space_id = site.next_space_id;
    site.next_space_id += 1 + rng.gen_range(0..3);
    // The third space, and every fifth after it, is a personal space, one
    // per user (other than the admin) as on Confluence, where a personal
    // space's key is its owner's: once every user has one, the rest are
    // global spaces.
    let others = USERS.len() as u32 - 1;
    let personal = space_index % 5 == 2 && space_index / 5 < others;
    let owner = if personal {
        1 + ((2 + space_index / 5) % others) as u16
    } else {
        1 + (space_index % others) as u16
    };
    let (key, name, readers) = if personal {
        (
            format!("~{}", site.users[owner as usize].account_id),
            site.users[owner as usize].display_name.clone(),
            vec![Principal::User(owner), Principal::Group(SITE_ADMINS)],
        )
    } else {
        let topic = text::TOPICS[space_index as usize % text::TOPICS.len()];
        let initials: String = topic
            .split(' ')
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_ascii_uppercase();
        let readers = match space_index % 4 {
            0 => vec![Principal::Group(0)],
            1 => vec![Principal::Group(2), Principal::Group(SITE_ADMINS)],
            2 => vec![Principal::Group(3), Principal::Group(SITE_ADMINS)],
            _ => vec![Principal::Group(0), Principal::User(4)],
        };
        (
            format!("{initials}{space_index}"),
            topic.to_string(),
            readers,
        )
    };
    let space_created = EPOCH + (space_index as Millis % 60) * DAY;
    let step = (400 * DAY / (n_pages as Millis + 1)).clamp(60_000, DAY);
    let lo = site.next_content_id;

    // Pages: the first is the homepage; the rest hang below recent pages so
    // that trees grow several levels deep, or sit at the top level.
    let mut page_ids: Vec<u64> = Vec::with_capacity(n_pages as usize);
    let mut depths: Vec<u8> = Vec::with_capacity(n_pages as usize);
    let mut last_time = space_created;
    let n_blogs = (n_pages / 20).max(u32::from(n_pages > 0));
    for index in 0..n_pages {
        let id = site.next_content_id;
        site.next_content_id += 1;
        let (parent_id, depth) = if index == 0 || rng.gen_bool(0.05) {
            (None, 0)
        } else {
            let window = page_ids.len().min(40);
            let pick = page_ids.len() - 1 - rng.gen_range(0..window);
            if depths[pick] >= 7 {
                (Some(page_ids[0]), 1)
            } else {
                (Some(page_ids[pick]), depths[pick] + 1)
            }
        };
        let created_at = space_created + step * index as Millis + rng.gen_range(0..step / 2);
        let content = new_content(
            rng,
            seed,
            id,
            ContentKind::Page,
            space_id,
            parent_id,
            created_at,
            owner,
            personal,
        );
        last_time = last_time.max(content.modified_at);
        page_ids.push(id);
        depths.push(depth);
        site.insert_content(content);
    }
    for index in 0..n_blogs {
        let id = site.next_content_id;
        site.next_content_id += 1;
        let created_at = space_created + step * (index as Millis * 20) + rng.gen_range(0..step);
        let content = new_content(
            rng,
            seed,
            id,
            ContentKind::BlogPost,
            space_id,
            None,
            created_at,
            owner,
            personal,
        );
        last_time = last_time.max(content.modified_at);
        site.insert_content(content);
    }
    let hi = site.next_content_id;
    site.spaces.insert(
        space_id,
        Space {
            id: space_id,
            key,
            name,
            space_type: if personal {
                SpaceType::Personal
            } else {
                SpaceType::Global
            },
            status: Status::Current,
            created_at: space_created,
            author: if personal { owner } else { ADMIN },
            homepage_id: page_ids.first().copied(),
            readers,
            generated_ids: (lo, hi),
        },
    );

    // Attachments and comments, with ids after the space's content.
    for container in lo..hi {
        let Some(created) = site.content.get(&container).map(|c| c.created_at) else {
            continue;
        };
        for (filename, media_type) in initial_attachments(seed, container) {
            let id = site.next_content_id;
            site.next_content_id += 1;
            let file_size = crate::files::render(seed, id, 1, media_type, &filename).len() as u64;
            let at = created + rng.gen_range(0..DAY);
            site.insert_attachment(Attachment {
                id,
                container_id: container,
                title: filename,
                media_type,
                file_size,
                file_id: text::uuid(rng),
                version: 1,
                status: Status::Current,
                created_at: at,
                modified_at: at,
                author: owner,
            });
            last_time = last_time.max(at);
        }
        if rng.gen_bool(0.25) {
            for _ in 0..rng.gen_range(1..3) {
                let id = site.next_content_id;
                site.next_content_id += 1;
                let at = created + rng.gen_range(0..10 * DAY);
                site.insert_comment(Comment {
                    id,
                    container_id: container,
                    version: 1,
                    status: Status::Current,
                    created_at: at,
                    modified_at: at,
                    author: rng.gen_range(0..USERS.len() as u16),
                    custom_body: None,
                });
                last_time = last_time.max(at);
            }
        }
    }
    last_time
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the list
fn new_content(
    rng: &mut rand_chacha::ChaCha8Rng,
    seed: u64,
    id: u64,
    kind: ContentKind,
    space_id: u64,
    parent_id: Option<u64>,
    created_at: Millis,
    owner: u16,
    personal: bool,
) -> Content {
    let version = match rng.gen_range(0..10) {
        0..=5 => 1,
        6..=7 => 2,
        8 => 3,
        _ => rng.gen_range(4..12),
    };
    let modified_at = if version > 1 {
        created_at + rng.gen_range(60_000..60 * DAY)
    } else {
        created_at
    };
    let author = if personal {
        owner
    } else {
        rng.gen_range(0..USERS.len() as u16)
    };
    let n_labels = rng.gen_range(0..3);
    let mut labels: Vec<String> = text::LABELS
        .choose_multiple(rng, n_labels)
        .map(|s| (*s).to_string())
        .collect();
    labels.sort();
    let read_restriction = if rng.gen_bool(0.04) {
        // The admin is always admitted, as the author of a restriction is in
        // Confluence: the admin account sees the whole site.
        let mut restriction = Restriction {
            users: vec![ADMIN],
            groups: Vec::new(),
        };
        match rng.gen_range(0..3) {
            0 => restriction.users.push(rng.gen_range(1..USERS.len() as u16)),
            1 => restriction
                .groups
                .push(rng.gen_range(2..GROUPS.len() as u16)),
            _ => {}
        }
        restriction.users.sort();
        restriction.users.dedup();
        Some(restriction)
    } else {
        None
    };
    Content {
        id,
        kind,
        space_id,
        parent_id,
        title: text::generated_title(seed, id),
        status: Status::Current,
        version,
        created_at,
        modified_at,
        author,
        version_author: author,
        position: (id % 1000) as i32,
        labels,
        read_restriction,
        custom_body: None,
    }
}

/// The attachments a page or blog post is created with, as a pure function
/// of the seed and its id, so that its bodies can link to them.
pub fn initial_attachments(seed: u64, container_id: u64) -> Vec<(String, &'static str)> {
    let mut rng = rng_for(seed, &[container_id, 0xa77a]);
    if !rng.gen_bool(0.2) {
        return Vec::new();
    }
    (0..rng.gen_range(1..3))
        .map(|n| {
            let (media_type, extension) = MEDIA_TYPES[rng.gen_range(0..MEDIA_TYPES.len())];
            let stem = format!("{}-{}", text::word(&mut rng), text::word(&mut rng));
            (format!("{stem}-{n}.{extension}"), media_type)
        })
        .collect()
}
