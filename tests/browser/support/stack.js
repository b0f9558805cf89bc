// Real switchyard processes for the browser tests: a remote `switchyard runtime`
// (token, data directory) and a backend (`switchyard serve`) with an embedded runtime
// `local` and the remote as `remote`, each on 127.0.0.1 with a port of its own.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const START_TIMEOUT_MS = 15_000;

/** The binary: $SWITCHYARD_BIN, or the workspace's debug build. */
export function switchyardBin() {
  const bin = process.env.SWITCHYARD_BIN ?? resolve(here, '../../../target/debug/switchyard');
  if (!existsSync(bin)) {
    throw new Error(`${bin} is missing: build it first (cargo build -p switchyard-server), or run cargo xtask browser-test`);
  }
  return bin;
}

/** Thrown when a process exits before printing its `listening on` line. */
export class StartError extends Error {
  constructor(command, code, stderr) {
    super(`switchyard ${command} exited with ${code} before listening:\n${stderr}`);
    this.exitCode = code;
    this.stderr = stderr;
  }
}

/** A running switchyard process. */
export class Proc {
  constructor(child, url, args) {
    this.child = child;
    this.url = url;
    this.args = args;
    this.port = Number(new URL(url).port);
    this.exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  }

  /** Ends it with `signal` (SIGTERM: a graceful shutdown) and waits. */
  async stop(signal = 'SIGTERM') {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Starts `switchyard <args>` and waits for its `listening on` line. */
export async function startProcess(args, { env = {} } = {}) {
  const child = spawn(switchyardBin(), args, {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/tmp', RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (process.env.SWITCHYARD_TEST_LOGS) process.stderr.write(chunk);
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`switchyard ${args[0]} did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    lines.once('line', (line) => {
      clearTimeout(timer);
      const match = /^listening on (https?:\/\/\S+)$/.exec(line.trim());
      if (match) done(match[1]);
      else fail(new Error(`unexpected first line ${JSON.stringify(line)}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Let stderr drain before reporting.
      setTimeout(() => fail(new StartError(args[0], code, stderr)), 50);
    });
  });
  // Keep reading stdout so the process never blocks on a full pipe.
  lines.on('line', () => {});
  return new Proc(child, url, args);
}

/** SHA-256 hex of a token, as `[[auth.token]] token_sha256` wants it. */
export function sha256(text) {
  return createHash('sha256').update(text).digest('hex');
}

const q = (s) => JSON.stringify(s);

/**
 * Starts a remote runtime and a backend. Options:
 * - `pty`: also give the remote runtime a `pty` profile named `term`
 * - `auth`: `[{name, role, workers}]`: turns backend auth on with a token each
 *   (the tokens are returned in `stack.tokens[name]`)
 * - `runtimeLimits`: `{key: number}`: top-level limits of the remote runtime's
 *   configuration (`transcript_page_max`, `max_input_bytes`, ...)
 */
export async function startStack({ pty = false, auth = null, runtimeLimits = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-browser-'));
  const stack = new Stack(dir);
  try {
    await stack.init({ pty, auth, runtimeLimits });
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return stack;
}

export class Stack {
  constructor(dir) {
    this.dir = dir;
    this.tokens = {};
    this.runtime = null;
    this.backend = null;
  }

  async init({ pty, auth, runtimeLimits }) {
    this.runtimeToken = `rt-${randomBytes(16).toString('hex')}`;
    writeFileSync(join(this.dir, 'runtime.token'), `${this.runtimeToken}\n`);
    let runtimeConfig = [
      'runtime_id = "remote"',
      'display_name = "Build host"',
      ...Object.entries(runtimeLimits).map(([key, value]) => `${key} = ${value}`),
      '',
      '[profiles.shell]',
      'kind = "process"',
      'command = ["/bin/sh"]',
      'description = "POSIX shell reading commands from its input"',
      '',
      '[profiles.slow-echo]',
      'kind = "echo"',
      'delay_ms = 4000',
      'description = "Echo that takes its time (to try cancel)"',
      '',
    ].join('\n');
    if (pty) {
      runtimeConfig += [
        '[profiles.term]',
        'kind = "pty"',
        'command = ["/bin/sh"]',
        'env = { PS1 = "$ ", TERM = "xterm-256color" }',
        'description = "A shell on a terminal"',
        '',
      ].join('\n');
    }
    writeFileSync(join(this.dir, 'runtime.toml'), runtimeConfig);
    await this.startRuntime();

    const backend = [
      'health_interval_ms = 500',
      '',
      '[embedded]',
      'runtime_id = "local"',
      'display_name = "This machine"',
      '',
      '[embedded.profiles.shell]',
      'kind = "process"',
      'command = ["/bin/sh"]',
      'description = "POSIX shell reading commands from its input"',
      '',
      '[[remote]]',
      'runtime_id = "remote"',
      'display_name = "Build host"',
      `base_url = ${q(this.runtime.url)}`,
      'token_file = "runtime.token"',
      'connect_timeout_ms = 1000',
      'request_timeout_ms = 3000',
      '',
    ];
    if (auth) {
      backend.push('[auth]', '');
      for (const { name, role, workers } of auth) {
        const token = `tok-${name}-${randomBytes(12).toString('hex')}`;
        this.tokens[name] = token;
        backend.push(
          '[[auth.token]]',
          `name = ${q(name)}`,
          `token_sha256 = ${q(sha256(token))}`,
          `role = ${q(role)}`,
          ...(workers ? [`workers = ${q(workers)}`] : []),
          '',
        );
      }
    }
    writeFileSync(join(this.dir, 'backend.toml'), backend.join('\n'));
    await this.startBackend();
  }

  /** Starts (or restarts, on the same port and data directory) the remote runtime. */
  async startRuntime() {
    const listen = this.runtime ? `127.0.0.1:${this.runtime.port}` : '127.0.0.1:0';
    this.runtime = await startProcess([
      'runtime',
      '--config', join(this.dir, 'runtime.toml'),
      '--listen', listen,
      '--token-file', join(this.dir, 'runtime.token'),
      '--data-dir', join(this.dir, 'runtime-data'),
    ]);
  }

  /** Starts (or restarts, on the same port) the backend. */
  async startBackend() {
    const listen = this.backend ? `127.0.0.1:${this.backend.port}` : '127.0.0.1:0';
    this.backend = await startProcess(['serve', '--config', join(this.dir, 'backend.toml'), '--listen', listen]);
  }

  /** The console's URL (`http://127.0.0.1:PORT/`). */
  get url() {
    return `${this.backend.url}/`;
  }

  /** Calls the backend API as a script would (no browser headers). */
  async api(method, path, body, { token } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${this.backend.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
  }

  /** Calls the remote runtime's own API with its token (bypassing the backend). */
  async runtimeApi(method, path, body) {
    const headers = { authorization: `Bearer ${this.runtimeToken}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.runtime.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async stop() {
    await Promise.allSettled([this.backend?.stop(), this.runtime?.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
