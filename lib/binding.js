'use strict';

// Loads the compiled addon: a prebuilt binary from prebuilds/ first, then a local build from
// build/. When neither exists, say which platform is missing and how to fix it.

const path = require('path');

function load() {
  try {
    return require('node-gyp-build')(path.join(__dirname, '..'));
  } catch (err) {
    const platform = `${process.platform}-${process.arch} (Node ${process.version}, ` +
      `Node-API ${process.versions.napi})`;
    const wrapped = new Error(
      `ws-native: no compiled addon for ${platform}. No prebuilt binary ships for this ` +
        'platform and none was built here. Build it from source with ' +
        '`npm rebuild ws-native` (needs Python 3, make and a C compiler). ' +
        `Cause: ${err.message}`
    );
    wrapped.code = 'WS_ERR_ADDON_NOT_FOUND';
    wrapped.cause = err;
    throw wrapped;
  }
}

module.exports = load();
