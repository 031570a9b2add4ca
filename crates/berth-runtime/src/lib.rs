//! berth's containers, as berthd sees them.
//!
//! # Layout
//! - [`record`]: the container's definition and state, one JSON file each
//! - [`manager`]: the lifecycle (create, start, stop, remove, wait, exec) and exits
//! - [`spec`]: the OCI runtime spec with Docker's defaults
//! - [`rootfs`]: the overlay root filesystem and the generated /etc files
//! - [`shim`]: spawning and talking to `berth-shim`
//! - [`logs`], [`stats`]: reading the json-file log and the cgroup counters
//! - [`netns`], [`user`], [`names`]: network namespaces, `--user`, container names

pub mod error;
pub mod files;
pub mod health;
pub mod logs;
pub mod manager;
pub mod mounts;
pub mod names;
pub mod netns;
pub mod network;
pub mod record;
pub mod rootfs;
pub mod seccomp;
pub mod seccomp_filter;
pub mod shim;
pub mod sizes;
pub mod spec;
pub mod stats;
pub mod update;
pub mod user;

pub use error::{Error, Result};
pub use manager::{Change, Exec, Runtime, RuntimeConfig, RuntimeEvent, VolumeUsage};
pub use record::{Container, ContainerRecord, ContainerState, NetworkAttachment, Status};
