'use strict';
// Small promise helpers shared by the Node suites. Every wait is bounded so a
// broken feature fails its test instead of hanging the run.
const { once } = require('events');

function withTimeout(promise, ms = 5000, what = 'event') {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

function waitFor(emitter, event, ms) {
  return withTimeout(once(emitter, event), ms, event);
}

async function listen(WebSocketServer, options = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  await waitFor(wss, 'listening');
  return { wss, url: `ws://127.0.0.1:${wss.address().port}` };
}

function closeServer(wss) {
  return withTimeout(new Promise((resolve) => wss.close(() => resolve())), 8000, 'server close');
}

function httpListen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

module.exports = { withTimeout, waitFor, listen, closeServer, httpListen };
