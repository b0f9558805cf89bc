// The console's sign-in, roles and terminal against the contract's shapes, with the
// endpoints that main does not have yet mocked in the browser (everything else is the
// real backend). auth.spec.js and terminal.spec.js run the same flows end to end once
// the backend has them; these keep the page's side honest until then.

import { test, expect, screenshot, createWorker, workerUrl } from '../support/fixtures.js';

const unauthorized = (message) => ({
  status: 401,
  headers: { 'www-authenticate': 'Bearer' },
  json: { error: { code: 'unauthorized', message } },
});

/** Mocks /api/session: GET answers the current session or 401; POST takes `tokens`. */
async function mockSessions(page, tokens, initial = null) {
  const state = { session: initial, posts: [] };
  await page.route('**/api/session', async (route) => {
    const request = route.request();
    switch (request.method()) {
      case 'GET':
        return state.session ? route.fulfill({ json: state.session }) : route.fulfill(unauthorized('sign in first'));
      case 'POST': {
        state.posts.push({ contentType: request.headers()['content-type'], body: request.postData() });
        const who = tokens[request.postDataJSON().token];
        if (!who) return route.fulfill(unauthorized('that token is not valid; ask for a new one'));
        state.session = who;
        return route.fulfill({ json: who });
      }
      case 'DELETE':
        state.session = null;
        return route.fulfill({ status: 204 });
      default:
        return route.fulfill({ status: 405 });
    }
  });
  return state;
}

test('sign-in: a wrong token shows the error, a good one signs in, sign-out signs out', async ({ page, stack }) => {
  const state = await mockSessions(page, { 'good-token': { name: 'olivia', role: 'operator' } });
  await page.goto(stack.url);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.locator('#sections')).toBeHidden();

  await page.getByLabel('Access token').fill('wrong-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.locator('#signin-error');
  await expect(error.locator('.notice-code')).toHaveText('unauthorized');
  await expect(error).toContainText('that token is not valid; ask for a new one');
  await screenshot(page, 'sign-in');

  await page.getByLabel('Access token').fill('good-token');
  await page.keyboard.press('Enter');
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.locator('#identity-name')).toHaveText('olivia');
  await expect(page.locator('#identity-role')).toHaveText('operator');
  expect(state.posts.at(-1)).toEqual({ contentType: 'application/json', body: '{"token":"good-token"}' });
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain('good-token');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.locator('.signin-notice')).toHaveText('Signed out.');
  await expect(page.locator('#identity')).toBeHidden();
});

test('a viewer session shows no control that would fail with 403', async ({ page, stack }) => {
  await mockSessions(page, {}, { name: 'victor', role: 'viewer' });
  const worker = await createWorker(stack, 'remote', 'echo', 'watched');
  await stack.api('POST', `/api/runtimes/remote/workers/${worker.worker_id}/input`, { text: 'seen by the viewer\n' });
  const commands = [];
  page.on('request', (request) => {
    if (request.method() !== 'GET') commands.push(`${request.method()} ${request.url()}`);
  });

  await page.goto(stack.url);
  await expect(page.locator('#identity-role')).toHaveText('viewer');
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.locator('main button:visible')).toHaveCount(0);

  await page.getByRole('link', { name: 'Workers', exact: true }).click();
  await expect(page.locator('.workers-table tbody tr')).toHaveCount(1);
  await expect(page.getByRole('form', { name: 'Start a worker' })).toHaveCount(0);
  await expect(page.locator('main button:visible')).toHaveCount(0);

  await page.locator('.worker-link').click();
  await expect(page.locator('.entry-output')).toHaveText('seen by the viewer\n');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.getByRole('textbox', { name: 'Input', exact: true })).toHaveCount(0);
  await expect(page.locator('main button:visible')).toHaveCount(0);
  expect(commands).toEqual([]);
});

