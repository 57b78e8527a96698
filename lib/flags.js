'use strict';

/**
 * Defines boolean accessors on a prototype, one bit each of the instances' `_flags` field
 * (which the constructor sets to 0): a per-connection object pays 8 bytes for the field
 * instead of 8 per boolean. For state off the per-message path; plain fields are faster.
 *
 * @param {object} prototype
 * @param {string[]} names the accessors, in bit order
 */
function defineFlags(prototype, names) {
  names.forEach((name, bit) => {
    const mask = 1 << bit;
    Object.defineProperty(prototype, name, {
      get() {
        return (this._flags & mask) !== 0;
      },
      set(value) {
        this._flags = value ? this._flags | mask : this._flags & ~mask;
      }
    });
  });
}

module.exports = { defineFlags };
