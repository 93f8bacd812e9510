'use strict';
// The browser-style API of ws (lib/event-target.js): addEventListener,
// onopen/onmessage/onclose/onerror, with the same event objects.

const kListener = Symbol('kListener');
const kForOnEventAttribute = Symbol('kIsForOnEventAttribute');

class Event {
  constructor(type) {
    this._target = null;
    this._type = type;
  }
  get target() {
    return this._target;
  }
  get type() {
    return this._type;
  }
}

class CloseEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._code = options.code === undefined ? 0 : options.code;
    this._reason = options.reason === undefined ? '' : options.reason;
    this._wasClean = options.wasClean === undefined ? false : options.wasClean;
  }
  get code() {
    return this._code;
  }
  get reason() {
    return this._reason;
  }
  get wasClean() {
    return this._wasClean;
  }
}

class ErrorEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._error = options.error === undefined ? null : options.error;
    this._message = options.message === undefined ? '' : options.message;
  }
  get error() {
    return this._error;
  }
  get message() {
    return this._message;
  }
}

class MessageEvent extends Event {
  constructor(type, options = {}) {
    super(type);
    this._data = options.data === undefined ? null : options.data;
  }
  get data() {
    return this._data;
  }
}

function callListener(listener, thisArg, event) {
  if (typeof listener === 'object' && listener.handleEvent) listener.handleEvent.call(listener, event);
  else listener.call(thisArg, event);
}

const EventTarget = {
  addEventListener(type, handler, options = {}) {
    for (const listener of this.listeners(type)) {
      if (!options[kForOnEventAttribute] && listener[kListener] === handler && !listener[kForOnEventAttribute]) {
        return;
      }
    }
    let wrapper;
    if (type === 'message') {
      wrapper = function onMessage(data, isBinary) {
        const event = new MessageEvent('message', { data: isBinary ? data : data.toString() });
        event._target = this;
        callListener(handler, this, event);
      };
    } else if (type === 'close') {
      wrapper = function onClose(code, message) {
        const event = new CloseEvent('close', {
          code,
          reason: message.toString(),
          wasClean: this._closeFrameReceived && this._closeFrameSent
        });
        event._target = this;
        callListener(handler, this, event);
      };
    } else if (type === 'error') {
      wrapper = function onError(error) {
        const event = new ErrorEvent('error', { error, message: error.message });
        event._target = this;
        callListener(handler, this, event);
      };
    } else if (type === 'open') {
      wrapper = function onOpen() {
        const event = new Event('open');
        event._target = this;
        callListener(handler, this, event);
      };
    } else {
      return;
    }
    wrapper[kForOnEventAttribute] = !!options[kForOnEventAttribute];
    wrapper[kListener] = handler;
    if (options.once) this.once(type, wrapper);
    else this.on(type, wrapper);
  },

  removeEventListener(type, handler) {
    for (const listener of this.listeners(type)) {
      if (listener[kListener] === handler && !listener[kForOnEventAttribute]) {
        this.removeListener(type, listener);
        break;
      }
    }
  }
};

module.exports = { CloseEvent, ErrorEvent, Event, EventTarget, MessageEvent, kListener, kForOnEventAttribute };