test('a session that ends sends the page back to sign-in', async ({ page, stack }) => {
  const state = await mockSessions(page, {}, { name: 'olivia', role: 'operator' });
  await page.goto(stack.url);
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  state.session = null;
  await page.route('**/api/runtimes', (route) => route.fulfill(unauthorized('the session has expired')));
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.locator('.signin-notice')).toContainText('session has ended');
});

test('with auth off the session answer shows no identity and no sign-out', async ({ page, stack }) => {
  await mockSessions(page, {}, { name: null, role: 'admin', auth: false });
  await page.goto(stack.url);
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.locator('#identity')).toBeHidden();
  await expect(page.getByRole('button', { name: 'Start a echo worker on local' })).toBeVisible();
});

test('a pty worker gets a terminal that speaks the interactive frames', async ({ page, stack }) => {
  const workerId = 'w-pty-contract';
  const detail = {
    worker_id: workerId, runtime_id: 'remote', profile: 'term', label: 'terminal', status: 'running',
    created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', exit: null, input_count: 0, output_bytes: 2,
  };
  await page.route(`**/api/runtimes/remote/workers/${workerId}`, (route) => route.fulfill({ json: detail }));
  const connections = [];
  const received = [];
  await page.routeWebSocket(/\/events\/ws/, (ws) => {
    const url = new URL(ws.url());
    connections.push(url.search);
    const frame = (event, cursor) => ws.send(JSON.stringify({ type: 'event', cursor, runtime_id: 'remote', worker_id: workerId, event }));
    if (!url.searchParams.get('cursor')) {
      frame({
        kind: 'snapshot',
        worker: detail,
        transcript: [{ sequence: 1, at: '2026-01-01T00:00:00Z', kind: 'output', stream: 'terminal', text: '$ ' }],
        terminal: { cols: 80, rows: 24, screen: '\x1b[1;1H$ ', cursor: { row: 0, col: 2 }, alternate: false },
      }, 'c1');
    }
    let sequence = 1;
    let typed = '';
    ws.onMessage((message) => {
      const parsed = JSON.parse(message);
      received.push(parsed);
      if (parsed.type !== 'input') return;
      typed += parsed.text;
      if (parsed.text === '\r') {
        sequence += 1;
        const answer = typed.trim() === 'busy' ? null : `\r\nyou typed ${typed.trim()}\r\n$ `;
        if (answer) frame({ kind: 'output', sequence, stream: 'terminal', text: answer }, `c${sequence}`);
        else ws.send(JSON.stringify({ type: 'error', error: { code: 'worker_busy', message: 'the input queue is full; try again' } }));
        typed = '';
      }
    });
  });

  await page.goto(workerUrl(stack, 'remote', workerId));
  const screen = page.locator('.xterm-rows');
  await expect(screen).toContainText('$');
  await expect(page.getByRole('textbox', { name: 'Input', exact: true })).toHaveCount(0);
  // The profile was not known from the runtimes list, so the page learnt it was a
  // terminal from the snapshot and reconnected interactively from its cursor.
  await expect.poll(() => connections.length).toBe(2);
  expect(connections[1]).toBe('?cursor=c1&interactive=true');

  await page.locator('.xterm').click();
  await page.keyboard.type('hello');
  await page.keyboard.press('Enter');
  await expect(screen).toContainText('you typed hello');
  expect(received.filter((f) => f.type === 'input').map((f) => f.text).join('')).toBe('hello\r');
  await expect.poll(() => received.some((f) => f.type === 'resize')).toBe(true);
  const resize = received.find((f) => f.type === 'resize');
  expect(resize.cols).toBeGreaterThan(80);
  expect(resize.rows).toBeGreaterThan(10);

  await page.keyboard.type('busy');
  await page.keyboard.press('Enter');
  await expect(page.locator('.notice-error .notice-code')).toHaveText('worker_busy');
  await expect(page.locator('.notice-error')).toContainText('the input queue is full');
});
