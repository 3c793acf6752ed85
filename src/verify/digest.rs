//! Order-independent digests of an index: each document hashes to 128 bits (xxh3) over its id,
//! routing and canonical `_source`; an index is the wrapping sum of those hashes, kept per
//! bucket of the id's hash so that a difference can be narrowed down without holding every id.

use super::canonical::{CanonicalError, canonicalize};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// Buckets per side: 4096 × 24 bytes of state, whatever the index's size.
pub const BUCKETS: usize = 4096;

/// What identifies a document in an index: its `_id` and `_routing`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey {
    /// `_id`, unescaped.
    pub id: String,
    /// `_routing`, unescaped, when the document has one.
    pub routing: Option<String>,
}

impl std::fmt::Display for DocKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.routing {
            Some(r) => write!(f, "{} (routing {r})", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// The bucket of a document: from its id only, so that a changed document falls in the same
/// bucket on both sides.
pub fn bucket_of(id: &str) -> usize {
    (xxh3_64(id.as_bytes()) as usize) & (BUCKETS - 1)
}

/// Hashes documents; keeps its canonicalisation buffer between documents.
#[derive(Default)]
pub struct DocHasher {
    buf: Vec<u8>,
}

impl DocHasher {
    /// The 128-bit hash of one document. Fields are length-prefixed so that no two different
    /// (id, routing, source) triples share an input; a missing `_source` hashes differently
    /// from any present one.
    pub fn hash(&mut self, key: &DocKey, source: Option<&str>) -> Result<u128, CanonicalError> {
        let mut h = Xxh3::new();
        h.update(&(key.id.len() as u64).to_le_bytes());
        h.update(key.id.as_bytes());
        match &key.routing {
            Some(r) => {
                h.update(&[1]);
                h.update(&(r.len() as u64).to_le_bytes());
                h.update(r.as_bytes());
            }
            None => h.update(&[0]),
        }
        match source {
            Some(s) => {
                self.buf.clear();
                canonicalize(s, &mut self.buf)?;
                h.update(&[1]);
                h.update(&self.buf);
            }
            None => h.update(&[0]),
        }
        Ok(h.digest128())
    }
}

/// Per-bucket wrapping sums and counts of document hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    sums: Vec<u128>,
    counts: Vec<u64>,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            sums: vec![0; BUCKETS],
            counts: vec![0; BUCKETS],
        }
    }
}

impl Digest {
    /// Adds one document's hash to its bucket.
    pub fn add(&mut self, bucket: usize, hash: u128) {
        self.sums[bucket] = self.sums[bucket].wrapping_add(hash);
        self.counts[bucket] += 1;
    }

    /// Adds another digest (e.g. a finished slice's).
    pub fn merge(&mut self, other: &Digest) {
        for b in 0..BUCKETS {
            self.sums[b] = self.sums[b].wrapping_add(other.sums[b]);
            self.counts[b] += other.counts[b];
        }
    }

    /// Documents counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The whole index's digest: the wrapping sum of every document's hash.
    #[cfg(test)]
    pub fn total(&self) -> u128 {
        self.sums.iter().fold(0u128, |a, s| a.wrapping_add(*s))
    }

    /// Documents counted in `bucket`.
    pub fn count_in(&self, bucket: usize) -> u64 {
        self.counts[bucket]
    }

    /// The buckets whose sum or count differ from `other`'s.
    pub fn differing_buckets(&self, other: &Digest) -> Vec<usize> {
        (0..BUCKETS)
            .filter(|&b| self.sums[b] != other.sums[b] || self.counts[b] != other.counts[b])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, routing: Option<&str>) -> DocKey {
        DocKey {
            id: id.into(),
            routing: routing.map(Into::into),
        }
    }

    #[test]
    fn equal_documents_hash_equal_however_serialised() {
        let mut h = DocHasher::default();
        let a = h.hash(&key("1", None), Some(r#"{"a":1,"b":"é"}"#)).unwrap();
        let b = h
            .hash(&key("1", None), Some("{ \"b\": \"\\u00e9\", \"a\": 1 }"))
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a,
            h.hash(&key("2", None), Some(r#"{"a":1,"b":"é"}"#)).unwrap()
        );
        assert_ne!(
            a,
            h.hash(&key("1", Some("r")), Some(r#"{"a":1,"b":"é"}"#))
                .unwrap()
        );
        assert_ne!(
            a,
            h.hash(&key("1", None), Some(r#"{"a":2,"b":"é"}"#)).unwrap()
        );
        assert_ne!(
            h.hash(&key("1", None), None).unwrap(),
            h.hash(&key("1", None), Some("null")).unwrap()
        );
        // Length prefixes: moving a character between id and routing changes the hash.
        assert_ne!(
            h.hash(&key("ab", Some("c")), Some("{}")).unwrap(),
            h.hash(&key("a", Some("bc")), Some("{}")).unwrap()
        );
    }

    #[test]
    fn digests_ignore_order_and_locate_differences() {
        let mut h = DocHasher::default();
        let docs: Vec<(DocKey, String)> = (0..500)
            .map(|i| (key(&format!("d{i}"), None), format!(r#"{{"n":{i}}}"#)))
            .collect();
        let digest = |docs: &mut dyn Iterator<Item = &(DocKey, String)>, h: &mut DocHasher| {
            let mut d = Digest::default();
            for (k, s) in docs {
                d.add(bucket_of(&k.id), h.hash(k, Some(s)).unwrap());
            }
            d
        };
        let a = digest(&mut docs.iter(), &mut h);
        let b = digest(&mut docs.iter().rev(), &mut h);
        assert_eq!(a, b);
        assert_eq!(a.total(), b.total());
        assert_eq!(a.count(), 500);
        // Two halves merged equal the whole.
        let mut halves = digest(&mut docs[..200].iter(), &mut h);
        halves.merge(&digest(&mut docs[200..].iter(), &mut h));
        assert_eq!(halves, a);
        let mut changed = docs.clone();
        changed[7].1 = r#"{"n":-7}"#.into();
        let c = digest(&mut changed.iter(), &mut h);
        assert_eq!(a.differing_buckets(&c), vec![bucket_of("d7")]);
        assert_ne!(a.total(), c.total());
    }
}
