// The test fixtures: a fresh stack per test, and a page that fails the test on any
// uncaught script error or Content-Security-Policy violation.

import { test as base, expect } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startStack } from './stack.js';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * Where screenshots go: the README's (docs/screenshots) when SWITCHYARD_SCREENSHOTS=1
 * (`cargo xtask browser-test --screenshots`), else test-results/screenshots, so an
 * ordinary run leaves the repository as it was.
 */
export const SCREENSHOTS = process.env.SWITCHYARD_SCREENSHOTS === '1'
  ? resolve(here, '../../../docs/screenshots')
  : resolve(here, '../test-results/screenshots');

export const test = base.extend({
  // Options for the stack; a test file sets them with test.use({ stackOptions }).
  stackOptions: [{}, { option: true }],

  stack: async ({ stackOptions }, use) => {
    const stack = await startStack(stackOptions);
    await use(stack);
    await stack.stop();
  },

  page: async ({ page }, use) => {
    const problems = [];
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      const text = message.text();
      if (message.type() === 'error' && /Content Security Policy|Refused to/.test(text)) {
        problems.push(`CSP: ${text}`);
      }
    });
    await use(page);
    expect(problems, 'no script errors or CSP violations').toEqual([]);
  },
});

export { expect };

/** Saves a screenshot for the README. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`) });
}

/** Output text of the transcript (stdout and stderr blocks), in order. */
export async function transcriptOutput(page) {
  return (await page.locator('.entry-output pre').allTextContents()).join('');
}

/** Creates a worker through the API and returns its detail. */
export async function createWorker(stack, runtime, profile, label, options) {
  const answer = await stack.api('POST', `/api/runtimes/${runtime}/workers`, label ? { profile, label } : { profile }, options);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body;
}

/** The worker view's URL. */
export function workerUrl(stack, runtime, worker) {
  return `${stack.url}#/workers/${runtime}/${worker}`;
}
