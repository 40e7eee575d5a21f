//! Exact nearest-neighbour search over the chunks a query admits.
//!
//! Vectors live in the index as a bytes fast field (f32 little endian,
//! unit length). A segment's vectors are read once into one dense array
//! and cached by segment id (segments never change); the collector scores
//! only documents the query matched and the viewer is admitted to, so the
//! permission filter is applied before ranking, never after a top-k.

use crate::admit::{merge, Admission, Best, SegmentAdmission};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

pub const FIELD: &str = "vector";

/// One segment's vectors: `dim` floats per document, `present` where the
/// document has one of that dimension.
pub struct SegmentVectors {
    dim: usize,
    data: Vec<f32>,
    present: Vec<bool>,
}

impl SegmentVectors {
    fn load(reader: &SegmentReader, dim: usize) -> tantivy::Result<SegmentVectors> {
        let max_doc = reader.max_doc() as usize;
        let mut out = SegmentVectors {
            dim,
            data: vec![0.0; max_doc * dim],
            present: vec![false; max_doc],
        };
        let Some(column) = reader.fast_fields().bytes(FIELD)? else {
            return Ok(out);
        };
        // The dictionary in one pass, in ordinal order.
        let mut by_ord: Vec<Option<Vec<f32>>> = Vec::with_capacity(column.num_terms());
        let mut stream = column.dictionary().stream()?;
        while stream.advance() {
            let bytes = stream.key();
            by_ord.push((bytes.len() == dim * 4).then(|| store::vector_from_bytes(bytes)));
        }
        for doc in 0..max_doc {
            if let Some(ord) = column.ords().first(doc as DocId) {
                if let Some(Some(vector)) = by_ord.get(ord as usize) {
                    out.data[doc * dim..(doc + 1) * dim].copy_from_slice(vector);
                    out.present[doc] = true;
                }
            }
        }
        Ok(out)
    }

    fn get(&self, doc: DocId) -> Option<&[f32]> {
        let doc = doc as usize;
        if *self.present.get(doc)? {
            Some(&self.data[doc * self.dim..(doc + 1) * self.dim])
        } else {
            None
        }
    }
}

/// Segment vectors by (segment, dimension).
#[derive(Default)]
pub struct VectorCache {
    segments: Mutex<HashMap<(SegmentId, usize), Arc<SegmentVectors>>>,
}

impl VectorCache {
    fn get(&self, reader: &SegmentReader, dim: usize) -> tantivy::Result<Arc<SegmentVectors>> {
        let key = (reader.segment_id(), dim);
        if let Some(found) = self.segments.lock().get(&key) {
            return Ok(found.clone());
        }
        let loaded = Arc::new(SegmentVectors::load(reader, dim)?);
        self.segments.lock().insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Forgets segments that are no longer searched (merged away).
    pub fn retain(&self, live: &HashSet<SegmentId>) {
        self.segments.lock().retain(|(id, _), _| live.contains(id));
    }
}

/// The `limit` admitted documents nearest to `query` (cosine, as both are
/// unit length) among those the query matched.
pub struct Nearest {
    pub query: Arc<Vec<f32>>,
    pub limit: usize,
    pub cache: Arc<VectorCache>,
    pub admission: Arc<Admission>,
}

pub struct NearestInSegment {
    query: Arc<Vec<f32>>,
    vectors: Arc<SegmentVectors>,
    admission: SegmentAdmission,
    segment: SegmentOrdinal,
    best: Best,
}

impl Collector for Nearest {
    type Fruit = Vec<(f32, DocAddress)>;
    type Child = NearestInSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NearestInSegment> {
        Ok(NearestInSegment {
            query: self.query.clone(),
            vectors: self.cache.get(reader, self.query.len())?,
            admission: self.admission.for_segment(reader)?,
            segment,
            best: Best::new(self.limit),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(f32, DocAddress)>>) -> tantivy::Result<Self::Fruit> {
        Ok(merge(fruits, self.limit))
    }
}

impl SegmentCollector for NearestInSegment {
    type Fruit = Vec<(f32, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if !self.admission.admits(doc) {
            return;
        }
        let Some(vector) = self.vectors.get(doc) else {
            return;
        };
        let score: f32 = vector
            .iter()
            .zip(self.query.iter())
            .map(|(a, b)| a * b)
            .sum();
        self.best.push(score, DocAddress::new(self.segment, doc));
    }

    fn harvest(self) -> Self::Fruit {
        self.best.into_vec()
    }
}
