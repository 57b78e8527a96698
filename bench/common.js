'use strict';

// What the benchmark scripts share: pinning processes to cores and medians (run.js,
// clients.js), and the echo servers' command line.

const { execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');

let pinning;

/**
 * Whether processes can be pinned to cores 0 and 1 (taskset present, two cores); checked
 * once, with a warning from `who` when they cannot, in which case everything runs unpinned.
 */
function canPin(who) {
  if (pinning === undefined) {
    try {
      execFileSync('taskset', ['-c', '0,1', 'true'], { stdio: 'ignore' });
      pinning = true;
    } catch {
      pinning = false;
      console.error(`${who}: taskset or two cores unavailable; running unpinned`);
    }
  }
  return pinning;
}

/** [command, args] that run `file args` on `core` (unpinned where canPin() said no). */
function pinned(core, file, args) {
  return pinning ? ['taskset', ['-c', String(core), file, ...args]] : [file, args];
}

/** The median of the finite values; NaN when there is none. */
function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * An echo server's arguments: `--port P` (default 8080) and the on/off flags it takes
 * (e.g. ['--deflate'], each false unless given). Anything else prints `usageLine`, exits 2.
 */
function serverArgs(argv, usageLine, flags = []) {
  const usage = () => {
    console.error(`usage: ${usageLine}`);
    process.exit(2);
  };
  const opts = { port: 8080 };
  for (const flag of flags) opts[flag.slice(2)] = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') {
      opts.port = Number(argv[++i]);
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage();
    } else if (flags.includes(argv[i])) {
      opts[argv[i].slice(2)] = true;
    } else {
      usage();
    }
  }
  return opts;
}

/**
 * The certificate and key the wss rows serve: the examples' self-signed pair for localhost
 * and 127.0.0.1 (loadgen --tls does not verify it).
 */
const TLS_FILES = {
  cert: path.join(__dirname, '..', 'examples', 'tls', 'cert.pem'),
  key: path.join(__dirname, '..', 'examples', 'tls', 'key.pem')
};

/** TLS_FILES read, as https.createServer() takes them. */
function tlsOptions() {
  return { cert: fs.readFileSync(TLS_FILES.cert), key: fs.readFileSync(TLS_FILES.key) };
}

/** A TCP port free on 127.0.0.1 now (the system picks it), for a server about to start. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A process's resident set size in KiB (Linux: /proc/PID/status), NaN when unreadable. */
function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

module.exports = { canPin, pinned, median, serverArgs, TLS_FILES, tlsOptions, freePort, rssKiB };
