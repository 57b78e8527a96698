'use strict';

// A throwaway redis-server (the Debian package) on a free loopback port, for the broker tests
// and bench/broker-fanout.js: no persistence, no config file, its own temp dir. start() resolves
// once it accepts connections; stop() kills it; restart() stops it and starts it on the same port
// (a lost and restored connection for the clients).

const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const REDIS_SERVER = process.env.WS_NATIVE_REDIS_SERVER || '/usr/bin/redis-server';
const START_TIMEOUT = 10000;

function available() {
  try {
    fs.accessSync(REDIS_SERVER, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

class RedisServer {
  constructor() {
    this.port = null;
    this.child = null;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-redis-'));
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it (on a free port the first time, on the same port after stop()). */
  async start() {
    for (let attempt = 0; ; attempt++) {
      const port = this.port !== null ? this.port : await freePort();
      try {
        await this._spawn(port);
        this.port = port;
        return this;
      } catch (err) {
        // Another process took the free port in between: try another (only on first start).
        if (this.port !== null || attempt >= 4) throw err;
      }
    }
  }

  _spawn(port) {
    return new Promise((resolve, reject) => {
      const child = spawn(
        REDIS_SERVER,
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--save', '',
          '--appendonly', 'no',
          '--dir', this.dir,
          '--logfile', '',
          // bench/broker-fanout.js: slow subscribers are not cut off while it measures
          '--client-output-buffer-limit', 'pubsub 0 0 0'
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] }
      );
      let output = '';
      const timer = setTimeout(() => fail(new Error('redis-server did not start in time')), START_TIMEOUT);
      const fail = (err) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`${err.message}\n${output}`));
      };
      const onData = (chunk) => {
        output += chunk;
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          child.stdout.removeListener('data', onData);
          child.stdout.resume();
          child.stderr.resume();
          this.child = child;
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk) => (output += chunk));
      child.on('error', fail);
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = null;
        else fail(new Error(`redis-server exited (${code === null ? signal : code})`));
      });
    });
  }

  /** Kills it; resolves once the process is gone. */
  stop() {
    const child = this.child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) {
      this.child = null;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops it and removes its directory. */
  async destroy() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts a redis-server on a free loopback port; see RedisServer. */
function startRedis() {
  return new RedisServer().start();
}

module.exports = { available, startRedis, RedisServer, REDIS_SERVER };
