// Keyboard use, labels on every control, and layouts from 1280x800 down to a phone.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { test, expect, screenshot, createWorker, workerUrl } from '../support/fixtures.js';

/** Presses Tab until the focused element matches `selector` (at most `max` times). */
async function tabTo(page, selector, max = 40) {
  for (let i = 0; i < max; i += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Controls on the page without an accessible name. */
function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('button, a[href], input, select, textarea')]
      .filter((el) => el.offsetParent !== null || el.getClientRects().length > 0)
      .filter((el) => {
        const label = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
          [...(el.labels ?? [])].map((l) => l.textContent).join('') || el.textContent;
        return !label || !label.trim();
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

test('keyboard only: start a worker, send it input, stop it', async ({ page, stack }) => {
  await page.goto(`${stack.url}#/workers`);
  await expect(page.locator('#create-runtime option')).toHaveCount(2);
  await tabTo(page, '#create-runtime');
  await page.keyboard.press('ArrowDown');
  await expect(page.locator('#create-runtime')).toHaveValue('remote');
  await tabTo(page, '#create-profile');
  await tabTo(page, '#create-label');
  await page.keyboard.type('typed by keyboard');
  await page.keyboard.press('Enter');

  await expect(page.getByRole('heading', { level: 1 })).toHaveText('typed by keyboard');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await tabTo(page, '#input-text');
  await page.keyboard.type('hello');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('world');
  await page.keyboard.press('Enter');
  await expect(page.locator('.entry-output')).toHaveText('hello\nworld\n');

  await tabTo(page, 'button[data-command="stop"]');
  await page.keyboard.press('Enter');
  await expect(page.locator('.status-slot')).toHaveText('stopped');
});

test('every control has a label', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'local', 'echo', 'labelled');
  await createWorker(stack, 'remote', 'shell');
  for (const hash of ['#/runtimes', '#/workers', `#/workers/local/${worker.worker_id}`]) {
    await page.goto(`${stack.url}${hash}`);
    await page.locator('main h1').waitFor();
    await page.waitForLoadState('networkidle').catch(() => {});
    await page.waitForTimeout(500);
    expect(await unlabelled(page), hash).toEqual([]);
  }
});

for (const { width, height } of [{ width: 1280, height: 800 }, { width: 768, height: 900 }, { width: 390, height: 844 }]) {
  test(`fits a ${width}px wide window without sideways scrolling`, async ({ page, stack }) => {
    await page.setViewportSize({ width, height });
    const worker = await createWorker(stack, 'remote', 'echo', 'a worker with a rather long label to wrap');
    await stack.api('POST', `/api/runtimes/remote/workers/${worker.worker_id}/input`, { text: `${'x'.repeat(300)}\n` });
    await createWorker(stack, 'local', 'shell');
    const views = [
      ['#/runtimes', '.runtime-card'],
      ['#/workers', '.workers-table tbody tr'],
      [`#/workers/remote/${worker.worker_id}`, '.entry-output'],
    ];
    for (const [hash, ready] of views) {
      await page.goto(`${stack.url}${hash}`);
      await page.locator(ready).first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${hash} at ${width}px`).toBeLessThanOrEqual(0);
      if (width === 390 && hash === '#/workers') await screenshot(page, 'workers-narrow');
      if (width === 390 && hash.startsWith('#/workers/')) await screenshot(page, 'worker-narrow');
    }
  });
}

test('a long label without spaces wraps in the workers table', async ({ page, stack }) => {
  // 200 characters: what the Start form takes. Without a place to break, the cell
  // held the whole table to its width and pushed Status and Commands off screen.
  const worker = await createWorker(stack, 'remote', 'echo', `build/${'very-long-branch-name-'.repeat(9)}x`.slice(0, 200).replaceAll('-', '_'));
  for (const width of [1280, 768]) {
    await page.setViewportSize({ width, height: 800 });
    await page.goto(`${stack.url}#/workers`);
    const row = page.locator(`tr[data-worker-id="${worker.worker_id}"]`);
    await row.waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `at ${width}px`).toBeLessThanOrEqual(0);
    await expect(row.getByRole('button', { name: `Stop ${worker.worker_id}` })).toBeInViewport();
  }
});

test('a long runtime display name without spaces wraps in its card', async ({ page, stack }) => {
  const config = join(stack.dir, 'backend.toml');
  const long = 'Build_host_in_the_basement_rack_number_seven_behind_the_blue_door';
  writeFileSync(config, readFileSync(config, 'utf8').replace('display_name = "Build host"', `display_name = "${long}"`));
  expect((await stack.api('POST', '/api/admin/reload')).status).toBe(200);
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 800 });
    await page.goto(stack.url);
    await expect(page.locator('.runtime-card[data-runtime-id="remote"] h2')).toHaveText(long);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `runtimes at ${width}px`).toBeLessThanOrEqual(0);
    // The workers view names it in its runtime filter.
    await page.goto(`${stack.url}#/workers`);
    await expect(page.locator('#filter-runtime option[value="remote"]')).toHaveText(long);
    const listOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(listOverflow, `workers at ${width}px`).toBeLessThanOrEqual(0);
  }
});

