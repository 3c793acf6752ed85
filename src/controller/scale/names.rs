//! Names, labels and annotations of scale-out's Leases, deterministic from the copy's UID and
//! the slice number, so that every replica finds the same objects without asking anyone.

/// Label on every scale-out Lease: `slice` or `worker`.
pub const ROLE: &str = "reindex.dev/lease-role";
/// Label on slice Leases: the `RemoteReindex`'s UID.
pub const COPY_UID: &str = "reindex.dev/copy-uid";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Annotation: the `RemoteReindex`'s name (in the Lease's namespace).
pub const RESOURCE: &str = "reindex.dev/resource";
/// Annotation: the slice number.
pub const SLICE: &str = "reindex.dev/slice";
/// Annotation: how many slices the copy has.
pub const SLICES: &str = "reindex.dev/slices";
/// Annotation: `pit` or `scroll`.
pub const PAGING: &str = "reindex.dev/paging";
/// Annotation: the point-in-time API (`elasticsearch` or `opensearch`).
pub const PIT_API: &str = "reindex.dev/pit-api";
/// Annotation: the point in time the planner opened.
pub const PIT_ID: &str = "reindex.dev/pit-id";
/// Annotation: the generation of the point in time in `PIT_ID` (the planner's count of
/// renewals). Every slice of a copy reads one generation; a Lease of an older one is replanned.
pub const PIT_GENERATION: &str = "reindex.dev/pit-generation";
/// Annotation: whether the destination was empty when the copy first started.
pub const DEST_WAS_EMPTY: &str = "reindex.dev/dest-was-empty";
/// Annotation: the slice's state (`pending`, `running`, `done`, `failed`).
pub const STATE: &str = "reindex.dev/state";
/// Annotation: the slice's checkpoint (a `status.slices[]` entry, JSON).
pub const CHECKPOINT: &str = "reindex.dev/checkpoint";
/// Annotation: why the slice failed.
pub const ERROR: &str = "reindex.dev/error";
/// Annotation: every identity that held the slice, in order (comma-separated, capped).
pub const HOLDERS: &str = "reindex.dev/holders";

/// The Lease of slice `slice` of the copy with UID `uid`.
pub fn slice_lease(uid: &str, slice: u32) -> String {
    format!("rr-slice-{uid}-{slice}")
}

/// The announcement Lease of worker `identity` (a DNS subdomain whatever the identity holds).
pub fn worker_lease(identity: &str) -> String {
    let clean: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let mut name = format!("rr-worker-{clean}");
    name.truncate(200);
    name.trim_end_matches('-').to_string()
}

/// Label selector of every slice Lease, or of one copy's.
pub fn slice_selector(uid: Option<&str>) -> String {
    match uid {
        Some(u) => format!("{ROLE}=slice,{COPY_UID}={u}"),
        None => format!("{ROLE}=slice"),
    }
}

/// Label selector of the worker announcement Leases.
pub fn worker_selector() -> String {
    format!("{ROLE}=worker")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_dns_subdomains() {
        assert_eq!(
            slice_lease("5c1b5a43-0f3e-4a55-9a1e-4b2a6a0e2f10", 11),
            "rr-slice-5c1b5a43-0f3e-4a55-9a1e-4b2a6a0e2f10-11"
        );
        assert_eq!(
            worker_lease("Operator-7d9f_00ab12cd34ef5678"),
            "rr-worker-operator-7d9f-00ab12cd34ef5678"
        );
        assert!(worker_lease(&"x".repeat(400)).len() <= 200);
    }
}
