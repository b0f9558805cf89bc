// Prints why each skipped test was skipped (a feature not built yet) and a closing
// "N passed, N failed, N skipped" line.

export default class SummaryReporter {
  constructor() {
    this.counts = { passed: 0, failed: 0, skipped: 0, flaky: 0 };
    this.skips = [];
  }

  onTestEnd(test, result) {
    if (result.status === 'skipped') {
      const reason = test.annotations.filter((a) => a.type === 'skip').map((a) => a.description).filter(Boolean).join('; ');
      this.skips.push(`${test.titlePath().filter(Boolean).join(' › ')}: ${reason || 'skipped'}`);
    }
  }

  onExit() {}

  printsToStdio() {
    return true;
  }

  // Outcomes are final only once retries are done: count them from the suite.
  onBegin(config, suite) {
    this.suite = suite;
  }
}

// Counting from the root suite at the end keeps retried tests from counting twice.
SummaryReporter.prototype.onEnd = function onEnd() {
  for (const test of this.suite.allTests()) {
    const outcome = test.outcome();
    if (outcome === 'expected') this.counts.passed += 1;
    else if (outcome === 'skipped') this.counts.skipped += 1;
    else if (outcome === 'flaky') {
      this.counts.passed += 1;
      this.counts.flaky += 1;
    } else this.counts.failed += 1;
  }
  if (this.skips.length) {
    console.log('\nSkipped, with the reason:');
    for (const line of this.skips) console.log(`  - ${line}`);
  }
  const { passed, failed, skipped, flaky } = this.counts;
  if (flaky) console.log(`${flaky} passed only on a retry (flaky)`);
  console.log(`browser tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
};
