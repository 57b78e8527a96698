'use strict';

// Preloaded into a server by bench/memory-breakdown.js (node -r): on SIGUSR2 the server
// collects its garbage, then writes one line to stderr, "memory-probe " and a JSON object
// with process.memoryUsage(), V8's heap spaces and the path of a heap snapshot it wrote
// (the file named by the MEMORY_PROBE_SNAPSHOT environment variable, with a counter).
// Nothing else of the server changes: the signal is all it listens to.

const v8 = require('v8');

let taken = 0;

process.on('SIGUSR2', () => {
  // (--expose-gc comes from bench/memory-breakdown.js: without it, the snapshot's own
  // collection is the only one, which is enough for the snapshot but not for the figures.)
  if (typeof global.gc === 'function') global.gc();
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  }
  let snapshot = null;
  if (process.env.MEMORY_PROBE_SNAPSHOT) {
    snapshot = v8.writeHeapSnapshot(`${process.env.MEMORY_PROBE_SNAPSHOT}.${taken++}.heapsnapshot`);
  }
  process.stderr.write(
    `memory-probe ${JSON.stringify({ usage: process.memoryUsage(), spaces, snapshot })}\n`
  );
});
