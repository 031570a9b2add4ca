//! `POST /build`: the context tar in, the classic builder's JSON stream out.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_build::builder::{BuildOptions, Output};
use berth_store::Reference;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::error::{ApiError, ApiResult};
use super::filters::{parse_until, Filters};
use super::params::Params;
use super::stream::body_reader;
use super::AppState;

fn json_map(raw: Option<&str>, what: &str) -> ApiResult<BTreeMap<String, String>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let value: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {what}: {e}")))?;
    Ok(value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default())
}

pub async fn build(
    State(daemon): State<AppState>,
    params: Params,
    body: Body,
) -> ApiResult<Response> {
    let flag = |name: &str| params.get(name).is_some_and(|v| v == "1" || v == "true");
    let mut tags = Vec::new();
    for t in params.all("t") {
        if t.is_empty() {
            continue;
        }
        tags.push(Reference::parse_with_default_tag(&t)?);
    }
    let options = BuildOptions {
        context: Default::default(),
        dockerfile: params
            .non_empty("dockerfile")
            .unwrap_or("Dockerfile")
            .to_string(),
        tags,
        build_args: json_map(params.get("buildargs"), "buildargs")?,
        labels: json_map(params.get("labels"), "labels")?,
        target: params.non_empty("target").map(String::from),
        no_cache: flag("nocache"),
        network_mode: params.get("networkmode").unwrap_or("").to_string(),
        force_rm: flag("forcerm"),
    };
    let quiet = flag("q");

    // The context: a tar (plain or compressed), unpacked with the store's safe
    // extraction into a scratch directory that goes when the build ends.
    let scratch = daemon.images.temp_dir()?;
    let context = scratch.path().join("context");
    std::fs::create_dir_all(&context)
        .map_err(|e| ApiError::internal(format!("creating the build context: {e}")))?;
    let reader = body_reader(body);
    {
        let context = context.clone();
        tokio::task::spawn_blocking(move || -> ApiResult<()> {
            let (_, tar) = berth_store::compression::decompress(reader).map_err(|e| {
                ApiError::bad_request(format!("the build context is not a tar archive: {e}"))
            })?;
            berth_store::extract::extract_layer(tar, &context).map_err(|e| {
                ApiError::bad_request(format!("the build context is not a valid tar archive: {e}"))
            })?;
            Ok(())
        })
        .await??;
    }
    let options = BuildOptions { context, ..options };

    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    let sink_tx = tx.clone();
    let sink: berth_build::builder::OutputSink = Arc::new(move |o: Output| {
        let _ = match o {
            Output::Stream(text) if !quiet => sink_tx.send(json!({"stream": text})),
            Output::Stream(_) => Ok(()),
            Output::Image(id) => sink_tx.send(json!({"aux": {"ID": id}})),
        };
    });
    let builder = daemon.builder.clone();
    tokio::spawn(async move {
        let _scratch = scratch;
        match builder.build(options, sink).await {
            Ok(id) => {
                if quiet {
                    let _ = tx.send(json!({"stream": format!("{id}\n")}));
                }
            }
            Err(e) => {
                let message = e.to_string();
                let _ = tx.send(json!({"errorDetail": {"message": message}, "error": message}));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| {
            (
                Ok::<_, std::io::Error>(bytes::Bytes::from(format!("{v}\r\n"))),
                rx,
            )
        })
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /build/prune`: the step cache's records (all with `all`, else those no image
/// builds on any more), with the intermediate images only they kept.
pub async fn prune(State(daemon): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let filters = Filters::parse(
        params.get("filters"),
        &["until", "unused-for", "label", "label!"],
    )?;
    let until = match filters
        .get("until")
        .first()
        .or(filters.get("unused-for").first())
    {
        Some(raw) => Some(
            chrono::DateTime::from_timestamp(parse_until(raw)?, 0)
                .ok_or_else(|| ApiError::bad_request(format!("invalid until {raw:?}")))?,
        ),
        None => None,
    };
    let all = params.flag("all");
    let _no_creates = daemon.runtime.exclude_creation().await;
    let builder = daemon.builder.clone();
    let runtime = daemon.runtime.clone();
    let report = tokio::task::spawn_blocking(move || {
        let usage = |id: &berth_store::Digest| runtime.image_usage(id.as_str());
        let selected = |r: &berth_build::cache::CacheRecord| {
            filters.labels_match("label", &r.labels)
                && !filters
                    .get("label!")
                    .iter()
                    .any(|l| Filters::single_label_match(l, &r.labels))
        };
        builder
            .cache()
            .prune(runtime.images(), &usage, all, until, &selected)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    for id in &report.images_deleted {
        daemon.events.image("delete", id.as_str(), id.as_str());
    }
    Ok(Json(json!({
        "CachesDeleted": report.deleted,
        "SpaceReclaimed": report.reclaimed,
    })))
}
