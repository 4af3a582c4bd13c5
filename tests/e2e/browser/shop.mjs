// Drives the shop in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core: browse, add to the cart, sign up, log out and in again,
// check the cart is kept, check out, see the order, save a profile.
//
//   node tests/e2e/browser/shop.mjs <base-url> <out-dir>
//
// playwright-core is found in SHOP_NODE_MODULES (the node_modules folder
// that `scripts/services.sh up` fills from scripts/package.json).
// Prints one JSON line with what it saw; exits non-zero on any failure and
// leaves cart.png (and failure.png when something went wrong) in <out-dir>.

import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node shop.mjs <base-url> <out-dir>');
  process.exit(2);
}
const modules = process.env.SHOP_NODE_MODULES;
if (!modules) {
  console.error('SHOP_NODE_MODULES is not set');
  process.exit(2);
}
const require = createRequire(path.join(modules, 'resolver.js'));
const { chromium } = require('playwright-core');

fs.mkdirSync(outDir, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const seen = {};
const page = await (await browser.newContext()).newPage();
page.setDefaultTimeout(15000);
const violations = [];
page.on('console', (msg) => {
  if (/Content Security Policy|Refused to/.test(msg.text())) violations.push(msg.text());
});

async function cartSkus() {
  await page.goto(`${base}/cart`);
  return page.$$eval('#cart tr[data-sku]', (rows) => rows.map((r) => r.dataset.sku));
}

try {
  // Browse: the product list, then one product page.
  await page.goto(`${base}/`);
  check((await page.textContent('h1')) === 'Products', 'the product list');
  await page.click('a[href="/products/SKU-0003"]');
  await page.waitForURL('**/products/SKU-0003');
  seen.product = await page.textContent('h1');
  await page.fill('#qty', '2');
  await page.click('button[data-sku="SKU-0003"]');
  await page.waitForURL('**/cart');
  await page.goto(`${base}/`);
  await page.click('button[data-sku="SKU-0001"]');
  await page.waitForURL('**/cart');
  let skus = await cartSkus();
  check(JSON.stringify(skus) === '["SKU-0003","SKU-0001"]', `cart before sign-up: ${skus}`);
  check((await page.textContent('#cart-link')) === 'Cart (3)', 'cart count in the header');

  // Sign up: the cart is kept.
  const email = `browser-${Date.now()}-${process.pid}@example.com`;
  await page.click('#signup-link');
  await page.fill('#email', email);
  await page.fill('#name', 'Browser User');
  await page.fill('#password', 'a browser password');
  await page.click('#signup button[type=submit]');
  await page.waitForURL('**/cart');
  check((await page.textContent('#profile-link')) === email, 'logged in after sign-up');
  skus = await cartSkus();
  check(skus.length === 2, `cart after sign-up: ${skus}`);

  // Log out (the session goes), add anonymously, log in: the cart is kept.
  await page.click('#logout');
  await page.waitForURL(`${base}/`);
  check((await cartSkus()).length === 0, 'cart after log-out');
  await page.goto(`${base}/products/SKU-0010`);
  await page.click('button[data-sku="SKU-0010"]');
  await page.waitForURL('**/cart');
  await page.click('#login-link');
  await page.fill('#email', email);
  await page.fill('#password', 'a browser password');
  await page.click('#login button[type=submit]');
  await page.waitForURL('**/cart');
  skus = await cartSkus();
  check(JSON.stringify(skus) === '["SKU-0010"]', `cart after log-in: ${skus}`);
  await page.goto(`${base}/products/SKU-0020`);
  await page.click('button[data-sku="SKU-0020"]');
  await page.waitForURL('**/cart');
  seen.cartScreenshot = path.join(outDir, 'cart.png');
  await page.screenshot({ path: seen.cartScreenshot, fullPage: true });
  seen.total = await page.textContent('#total');

  // Profile: save an address; the next page shows it.
  await page.goto(`${base}/profile`);
  await page.fill('#name', 'Browser User');
  await page.fill('#address0', '12 Test Lane');
  await page.click('#profile button[type=submit]');
  await page.waitForURL('**/profile?saved=1');
  check((await page.inputValue('#address0')) === '12 Test Lane', 'saved address shown');

  // Check out: the confirmation page reads the order back.
  await page.goto(`${base}/cart`);
  await page.click('#checkout');
  await page.waitForURL('**/orders/*');
  seen.order = await page.textContent('#order-id');
  const ordered = await page.$$eval('#order tr[data-sku]', (rows) => rows.map((r) => r.dataset.sku));
  check(JSON.stringify(ordered) === '["SKU-0010","SKU-0020"]', `order lines: ${ordered}`);
  check((await page.textContent('#ship-to')) === '12 Test Lane', 'ships to the saved address');
  seen.orderTotal = await page.textContent('#total');
  check(seen.orderTotal === seen.total, `order total ${seen.orderTotal} vs cart ${seen.total}`);
  await page.screenshot({ path: path.join(outDir, 'order.png'), fullPage: true });
  check((await cartSkus()).length === 0, 'cart emptied by the order');
  check(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (e) {
  await page.screenshot({ path: path.join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
  console.log(JSON.stringify({ ok: false, error: String(e), url: page.url(), ...seen }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