test("the console's own pages need no inline style (only xterm.js does)", async ({ page, stack, context }) => {
  // Serve the page with style-src 'self' alone: any inline style the console itself
  // used would be a CSP violation, which the page fixture turns into a failure.
  // A document fulfilled by the test does not count as loaded from 127.0.0.1, so
  // Chromium's local-network-access check needs the permission to reach the backend.
  await context.grantPermissions(['local-network-access']);
  await page.route(stack.url, async (route) => {
    const response = await route.fetch();
    const csp = response.headers()['content-security-policy'];
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': csp.replace(" 'unsafe-inline'", '') } });
  });
  const worker = await createWorker(stack, 'local', 'shell', 'strict');
  await page.goto(`${stack.url}#/runtimes`);
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await page.getByRole('link', { name: 'Workers', exact: true }).click();
  await expect(page.locator('.workers-table tbody tr')).toHaveCount(1);
  await page.locator('.worker-link').click();
  const input = page.getByRole('textbox', { name: 'Input' });
  await input.fill('echo out; echo err >&2');
  await input.press('Enter');
  await expect(page.locator('.entry-output.stream-stderr')).toBeVisible();
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(page.locator('.status-slot')).toHaveText('stopped');
  await expect(page.locator('.worker-title')).toHaveText(worker.label);
});

test('a slow Start is not taken for a lost click: one worker per click', async ({ page, stack }) => {
  // The create answers after the page's 5 s redraw of the runtime cards.
  await page.route('**/api/runtimes/local/workers', async (route) => {
    if (route.request().method() === 'POST') await new Promise((done) => setTimeout(done, 8000));
    await route.continue();
  });
  await page.goto(`${stack.url}#/runtimes`);
  const start = page.getByRole('button', { name: 'Start a echo worker on local' });
  await start.click();
  await page.waitForTimeout(5500);
  await expect(start).toBeDisabled();
  await expect(page.getByRole('heading', { level: 1 })).not.toHaveText('Runtimes', { timeout: 15_000 });
  const listed = await stack.api('GET', '/api/runtimes/local/workers');
  expect(listed.body.workers.length).toBe(1);
});

test('what is typed while an input is being sent stays in the box', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'local', 'echo', 'typing on');
  await page.route('**/input', async (route) => {
    await new Promise((done) => setTimeout(done, 1000));
    await route.continue();
  });
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  const input = page.getByRole('textbox', { name: 'Input', exact: true });
  await input.fill('first');
  await input.press('Enter');
  await input.pressSequentially(' second');
  await expect(page.locator('.entry-output')).toHaveText('first\n');
  await expect(input).toHaveValue(' second');
});

