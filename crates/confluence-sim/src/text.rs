//! Deterministic prose: words, sentences and titles drawn from a seeded
//! generator, so that the same seed always yields the same site.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A generator seeded from the site seed and any number of parts (an id, a
/// version, a salt), mixed with SplitMix64 so that near seeds diverge.
pub fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for &part in parts {
        state = splitmix(state ^ part.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    }
    ChaCha8Rng::seed_from_u64(splitmix(state))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub const WORDS: &[&str] = &[
    "the",
    "service",
    "deploy",
    "release",
    "customer",
    "billing",
    "invoice",
    "team",
    "review",
    "pipeline",
    "metric",
    "dashboard",
    "latency",
    "budget",
    "quarter",
    "roadmap",
    "incident",
    "postmortem",
    "runbook",
    "alert",
    "threshold",
    "cluster",
    "database",
    "migration",
    "schema",
    "index",
    "query",
    "cache",
    "replica",
    "backup",
    "restore",
    "policy",
    "access",
    "audit",
    "compliance",
    "onboarding",
    "training",
    "hiring",
    "interview",
    "feedback",
    "design",
    "prototype",
    "research",
    "survey",
    "launch",
    "campaign",
    "newsletter",
    "partner",
    "contract",
    "renewal",
    "pricing",
    "discount",
    "forecast",
    "revenue",
    "margin",
    "support",
    "ticket",
    "escalation",
    "priority",
    "owner",
    "stakeholder",
    "decision",
    "meeting",
    "notes",
    "action",
    "item",
    "goal",
    "objective",
    "result",
    "milestone",
    "estimate",
    "capacity",
    "sprint",
    "backlog",
    "story",
    "epic",
    "feature",
    "bug",
    "regression",
    "test",
    "coverage",
    "build",
    "artifact",
    "version",
    "branch",
    "merge",
    "conflict",
    "network",
    "gateway",
    "certificate",
    "token",
    "secret",
    "rotation",
    "region",
    "zone",
    "failover",
    "storage",
    "bucket",
    "queue",
    "worker",
    "scheduler",
    "retry",
    "timeout",
    "quota",
    "limit",
    "usage",
    "report",
    "analysis",
    "summary",
    "overview",
    "guide",
    "template",
    "checklist",
    "process",
    "workflow",
    "approval",
    "handbook",
    "glossary",
    "architecture",
    "component",
    "interface",
    "contract",
    "endpoint",
    "payload",
    "response",
    "request",
    "session",
    "profile",
    "account",
    "tenant",
    "workspace",
    "project",
    "program",
    "portfolio",
    "vendor",
    "procurement",
    "security",
    "privacy",
    "risk",
    "mitigation",
    "dependency",
    "upgrade",
    "maintenance",
    "window",
    "outage",
    "status",
    "health",
    "check",
    "probe",
    "signal",
    "trace",
    "log",
    "event",
    "stream",
    "batch",
    "export",
    "import",
    "sync",
    "connector",
    "search",
    "ranking",
    "relevance",
    "chunk",
    "embedding",
    "model",
    "prompt",
    "evaluation",
    "benchmark",
    "baseline",
    "experiment",
    "rollout",
    "flag",
    "cohort",
    "retention",
    "churn",
    "funnel",
    "conversion",
    "segment",
    "persona",
    "journey",
    "mobile",
    "desktop",
    "browser",
    "android",
    "kernel",
    "driver",
    "firmware",
    "warehouse",
    "shipment",
    "inventory",
    "order",
    "refund",
    "payment",
    "ledger",
    "reconciliation",
    "tax",
    "payroll",
];

pub const TOPICS: &[&str] = &[
    "Billing Service",
    "Search Platform",
    "Mobile App",
    "Data Warehouse",
    "Customer Portal",
    "Payments Gateway",
    "Identity Provider",
    "Release Train",
    "Support Desk",
    "Marketing Site",
    "Analytics Pipeline",
    "Onboarding Flow",
    "Incident Response",
    "Security Review",
    "Hiring Plan",
    "Quarterly Planning",
    "Partner Program",
    "Pricing Model",
    "Storage Tier",
    "Notification Hub",
    "Design System",
    "Vendor Management",
    "Compliance Audit",
    "Edge Cache",
];

pub const KINDS: &[&str] = &[
    "Runbook",
    "Overview",
    "Design Notes",
    "Meeting Notes",
    "Retrospective",
    "FAQ",
    "How-to",
    "Decision Log",
    "Requirements",
    "Postmortem",
    "Roadmap",
    "Checklist",
    "Architecture",
    "Glossary",
    "Onboarding Guide",
    "Status Report",
    "Test Plan",
    "Release Notes",
];

pub const LABELS: &[&str] = &[
    "runbook",
    "howto",
    "decision",
    "meeting-notes",
    "architecture",
    "draft",
    "archived-info",
    "faq",
    "security",
    "onboarding",
    "release",
    "incident",
    "q3-planning",
    "customer-facing",
];

pub fn word(rng: &mut ChaCha8Rng) -> &'static str {
    WORDS[rng.gen_range(0..WORDS.len())]
}

pub fn words(rng: &mut ChaCha8Rng, count: usize) -> String {
    let mut out = String::with_capacity(count * 8);
    for i in 0..count {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word(rng));
    }
    out
}

/// A sentence with a capital letter and a full stop.
pub fn sentence(rng: &mut ChaCha8Rng) -> String {
    let n_words = rng.gen_range(6..16);
    let mut text = words(rng, n_words);
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

pub fn sentences(rng: &mut ChaCha8Rng, count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&sentence(rng));
    }
    out
}

/// The title a piece of content is created with: a pure function of the
/// seed and its id, so that links in other bodies can name it without
/// looking it up. The id suffix keeps titles unique within a space, as
/// Confluence requires.
pub fn generated_title(seed: u64, id: u64) -> String {
    let mut rng = rng_for(seed, &[id, 0x7171]);
    let topic = TOPICS[rng.gen_range(0..TOPICS.len())];
    let kind = KINDS[rng.gen_range(0..KINDS.len())];
    format!("{topic} {kind} {}", id % 1_000_000)
}

pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A UUID-shaped id (macro ids, cloud ids, group ids, file ids).
pub fn uuid(rng: &mut ChaCha8Rng) -> String {
    let hex = hex::encode(rng.gen::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
