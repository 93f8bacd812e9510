// Two Chromium pages chat through the Python chat example.
//   node chat_browser.js http://127.0.0.1:PORT/ SCREENSHOT.png [BOB_URL]
// With BOB_URL (another instance of a cluster), bob's page loads from there.
// Prints one JSON line with what each page shows; exits non-zero on failure.
"use strict";
const { chromium } = require("playwright-core");

const [url, shot, bobArg] = process.argv.slice(2);
const bobUrl = bobArg || url;
const TIMEOUT = 15000;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // Without the background-networking flags Chromium stalls on a closed network.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: TIMEOUT,
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 500 } });
    const alice = await ctx.newPage();
    const bob = await ctx.newPage();
    for (const p of [alice, bob]) p.setDefaultTimeout(TIMEOUT);

    async function join(page, nick, room, from) {
      await page.goto(from);
      await page.waitForSelector("#status:text-matches('connected as')");
      await page.fill("#nick", nick);
      await page.fill("#room", room);
      await page.click("#join");
      await page.waitForSelector(`#room-name:text-is('${room}')`);
    }
    async function say(page, text) {
      await page.fill("#text", text);
      await page.click("#send");
    }

    await join(alice, "alice", "browsers", url);
    await say(alice, "hello from alice");
    await join(bob, "bob", "browsers", bobUrl);
    // bob sees alice's line from the room history, and both in the member list
    await bob.waitForSelector("#messages li:has-text('hello from alice')");
    await alice.waitForSelector("#members li:text-is('bob')");
    await say(bob, "hi alice, bob here");
    await alice.waitForSelector("#messages li:has-text('hi alice, bob here')");
    await bob.waitForSelector("#messages li:has-text('hi alice, bob here')");
    await alice.screenshot({ path: shot });

    const view = async (p) => ({
      status: await p.textContent("#status"),
      room: await p.textContent("#room-name"),
      messages: await p.$$eval("#messages li", (els) => els.map((e) => e.textContent)),
      members: await p.$$eval("#members li", (els) => els.map((e) => e.textContent)),
      instance: await p.textContent("#instance"),
    });
    console.log(JSON.stringify({ alice: await view(alice), bob: await view(bob) }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error("chat_browser:", err && err.stack ? err.stack : err);
  process.exit(1);
});
