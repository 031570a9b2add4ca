//! berth's image store.
//!
//! # Layout
//! - [`content`]: blobs by digest, verified before they become visible
//! - [`layer`]: unpacked layers keyed by chain id, in overlayfs form
//! - [`extract`]: the contained tar unpacker every layer goes through
//! - [`store`]: images and references over the two, with deletion rules and GC
//! - [`archive`]: `save` and `load` (docker-archive and OCI layout)
//! - [`reference`]: Docker's reference grammar and normalization
//! - [`image`], [`change`]: the image config and `--change` lines

pub mod archive;
pub mod change;
pub mod compression;
pub mod content;
pub mod digest;
pub mod error;
pub mod extract;
pub mod fsutil;
pub mod image;
pub mod layer;
pub mod pack;
pub mod reference;
pub mod store;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use image::{ConfigChange, ContainerConfig, ImageConfig};
pub use reference::Reference;
pub use store::{DeleteItem, Image, ImageStore, ImageUsage, ImageView, ImportOptions};
