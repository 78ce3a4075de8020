/**
 * The dashboard in a real browser (docs/dashboard.md): headless Chromium (Debian's `chromium`,
 * installed by scripts/browser.sh) driven by playwright-core, over `courier demo --dashboard 0`
 * run as a process of its own (the built CLI). A missing browser fails the spec: it is never skipped.
 *
 * 1. With --faults, on memory and on RabbitMQ: the page shows both services, its charts move, the poison orders appear as
 *    dead letters by reason, one opens, and Replay sends it back (it dies again: a copy replayed
 *    before appears). The page's screenshot goes to docs/dashboard.png (COURIER_DASHBOARD_SCREENSHOT
 *    elsewhere, as CI does).
 * 2. With --slow ProductService.onOrderPlaced=2000: that handler's backlog rises on the page within seconds.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { amqpBroker } from '../helpers/brokers';
import { ROOT, Running, start } from '../ops/cli';
import { sleep, waitFor } from '../helpers/wait';

const CHROMIUM = process.env.COURIER_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SLOW = 'product-service/ProductService.onOrderPlaced';

async function demo(args: string[]): Promise<{ run: Running; url: string }> {
  const run = start(['demo', '--dashboard', '0', '--products', '10', ...args], { timeoutMs: 170_000 });
  await waitFor(() => /dashboard on (http:\/\/\S+)/.test(run.stderr()) || run.proc.exitCode !== null, 30_000, 'the demo to print its dashboard URL');
  const m = /dashboard on (http:\/\/\S+)/.exec(run.stderr());
  assert.ok(m, `no dashboard URL; stderr: ${run.stderr()}`);
  return { run, url: m[1] };
}

async function stop(run: Running): Promise<void> {
  if (run.proc.exitCode === null) run.proc.kill('SIGTERM');
  const r = await run.exit;
  assert.equal(r.signal, null, `the demo was killed: ${r.stderr}`);
}

describe('dashboard in headless Chromium (courier demo --dashboard)', function () {
  this.timeout(180_000);
  let context: BrowserContext;
  let dataDir: string;
  const requests: string[] = [];

  before(async function () {
    assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: run scripts/browser.sh (apt-get install chromium)`);
    const { chromium } = await import('playwright-core');
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'courier-chromium-'));
    context = await chromium.launchPersistentContext(dataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 1400 } });
    context.on('request', (r) => requests.push(r.url()));
  });
  after(async () => {
    await context?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const backlog = async (page: Page, handler: string): Promise<number> => {
    const v = await page.locator(`#handlers tr[data-handler="${handler}"]`).getAttribute('data-backlog');
    return v === null || v === '' ? -1 : Number(v);
  };

  for (const transport of ['memory', 'amqp'] as const) {
    it(`on ${transport}: shows both services, moving charts, the dead letters by reason, opens one and replays it`, async () => {
      const broker = transport === 'amqp' ? ['--transport', 'amqp', '--url', (await amqpBroker()).url] : [];
      const { run, url } = await demo(['--orders', '400', '--faults', ...broker]);
      try {
        const page = await context.newPage();
        await page.goto(url);
        // On a broker the demo's groups carry the run's namespace (order-service-<ns>).
        await page.locator('[data-service^="order-service"]').waitFor({ timeout: 15_000 });
        await page.locator('[data-service^="product-service"]').waitFor({ timeout: 15_000 });
        assert.equal(await page.locator('[data-service^="order-service"] [data-instance]').count(), 2, 'two order-service instances');
        // The graph: the product service publishes stock.reserved, which the order service's group consumes.
        await page.locator('[data-publisher^="product-service"]').waitFor({ timeout: 10_000 });
        await page.locator('[data-subscriber^="order-service"][data-subscriber$="/OrderService.onStockReserved"]').waitFor({ timeout: 10_000 });

        // The charts move: the frames come, and the rate chart of order.place is redrawn with new points.
        const chart = page.locator('#types tr[data-type="order.place"] td:nth-child(2) svg path').first();
        await chart.waitFor({ timeout: 10_000 });
        const firstAt = Number(await page.locator('body').getAttribute('data-frame-at'));
        const d1 = await chart.getAttribute('d');
        await sleep(2500);
        const d2 = await page.locator('#types tr[data-type="order.place"] td:nth-child(2) svg path').first().getAttribute('d');
        assert.ok(Number(await page.locator('body').getAttribute('data-frame-at')) > firstAt, 'new frames arrived');
        assert.notEqual(d2, d1, 'the chart was redrawn with new points');
        const rate = Number(await page.locator('#types tr[data-type="order.place"]').getAttribute('data-rate'));
        assert.ok(rate > 0, `order.place is published (rate ${rate}/s)`);

        // The poison orders (half-way through the run, at 25 orders/s) become dead letters by reason.
        const row = page.locator(`#dead-letters tr[data-subscription$="/ProductService.onOrderPlaced"]`);
        const t0 = Date.now();
        await row.first().waitFor({ timeout: 40_000 });
        const seenAfterMs = Date.now() - t0;
        await page.locator('[data-reason="invalid"]').waitFor({ timeout: 10_000 });
        await page.locator('[data-reason="malformed"]').waitFor({ timeout: 10_000 });
        const invalid = page.locator(`#dead-letters tr[data-subscription$="/ProductService.onOrderPlaced"][data-dead-letter^="invalid-"]`);
        const id = await invalid.getAttribute('data-dead-letter');
        assert.ok(id, 'the invalid order is a dead letter with its id');

        await invalid.locator('button[data-action="open"]').click();
        await page.locator('#dl-detail:not([hidden])').waitFor({ timeout: 10_000 });
        const detail = JSON.parse((await page.locator('#dl-detail').textContent()) ?? '{}') as { id: string; reason: string; body: string };
        assert.equal(detail.id, id);
        assert.equal(detail.reason, 'invalid');
        assert.match(detail.body, /"quantity"\s*:\s*0/);

        if (transport === 'memory') await page.screenshot({ path: process.env.COURIER_DASHBOARD_SCREENSHOT ?? path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });

        await page.locator(`#dead-letters tr[data-dead-letter="${id}"] button[data-action="replay"]`).click();
        await page.locator(`#dead-letters tr[data-dead-letter="${id}"][data-replayed="yes"]`).waitFor({ timeout: 15_000 });
        // Replayed to its subscription alone, it fails validation again: a copy replayed before is the dead letter now.
        await page.locator(`#dead-letters tr[data-dead-letter="${id}"][data-replayed-before="yes"]`).waitFor({ timeout: 15_000 });
        console.log(`      ${transport}: dead letters shown ${seenAfterMs} ms after the page was looked at for them`);
        await page.close();
      } finally {
        await stop(run);
      }
      const foreign = requests.filter((u) => !u.startsWith('http://127.0.0.1:'));
      assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
    });
  }

  it('shows the backlog of a stalled handler rising within seconds', async () => {
    const { run, url } = await demo(['--orders', '2000', '--slow', 'ProductService.onOrderPlaced=2000']);
    try {
      const page = await context.newPage();
      await page.goto(url);
      await page.locator(`#handlers tr[data-handler="${SLOW}"]`).waitFor({ timeout: 15_000 });
      const t0 = Date.now();
      const first = await backlog(page, SLOW);
      let last = first;
      while (Date.now() - t0 < 20_000 && last < first + 20) {
        await sleep(250);
        last = await backlog(page, SLOW);
      }
      const risenAfterMs = Date.now() - t0;
      assert.ok(last >= first + 20, `backlog rose from ${first} to ${last} in ${risenAfterMs} ms`);
      // A handler that keeps up does not: the order service's.
      assert.ok((await backlog(page, 'order-service/OrderService.onStockReserved')) < 20, 'the order service keeps up');
      await page.locator(`#handlers tr[data-handler="${SLOW}"] .val.grow`).waitFor({ timeout: 5000 });
      console.log(`      stalled handler's backlog ${first} -> ${last} within ${risenAfterMs} ms`);
      await page.close();
    } finally {
      await stop(run);
    }
  });
});
