// pty workers in xterm.js, end to end: a shell on a terminal on the remote runtime,
// through the backend's interactive WebSocket.

import { test, expect, screenshot, createWorker, workerUrl } from '../support/fixtures.js';

test.use({ stackOptions: { pty: true } });

const screen = (page) => page.locator('.xterm-rows');

// Asks the shell on `page` for the terminal's size (`stty size`, "rows cols"), under
// a marker the shell computes (so the typed line never matches), and waits for that
// answer on `page`, or on `seenOn` when given: never a stale one.
let asked = 0;
async function askSize(page, seenOn = page) {
  asked += 1;
  await page.keyboard.type(`echo sz$((${asked}+0)):$(stty size)`);
  await page.keyboard.press('Enter');
  const answer = new RegExp(`sz${asked}:(\\d+ \\d+)`);
  let size;
  await expect
    .poll(async () => {
      size = (await screen(seenOn).innerText()).match(answer)?.[1];
      return size;
    }, { timeout: 10_000 })
    .toBeTruthy();
  return size;
}

const shownRows = (page) => screen(page).locator(':scope > div').count();

async function openTerminal(page, stack, label) {
  const worker = await createWorker(stack, 'remote', 'term', label);
  await page.goto(workerUrl(stack, 'remote', worker.worker_id));
  await expect(page.locator('.xterm')).toBeVisible();
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(screen(page)).toContainText('$');
  await page.locator('.xterm').click();
  return worker;
}

test('type in a pty worker: echo $((6*7)) answers 42', async ({ page, stack }) => {
  await openTerminal(page, stack, 'shell');
  await page.keyboard.type('echo $((6*7))');
  await page.keyboard.press('Enter');
  // innerText keeps the rows' line breaks (textContent runs them together).
  await expect.poll(() => screen(page).innerText()).toMatch(/^42\s*$/m);
  await screenshot(page, 'terminal');
  await expect(page.getByRole('textbox', { name: 'Input', exact: true })).toHaveCount(0);
});

test('a reload paints the terminal from the snapshot', async ({ page, stack }) => {
  await openTerminal(page, stack, 'repaint');
  await page.keyboard.type('echo painted-$((40+2))');
  await page.keyboard.press('Enter');
  await expect(screen(page)).toContainText('painted-42');
  await page.reload();
  await expect(page.locator('.xterm')).toBeVisible();
  await expect(screen(page)).toContainText('painted-42');
});

test('paste goes to the terminal, and its size follows the window', async ({ page, stack }) => {
  await openTerminal(page, stack, 'sizes');
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.setData('text/plain', 'echo pasted-$((1+1))\r');
    document.querySelector('.xterm-helper-textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
  });
  await expect(screen(page)).toContainText('pasted-2');

  const before = await askSize(page);
  await page.setViewportSize({ width: 900, height: 600 });
  await expect.poll(() => askSize(page), { timeout: 10_000 }).not.toBe(before);
  expect(Number((await askSize(page)).split(' ')[0])).toBe(await shownRows(page));
});

test('a paste of any size goes to the terminal whole', async ({ page, stack }) => {
  // Over the runtime's input limit (64 KiB) and over the backend's frame limit
  // (1 MiB): the console sends it in pieces, in order, and nothing is refused.
  await openTerminal(page, stack, 'big paste');
  for (const lines of [1_000, 12_000]) {
    await page.keyboard.type(`stty -echo; wc -lc; stty echo; echo end-$((${lines}+0))`);
    await page.keyboard.press('Enter');
    await page.evaluate((count) => {
      const data = new DataTransfer();
      data.setData('text/plain', `${'x'.repeat(99)}\r`.repeat(count));
      document.querySelector('.xterm-helper-textarea').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
    }, lines);
    await page.keyboard.press('Control+D');
    // wc counts the pty's newlines (its \r becomes \n) and bytes.
    await expect.poll(() => screen(page).innerText(), { timeout: 20_000 }).toMatch(new RegExp(`^\\s*${lines}\\s+${lines * 100}\\s*\\nend-${lines}`, 'm'));
  }
  await expect(page.locator('.notice-error')).toHaveCount(0);
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
});

