'use strict';

// mocha's spec output plus one closing line in the plain "N passed, N failed" form, so a
// reader (or CI) can tell at a glance how the JavaScript suite ended.

const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      let transport = process.env.WS_NATIVE_TRANSPORT || 'default transport';
      if (process.env.WS_NATIVE_POLLER) transport += `, ${process.env.WS_NATIVE_POLLER} poller`;
      process.stdout.write(`js: ${passes} passed, ${failures} failed, ${pending} skipped (${transport})\n`);
    });
  }
}

module.exports = SummaryReporter;
