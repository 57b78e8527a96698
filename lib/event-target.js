'use strict';

// The browser's EventTarget API on top of EventEmitter: addEventListener/removeEventListener
// (with { once } and handleEvent objects), and the Event, MessageEvent, CloseEvent and
// ErrorEvent objects they receive. The on<event> attributes are defined in websocket.js.

const { kForOnEventAttribute, kListener } = require('./constants');

const kTarget = Symbol('kTarget');
const kType = Symbol('kType');

class Event {
  /**
   * @param {string} type
   */
  constructor(type) {
    this[kTarget] = null;
    this[kType] = type;
  }

  get target() {
    return this[kTarget];
  }

  get type() {
    return this[kType];
  }
}

Object.defineProperty(Event.prototype, 'target', { enumerable: true });
Object.defineProperty(Event.prototype, 'type', { enumerable: true });

class CloseEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this.code = options.code === undefined ? 0 : options.code;
    this.reason = options.reason === undefined ? '' : options.reason;
    this.wasClean = options.wasClean === undefined ? false : options.wasClean;
  }
}

class ErrorEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this.error = options.error === undefined ? null : options.error;
    this.message = options.message === undefined ? '' : options.message;
  }
}

class MessageEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this.data = options.data === undefined ? null : options.data;
  }
}

function callListener(listener, thisArg, event) {
  if (typeof listener === 'object' && listener !== null && listener.handleEvent) {
    listener.handleEvent.call(listener, event);
  } else {
    listener.call(thisArg, event);
  }
}

// Turns the EventEmitter arguments of each event into the browser's event object.
const makeEvent = {
  message(data, isBinary) {
    return new MessageEvent('message', { data: isBinary ? data : data.toString() });
  },
  close(code, message) {
    return new CloseEvent('close', {
      code,
      reason: message.toString(),
      wasClean: this._closedCleanly
    });
  },
  error(error) {
    return new ErrorEvent('error', { error, message: error.message });
  },
  open() {
    return new Event('open');
  }
};

const EventTarget = {
  /**
   * @param {string} type 'open', 'message', 'close' or 'error'
   * @param {Function|object} handler a function or an object with handleEvent()
   * @param {{ once?: boolean }} [options]
   */
  addEventListener(type, handler, options = {}) {
    const make = makeEvent[type];
    if (!make || (typeof handler !== 'function' && !(handler && handler.handleEvent))) return;

    for (const listener of this.listeners(type)) {
      if (
        !options[kForOnEventAttribute] &&
        listener[kListener] === handler &&
        !listener[kForOnEventAttribute]
      ) {
        return;
      }
    }

    const wrapper = function (...args) {
      const event = make.apply(this, args);
      event[kTarget] = this;
      callListener(handler, this, event);
    };
    wrapper[kListener] = handler;
    wrapper[kForOnEventAttribute] = !!options[kForOnEventAttribute];

    if (options.once) this.once(type, wrapper);
    else this.on(type, wrapper);
  },

  /**
   * @param {string} type
   * @param {Function|object} handler
   */
  removeEventListener(type, handler) {
    for (const listener of this.listeners(type)) {
      if (listener[kListener] === handler && !listener[kForOnEventAttribute]) {
        this.removeListener(type, listener);
        break;
      }
    }
  }
};

// The event classes too, as ws's lib/event-target.js exports them (ws's own tests, and code
// written against ws, check events with instanceof).
module.exports = { CloseEvent, ErrorEvent, Event, EventTarget, MessageEvent };