test('two pages on one terminal: its size follows the page typed into last', async ({ page, context, stack }) => {
  const worker = await openTerminal(page, stack, 'two-pages');
  const rowsOf = async (p) => Number((await askSize(p)).split(' ')[0]);
  expect(await rowsOf(page)).toBe(await shownRows(page));

  // A second, smaller window on the same worker sizes it to itself as it opens.
  const other = await context.newPage();
  await other.setViewportSize({ width: 700, height: 420 });
  await other.goto(workerUrl(stack, 'remote', worker.worker_id));
  await expect(other.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await other.locator('.xterm').click();
  // Answered on the first page too, so it has seen the `resized` event before.
  const otherRows = Number((await askSize(other, page)).split(' ')[0]);
  expect(otherRows).toBe(await shownRows(other));
  expect(otherRows).not.toBe(await shownRows(page));

  // A key on the first page puts its size back before the key arrives; then the
  // second page's, the same way.
  await page.locator('.xterm').click();
  expect(await rowsOf(page)).toBe(await shownRows(page));
  await other.locator('.xterm').click();
  expect(await rowsOf(other)).toBe(otherRows);
  await other.close();
});

test('Ctrl+] leaves the terminal, and Tab then reaches the commands', async ({ page, stack }) => {
  await openTerminal(page, stack, 'leaving');
  await expect(page.locator('.terminal-hint')).toContainText('Ctrl+]');
  await page.keyboard.press('Control+BracketRight');
  await expect(page.locator('main h1')).toBeFocused();
  for (let i = 0; i < 20; i += 1) {
    if (await page.evaluate(() => document.activeElement?.matches('button[data-command="stop"]'))) break;
    await page.keyboard.press('Tab');
  }
  await expect(page.locator('button[data-command="stop"]')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.locator('.status-slot')).toHaveText('stopped');
});

test('an ended terminal takes no more keys', async ({ page, stack }) => {
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => sent.push(String(frame.payload))));
  await openTerminal(page, stack, 'ending');
  await page.keyboard.type('exit');
  await page.keyboard.press('Enter');
  await expect(page.locator('.status-slot')).toHaveText('exited');
  const before = sent.length;
  await page.locator('.xterm').click();
  await page.keyboard.type('abcdefgh');
  await page.waitForTimeout(500);
  expect(sent.slice(before)).toEqual([]);
  await expect(page.locator('.notice-code')).toHaveCount(0);
});

test('a reload keeps a pending wrap: the next character starts the next row', async ({ page, stack }) => {
  await openTerminal(page, stack, 'wrapping');
  // Z at the last column of the first row leaves the cursor waiting to wrap.
  await page.keyboard.type(
    `clear; stty -echo; c=$(stty size | cut -d' ' -f2); printf "\\033[1;\${c}HZ"; read x; printf W; sleep 100`,
  );
  await page.keyboard.press('Enter');
  const rows = screen(page).locator(':scope > div');
  await expect(rows.first()).toHaveText(/Z\s*$/);
  await page.reload();
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await expect(rows.first()).toHaveText(/Z\s*$/);
  await page.locator('.xterm').click();
  await page.keyboard.press('Enter');
  await expect(rows.nth(1)).toHaveText(/^W/);
  await expect(rows.first()).toHaveText(/Z\s*$/);
});

test.describe('a terminal repainted after a reset', () => {
  // A short backlog: output while the page is away soon outruns its cursor.
  test.use({ stackOptions: { pty: true, runtimeLimits: { event_backlog: 10 } } });

  test('is painted as the worker has it: the cursor stays where the program left it', async ({ page, stack }) => {
    const worker = await openTerminal(page, stack, 'repainted');
    await stack.backend.stop('SIGTERM');
    await expect(page.locator('.connection')).toHaveAttribute('data-state', 'reconnecting');
    // While the page is away the shell writes more than the backlog keeps.
    const sent = await stack.runtimeApi('POST', `/v1/workers/${worker.worker_id}/input`, {
      text: 'i=0; while [ $i -lt 60 ]; do echo line-$i; sleep 0.02; i=$((i+1)); done; echo away-$((40+2))\r',
    });
    expect(sent.status).toBe(202);
    await expect
      .poll(async () => (await stack.runtimeApi('GET', `/v1/workers/${worker.worker_id}/transcript?after=0&limit=1000`)).body.items.some((i) => i.text?.includes('away-42\r\n')))
      .toBe(true);
    await stack.startBackend();
    await expect(page.locator('.reset-info')).toContainText('Repainted from a fresh snapshot', { timeout: 20_000 });
    await expect(screen(page)).toContainText('away-42');
    await page.locator('.xterm').click();
    await page.keyboard.type('echo typed-after');
    // What is typed goes on the prompt's row, where the shell's cursor is.
    await expect.poll(() => screen(page).innerText()).toMatch(/^\$ echo typed-after\s*$/m);
    await page.keyboard.press('Enter');
    await expect.poll(() => screen(page).innerText()).toMatch(/^typed-after\s*$/m);
  });
});
