'use strict';
// followRedirects as ws 8 does it (lib/websocket.js initAsClient): without a
// 'redirect' listener, a redirect to another host (or from wss: to ws:) drops
// the Authorization and Cookie headers, and Host for another host; with a
// listener nothing is dropped and the listener gets the request about to be
// sent. Each case runs against ws and against wirehub.
const { describe, test } = require('node:test');
const assert = require('assert');
const http = require('http');
const { withTimeout, httpListen } = require('./helpers');
const { impls } = require('./ws-client-helpers');

// A server that records each upgrade request; `answer(req)` gives the raw
// response (a redirect or a refusal).
async function recorder(answer) {
  const seen = [];
  const server = http.createServer();
  server.on('upgrade', (req, socket) => {
    seen.push({ url: req.url, headers: req.headers });
    socket.end(answer(req));
  });
  const port = await httpListen(server);
  return { server, seen, port };
}

const refuse = () => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n';
const redirectTo = (location) => `HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\n\r\n`;

// Runs one client to its 'close'; returns the error and the 'redirect' calls.
function run(WebSocket, url, options, onRedirect) {
  return withTimeout(
    new Promise((resolve) => {
      const client = new WebSocket(url, options);
      const redirects = [];
      let error = null;
      if (onRedirect) {
        client.on('redirect', (u, req) => {
          redirects.push(u);
          onRedirect(u, req);
        });
      }
      client.on('error', (err) => (error = err));
      client.on('close', () => resolve({ error, redirects }));
    }),
    5000,
    'client close'
  );
}

const userHeaders = { Authorization: 'Bearer secret', Cookie: 'sid=1', 'X-Custom': 'kept' };

