'use strict';

/**
 * Runs `before(emitter, event)` ahead of every listener added to instances of `prototype`:
 * overrides of the three ways a listener comes in, each calling the one `base` has after it
 * (once() and prependOnceListener() go through on() and prependListener()). Cheaper than a
 * 'newListener' listener on every instance, and it sees the first listener too.
 *
 * @param {object} prototype
 * @param {object} base the prototype whose on/addListener/prependListener do the adding
 * @param {(emitter: object, event: string|symbol) => void} before
 */
function beforeListenerAdded(prototype, base, before) {
  for (const name of ['on', 'addListener', 'prependListener']) {
    const add = base[name];
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value: function (event, listener) {
        before(this, event);
        return add.call(this, event, listener);
      }
    });
  }
}

module.exports = { beforeListenerAdded };
