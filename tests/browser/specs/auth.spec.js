// Sign-in, roles and sessions in the browser, against a backend with [auth] tokens
// (an operator and a viewer) and the /api/session endpoints.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { test, expect, screenshot, createWorker, workerUrl } from '../support/fixtures.js';

const USERS = [
  { name: 'olivia', role: 'operator', workers: 'all' },
  { name: 'victor', role: 'viewer', workers: 'all' },
];

test.use({ stackOptions: { auth: USERS } });

async function signIn(page, stack, name) {
  await page.goto(stack.url);
  await page.getByLabel('Access token').fill(stack.tokens[name]);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('sign in with a token, see the runtimes, sign out', async ({ page, stack }) => {
  await page.goto(stack.url);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await expect(page.locator('#sections')).toBeHidden();
  await screenshot(page, 'sign-in');
  await page.getByLabel('Access token').fill(stack.tokens.olivia);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.locator('#identity-name')).toHaveText('olivia');
  await expect(page.locator('#identity-role')).toHaveText('operator');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'switchyard_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(stored).not.toContain(stack.tokens.olivia);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
});

test('a wrong token shows the error', async ({ page, stack }) => {
  await page.goto(stack.url);
  await page.getByLabel('Access token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.locator('#signin-error');
  await expect(error.locator('.notice-code')).toHaveText('unauthorized');
  await expect(error).not.toHaveText('unauthorized');
  await expect(page.locator('#sections')).toBeHidden();
});

test('a viewer sees everything and has no control that would fail with 403', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'echo', 'watched', { token: stack.tokens.olivia });
  await stack.api('POST', `/api/runtimes/remote/workers/${worker.worker_id}/input`, { text: 'seen by the viewer\n' }, { token: stack.tokens.olivia });
  await signIn(page, stack, 'victor');
  await expect(page.locator('#identity-role')).toHaveText('viewer');
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  await expect(page.getByRole('button', { name: /^Start/ })).toHaveCount(0);

  await page.getByRole('link', { name: 'Workers', exact: true }).click();
  await expect(page.locator('.workers-table tbody tr')).toHaveCount(1);
  await expect(page.getByRole('form', { name: 'Start a worker' })).toHaveCount(0);
  await expect(page.locator('main button:visible')).toHaveCount(0);

  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  await expect(page.locator('.entry-output')).toHaveText('seen by the viewer\n');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.getByRole('textbox', { name: 'Input', exact: true })).toHaveCount(0);
  await expect(page.locator('[data-command]')).toHaveCount(0);
});

test('a session that ends sends the page back to sign-in', async ({ page, stack }) => {
  await signIn(page, stack, 'olivia');
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  // Without session_key_file every backend process has its own key: a restart ends
  // every session.
  await stack.backend.stop();
  await stack.startBackend();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible({ timeout: 15_000 });
  await expect(page.locator('.signin-notice')).toContainText('session has ended');
});

test('a session that ends under an open worker leaves no stale error behind', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'remote', 'echo', 'watched across sessions', { token: stack.tokens.olivia });
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  await page.getByLabel('Access token').fill(stack.tokens.olivia);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await stack.backend.stop();
  await stack.startBackend();
  await expect(page.locator('.signin-notice')).toContainText('session has ended', { timeout: 15_000 });
  // The sign-in page says why; the stream the page closed adds no error of its own.
  await page.waitForTimeout(1000);
  await expect(page.locator('.notice-error')).toHaveCount(0);
  await page.getByLabel('Access token').fill(stack.tokens.olivia);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.locator('.notice-error')).toHaveCount(0);
});

test('a role lowered by a reload takes the page\'s controls away at the first refusal', async ({ page, stack }) => {
  await signIn(page, stack, 'olivia');
  await expect(page.locator('#identity-role')).toHaveText('operator');
  await page.getByRole('link', { name: 'Workers', exact: true }).click();
  const form = page.getByRole('form', { name: 'Start a worker' });
  await expect(form).toBeVisible();

  // The backend's tokens are reloaded (SIGHUP) with olivia a viewer; her session
  // stays, with the new role.
  const config = join(stack.dir, 'backend.toml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/(name = "olivia"\n.*\n)role = "operator"/, '$1role = "viewer"'));
  stack.backend.child.kill('SIGHUP');
  await expect.poll(async () => (await stack.api('GET', '/api/session', undefined, { token: stack.tokens.olivia })).body.role).toBe('viewer');

  await form.getByRole('button', { name: 'Start worker' }).click();
  await expect(page.locator('.notice-error .notice-code')).toHaveText('forbidden');
  // The page now shows what a viewer may do, and says so.
  await expect(page.locator('#identity-role')).toHaveText('viewer');
  await expect(form).toHaveCount(0);
  await expect(page.locator('main button:visible')).toHaveCount(0);
  await expect(page.locator('.notice-info')).toContainText('viewer role');
});

test('signed in on a phone, Sign out stays on screen', async ({ page, stack }) => {
  await page.setViewportSize({ width: 320, height: 640 });
  await signIn(page, stack, 'olivia');
  await expect(page.locator('.runtime-card')).toHaveCount(2);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  const box = await page.getByRole('button', { name: 'Sign out' }).boundingBox();
  expect(box.x + box.width).toBeLessThanOrEqual(320);
});
