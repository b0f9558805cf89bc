// Playwright drives Debian's Chromium (/usr/bin/chromium; Playwright's own browser
// download is not used) against the real switchyard binary that each test starts.
import { defineConfig } from '@playwright/test';

const chromium = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: './specs',
  // Each test starts its own backend and runtime; one at a time keeps a 2-core
  // machine responsive and the timing assertions honest.
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  retries: 0,
  reporter: [['list'], ['./support/summary-reporter.js']],
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromium,
      // Playwright gives every launch a fresh temporary profile directory.
      args: [
        '--headless=new',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-default-apps',
        '--disable-domain-reliability',
        '--metrics-recording-only',
      ],
    },
  },
});
