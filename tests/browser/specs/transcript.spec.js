// The transcript's older items, loaded on demand: every item once and none skipped,
// whatever size of page the runtime serves.

import { test, expect, screenshot, createWorker, transcriptOutput, workerUrl } from '../support/fixtures.js';

/** The sequence ranges the transcript's blocks cover, in page order. */
async function coverage(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.transcript-list [data-seq]')].map((e) => [
      Number(e.dataset.seq),
      Number(e.dataset.seqLast ?? e.dataset.seq),
    ]),
  );
}

/** Where one block's range does not follow on from the one before. */
function gaps(ranges) {
  const found = [];
  for (let i = 1; i < ranges.length; i += 1) {
    if (ranges[i][0] !== ranges[i - 1][1] + 1) found.push([ranges[i - 1][1], ranges[i][0]]);
  }
  return found;
}

test('older output full of control bytes loads with nothing skipped', async ({ page, stack }) => {
  // Each control byte is six bytes of JSON (\u0001), so a page of 8 KiB output chunks
  // reaches the runtime's byte budget long before the items asked for.
  const worker = await createWorker(stack, 'local', 'shell', 'control bytes');
  const size = 2_000_000;
  const input = await stack.api('POST', `/api/runtimes/local/workers/${worker.worker_id}/input`, {
    text: `head -c ${size} /dev/zero | tr '\\0' '\\1'; echo; echo done\n`,
  });
  expect(input.status).toBe(202);
  await expect
    .poll(async () => (await stack.api('GET', `/api/runtimes/local/workers/${worker.worker_id}`)).body.output_bytes, { timeout: 20_000 })
    .toBe(size + 6);
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  const earlier = page.getByRole('button', { name: /Load earlier items/ });
  await expect(earlier).toBeVisible();
  await expect.poll(() => transcriptOutput(page)).toContain('done\n');
  for (let clicks = 0; clicks < 10 && (await earlier.isVisible()); clicks += 1) {
    await earlier.click();
    await expect(page.locator('.load-earlier:not([disabled])')).toHaveCount(1);
    expect(gaps(await coverage(page))).toEqual([]);
  }
  await expect(earlier).toBeHidden();
  const ranges = await coverage(page);
  expect(ranges[0][0]).toBe(1);
  expect(gaps(ranges)).toEqual([]);
  const output = await transcriptOutput(page);
  expect(output.length).toBe(size + 6);
  expect(output.endsWith('\u0001\ndone\n')).toBe(true);
  await expect(page.locator('.notice-error')).toHaveCount(0);
});

test.describe('a runtime whose transcript pages are smaller than the console asks for', () => {
  test.use({ stackOptions: { runtimeLimits: { transcript_page_max: 30 } } });

  test('still loads earlier items, each once and in order', async ({ page, stack }) => {
    const worker = await createWorker(stack, 'remote', 'echo', 'small pages');
    for (let i = 1; i <= 150; i += 1) {
      const sent = await stack.api('POST', `/api/runtimes/remote/workers/${worker.worker_id}/input`, { text: `item-${i}\n` });
      expect(sent.status).toBe(202);
    }
    await expect.poll(async () => (await stack.api('GET', `/api/runtimes/remote/workers/${worker.worker_id}`)).body.output_bytes).toBe(
      Array.from({ length: 150 }, (_, i) => `item-${i + 1}\n`.length).reduce((a, b) => a + b, 0),
    );
    await page.goto(workerUrl(stack, 'remote', worker.worker_id));
    const earlier = page.getByRole('button', { name: /Load earlier items/ });
    await expect.poll(() => transcriptOutput(page)).toContain('item-150\n');
    await expect(earlier).toBeVisible();
    while (await earlier.isVisible()) {
      await earlier.click();
      await expect(page.locator('.load-earlier:not([disabled])')).toHaveCount(1);
      await expect(page.locator('.notice-error')).toHaveCount(0);
    }
    expect(gaps(await coverage(page))).toEqual([]);
    const lines = (await transcriptOutput(page)).split('\n').filter(Boolean);
    expect(lines).toEqual(Array.from({ length: 150 }, (_, i) => `item-${i + 1}`));
    await expect(page.locator('.entry-system').first()).toHaveText('started');
  });
});

test('colours and styles in the output of a non-terminal worker show as such; other escape sequences go', async ({ page, stack }) => {
  const worker = await createWorker(stack, 'local', 'shell', 'colours');
  await page.goto(workerUrl(stack, 'local', worker.worker_id));
  const input = page.getByRole('textbox', { name: 'Input' });
  // One command a line, as an agent CLI writes them without a terminal: SGR, cursor
  // and erase sequences, a window title (ended by BEL), a hyperlink (ended by ST),
  // charset and save-cursor escapes, a lone ESC, and an SGR split over two writes.
  const script = [
    "printf '\\033[31mred\\033[0m plain \\033[1;4mbold-under\\033[0m\\n'",
    "printf '\\033]0;a title\\007\\033]8;;https://example.com\\033\\\\link\\033]8;;\\033\\\\ \\033[2K\\033[1Gmoved \\033[?25lcursor\\033(B\\0337 <b>not bold</b>\\n'",
    "printf '\\033[3'; sleep 0.5; printf '2mgreen\\033[0m split\\n'",
    "printf '\\033[38;5;208morange \\033[38;2;0;0;255mblue\\033[0m\\n'",
    "printf 'lone\\033\\n'; echo done",
  ];
  for (const line of script) {
    await input.fill(line);
    await input.press('Enter');
    await expect(input).toHaveValue('');
  }
  const shown = 'red plain bold-under\nlink moved cursor <b>not bold</b>\ngreen split\norange blue\nlone\ndone\n';
  await expect.poll(() => transcriptOutput(page)).toBe(shown);
  await screenshot(page, 'worker-colours');
  const output = page.locator('.entry-output');
  await expect(output.locator('span.ansi-fg-1')).toHaveText('red');
  await expect(output.locator('span.ansi-bold.ansi-underline')).toHaveText('bold-under');
  await expect(output.locator('span.ansi-fg-2')).toHaveText('green');
  await expect(output.locator('span.ansi-fg-3')).toHaveText('orange ');
  await expect(output.locator('span.ansi-fg-4')).toHaveText('blue');
  await expect(output.locator('b')).toHaveCount(0);
  expect(await output.locator('span.ansi-fg-1').evaluate((e) => getComputedStyle(e).color)).toBe('rgb(255, 123, 114)');
  // The split SGR was two output events.
  const items = (await stack.api('GET', `/api/runtimes/local/workers/${worker.worker_id}/transcript?after=0&limit=100`)).body.items;
  expect(items.some((i) => i.kind === 'output' && i.text.endsWith('\x1b[3'))).toBe(true);

  // Read again from the snapshot: the same.
  await page.reload();
  await expect.poll(() => transcriptOutput(page)).toBe(shown);
  await expect(output.locator('span.ansi-fg-2')).toHaveText('green');
  await expect(page.locator('.notice-error')).toHaveCount(0);
});
