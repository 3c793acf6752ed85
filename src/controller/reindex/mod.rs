//! The `RemoteReindex` reconciler: [`reconcile`] admits an object and starts its copy as a
//! [`task`] (registered in the [`registry`] so later reconciles can steer it), whose [`sink`]
//! and [`writer`] persist phases, progress and conditions ([`status`], [`live`] for catch-up);
//! deletion runs [`cleanup`] behind the finalizer.

pub mod cleanup;
pub mod live;
pub mod reconcile;
pub mod registry;
pub mod sink;
pub mod status;
pub mod task;
pub mod writer;
