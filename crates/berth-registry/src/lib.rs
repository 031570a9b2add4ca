//! berth's distribution client: pull and push of Docker schema 2 and OCI images
//! against registries speaking the OCI distribution protocol, with Basic and Bearer
//! authentication, mirrors for Docker Hub, and plain HTTP for insecure registries.

pub mod client;
mod error;
pub mod progress;
pub mod pull;
pub mod push;

pub use client::{Credentials, RegistryConfig};
pub use error::{Error, Result};
pub use progress::{Progress, ProgressSink};
pub use pull::{pull, tags, Platform, PullOptions, Pulled};
pub use push::{push, PushOptions, Pushed};

/// `docker login`: checks `credentials` against the registry of `domain`.
pub async fn login(config: &RegistryConfig, domain: &str, credentials: Credentials) -> Result<()> {
    client::Client::first_answering(config, domain, "", Some(credentials), false)
        .await?
        .check_login()
        .await
}
