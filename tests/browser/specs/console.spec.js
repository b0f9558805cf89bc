// The console against main's features: runtimes, workers, the worker view, commands,
// errors, keyboard and narrow windows.

import { test, expect, screenshot, createWorker, transcriptOutput, workerUrl } from '../support/fixtures.js';

test('the page and its assets carry the browser-defence and caching headers', async ({ page, stack }) => {
  const index = await page.request.get(stack.url);
  expect(index.status()).toBe(200);
  const h = index.headers();
  expect(h['content-type']).toBe('text/html; charset=utf-8');
  expect(h['content-security-policy']).toContain("script-src 'self'");
  expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(h['content-security-policy']).not.toContain('unsafe-eval');
  expect(h['x-content-type-options']).toBe('nosniff');
  expect(h['referrer-policy']).toBe('no-referrer');
  expect(h['cache-control']).toBe('no-cache');
  const again = await page.request.get(stack.url, { headers: { 'if-none-match': h.etag } });
  expect(again.status()).toBe(304);

  const vendor = await page.request.get(`${stack.url}assets/vendor/xterm-6.0.0/xterm.mjs`);
  expect(vendor.headers()['content-type']).toBe('text/javascript; charset=utf-8');
  expect(vendor.headers()['cache-control']).toContain('immutable');
  const missing = await page.request.get(`${stack.url}assets/nope.js`);
  expect(missing.status()).toBe(404);
  expect((await missing.json()).error.code).toBe('route_not_found');
});

test('runtimes show state, last seen, profiles, capabilities and worker counts', async ({ page, stack }) => {
  await createWorker(stack, 'remote', 'echo', 'counted');
  await page.goto(stack.url);
  const local = page.locator('.runtime-card[data-runtime-id="local"]');
  const remote = page.locator('.runtime-card[data-runtime-id="remote"]');
  await expect(local).toContainText('This machine');
  await expect(local).toContainText('embedded');
  await expect(remote).toContainText('remote');
  await expect(remote.locator('.runtime-state')).toHaveText('ready');
  await expect(remote.locator('.profile-name')).toHaveText(['echo', 'shell', 'slow-echo']);
  await expect(remote.locator('.chip')).toContainText(['events_ws']);
  await expect(remote.locator('.count-running')).toContainText('1 running');
  await expect(local.locator('.count-none')).toHaveText('no workers');
  await expect(remote).toContainText(/Last seen\s*(just now|\d+ s ago)/);
  await screenshot(page, 'runtimes');
});

test('without [auth] the backend says so, and the page shows no identity and no sign-out', async ({ page, stack }) => {
  const session = await stack.api('GET', '/api/session');
  expect(session.status).toBe(200);
  expect(session.body).toEqual({ name: 'anonymous', role: 'admin', auth: false });
  await page.goto(stack.url);
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.locator('#identity')).toBeHidden();
  await expect(page.getByRole('button', { name: 'Sign out' })).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toHaveCount(0);
});

test('create an echo worker, send input, see the output; stop and delete it', async ({ page, stack }) => {
  await page.goto(`${stack.url}#/workers`);
  await page.getByLabel('Runtime', { exact: true }).first().waitFor();
  const form = page.getByRole('form', { name: 'Start a worker' });
  await form.getByLabel('Runtime').selectOption('local');
  await form.getByLabel('Profile').selectOption('echo');
  await form.getByLabel('Label').fill('greeter');
  await form.getByRole('button', { name: 'Start worker' }).click();

  await expect(page.getByRole('heading', { level: 1 })).toHaveText('greeter');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.locator('.status-slot')).toHaveText('running');
  const input = page.getByRole('textbox', { name: 'Input' });
  await input.fill('hello from the console');
  await input.press('Enter');
  await expect(page.locator('.entry-input')).toHaveText(/hello from the console/);
  await expect(page.locator('.entry-output.stream-stdout')).toHaveText('hello from the console\n');
  await expect(input).toHaveValue('');

  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.locator('.status-slot')).toHaveText('stopped');
  await expect(page.locator('.entry-system').last()).toHaveText('stopped on request');
  await expect(input).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeDisabled();

  const remove = page.getByRole('button', { name: 'Delete' });
  await remove.click();
  await page.getByRole('button', { name: 'Confirm delete' }).click();
  await expect(page).toHaveURL(/#\/workers$/);
  await expect(page.locator('.notice-info')).toContainText('Deleted');
  const list = await stack.api('GET', '/api/workers');
  expect(list.body.workers).toEqual([]);
});

