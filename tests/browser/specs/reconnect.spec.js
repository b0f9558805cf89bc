// The worker view across failures: the remote runtime restarting (the backend resets
// and repaints from a fresh snapshot) and the backend itself restarting (the page
// resumes from its cursor). Either way no output line is missing or repeated.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { test, expect, screenshot, createWorker, transcriptOutput, workerUrl } from '../support/fixtures.js';

/** How often each `prefix-N` line appears in the transcript's output. */
async function lineCounts(page, prefix) {
  const counts = {};
  for (const line of (await transcriptOutput(page)).split('\n')) {
    if (line.startsWith(prefix)) counts[line] = (counts[line] ?? 0) + 1;
  }
  return counts;
}

function once(prefix, n) {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i + 1}`, 1]));
}

test('the remote runtime restarts while the worker view is open', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'echo', 'survivor');
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  const connection = page.locator('.connection');
  await expect(connection).toHaveAttribute('data-state', 'connected');
  const input = page.getByRole('textbox', { name: 'Input' });
  for (let i = 1; i <= 12; i += 1) {
    await input.fill(`line-${i}`);
    await input.press('Enter');
    await expect(input).toHaveValue('');
  }
  await expect.poll(() => lineCounts(page, 'line-')).toEqual(once('line-', 12));

  await stack.runtime.stop('SIGTERM');
  await expect(connection).toHaveAttribute('data-state', 'reconnecting');
  await expect(connection).toContainText('runtime lost');
  await expect(page.locator('.connection-hint')).toContainText(/runtime_(unavailable|unreachable)/);
  await screenshot(page, 'worker-reconnecting');

  await stack.startRuntime();
  await expect(connection).toHaveAttribute('data-state', 'restored');
  await expect(page.locator('.entry-system.note-local')).toContainText('repainted after a reset (runtime restarted)');
  expect(await lineCounts(page, 'line-')).toEqual(once('line-', 12));
  // The runtime stopped its workers on the way down.
  await expect(page.locator('.status-slot')).toHaveText('stopped');
  await expect(connection).toHaveAttribute('data-state', 'connected', { timeout: 15_000 });
});

test('the backend restarts while the worker view is open: it resumes from its cursor', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'shell', 'resumer');
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  const connection = page.locator('.connection');
  await expect(connection).toHaveAttribute('data-state', 'connected');
  const input = page.getByRole('textbox', { name: 'Input' });
  await input.fill('for i in 1 2 3 4 5; do echo before-$i; done');
  await input.press('Enter');
  await expect.poll(() => lineCounts(page, 'before-')).toEqual(once('before-', 5));

  await stack.backend.stop('SIGTERM');
  await expect(connection).toHaveAttribute('data-state', 'reconnecting');
  await expect(page.locator('#backend-state')).toBeVisible();
  // While the backend is down the worker goes on: input straight to the runtime.
  const sent = await stack.runtimeApi('POST', `/v1/workers/${worker.worker_id}/input`, {
    text: 'for i in 1 2 3 4 5 6 7 8; do echo during-$i; done\n',
  });
  expect(sent.status).toBe(202);
  // Down for a while: several reconnections fail, and the cursor must survive them.
  await page.waitForTimeout(2500);
  await expect(page.locator('.reset-info')).toHaveText('');

  await stack.startBackend();
  await expect(connection).toHaveAttribute('data-state', 'restored', { timeout: 20_000 });
  await expect.poll(() => lineCounts(page, 'during-')).toEqual(once('during-', 8));
  expect(await lineCounts(page, 'before-')).toEqual(once('before-', 5));
  // Resumed from the cursor: nothing was repainted.
  await expect(page.locator('.entry-system.note-local')).toHaveCount(0);
  await expect(page.locator('.reset-info')).toHaveText('');
  await expect(page.locator('#backend-state')).toBeHidden();

  await input.fill('echo after-1');
  await input.press('Enter');
  await expect.poll(() => lineCounts(page, 'after-')).toEqual(once('after-', 1));
  expect(await lineCounts(page, 'during-')).toEqual(once('during-', 8));
});

test('a worker whose runtime is down says so, with the error, until it is back', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'echo', 'waiting');
  await stack.runtime.stop('SIGKILL');
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  const connection = page.locator('.connection');
  await expect(page.locator('.worker-body')).toContainText(/runtime_(unavailable|unreachable)/);
  await expect(connection).toContainText('runtime lost');
  await expect(page.locator('.connection-hint')).toContainText(/runtime_(unavailable|unreachable)/);

  await stack.startRuntime();
  // The runtime was killed: its worker is lost, and the page shows it as such.
  await expect(page.locator('.status-slot')).toHaveText('lost', { timeout: 20_000 });
  await expect(connection).toHaveAttribute('data-state', /connected|restored/);
});

test('a runtime removed by a reload is not taken for a deleted worker', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'echo', 'outlives its runtime');
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  const connection = page.locator('.connection');
  await expect(connection).toHaveAttribute('data-state', 'connected');

  // The backend's configuration loses the remote runtime; the worker runs on there.
  const config = join(stack.dir, 'backend.toml');
  const before = readFileSync(config, 'utf8');
  writeFileSync(config, before.slice(0, before.indexOf('[[remote]]')));
  const reload = await stack.api('POST', '/api/admin/reload');
  expect(reload.status).toBe(200);
  expect(reload.body.runtimes.removed).toEqual(['remote']);

  await expect(connection).toHaveAttribute('data-state', 'ended');
  await expect(connection).toHaveText('Runtime removed');
  await expect(page.locator('.connection-hint')).toContainText('runtime_not_found');
  await expect(page.locator('.status-slot')).toHaveText('runtime removed');
  await expect(page.getByText('Worker deleted')).toHaveCount(0);
  for (const name of ['Cancel', 'Stop', 'Delete', 'Send']) {
    await expect(page.getByRole('button', { name, exact: true })).toBeDisabled();
  }
  await expect(page.locator('#input-help')).toContainText('its runtime was removed');
  const onRuntime = await stack.runtimeApi('GET', `/v1/workers/${worker.worker_id}`);
  expect(onRuntime.body.status).toBe('running');
});

test('a backend that does not answer at first load is asked again, with backoff, until it does', async ({ page, stack }) => {
  // In front of the backend: first a proxy answering 502, then nothing at all.
  let mode = 'bad-gateway';
  const asked = [];
  await page.route('**/api/**', async (route) => {
    if (mode === 'up') return route.continue();
    asked.push(Date.now());
    if (mode === 'bad-gateway') return route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>502 Bad Gateway</h1>' });
    return route.abort('connectionrefused');
  });
  await page.goto(stack.url);
  const panel = page.locator('.backend-unreachable');
  await expect(panel.getByRole('heading')).toHaveText('The backend is unreachable');
  await expect(panel).toContainText('http_502');
  await expect(panel).toContainText('Trying again in');
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  await expect.poll(() => asked.length).toBeGreaterThanOrEqual(3);
  mode = 'refused';
  await expect(panel).toContainText('network_error');
  await expect(page.locator('#backend-state')).toBeVisible();
  await screenshot(page, 'backend-unreachable');
  // Long enough for the waits to reach their cap: 0.5, 1, 2, 4, 8, then 10 s.
  await expect.poll(() => asked.length, { timeout: 40_000 }).toBeGreaterThanOrEqual(7);

  mode = 'up';
  await expect(page.locator('.runtime-card')).toHaveCount(2, { timeout: 12_000 });
  await expect(panel).toHaveCount(0);
  await expect(page.locator('#backend-state')).toBeHidden();
  expect(await page.evaluate(() => window.notReloaded)).toBe(true);
  const gaps = asked.slice(1).map((at, i) => at - asked[i]);
  expect(gaps[0], `${gaps}`).toBeLessThan(1500);
  for (let i = 1; i < gaps.length; i += 1) expect(gaps[i], `${gaps}`).toBeGreaterThanOrEqual(gaps[i - 1] * 0.8);
  // The cap (10 s), with room for a late timer on a loaded machine.
  expect(Math.max(...gaps), `${gaps}`).toBeLessThanOrEqual(12_000);
  expect(gaps[gaps.length - 1], `${gaps}`).toBeGreaterThanOrEqual(9_000);
});
