'use strict';

module.exports = {
  spec: ['test/*.test.js', 'test/consumers/*.test.js'],
  reporter: require.resolve('./test/support/summary-reporter.js'),
  timeout: 20000,
  exit: false
};