describe("Event: 'redirect' and followRedirects", () => {
  for (const [name, WebSocket] of impls) {
    test(`${name}: another host without a 'redirect' listener drops Authorization and Cookie`, async () => {
      const target = await recorder(refuse);
      const origin = await recorder(() => redirectTo(`ws://localhost:${target.port}/next`));
      const { error } = await run(WebSocket, `ws://127.0.0.1:${origin.port}/first`, {
        followRedirects: true,
        headers: userHeaders
      });
      assert.strictEqual(error.message, 'Unexpected server response: 403');
      assert.strictEqual(origin.seen[0].headers.authorization, 'Bearer secret');
      assert.strictEqual(origin.seen[0].headers.cookie, 'sid=1');
      assert.strictEqual(target.seen.length, 1);
      const h = target.seen[0].headers;
      assert.strictEqual(target.seen[0].url, '/next');
      assert.strictEqual(h.authorization, undefined);
      assert.strictEqual(h.cookie, undefined);
      assert.strictEqual(h['x-custom'], 'kept');
      assert.strictEqual(h.host, `localhost:${target.port}`);
      target.server.close();
      origin.server.close();
    });

    test(`${name}: another port of the same name is another host`, async () => {
      const target = await recorder(refuse);
      const origin = await recorder(() => redirectTo(`ws://127.0.0.1:${target.port}/next`));
      await run(WebSocket, `ws://127.0.0.1:${origin.port}/`, { followRedirects: true, headers: userHeaders });
      assert.strictEqual(target.seen[0].headers.authorization, undefined);
      assert.strictEqual(target.seen[0].headers.cookie, undefined);
      target.server.close();
      origin.server.close();
    });

    test(`${name}: credentials of the URL are dropped too, and kept on the same host`, async () => {
      const target = await recorder(refuse);
      const origin = await recorder((req) =>
        req.url === '/first' ? redirectTo('/again') : req.url === '/again' ? redirectTo(`ws://localhost:${target.port}/`) : refuse()
      );
      const { redirects } = await run(WebSocket, `ws://us%20er:p%40ss@127.0.0.1:${origin.port}/first`, {
        followRedirects: true
      });
      assert.deepStrictEqual(redirects, []);
      // ws sends the userinfo as written in the URL, not percent-decoded
      const basic = `Basic ${Buffer.from('us%20er:p%40ss').toString('base64')}`;
      assert.strictEqual(origin.seen[0].headers.authorization, basic);
      assert.strictEqual(origin.seen[1].url, '/again');
      assert.strictEqual(origin.seen[1].headers.authorization, basic);
      assert.strictEqual(target.seen[0].headers.authorization, undefined);
      target.server.close();
      origin.server.close();
    });

    test(`${name}: the same host keeps the headers`, async () => {
      const origin = await recorder((req) => (req.url === '/first' ? redirectTo('/second') : refuse()));
      const { error } = await run(WebSocket, `ws://127.0.0.1:${origin.port}/first`, {
        followRedirects: true,
        headers: userHeaders
      });
      assert.strictEqual(error.message, 'Unexpected server response: 403');
      assert.strictEqual(origin.seen.length, 2);
      assert.strictEqual(origin.seen[1].url, '/second');
      assert.strictEqual(origin.seen[1].headers.authorization, 'Bearer secret');
      assert.strictEqual(origin.seen[1].headers.cookie, 'sid=1');
      origin.server.close();
    });

    test(`${name}: with a 'redirect' listener nothing is dropped; it may remove headers itself`, async () => {
      const target = await recorder(refuse);
      const origin = await recorder(() => redirectTo(`ws://localhost:${target.port}/next`));
      const got = [];
      const { redirects } = await run(
        WebSocket,
        `ws://127.0.0.1:${origin.port}/`,
        { followRedirects: true, headers: userHeaders },
        (url, req) => {
          got.push(req.getHeader('authorization'), req.getHeader('Cookie'));
          req.removeHeader('cookie');
        }
      );
      assert.deepStrictEqual(redirects, [`ws://localhost:${target.port}/next`]);
      assert.deepStrictEqual(got, ['Bearer secret', 'sid=1']);
      assert.strictEqual(target.seen[0].headers.authorization, 'Bearer secret');
      assert.strictEqual(target.seen[0].headers.cookie, undefined);
      target.server.close();
      origin.server.close();
    });

    test(`${name}: the listener gets the http.ClientRequest about to be sent`, async () => {
      const target = await recorder(refuse);
      const origin = await recorder(() => redirectTo(`ws://127.0.0.1:${target.port}/next?a=1`));
      let seen;
      await run(WebSocket, `ws://127.0.0.1:${origin.port}/`, { followRedirects: true, headers: { 'X-Custom': 'kept' } }, (url, req) => {
        req.setHeader('X-Added', 'yes');
        seen = {
          node: req instanceof http.ClientRequest,
          method: req.method,
          path: req.path,
          host: req.host,
          headersSent: req.headersSent,
          headers: Object.keys(req.getHeaders()).sort(),
          version: req.getHeader('sec-websocket-version'),
          key: req.getHeader('sec-websocket-key')
        };
      });
      const key = seen.key;
      delete seen.key;
      assert.deepStrictEqual(seen, {
        node: true,
        method: 'GET',
        path: '/next?a=1',
        host: '127.0.0.1',
        headersSent: false,
        headers: ['connection', 'host', 'sec-websocket-extensions', 'sec-websocket-key', 'sec-websocket-version', 'upgrade', 'x-added', 'x-custom'],
        version: 13
      });
      // what was sent is that request, with the listener's change
      assert.strictEqual(target.seen[0].headers['sec-websocket-key'], key);
      assert.strictEqual(target.seen[0].headers['x-added'], 'yes');
      target.server.close();
      origin.server.close();
    });

    test(`${name}: an Authorization header wins over the URL's userinfo and the auth option`, async () => {
      const origin = await recorder(refuse);
      await run(WebSocket, `ws://u:p@127.0.0.1:${origin.port}/`, { headers: { authorization: 'Bearer h' } });
      await run(WebSocket, `ws://127.0.0.1:${origin.port}/`, { auth: 'a:b', headers: { Authorization: 'Bearer h' } });
      await run(WebSocket, `ws://u:p@127.0.0.1:${origin.port}/`, { auth: 'a:b' });
      await run(WebSocket, `ws://127.0.0.1:${origin.port}/`, { auth: 'a:b' });
      assert.deepStrictEqual(
        origin.seen.map((s) => s.headers.authorization),
        ['Bearer h', 'Bearer h', `Basic ${Buffer.from('u:p').toString('base64')}`, `Basic ${Buffer.from('a:b').toString('base64')}`]
      );
      origin.server.close();
    });

    test(`${name}: maxRedirects counts the redirects followed`, async () => {
      const origin = await recorder(() => redirectTo('/again'));
      const { error, redirects } = await run(
        WebSocket,
        `ws://127.0.0.1:${origin.port}/`,
        { followRedirects: true, maxRedirects: 2 },
        () => {}
      );
      assert.strictEqual(error.message, 'Maximum redirects exceeded');
      assert.strictEqual(redirects.length, 2);
      assert.strictEqual(origin.seen.length, 3);
      origin.server.close();
    });
  }
});