test('a stop this page did not ask for is not "on request"', async ({ page, stack }) => {
  // (An idle timeout or a runtime's shutdown stops a worker too; the page cannot
  // tell which from the live event, so it says only "stopped".)
  const worker = await createWorker(stack, 'local', 'echo', 'stopped-elsewhere');
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/stop`);
  await expect(page.locator('.status-slot')).toHaveText('stopped');
  await expect(page.locator('.entry-system').last()).toHaveText('stopped');
});

test('workers across runtimes: filters, unavailable runtimes, a runtime going down and back', async ({ page, stack }) => {
  await createWorker(stack, 'local', 'echo', 'alpha');
  const beta = await createWorker(stack, 'remote', 'echo', 'beta');
  const gamma = await createWorker(stack, 'remote', 'shell', 'gamma');
  await stack.api('POST', `/api/runtimes/remote/workers/${gamma.worker_id}/stop`);

  await page.goto(`${stack.url}#/workers`);
  const rows = page.locator('.workers-table tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(page.locator(`tr[data-worker-id="${gamma.worker_id}"] .badge`)).toHaveText('stopped');
  await screenshot(page, 'workers');

  await page.getByLabel('Status').selectOption('running');
  await expect(rows.locator('.worker-link')).toHaveText(['alpha', 'beta']);
  await expect(page).toHaveURL(/status=running/);
  await page.getByLabel('Status').selectOption('');
  await page.locator('#filter-runtime').selectOption('remote');
  await expect(rows.locator('.worker-link')).toHaveText(['beta', 'gamma']);
  await page.locator('#filter-runtime').selectOption('');

  // The remote runtime dies: its workers drop out and it is named as unavailable.
  await stack.runtime.stop('SIGKILL');
  const box = page.locator('.unavailable-box');
  await expect(box).toContainText('remote');
  await expect(box).toContainText('runtime_unreachable');
  await expect(rows.locator('.worker-link')).toHaveText(['alpha']);
  await page.getByRole('link', { name: 'Runtimes' }).click();
  const remote = page.locator('.runtime-card[data-runtime-id="remote"]');
  await expect(remote.locator('.runtime-state')).toHaveText('unreachable');
  await expect(remote.locator('.last-error')).toContainText('runtime_unreachable');
  await screenshot(page, 'runtimes-down');

  // It comes back (same port and data): ready again, its worker lost in the crash.
  await stack.startRuntime();
  await expect(remote.locator('.runtime-state')).toHaveText('ready');
  await expect(remote.locator('.last-error')).toHaveCount(0);
  await page.getByRole('link', { name: 'Workers' }).click();
  await expect(page.locator('.unavailable-box')).toHaveCount(0);
  await expect(page.locator(`tr[data-worker-id="${beta.worker_id}"] .badge`)).toHaveText('lost');
});

test('a runtime with more workers than listed is named with what to do, until all are listed', async ({ page, stack }) => {
  // local: three stopped workers and a running one; remote: one running.
  const local = [];
  for (const label of ['one', 'two', 'three', 'four']) local.push(await createWorker(stack, 'local', 'echo', label));
  for (const worker of local.slice(0, 3)) {
    expect((await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/stop`)).status).toBe(200);
  }
  await createWorker(stack, 'remote', 'echo', 'far');
  const rows = page.locator('.workers-table tbody tr');
  const notice = page.locator('.truncated-box');
  const summary = page.locator('.page-summary');

  // The console asks for at most 1,000 of each runtime: all of these fit, no notice.
  const listing = page.waitForRequest((request) => new URL(request.url()).pathname === '/api/workers');
  await page.goto(`${stack.url}#/workers`);
  expect(new URL((await listing).url()).searchParams.get('limit')).toBe('1000');
  await expect(rows).toHaveCount(5);
  await expect(summary).toHaveText('5 workers');
  await expect(notice).toHaveCount(0);

  // Two of each runtime: local has more and is named, with the command that lists it
  // all; remote has no more and is not.
  await page.goto(`${stack.url}#/workers?limit=2`);
  await expect(notice).toBeVisible();
  await expect(notice.getByRole('heading')).toHaveText('Not every worker is listed');
  await expect(notice).toContainText('The list holds the first 2 workers of each runtime');
  await expect(notice.locator('li')).toHaveCount(1);
  await expect(notice.locator('li[data-runtime-id="local"]')).toContainText('switchyard ls --runtime local');
  await expect(notice).toContainText('Choose a status above to narrow the list.');
  await expect(page.locator('tr[data-runtime-id="local"]')).toHaveCount(2);
  await expect(page.locator('tr[data-runtime-id="remote"]')).toHaveCount(1);
  await expect(summary).toHaveText('3 workers shown');
  await expect(page.locator('.unavailable-box')).toHaveCount(0);

  // The runtime filter picks from what was listed: a runtime out of view is not named.
  await page.locator('#filter-runtime').selectOption('remote');
  await expect(rows).toHaveCount(1);
  await expect(notice).toHaveCount(0);
  await page.locator('#filter-runtime').selectOption('');
  await expect(notice.locator('li[data-runtime-id="local"]')).toBeVisible();

  // A status narrows the listing itself: local's one running worker fits in two...
  await page.getByLabel('Status').selectOption('running');
  await expect(page).toHaveURL(/#\/workers\?status=running&limit=2$/);
  await expect(rows.locator('.worker-link')).toHaveText(['four', 'far']);
  await expect(notice).toHaveCount(0);
  // ...its three stopped ones do not.
  await page.getByLabel('Status').selectOption('stopped');
  await expect(notice).toContainText('The list holds the first 2 stopped workers of each runtime');
  await expect(notice.locator('li[data-runtime-id="local"]')).toContainText('switchyard ls --runtime local --status stopped');
  await expect(notice).not.toContainText('Choose a status');
  await page.getByLabel('Status').selectOption('');
  await expect(notice).toContainText('The list holds the first 2 workers of each runtime');

  // The notice's button lists up to the backend's cap: all fit, the notice goes.
  await notice.getByRole('button', { name: 'List up to 10,000 per runtime' }).click();
  await expect(page).toHaveURL(/#\/workers\?limit=10000$/);
  await expect(rows).toHaveCount(5);
  await expect(notice).toHaveCount(0);
  await expect(summary).toHaveText('5 workers');
  await expect(page.getByRole('heading', { level: 1 })).toBeFocused();

  // Cut at two again, then two of local's stopped workers are deleted elsewhere: the
  // next poll lists all of local's, and the notice goes by itself.
  await page.goto(`${stack.url}#/workers?limit=2`);
  await expect(notice.locator('li[data-runtime-id="local"]')).toBeVisible();
  for (const worker of local.slice(0, 2)) {
    expect((await stack.api('DELETE', `/api/runtimes/local/workers/${worker.worker_id}`)).status).toBe(204);
  }
  await expect(notice).toHaveCount(0);
  await expect(page.locator('tr[data-runtime-id="local"]')).toHaveCount(2);
  await expect(summary).toHaveText('3 workers');
});

test('stdout, stderr, input and system notes are told apart; cancel interrupts', async ({ page, stack }) => {
  const shell = await createWorker(stack, 'remote', 'shell', 'sh');
  await page.goto(workerUrl(stack, 'remote', shell.worker_id));
  const input = page.getByRole('textbox', { name: 'Input' });
  await input.fill('echo to-stdout; echo to-stderr >&2');
  await input.press('Enter');
  await expect(page.locator('.entry-output.stream-stdout')).toHaveText('to-stdout\n');
  await expect(page.locator('.entry-output.stream-stderr')).toHaveText(/to-stderr\n/);
  await expect(page.locator('.entry-input')).toHaveText(/echo to-stdout/);
  await expect(page.locator('.entry-system').first()).toHaveText('started');
  await input.fill('printf "%s\\n" alpha beta gamma; ls /no/such/dir');
  await input.press('Enter');
  await expect(page.locator('.entry-output.stream-stderr')).toHaveCount(2);
  await screenshot(page, 'worker');
  await input.fill('exit 3');
  await input.press('Enter');
  await expect(page.locator('.status-slot')).toHaveText('exited');
  await expect(page.locator('.entry-system').last()).toHaveText('exited (exit code 3)');
  await expect(page.locator('.worker-meta')).toContainText('exit code 3');

  const slow = await createWorker(stack, 'remote', 'slow-echo', 'slow');
  await page.goto(workerUrl(stack, 'remote', slow.worker_id));
  await page.getByRole('textbox', { name: 'Input' }).fill('never echoed');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('.entry-input')).toHaveCount(1);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.locator('.entry-system').last()).toHaveText('interrupted');
  // Past the echo's 4 s delay (long enough that the Cancel click always beats it on a
  // busy machine): the cancelled input is never echoed.
  await page.waitForTimeout(4500);
  await expect(page.locator('.entry-output')).toHaveCount(0);
});

test('errors are shown with the API code and message', async ({ page, stack }) => {
  await page.goto(`${stack.url}#/workers/local/w-missing`);
  await expect(page.locator('.error-panel')).toContainText('worker_not_found');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'ended');
  await expect(page.locator('.notice-error .notice-code')).toHaveText('worker_not_found');
  await page.locator('.notice-error').getByRole('button', { name: 'Dismiss' }).click();

  await page.goto(`${stack.url}#/workers`);
  const form = page.getByRole('form', { name: 'Start a worker' });
  await expect(form.getByLabel('Runtime')).toContainText('remote');
  await stack.runtime.stop('SIGKILL');
  await form.getByLabel('Runtime').selectOption('remote');
  await form.getByLabel('Profile').selectOption('echo');
  await form.getByRole('button', { name: 'Start worker' }).click();
  const notice = page.locator('.notice-error');
  await expect(notice.locator('.notice-code')).toHaveText('runtime_unreachable');
  await expect(notice).toContainText('while starting a echo worker on remote');
  await expect(notice).not.toContainText('127.0.0.1');
  await notice.getByRole('button', { name: 'Dismiss' }).click();
  await expect(notice).toHaveCount(0);
});

test('older transcript items load on demand, each once', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'local', 'echo', 'long');
  for (let i = 1; i <= 40; i += 1) {
    await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/input`, { text: `item-${i}\n` });
  }
  await expect.poll(async () => (await stack.api('GET', `/api/runtimes/local/workers/${worker.worker_id}`)).body.output_bytes).toBeGreaterThan(250);
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  const earlier = page.getByRole('button', { name: /Load earlier items/ });
  await expect(earlier).toBeVisible();
  await expect.poll(() => transcriptOutput(page)).toContain('item-40\n');
  expect(await transcriptOutput(page)).not.toContain('item-1\n');
  await earlier.click();
  await expect(earlier).toBeHidden();
  const lines = (await transcriptOutput(page)).split('\n').filter(Boolean);
  expect(lines).toEqual(Array.from({ length: 40 }, (_, i) => `item-${i + 1}`));
  await expect(page.locator('.entry-system').first()).toHaveText('started');
});

test("a worker's age in its header keeps up while nothing happens", async ({ page, stack }) => {
  const worker = await createWorker(stack, 'local', 'echo', 'idle');
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  const created = page.locator('.worker-meta .meta-item').filter({ hasText: 'Created' }).locator('time');
  await expect(created).toHaveText('just now');
  await expect(created).toHaveText(/^\d+ s ago$/, { timeout: 15_000 });
});

test('a runtime that is down is asked directly, with no second request for the whole list', async ({ page, stack }) => {
  const lists = [];
  const direct = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path === '/api/runtimes') lists.push(Date.now());
    if (path === '/api/runtimes/remote') direct.push(Date.now());
  });
  await stack.runtime.stop('SIGKILL');
  await page.goto(stack.url);
  const remote = page.locator('.runtime-card[data-runtime-id="remote"]');
  await expect(remote.locator('.runtime-state')).toHaveText('unreachable');
  const listsBefore = lists.length;
  const directBefore = direct.length;
  await page.waitForTimeout(11_000);
  // The list every 2.5 s (four or five in 11 s); the direct asks, every 5 s, add none.
  expect(direct.length - directBefore).toBeGreaterThanOrEqual(2);
  const polled = lists.slice(listsBefore - 1);
  expect(polled.length - 1, `${polled.map((at) => at - polled[0])}`).toBeLessThanOrEqual(5);
  const gaps = polled.slice(1).map((at, i) => at - polled[i]);
  expect(Math.min(...gaps), `${gaps}`).toBeGreaterThanOrEqual(2000);

  // Back: the card says so at once.
  await stack.startRuntime();
  await expect(remote.locator('.runtime-state')).toHaveText('ready');
  await expect(remote.locator('.last-error')).toHaveCount(0);
});