test('a poll of many workers keeps the rows of workers that did not change', async ({ page, stack }) => {
  // Every poll used to build every row again: at 5,000 workers that froze the page
  // for most of a second every 2.5 s.
  const created = [];
  for (let batch = 0; batch < 10; batch += 1) {
    created.push(
      ...(await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const worker = await createWorker(stack, 'local', 'echo', `bulk-${batch * 30 + i}`);
          await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/stop`);
          return worker;
        }),
      )),
    );
  }
  const live = await createWorker(stack, 'local', 'echo', 'changes');
  await page.goto(`${stack.url}#/workers`);
  const rows = page.locator('.workers-table tbody tr');
  await expect(rows).toHaveCount(301);
  await expect(page.locator(`tr[data-worker-id="${live.worker_id}"]`)).toHaveAttribute('data-status', 'running');
  await page.evaluate(() => {
    for (const tr of document.querySelectorAll('.workers-table tbody tr')) tr.dataset.drawnBefore = 'yes';
  });
  await stack.api('POST', `/api/runtimes/local/workers/${live.worker_id}/stop`);

  // The next polls show the change, in a row of its own; every other row is the one
  // already drawn, its age brought up to date.
  const liveRow = page.locator(`tr[data-worker-id="${live.worker_id}"]`);
  await expect(liveRow).toHaveAttribute('data-status', 'stopped');
  await expect(liveRow).not.toHaveAttribute('data-drawn-before', 'yes');
  await expect(rows).toHaveCount(301);
  await expect(page.locator('.workers-table tbody tr:not([data-drawn-before])')).toHaveCount(1);
  const first = page.locator(`tr[data-worker-id="${created[0].worker_id}"] time`);
  await expect(first).toHaveText(/^\d+ s ago$/, { timeout: 15_000 });
  await expect(page.locator(`tr[data-worker-id="${created[0].worker_id}"]`)).toHaveAttribute('data-drawn-before', 'yes');

  // A kept row's commands still work: Delete asks for a second click, then deletes.
  const row = page.locator(`tr[data-worker-id="${created[1].worker_id}"]`);
  await row.getByRole('button', { name: `Delete ${created[1].worker_id}` }).click();
  await row.getByRole('button', { name: `Confirm deleting ${created[1].worker_id}` }).click();
  await expect(rows).toHaveCount(300);
  expect((await stack.api('GET', `/api/runtimes/local/workers/${created[1].worker_id}`)).status).toBe(404);
});

test('the Start form chooses another runtime when the one chosen is removed', async ({ page, stack }) => {
  await page.goto(`${stack.url}#/workers`);
  const form = page.getByRole('form', { name: 'Start a worker' });
  await form.getByLabel('Runtime').selectOption('remote');
  await form.getByLabel('Profile').selectOption('slow-echo');

  const config = join(stack.dir, 'backend.toml');
  const before = readFileSync(config, 'utf8');
  writeFileSync(config, before.slice(0, before.indexOf('[[remote]]')));
  expect((await stack.api('POST', '/api/admin/reload')).status).toBe(200);

  await expect(form.getByLabel('Runtime').locator('option')).toHaveCount(1);
  await expect(form.getByLabel('Runtime')).toHaveValue('local');
  await expect(form.getByLabel('Profile')).toHaveValue('echo');
  await expect(form.getByRole('button', { name: 'Start worker' })).toBeEnabled();
  await form.getByRole('button', { name: 'Start worker' }).click();
  await expect(page).toHaveURL(/#\/workers\/local\/w-/);
});

test('a hidden workers page is not polled, and is listed again when shown', async ({ page, stack }) => {
  await createWorker(stack, 'local', 'echo', 'first');
  const polls = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/api/workers') polls.push(Date.now());
  });
  await page.goto(`${stack.url}#/workers`);
  await expect(page.locator('.workers-table tbody tr')).toHaveCount(1);
  await expect.poll(() => polls.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
  const setHidden = (hidden) =>
    page.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { value, configurable: true });
      Object.defineProperty(document, 'visibilityState', { value: value ? 'hidden' : 'visible', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
  await setHidden(true);
  // At most the poll already under way finishes; then none for several poll periods.
  await page.waitForTimeout(1000);
  const whileHidden = polls.length;
  await page.waitForTimeout(6000);
  expect(polls.length).toBe(whileHidden);

  await createWorker(stack, 'local', 'echo', 'second');
  await setHidden(false);
  await expect(page.locator('.workers-table tbody tr')).toHaveCount(2);
  await expect.poll(() => polls.length, { timeout: 10_000 }).toBeGreaterThan(whileHidden + 1);
});

test('deleting a worker with the keyboard leaves the focus on the next row, the one before, then the heading', async ({ page, stack }) => {
  const created = [];
  for (const label of ['one', 'two', 'three']) {
    const worker = await createWorker(stack, 'local', 'echo', label);
    expect((await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/stop`)).status).toBe(200);
    created.push(worker.worker_id);
  }
  await page.goto(`${stack.url}#/workers`);
  const rows = page.locator('.workers-table tbody tr');
  await expect(rows).toHaveCount(3);
  expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.workerId))).toEqual(created);
  const [one, two, three] = created;
  const button = (name) => page.getByRole('button', { name, exact: true });
  const deleteFocused = async (gone, next) => {
    await expect(button(`Delete ${gone}`)).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(button(`Confirm deleting ${gone}`)).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.locator(`tr[data-worker-id="${gone}"]`)).toHaveCount(0);
    if (next) await expect(button(`Delete ${next}`)).toBeFocused();
  };

  // A deleted row's place goes to the row after it; at the end, to the one before.
  await tabTo(page, `button[aria-label="Delete ${two}"]`);
  await deleteFocused(two, three);
  await deleteFocused(three, one);

  // Stop takes its own button away as the worker ends: the focus goes to the same
  // row's Delete.
  const four = (await createWorker(stack, 'local', 'echo', 'four')).worker_id;
  await expect(rows).toHaveCount(2);
  await tabTo(page, `button[aria-label="Stop ${four}"]`);
  await page.keyboard.press('Enter');
  await expect(button(`Delete ${four}`)).toBeFocused();

  await deleteFocused(four, one);
  // The last one: the page's heading, from where Tab goes on.
  await deleteFocused(one, null);
  await expect(rows).toHaveCount(0);
  await expect(page.getByRole('heading', { level: 1, name: 'Workers' })).toBeFocused();
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement !== document.body)).toBe(true);
});
