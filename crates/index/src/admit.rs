//! Who a search admits, applied to every candidate inside collection.
//!
//! A chunk is admitted when it belongs to the organisation (and customer)
//! searched, to a space the viewer may read, and is not excluded by a
//! restriction. The first three are u64 fast fields compared per
//! candidate; the exclusions (few: restricted chunks whose levels admit
//! none of the viewer's principals) are read once per segment into a bit
//! set. The collectors below test each candidate before it may enter the
//! top k, so the pure text query keeps tantivy's block-WAND pruning and
//! the k best chunks the viewer may read come back whatever the others.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{EnableScoring, Query, Weight};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// FNV-1a: a stable 64-bit key for tenant, customer and scope strings
/// (stored in fast fields). Ids are random and generated here, so a
/// collision is no one's to arrange; the organisation and the scope must
/// both collide to cross tenants.
pub fn key(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub const ORG_FIELD: &str = "org_key";
pub const CUSTOMER_FIELD: &str = "customer_key";
pub const SCOPE_FIELD: &str = "scope_key";

/// One search's admission rule.
pub struct Admission {
    pub organisation: u64,
    pub customer: Option<u64>,
    pub scopes: HashSet<u64>,
    /// Chunks restricted away from the viewer; `None` when none can be.
    pub excluded: Option<Box<dyn Weight>>,
}

impl Admission {
    pub fn new(
        searcher: &tantivy::Searcher,
        organisation: &str,
        customer: Option<&str>,
        scopes: HashSet<u64>,
        excluded: Option<Box<dyn Query>>,
    ) -> tantivy::Result<Admission> {
        let excluded = match excluded {
            Some(query) => Some(query.weight(EnableScoring::disabled_from_searcher(searcher))?),
            None => None,
        };
        Ok(Admission {
            organisation: key(organisation),
            customer: customer.map(key),
            scopes,
            excluded,
        })
    }

    pub fn for_segment(&self, reader: &SegmentReader) -> tantivy::Result<SegmentAdmission> {
        let fast = reader.fast_fields();
        let mut excluded = vec![0u64; (reader.max_doc() as usize).div_ceil(64)];
        if let Some(weight) = &self.excluded {
            weight.for_each_no_score(reader, &mut |docs| {
                for &doc in docs {
                    excluded[doc as usize / 64] |= 1 << (doc % 64);
                }
            })?;
        }
        Ok(SegmentAdmission {
            organisation: self.organisation,
            customer: self.customer,
            scopes: self.scopes.clone(),
            org_column: fast.u64(ORG_FIELD)?,
            customer_column: fast.u64(CUSTOMER_FIELD)?,
            scope_column: fast.u64(SCOPE_FIELD)?,
            alive: reader.alive_bitset().cloned(),
            excluded,
        })
    }
}

pub struct SegmentAdmission {
    organisation: u64,
    customer: Option<u64>,
    scopes: HashSet<u64>,
    org_column: Column<u64>,
    customer_column: Column<u64>,
    scope_column: Column<u64>,
    alive: Option<tantivy::fastfield::AliveBitSet>,
    excluded: Vec<u64>,
}

impl SegmentAdmission {
    #[inline]
    pub fn admits(&self, doc: DocId) -> bool {
        if self.alive.as_ref().is_some_and(|a| a.is_deleted(doc)) {
            return false;
        }
        if self.excluded[doc as usize / 64] & (1 << (doc % 64)) != 0 {
            return false;
        }
        self.org_column.first(doc) == Some(self.organisation)
            && self
                .customer
                .is_none_or(|c| self.customer_column.first(doc) == Some(c))
            && self
                .scope_column
                .first(doc)
                .is_some_and(|s| self.scopes.contains(&s))
    }
}

/// A heap entry ordered so that the heap's top is the worst kept.
#[derive(PartialEq)]
pub struct Kept(pub Score, pub DocAddress);

impl Eq for Kept {}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// A bounded heap of the best `limit` scores.
pub struct Best {
    limit: usize,
    heap: BinaryHeap<Kept>,
}

impl Best {
    pub fn new(limit: usize) -> Best {
        Best {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    pub fn push(&mut self, score: Score, address: DocAddress) {
        let kept = Kept(score, address);
        if self.heap.len() < self.limit {
            self.heap.push(kept);
        } else if self.heap.peek().is_some_and(|worst| kept < *worst) {
            self.heap.pop();
            self.heap.push(kept);
        }
    }

    /// The score a candidate must beat to enter (once full).
    pub fn threshold(&self) -> Score {
        if self.heap.len() < self.limit {
            Score::MIN
        } else {
            self.heap.peek().map(|w| w.0).unwrap_or(Score::MIN)
        }
    }

    pub fn into_vec(self) -> Vec<(Score, DocAddress)> {
        self.heap.into_iter().map(|k| (k.0, k.1)).collect()
    }
}

pub fn merge(fruits: Vec<Vec<(Score, DocAddress)>>, limit: usize) -> Vec<(Score, DocAddress)> {
    let mut all: Vec<(Score, DocAddress)> = fruits.into_iter().flatten().collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    all.truncate(limit);
    all
}

/// The `limit` best-scoring admitted chunks, with block-WAND pruning.
pub struct TopAdmitted {
    pub limit: usize,
    pub admission: Arc<Admission>,
}

pub struct TopAdmittedInSegment {
    admission: SegmentAdmission,
    segment: SegmentOrdinal,
    best: Best,
}

impl Collector for TopAdmitted {
    type Fruit = Vec<(Score, DocAddress)>;
    type Child = TopAdmittedInSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TopAdmittedInSegment> {
        Ok(TopAdmittedInSegment {
            admission: self.admission.for_segment(reader)?,
            segment,
            best: Best::new(self.limit),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        Ok(merge(fruits, self.limit))
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Fruit> {
        let mut child = self.for_segment(segment, reader)?;
        weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
            if child.admission.admits(doc) {
                child.best.push(score, DocAddress::new(segment, doc));
            }
            child.best.threshold()
        })?;
        Ok(child.harvest())
    }
}

impl SegmentCollector for TopAdmittedInSegment {
    type Fruit = Vec<(Score, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.admission.admits(doc) {
            self.best.push(score, DocAddress::new(self.segment, doc));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.best.into_vec()
    }
}
