// The console's event stream (crates/server/console/stream.js) under node's test
// runner, with a scripted WebSocket: cursors, resuming, states and refusals.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { INPUT_FRAME_BYTES, WorkerStream, inputChunks } from '../../../crates/server/console/stream.js';

class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.made.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(value) {
    this.onmessage?.({ data: JSON.stringify(value) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  close(code) {
    this.readyState = 3;
    this.closedWith = code;
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const event = (cursor, sequence) => ({ type: 'event', cursor, event: { kind: 'output', sequence, stream: 'stdout', text: `${sequence}\n` } });

function harness({ probe, interactive = false } = {}) {
  FakeSocket.made = [];
  const log = { events: [], states: [], resets: [], refused: [] };
  const stream = new WorkerStream({
    url: 'ws://backend/api/runtimes/rt/workers/w/events/ws',
    interactive,
    probe,
    WebSocketImpl: FakeSocket,
    backoff: { initial: 1, max: 4 },
    handlers: {
      onEvent: (e) => log.events.push(e.sequence),
      onState: (state, detail) => log.states.push(detail.cause ? `${state}:${detail.cause}` : state),
      onReset: (reason) => log.resets.push(reason),
      onRefused: (error) => log.refused.push(error.code),
    },
  });
  stream.start();
  return { stream, log, socket: (i) => FakeSocket.made[i] };
}

test('a dropped connection resumes from the last cursor and says so', async () => {
  const { stream, log, socket } = harness();
  assert.equal(socket(0).url, 'ws://backend/api/runtimes/rt/workers/w/events/ws');
  socket(0).open();
  socket(0).frame(event('c1', 1));
  socket(0).frame(event('c+2', 2));
  socket(0).drop();
  await sleep(20);
  assert.equal(socket(1).url, 'ws://backend/api/runtimes/rt/workers/w/events/ws?cursor=c%2B2');
  socket(1).open();
  socket(1).frame(event('c3', 3));
  assert.deepEqual(log.events, [1, 2, 3]);
  assert.deepEqual(log.states, ['connecting', 'connected', 'reconnecting:connection', 'restored:connection']);
  stream.close();
});

test('the backend losing the runtime is reconnecting, then restored, on the same connection', () => {
  const { stream, log, socket } = harness();
  socket(0).open();
  socket(0).frame(event('c1', 1));
  socket(0).frame({ type: 'upstream', state: 'lost', error: { code: 'runtime_unreachable', message: 'down' } });
  socket(0).frame({ type: 'reset', reason: 'runtime_restarted' });
  socket(0).frame({ type: 'upstream', state: 'restored', error: null });
  assert.deepEqual(log.states, ['connecting', 'connected', 'reconnecting:upstream', 'restored:upstream']);
  assert.deepEqual(log.resets, ['runtime_restarted']);
  assert.equal(FakeSocket.made.length, 1);
  stream.close();
});

test('a deleted worker (4404) ends the stream without reconnecting', async () => {
  const { log, socket } = harness();
  socket(0).open();
  socket(0).drop(4404);
  await sleep(20);
  assert.equal(FakeSocket.made.length, 1);
  assert.deepEqual(log.states, ['connecting', 'ended']);
});

test('a 4404 for a runtime the backend no longer has ends the stream saying so', async () => {
  const removed = Object.assign(new Error('no runtime remote'), { status: 404, code: 'runtime_not_found' });
  const details = [];
  const { socket, stream } = harness({ probe: () => Promise.reject(removed) });
  stream.handlers.onState = (state, detail) => details.push([state, detail]);
  socket(0).open();
  socket(0).drop(4404);
  await sleep(20);
  assert.equal(FakeSocket.made.length, 1);
  assert.deepEqual(details, [['ended', { reason: 'runtime_removed', error: { code: 'runtime_not_found', message: 'no runtime remote' } }]]);
});

test('a 4404 for a worker deleted is worker_deleted', async () => {
  const deleted = Object.assign(new Error('no worker w'), { status: 404, code: 'worker_not_found' });
  const details = [];
  const { socket, stream } = harness({ probe: () => Promise.reject(deleted) });
  stream.handlers.onState = (state, detail) => details.push([state, detail]);
  socket(0).open();
  socket(0).drop(4404);
  await sleep(20);
  assert.deepEqual(details, [['ended', { reason: 'worker_deleted' }]]);
});

test('a refused upgrade is explained by the API and not retried', async () => {
  const refusal = Object.assign(new Error('no such worker'), { status: 404, code: 'worker_not_found' });
  const { log, socket, stream } = harness({ probe: () => Promise.reject(refusal) });
  socket(0).drop();
  await sleep(20);
  assert.equal(FakeSocket.made.length, 1);
  assert.deepEqual(log.states, ['connecting', 'ended']);
  assert.equal(stream.state, 'ended');
});

test('a stream closed while its refusal is being explained reports nothing', async () => {
  // A 401 probe ends the session: the page closes the stream before the answer is
  // thrown back to it.
  const expired = Object.assign(new Error('sign in again'), { status: 401, code: 'unauthorized' });
  let stream;
  const h = harness({
    probe: () => {
      stream.close();
      return Promise.reject(expired);
    },
  });
  stream = h.stream;
  h.socket(0).drop();
  await sleep(20);
  assert.deepEqual(h.log.states, ['connecting']);
  assert.equal(FakeSocket.made.length, 1);
});

test('the backend being down is retried with backoff', async () => {
  const down = Object.assign(new Error('no answer'), { status: 0, code: 'network_error' });
  const { socket, stream } = harness({ probe: () => Promise.reject(down) });
  socket(0).drop();
  await sleep(20);
  socket(1).drop();
  await sleep(20);
  assert.ok(FakeSocket.made.length >= 3);
  stream.close();
});

test('a backend down for several attempts keeps the cursor to resume from', async () => {
  const down = Object.assign(new Error('no answer'), { status: 0, code: 'network_error' });
  let answering = false;
  const { log, socket, stream } = harness({
    probe: () => (answering ? Promise.resolve({}) : Promise.reject(down)),
  });
  socket(0).open();
  socket(0).frame(event('c7', 7));
  for (let i = 0; i < 4; i += 1) {
    socket(i).drop();
    await sleep(20);
  }
  answering = true;
  assert.match(socket(4).url, /cursor=c7/);
  assert.deepEqual(log.resets, []);
  socket(4).open();
  socket(4).frame(event('c8', 8));
  assert.deepEqual(log.events, [7, 8]);
  assert.equal(stream.state, 'restored');
  stream.close();
});

test('a runtime the backend cannot reach is reported with its error, and retried', async () => {
  const unreachable = Object.assign(new Error('the runtime did not answer'), {
    status: 502,
    code: 'runtime_unreachable',
  });
  const { socket, stream } = harness({ probe: () => Promise.reject(unreachable) });
  const states = [];
  stream.handlers.onState = (state, detail) => states.push([state, detail.cause, detail.error?.code]);
  socket(0).drop();
  await sleep(20);
  assert.deepEqual(states[0], ['reconnecting', 'upstream', 'runtime_unreachable']);
  assert.ok(FakeSocket.made.length >= 2, 'retried');
  stream.close();
});

test("another 5xx (a proxy's 502, the backend overloaded) is the connection's, not the runtime's", async () => {
  const proxy = Object.assign(new Error('<html>Bad Gateway</html>'), { status: 502, code: 'http_502' });
  const { socket, stream } = harness({ probe: () => Promise.reject(proxy) });
  const states = [];
  stream.handlers.onState = (state, detail) => states.push([state, detail.cause]);
  socket(0).drop();
  await sleep(20);
  assert.deepEqual(states[0], ['reconnecting', 'connection']);
  stream.close();
});

test('a cursor the backend keeps refusing is dropped for a fresh snapshot', async () => {
  const { log, socket, stream } = harness({ probe: () => Promise.resolve({}) });
  socket(0).open();
  socket(0).frame(event('c9', 9));
  socket(0).drop();
  await sleep(20);
  socket(1).drop();
  await sleep(20);
  assert.match(socket(1).url, /cursor=c9/);
  socket(2).drop();
  await sleep(20);
  assert.deepEqual(log.resets, ['cursor_refused']);
  assert.doesNotMatch(socket(3).url, /cursor=/);
  stream.close();
});

test('interactive streams send input and resize frames and report refusals', async () => {
  const { stream, log, socket } = harness({ interactive: true });
  assert.match(socket(0).url, /\?interactive=true$/);
  assert.equal(stream.send({ type: 'input', text: 'x' }), false, 'nothing is sent before the connection opens');
  socket(0).open();
  assert.equal(stream.send({ type: 'input', text: 'ls\r' }), true);
  assert.equal(stream.send({ type: 'resize', cols: 100, rows: 30 }), true);
  assert.deepEqual(socket(0).sent, [{ type: 'input', text: 'ls\r' }, { type: 'resize', cols: 100, rows: 30 }]);
  socket(0).frame({ type: 'error', error: { code: 'worker_busy', message: 'full' } });
  assert.deepEqual(log.refused, ['worker_busy']);
  stream.close();
});

test('a paste goes in frames the backend and the runtime take, in order, whole', () => {
  const { stream, socket } = harness({ interactive: true });
  socket(0).open();
  // ASCII, two-, three- and four-byte characters, the last a surrogate pair in JS.
  const paste = 'line of text\r'.repeat(20_000) + 'é€😀'.repeat(10_000);
  assert.equal(stream.sendInput(paste), true);
  const frames = socket(0).sent;
  assert.ok(frames.length > 1);
  const bytes = (t) => new TextEncoder().encode(t).length;
  for (const frame of frames) {
    assert.equal(frame.type, 'input');
    assert.ok(bytes(frame.text) <= INPUT_FRAME_BYTES, `${bytes(frame.text)} bytes in one frame`);
    assert.ok(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(frame.text), 'no character split between frames');
  }
  assert.equal(frames.map((f) => f.text).join(''), paste);
  // Keys go as they are, one frame each.
  assert.equal(stream.sendInput('\x1b[A'), true);
  assert.deepEqual(socket(0).sent.at(-1), { type: 'input', text: '\x1b[A' });
  assert.deepEqual(inputChunks('😀😀', 4), ['😀', '😀']);
  assert.deepEqual(inputChunks('', 4), ['']);
  stream.close();
});

test('a frame over the backend size limit (1009) is reported, then the stream resumes', async () => {
  const { stream, log, socket } = harness({ interactive: true });
  socket(0).open();
  socket(0).frame(event('c1', 1));
  socket(0).drop(1009);
  assert.deepEqual(log.refused, ['payload_too_large']);
  await sleep(20);
  assert.match(socket(1).url, /\?cursor=c1&interactive=true$/);
  stream.close();
});

test('switching to interactive reconnects from the cursor', () => {
  const { stream, socket } = harness();
  socket(0).open();
  assert.equal(stream.send({ type: 'input', text: 'x' }), false, 'a watching stream sends nothing');
  socket(0).frame(event('c4', 4));
  stream.setInteractive(true);
  assert.equal(socket(0).closedWith, 1000);
  assert.equal(socket(1).url, 'ws://backend/api/runtimes/rt/workers/w/events/ws?cursor=c4&interactive=true');
  stream.close();
});

test('close stops every reconnect', async () => {
  const { stream, socket } = harness();
  socket(0).open();
  socket(0).drop();
  stream.close();
  await sleep(20);
  assert.equal(FakeSocket.made.length, 1);
});
