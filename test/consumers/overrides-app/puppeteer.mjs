// puppeteer-core driving Debian's Chromium over the DevTools protocol, with ws (its CDP client)
// replaced by ws-native through the overrides: open a page, evaluate, close. The messages
// puppeteer sends are counted on ws-native's WebSocket class (the module puppeteer imports is
// the app's node_modules/ws), which shows that the CDP traffic went through it.

import fs from 'fs';
import os from 'os';
import path from 'path';
import { createRequire } from 'module';
import puppeteer from 'puppeteer-core';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const { wsSeenBy, addonsLoaded, deadline, run } = require('./common.cjs');

run(async () => {
  let sends = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function countedSend(...args) {
    sends++;
    return send.apply(this, args);
  };
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-native-puppeteer-'));
  const browser = await deadline(puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`
    ]
  }), 'chromium to start', 30000);
  try {
    const page = await browser.newPage();
    await page.goto('data:text/html,<title>ws-native</title><p id="p">42</p>');
    const evaluated = await page.evaluate(() => [document.title, Number(document.getElementById('p').textContent) * 2]);
    return { ws: wsSeenBy('puppeteer-core'), evaluated, sendsThroughWsNative: sends, addons: addonsLoaded() };
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
