// The transcript's older items, loaded on demand: every item once and none skipped,
// whatever size of page the runtime serves.

import { test, expect, createWorker, transcriptOutput, workerUrl } from '../support/fixtures.js';

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
