//! The property: over random sites, random restrictions (nested ones
//! included, some changed after the first sync), random segments and
//! space visibilities, and random viewers, no search returns a chunk of a
//! page the viewer may not read (by the simulator's ground truth and the
//! segment rules, written here independently), and a viewer finds every
//! page it may read by a phrase from it.

use super::*;
use proptest::test_runner::{Config, TestRunner};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use store::SyncState;
use store::{Segment, Visibility};

const TAGS: &[&str] = &["vip", "beta", "eu", "us", "paid"];
const ORGS: &[&str] = &["org-a", "org-b", "org-c"];
const GROUPS: &[&str] = &["grp-1", "grp-2", "grp-3"];

fn pick(rng: &mut ChaCha8Rng, from: &[&str], max: usize) -> Vec<String> {
    let n = rng.gen_range(0..=max);
    from.choose_multiple(rng, n)
        .map(|s| s.to_string())
        .collect()
}

/// The segment rule, as Zendesk documents it: user type, all tags, any
/// or_tag, any organisation, any group (each only when set).
fn oracle_in_segment(viewer: &Viewer, segment: &Segment) -> bool {
    let type_ok = if segment.user_type == "staff" {
        viewer.agent
    } else {
        viewer.signed_in || viewer.agent
    };
    let mut ok = type_ok;
    for tag in &segment.tags {
        ok &= viewer.tags.contains(tag);
    }
    if !segment.or_tags.is_empty() {
        ok &= segment.or_tags.iter().any(|t| viewer.tags.contains(t));
    }
    if !segment.organization_ids.is_empty() {
        ok &= segment
            .organization_ids
            .iter()
            .any(|o| viewer.organization_ids.contains(o));
    }
    if !segment.group_ids.is_empty() {
        ok &= segment
            .group_ids
            .iter()
            .any(|g| viewer.group_ids.contains(g));
    }
    ok
}

/// Random restrictions on random current pages: a user, a group, both,
/// or the admin alone; some pages' ancestors restricted too.
fn restrict_randomly(sim: &RunningSimulator, rng: &mut ChaCha8Rng, count: usize) {
    let accounts = sim.accounts();
    let groups = sim.groups();
    let pages: Vec<String> = sim.with_site(|site| {
        site.content
            .values()
            .filter(|c| c.status == confluence_sim::model::Status::Current)
            .map(|c| c.id.to_string())
            .collect()
    });
    for _ in 0..count {
        let id = pages.choose(rng).unwrap().clone();
        let change = if rng.gen_bool(0.2) {
            Change::Unrestrict { id }
        } else {
            let users = match rng.gen_range(0..3) {
                0 => vec![],
                _ => vec![accounts.choose(rng).unwrap().account_id.clone()],
            };
            let groups = match rng.gen_range(0..3) {
                0 => vec![],
                _ => vec![groups.choose(rng).unwrap().1.clone()],
            };
            Change::Restrict { id, users, groups }
        };
        sim.apply(change).unwrap();
    }
}

fn random_viewer(sim: &RunningSimulator, rng: &mut ChaCha8Rng) -> Viewer {
    let accounts = sim.accounts();
    let site_groups = sim.groups();
    let account = if rng.gen_bool(0.85) {
        Some(accounts.choose(rng).unwrap().account_id.clone())
    } else {
        None
    };
    let n = rng.gen_range(0..=3);
    let confluence_groups = site_groups
        .choose_multiple(rng, n)
        .map(|(id, _)| id.clone())
        .collect();
    let agent = rng.gen_bool(0.3);
    Viewer {
        signed_in: agent || rng.gen_bool(0.7),
        agent,
        tags: pick(rng, TAGS, 3),
        organization_ids: pick(rng, ORGS, 2),
        group_ids: pick(rng, GROUPS, 2),
        confluence_account_id: account,
        confluence_groups,
    }
}

