//! A minimal event-WebSocket viewer: connects, checks the first frame is a snapshot,
//! then hands out the kinds (and output text) of the frames that follow.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Result;
use crate::api::Endpoint;

/// Longest wait for any one frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// What one frame said, as far as the benchmark cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An `output` event with this text.
    Output(String),
    /// An `input` event.
    Input,
    /// The worker ended (`exited` event, or a `status` event to an ended status).
    Ended,
    /// Any other frame (status, snapshot after a reset, upstream notices, ...).
    Other,
    /// The server closed the connection, with this close code.
    Closed(Option<u16>),
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    event: Option<RawEvent<'a>>,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
}

/// Classifies one JSON text frame.
pub fn classify(text: &str) -> Result<Frame> {
    let raw: RawFrame<'_> = serde_json::from_str(text)?;
    if raw.kind != "event" {
        return Ok(Frame::Other);
    }
    let Some(event) = raw.event else {
        return Err(format!("event frame without event: {text}").into());
    };
    Ok(match event.kind.as_ref() {
        "output" => Frame::Output(event.text.unwrap_or_default().into_owned()),
        "input" => Frame::Input,
        "exited" => Frame::Ended,
        "status"
            if matches!(
                event.status.as_deref(),
                Some("exited" | "stopped" | "failed" | "lost")
            ) =>
        {
            Frame::Ended
        }
        _ => Frame::Other,
    })
}

/// One connected viewer of one worker's events.
#[derive(Debug)]
pub struct Viewer {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Viewer {
    /// Connects to `worker`'s event WebSocket on `ep` and reads the snapshot.
    pub async fn connect(ep: &Endpoint, worker: &str) -> Result<Self> {
        let mut request = ep.ws_url(worker).into_client_request()?;
        if let Some(auth) = ep.authorization() {
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, auth.parse()?);
        }
        let (stream, _) =
            tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| "WebSocket connect timed out")?
                .map_err(|e| format!("WebSocket connect to {}: {e}", ep.target.label()))?;
        let mut viewer = Self { stream };
        match viewer.next_text().await? {
            Some(text) if text.contains("\"kind\":\"snapshot\"") => Ok(viewer),
            Some(text) => Err(format!("first frame is not a snapshot: {text:.200}").into()),
            None => Err("closed before the snapshot".into()),
        }
    }

    async fn next_text(&mut self) -> Result<Option<String>> {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .map_err(|_| "no WebSocket frame in 60 s")?;
            match message {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("WebSocket: {e}").into()),
                Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame.
    pub async fn next(&mut self) -> Result<Frame> {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .map_err(|_| "no WebSocket frame in 60 s")?;
            match message {
                None => return Ok(Frame::Closed(None)),
                Some(Err(e)) => return Err(format!("WebSocket: {e}").into()),
                Some(Ok(Message::Text(text))) => return classify(text.as_str()),
                Some(Ok(Message::Close(close))) => {
                    return Ok(Frame::Closed(close.map(|c| u16::from(c.code))));
                }
                // Pings are answered by tungstenite on the next read or write.
                Some(Ok(_)) => {}
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = self
                .stream
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }))
                .await;
            while let Some(Ok(_)) = self.stream.next().await {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        let out = r#"{"type":"event","cursor":"c","worker_id":"w","event":{"kind":"output","sequence":2,"stream":"stdout","text":"hi\n"}}"#;
        assert_eq!(classify(out).unwrap(), Frame::Output("hi\n".into()));
        let input =
            r#"{"type":"event","cursor":"c","event":{"kind":"input","sequence":1,"text":"x"}}"#;
        assert_eq!(classify(input).unwrap(), Frame::Input);
        let exited =
            r#"{"type":"event","cursor":"c","event":{"kind":"exited","code":0,"signal":null}}"#;
        assert_eq!(classify(exited).unwrap(), Frame::Ended);
        let status = r#"{"type":"event","cursor":"c","event":{"kind":"status","status":"stopped","previous":"running"}}"#;
        assert_eq!(classify(status).unwrap(), Frame::Ended);
        let running = r#"{"type":"event","cursor":"c","event":{"kind":"status","status":"running","previous":"starting"}}"#;
        assert_eq!(classify(running).unwrap(), Frame::Other);
        let upstream = r#"{"type":"upstream","state":"lost","error":null}"#;
        assert_eq!(classify(upstream).unwrap(), Frame::Other);
    }
}
