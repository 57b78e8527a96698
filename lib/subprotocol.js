'use strict';

// Parses the Sec-WebSocket-Protocol header: a comma-separated list of RFC 7230 tokens with
// optional whitespace around the commas. Anything else (empty elements, duplicates, non-token
// characters) is a SyntaxError, which the server answers with 400.

const { TOKEN } = require('./constants');

/**
 * @param {string} header
 * @returns {Set<string>} the offered subprotocols, in order
 */
function parse(header) {
  const protocols = new Set();
  for (const element of header.split(',')) {
    const protocol = element.trim();
    if (!TOKEN.test(protocol)) {
      throw new SyntaxError(`Invalid subprotocol in Sec-WebSocket-Protocol header: "${protocol}"`);
    }
    if (protocols.has(protocol)) {
      throw new SyntaxError(`The "${protocol}" subprotocol is duplicated`);
    }
    protocols.add(protocol);
  }
  return protocols;
}

module.exports = { parse, isToken: (value) => TOKEN.test(value) };