async fn check(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sim = simulator(seed, 4, 240).await;
    restrict_randomly(&sim, &mut rng, 30);
    let f = fixture(sim, true, None).await;

    // Segments and each space's viewer permissions.
    let mut segments = Vec::new();
    for i in 0..4 {
        let segment = Segment {
            id: String::new(),
            name: format!("segment {i}"),
            user_type: if rng.gen_bool(0.3) {
                "staff"
            } else {
                "signed_in"
            }
            .into(),
            tags: pick(&mut rng, TAGS, 2),
            or_tags: pick(&mut rng, TAGS, 2),
            organization_ids: pick(&mut rng, ORGS, 1),
            group_ids: pick(&mut rng, GROUPS, 1),
        };
        segments.push(f.store.create_segment(&f.org, &segment).await.unwrap());
    }
    sync(&f).await;
    let mut visibility: HashMap<String, Vec<Segment>> = HashMap::new();
    for space in f.store.spaces(&f.connection).await.unwrap() {
        if rng.gen_bool(0.5) {
            let n = rng.gen_range(1..=3);
            let chosen: Vec<Segment> = segments.choose_multiple(&mut rng, n).cloned().collect();
            f.store
                .set_space_visibility(
                    &f.connection,
                    &space.space_id,
                    &Visibility::Segments {
                        segment_ids: chosen.iter().map(|s| s.id.clone()).collect(),
                    },
                )
                .await
                .unwrap();
            visibility.insert(space.key.clone(), chosen);
        }
    }
    // Restrictions changed after the first sync: no new versions, so only
    // the sweep sees them.
    restrict_randomly(&f.sim, &mut rng, 15);
    sync(&f).await;

    let containers = containers(&f).await;
    let files = f.store.files(&f.connection).await.unwrap();
    let space_keys: HashMap<String, String> = f
        .store
        .spaces(&f.connection)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.space_id, s.key))
        .collect();
    let page_space: HashMap<String, String> = files
        .iter()
        .filter(|file| file.kind == kind::PAGE || file.kind == kind::BLOG_POST)
        .map(|file| {
            let space = file.space_id.clone().unwrap_or_default();
            (
                file.external_id.clone(),
                space_keys.get(&space).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let pages: Vec<String> = files
        .iter()
        .filter(|file| file.kind == kind::PAGE)
        .map(|file| file.external_id.clone())
        .collect();
    // Broad queries: common words, so that many chunks match.
    let broad = ["the", "and", "of", "team", "release"];

    let mut viewers: Vec<Viewer> = (0..10).map(|_| random_viewer(&f.sim, &mut rng)).collect();
    viewers.push(viewer_of(&f.sim, "cleo@example.com"));
    viewers.push(Viewer::default());
    for viewer in &viewers {
        let confluence = readable(&f.sim, viewer);
        let may_read = |page: &str| -> bool {
            let Some(space_key) = page_space.get(page) else {
                return false;
            };
            let visible = match visibility.get(space_key) {
                None => true,
                Some(chosen) => chosen.iter().any(|s| oracle_in_segment(viewer, s)),
            };
            visible && confluence.contains(page)
        };
        for query in broad {
            for hit in search(&f, viewer, query, 1_000).await {
                let owner = owner_of(&hit, &containers);
                assert!(
                    may_read(&owner),
                    "seed {seed}: {viewer:?} got {} {} (of {owner}) for {query:?}",
                    hit.kind,
                    hit.external_id
                );
            }
        }
        let (allowed, denied): (Vec<&String>, Vec<&String>) =
            pages.iter().partition(|p| may_read(p));
        for page in allowed.choose_multiple(&mut rng, 6) {
            let Some(phrase) = page_phrase(&f, page).await else {
                continue;
            };
            let hits = search(&f, viewer, &phrase, 200).await;
            assert!(
                hits.iter()
                    .any(|h| h.kind == kind::PAGE && &&h.external_id == page),
                "seed {seed}: {viewer:?} cannot find page {page} by {phrase}"
            );
            for hit in &hits {
                assert!(
                    may_read(&owner_of(hit, &containers)),
                    "seed {seed}: leak by phrase"
                );
            }
        }
        for page in denied.choose_multiple(&mut rng, 6) {
            let Some(phrase) = page_phrase(&f, page).await else {
                continue;
            };
            for hit in search(&f, viewer, &phrase, 200).await {
                let owner = owner_of(&hit, &containers);
                assert!(
                    may_read(&owner),
                    "seed {seed}: {viewer:?} found {owner} it may not read, by {phrase}"
                );
            }
        }
    }
    // The admin, holding every group, reads everything synced.
    let admin = admin_viewer(&f.sim);
    assert_eq!(readable(&f.sim, &admin).len(), page_space.len());
}

#[test]
fn no_viewer_finds_what_it_may_not_read_and_finds_what_it_may() {
    let cases = std::env::var("CONFSYNC_ACCESS_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::num::u64::ANY, |seed| {
            runtime.block_on(check(seed));
            Ok(())
        })
        .unwrap();
}
