//! `HttpRuntimeClient` pipelining its `GET`s and inputs, against a raw loopback
//! runtime that reads requests as they come (several per read when pipelined),
//! answers each batch in one write, and can close, delay, split or say more than
//! it was asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use switchyard_protocol::{InputRequest, WorkerId};
use switchyard_transport::{HttpRuntimeClient, RemoteEndpoint, RuntimeClient, SecretToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the runtime does with one request: its connection's number (from 0), the
/// request's number on that connection (from 0) and its path.
type Script = dyn Fn(usize, usize, &str) -> Act + Send + Sync;

/// One request's fate.
enum Act {
    /// Answer with this worker's detail.
    Detail(String),
    /// Answer with this worker's detail, then an answer nobody asked for.
    DetailAndMore(String),
    /// Wait, then answer with this worker's detail (later answers wait too).
    Late(Duration, String),
    /// Close the connection without answering this or anything after it.
    Close,
    /// Send half of this worker's answer, then close.
    Truncated(String),
    /// Send half of this worker's answer, wait, then the rest.
    Split(Duration, String),
    /// Accept an input: its sequence is the number its text holds.
    Accept,
}

struct Runtime {
    port: u16,
    accepted: Arc<AtomicUsize>,
    /// The texts of the inputs received, over all connections.
    inputs: Arc<Mutex<Vec<String>>>,
    /// How many requests each read brought, over all connections.
    batches: Arc<Mutex<Vec<usize>>>,
    task: JoinHandle<()>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Runtime {
    async fn start(script: impl Fn(usize, usize, &str) -> Act + Send + Sync + 'static) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (accepted, batches, inputs) = (accepted.clone(), batches.clone(), inputs.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = accepted.fetch_add(1, Ordering::SeqCst);
                    let seen = Seen {
                        batches: batches.clone(),
                        inputs: inputs.clone(),
                    };
                    tokio::spawn(serve(stream, connection, script.clone(), seen));
                }
            })
        };
        Self {
            port,
            accepted,
            inputs,
            batches,
            task,
        }
    }

    fn client(&self) -> HttpRuntimeClient {
        HttpRuntimeClient::new(RemoteEndpoint::new(
            format!("http://127.0.0.1:{}", self.port),
            SecretToken::new("pipelining-token").unwrap(),
            Duration::from_secs(5),
            Duration::from_secs(20),
        ))
        .unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn largest_batch(&self) -> usize {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

/// What the runtime records of the requests it reads.
struct Seen {
    /// How many requests each read brought.
    batches: Arc<Mutex<Vec<usize>>>,
    /// The texts of the inputs.
    inputs: Arc<Mutex<Vec<String>>>,
}

/// Serves one connection: every complete request of a read is answered in one
/// write, in order.
async fn serve(mut stream: TcpStream, connection: usize, script: Arc<Script>, seen: Seen) {
    let Seen { batches, inputs } = seen;
    let mut buffer = Vec::new();
    let mut served = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut in_batch = 0;
        while let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let whole = end + 4 + content_length(&head);
            if buffer.len() < whole {
                break;
            }
            let body = String::from_utf8_lossy(&buffer[end + 4..whole]).into_owned();
            buffer.drain(..whole);
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let text = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["text"].as_str().map(str::to_owned));
            if let Some(text) = &text {
                inputs.lock().unwrap().push(text.clone());
            }
            in_batch += 1;
            let act = script(connection, served, &path);
            served += 1;
            match act {
                Act::Detail(id) => out.extend(detail(&id)),
                Act::DetailAndMore(id) => {
                    out.extend(detail(&id));
                    out.extend(detail("nobody-asked"));
                }
                Act::Late(delay, id) => {
                    stream.write_all(&out).await.ok();
                    out.clear();
                    tokio::time::sleep(delay).await;
                    out.extend(detail(&id));
                }
                Act::Close => {
                    stream.write_all(&out).await.ok();
                    batches.lock().unwrap().push(in_batch);
                    return;
                }
                Act::Split(delay, id) => {
                    let answer = detail(&id);
                    out.extend_from_slice(&answer[..answer.len() / 2]);
                    stream.write_all(&out).await.ok();
                    out.clear();
                    tokio::time::sleep(delay).await;
                    out.extend_from_slice(&answer[answer.len() / 2..]);
                }
                Act::Accept => {
                    let sequence: u64 = text.and_then(|t| t.parse().ok()).unwrap_or(u64::MAX);
                    let body = json!({ "sequence": sequence }).to_string();
                    out.extend(
                        format!(
                            "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .into_bytes(),
                    );
                }
                Act::Truncated(id) => {
                    let answer = detail(&id);
                    out.extend_from_slice(&answer[..answer.len() / 2]);
                    stream.write_all(&out).await.ok();
                    batches.lock().unwrap().push(in_batch);
                    return;
                }
            }
        }
        batches.lock().unwrap().push(in_batch);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The `content-length` a request's head gives, 0 without one.
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A `200` answer with worker `id`'s detail.
fn detail(id: &str) -> Vec<u8> {
    let body = json!({
        "worker_id": id, "runtime_id": "build-1", "profile": "echo", "label": null,
        "status": "running", "created_at": "2026-11-26T09:00:00Z",
        "updated_at": "2026-11-26T09:00:01Z", "exit": null,
        "input_count": 0, "output_bytes": 0
    })
    .to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The worker a request's path names.
fn asked(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

fn ids(n: usize) -> Vec<WorkerId> {
    (0..n)
        .map(|i| WorkerId::new(format!("w-{i}")).unwrap())
        .collect()
}

/// Asks for every worker of `ids` at once; each answer must be its own worker's.
async fn get_all(client: &HttpRuntimeClient, ids: &[WorkerId]) {
    let answers = join_all(ids.iter().map(|id| client.get_worker(id))).await;
    for (id, answer) in ids.iter().zip(answers) {
        let detail = answer.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(detail.worker_id, *id, "an answer went to the wrong request");
    }
}

/// A runtime script: worker `slow` is answered by `act` 300 ms late (or in part),
/// every other worker at once.
fn slow_worker(act: fn(Duration, String) -> Act) -> impl Fn(usize, usize, &str) -> Act {
    move |_, _, path| {
        let id = asked(path);
        if id == "slow" {
            act(Duration::from_millis(300), id)
        } else {
            Act::Detail(id)
        }
    }
}

/// After one warm-up `GET`, asks for worker `slow` but gives up after `patience`,
/// while eight others queued just behind it must each get their own answer.
async fn give_up_on_slow_behind_others(client: &HttpRuntimeClient, patience: Duration) {
    get_all(client, &ids(1)).await;
    let slow = WorkerId::new("slow").unwrap();
    let impatient = tokio::time::timeout(patience, client.get_worker(&slow));
    let (gave_up, ()) = tokio::join!(impatient, async {
        // Queued behind `slow`.
        tokio::time::sleep(Duration::from_millis(10)).await;
        get_all(client, &ids(8)).await;
    });
    assert!(
        gave_up.is_err(),
        "the impatient request should have given up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_share_a_few_connections_and_each_gets_its_own_answer() {
    let runtime = Runtime::start(|_, _, path| Act::Detail(asked(path))).await;
    let client = runtime.client();
    get_all(&client, &ids(1)).await;
    for _ in 0..5 {
        get_all(&client, &ids(64)).await;
    }
    assert!(
        runtime.accepted() <= 2,
        "{} connections for 321 GETs",
        runtime.accepted()
    );
    assert!(
        runtime.largest_batch() > 1,
        "no read brought more than one request: nothing was pipelined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_unanswered_when_a_connection_closes_are_sent_again() {
    // The first connection answers three requests, then closes under the rest.
    let runtime = Runtime::start(|connection, served, path| {
        if connection == 0 && served >= 3 {
            Act::Close
        } else {
            Act::Detail(asked(path))
        }
    })
    .await;
    let client = runtime.client();
    get_all(&client, &ids(1)).await;
    get_all(&client, &ids(40)).await;
    assert!(runtime.accepted() >= 2, "the unanswered went out again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_nobody_asked_for_retires_the_connection() {
    let runtime = Runtime::start(|connection, _, path| {
        if connection == 0 {
            Act::DetailAndMore(asked(path))
        } else {
            Act::Detail(asked(path))
        }
    })
    .await;
    let client = runtime.client();
    get_all(&client, &ids(1)).await;
    // The stray answer must not be taken for the next request's.
    for _ in 0..3 {
        get_all(&client, &ids(1)).await;
    }
    get_all(&client, &ids(20)).await;
    assert!(
        runtime.accepted() >= 2,
        "the connection was not trusted again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_stops_waiting_leaves_the_order_intact() {
    // `slow`'s answer comes late; the answers behind it wait for it.
    let runtime = Runtime::start(slow_worker(Act::Late)).await;
    let client = runtime.client();
    give_up_on_slow_behind_others(&client, Duration::from_millis(50)).await;
    // And the connection (or its replacement) still answers in order.
    get_all(&client, &ids(16)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_anywhere_never_give_a_request_another_ones_answer() {
    // Every connection but every fourth is cut after a few answers, the last of
    // them cut short in its body; answers must still go to their own requests.
    let runtime = Runtime::start(|connection, served, path| {
        if connection % 4 != 3 && served >= 2 + connection % 5 {
            Act::Close
        } else if connection % 4 != 3 && served == 1 + connection % 5 {
            Act::Truncated(asked(path))
        } else {
            Act::Detail(asked(path))
        }
    })
    .await;
    let client = runtime.client();
    for _ in 0..30 {
        let ids = ids(24);
        let answers = join_all(ids.iter().map(|id| client.get_worker(id))).await;
        for (id, answer) in ids.iter().zip(answers) {
            // A request may fail (its answer was cut short), never get another's.
            if let Ok(detail) = answer {
                assert_eq!(detail.worker_id, *id, "an answer went to the wrong request");
            }
        }
    }
}

/// Sends input `i` (its text is `i`) to worker `w-0`; the answer must carry `i`.
async fn send_input(client: &HttpRuntimeClient, i: u64) -> Result<(), String> {
    let worker = WorkerId::new("w-0").unwrap();
    let request = InputRequest {
        text: i.to_string(),
    };
    let accepted = client
        .input(&worker, &request)
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(
        accepted.sequence, i,
        "an input got another request's answer"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_and_gets_share_a_pipe_and_each_gets_its_own_answer() {
    let runtime = Runtime::start(|_, _, path| {
        if path.ends_with("/input") {
            Act::Accept
        } else {
            Act::Detail(asked(path))
        }
    })
    .await;
    let client = runtime.client();
    get_all(&client, &ids(1)).await;
    let gets = ids(24);
    for round in 0..5 {
        let inputs = join_all((0..24).map(|i| send_input(&client, round * 100 + i)));
        let (inputs, ()) = tokio::join!(inputs, get_all(&client, &gets));
        for input in inputs {
            input.unwrap();
        }
    }
    assert!(
        runtime.accepted() <= 2,
        "{} connections for 241 requests",
        runtime.accepted()
    );
    assert!(runtime.largest_batch() > 1, "nothing was pipelined");
    assert_eq!(runtime.inputs.lock().unwrap().len(), 120, "each input once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_written_before_a_connection_closed_is_not_sent_twice() {
    // The first connection closes when the input comes, without answering it.
    let runtime = Runtime::start(|connection, _, path| {
        if path.ends_with("/input") && connection == 0 {
            Act::Close
        } else if path.ends_with("/input") {
            Act::Accept
        } else {
            Act::Detail(asked(path))
        }
    })
    .await;
    let client = runtime.client();
    get_all(&client, &ids(1)).await;
    let error = send_input(&client, 7)
        .await
        .expect_err("the input's fate is unknown: it must fail, not be repeated");
    assert!(
        error.contains("runtime"),
        "the error should say what happened: {error}"
    );
    assert_eq!(*runtime.inputs.lock().unwrap(), ["7"], "sent once only");
    // The next input goes out on a fresh connection.
    send_input(&client, 8).await.unwrap();
    assert_eq!(runtime.accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_up_in_the_middle_of_its_answer_keeps_the_connection() {
    // Half of `slow`'s answer comes at once, the rest 300 ms later; the request
    // gives up in between, and those behind it get their answers on the same
    // connection.
    let runtime = Runtime::start(slow_worker(Act::Split)).await;
    let client = runtime.client();
    give_up_on_slow_behind_others(&client, Duration::from_millis(100)).await;
    get_all(&client, &ids(8)).await;
    assert_eq!(
        runtime.accepted(),
        1,
        "giving up on a Content-Length answer must not cost the connection"
    );
}
