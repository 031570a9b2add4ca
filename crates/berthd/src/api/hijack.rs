//! Hijacked connections for `attach` and `exec start`: the client asks to upgrade to raw
//! TCP, we answer `101 UPGRADED`, and from then on bytes flow both ways between the
//! client and the shim. A half-close from the client reaches the shim as EOF on stdin;
//! output keeps flowing until the shim ends it.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// The upgrade handle of a request that asked for one.
pub fn take_upgrade(request: &mut Request) -> Option<OnUpgrade> {
    let wants = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if wants {
        request.extensions_mut().remove::<OnUpgrade>()
    } else {
        None
    }
}

/// The `101` reply that tells the client the stream is raw from here.
pub fn upgraded_response(tty: bool) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    response
}

/// Copies both ways until both directions are done.
pub async fn splice<S>(upgrade: OnUpgrade, mut shim: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let upgraded = match upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!("upgrade failed: {e}");
            return;
        }
    };
    let mut client = TokioIo::new(upgraded);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut shim).await;
}

/// For clients that did not ask to upgrade: the output as an ordinary streamed body.
pub fn output_body<S>(shim: S, tty: bool) -> Response
where
    S: AsyncRead + Send + 'static,
{
    let stream = tokio_util::io::ReaderStream::new(shim);
    (
        [(
            header::CONTENT_TYPE,
            if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )],
        Body::from_stream(stream),
    )
        .into_response()
}
