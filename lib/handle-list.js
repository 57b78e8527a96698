'use strict';

// Lists of connection handles handed to the addon in one call (binding.sendFramedToEach(),
// binding.transportFlushEach()): a Uint32Array per caller, kept from call to call and doubled
// when a call needs more room.

/** `list`, or a copy of it twice as long when `index` is past its end. */
function withRoomAt(list, index) {
  if (index < list.length) return list;
  const grown = new Uint32Array(2 * list.length);
  grown.set(list);
  return grown;
}

module.exports = { withRoomAt };
