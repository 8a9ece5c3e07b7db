// The hosted UI's walk-through in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core), run by e2e/cmd/uitest (make test-ui), which starts the services and
// sets the environment below. Every step prints as it passes; the first failure prints
// what the page showed, saves a screenshot (FAIL-*.png in the screenshot folder) and exits 1.
//
// On every page: axe-core (injected with page.evaluate, so the pages keep their strict
// CSP) must find no serious or critical violation, and no CSP violation ("Content Security
// Policy", "Refused to" in the console), page error or failed stylesheet/script/image may
// happen. Screenshots: {page}-{light|dark}-{desktop|phone}.png, full page.
//
// Environment (set by e2e/cmd/uitest):
//   UI_AUTH_URL           the auth service as the browser reaches it (http://localhost:PORT)
//   UI_APP_URL            APP_URL, the base of the emailed links ({UI_AUTH_URL}/ui)
//   UI_MAILPIT_URL        Mailpit's API
//   UI_GATEWAY_AUTH_URL   https://auth.example.test:PORT (the second auth, behind the gateway)
//   UI_GATEWAY_APP_URL    https://app.example.test:PORT (the ForwardAuth-protected upstream)
//   UI_GATEWAY_EMAIL, UI_GATEWAY_PASSWORD, UI_GATEWAY_USER_ID   the gateway flow's user (TOTP off)
//   UI_GATEWAY_HOST_IP    where *.example.test goes for node's own requests (127.0.0.1)
//   UI_CHROMIUM_GATEWAY_ARGS   Chromium flags for the gateway browser, one a line
//                              (--host-resolver-rules, --ignore-certificate-errors-spki-list)
//   UI_SCREENSHOTS        folder for the screenshots
//   UI_CHROMIUM           the browser (default /usr/bin/chromium)
//   UI_DEADLINE_MS        epoch ms after which the walk-through gives up
//   NODE_EXTRA_CA_CERTS   the gateway's CA, for node's own requests
import { chromium } from 'playwright-core';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`walkthrough: ${name} is not set (e2e/cmd/uitest sets it; run make test-ui)`);
    process.exit(2);
  }
  return v;
}

const AUTH = env('UI_AUTH_URL').replace(/\/+$/, '');
const APP_URL = env('UI_APP_URL', AUTH + '/ui').replace(/\/+$/, '');
const MAILPIT = env('UI_MAILPIT_URL').replace(/\/+$/, '');
const GW_AUTH = env('UI_GATEWAY_AUTH_URL').replace(/\/+$/, '');
const GW_APP = env('UI_GATEWAY_APP_URL').replace(/\/+$/, '');
const GW_EMAIL = env('UI_GATEWAY_EMAIL');
const GW_PASSWORD = env('UI_GATEWAY_PASSWORD');
const GW_USER_ID = env('UI_GATEWAY_USER_ID');
const GW_HOST_IP = env('UI_GATEWAY_HOST_IP', '127.0.0.1');
const GW_ARGS = env('UI_CHROMIUM_GATEWAY_ARGS', '').split('\n').filter(Boolean);
const SHOTS = path.resolve(env('UI_SCREENSHOTS'));
const CHROMIUM = env('UI_CHROMIUM', '/usr/bin/chromium');
const DEADLINE = Number(env('UI_DEADLINE_MS', String(Date.now() + 5 * 60_000)));

// The flags this machine needs (no network beyond loopback; root, no GPU).
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const PASSWORD = 'orchard copper meadow 91';
const EMAIL = `ui-${randomBytes(4).toString('hex')}@example.com`;
const NAME = 'Walk Through';
const PASSKEY_NAME = 'Walkthrough passkey';
const SECOND_UA_MARK = 'uitest-second-browser';

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

mkdirSync(SHOTS, { recursive: true });

// ------------------------------------------------------------------ steps and failure

const browsers = [];
let stepNo = 0;
let passed = 0;
let current = null; // the page to picture on failure
let forgotCtx = null; // the forgot-password step's context, closed once the next step has its own
const problems = []; // CSP violations, page errors, failed subresources: fail the step
const consoleTail = [];

const log = (msg) => console.log(`walkthrough: ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);

class Fail extends Error {}
const fail = (msg) => { throw new Fail(msg); };
function expect(cond, msg) { if (!cond) fail(msg); }

async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    if (Date.now() > DEADLINE) fail('out of time (UI_DEADLINE_MS)');
    await fn();
    flushProblems();
  } catch (e) {
    await die(name, e);
  }
  passed++;
  log(`[${stepNo}] ok ${name} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
}

function flushProblems() {
  if (problems.length) {
    const list = problems.splice(0);
    fail(`${list.length} problem(s) on the page:\n  - ${list.join('\n  - ')}`);
  }
}

async function describe(page) {
  try {
    return await page.evaluate(() => {
      const t = (sel) => [...document.querySelectorAll(sel)]
        .filter((e) => !e.hidden && e.offsetParent !== null)
        .map((e) => e.textContent.trim().replace(/\s+/g, ' ')).filter(Boolean);
      return { title: document.title, h1: t('h1'), formErrors: t('.form-error'), fieldErrors: t('.field-error'), notices: t('.notice') };
    });
  } catch (e) {
    return { error: String(e.message || e) };
  }
}

async function die(name, e) {
  const msg = e instanceof Fail ? e.message : (e && e.stack) || String(e);
  log(`[${stepNo}] FAIL ${name}: ${msg}`);
  if (current && !current.isClosed()) {
    log(`  page: ${current.url()}`);
    log(`  shows: ${JSON.stringify(await describe(current))}`);
    const file = path.join(SHOTS, `FAIL-${String(stepNo).padStart(2, '0')}-${slug(name)}.png`);
    try {
      await current.screenshot({ path: file, fullPage: true, timeout: 5000 });
      log(`  screenshot: ${file}`);
    } catch (err) {
      log(`  no screenshot: ${err.message}`);
    }
  }
  if (consoleTail.length) log(`  last console messages:\n    ${consoleTail.slice(-10).join('\n    ')}`);
  log(`${passed} passed, 1 failed`);
  await closeAll();
  process.exit(1);
}

async function closeAll() {
  await Promise.allSettled(browsers.map((b) => b.close()));
}

const watchdog = setTimeout(async () => {
  log(`FAIL out of time during step ${stepNo} (UI_DEADLINE_MS; the run is bounded)`);
  if (current && !current.isClosed()) {
    await current.screenshot({ path: path.join(SHOTS, 'FAIL-timeout.png'), fullPage: true, timeout: 3000 }).catch(() => {});
  }
  log(`${passed} passed, 1 failed`);
  await closeAll();
  process.exit(1);
}, Math.max(1000, DEADLINE - Date.now()));
watchdog.unref();
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => { log(`${sig}: closing the browser`); await closeAll(); process.exit(130); });
}

// ------------------------------------------------------------------ browser and pages

async function launch(extra = []) {
  const b = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extra] });
  browsers.push(b);
  return b;
}

// lastDoc: each page's last document response, for the phone replays.
const lastDoc = new WeakMap();

function watch(page, label) {
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(20_000);
  page.on('console', (m) => {
    const t = m.text();
    consoleTail.push(`[${label}] ${m.type()}: ${t}`);
    if (consoleTail.length > 50) consoleTail.shift();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`CSP violation on ${page.url()}: ${t}`);
  });
  page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
  page.on('response', (r) => {
    const req = r.request();
    const type = req.resourceType();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      lastDoc.set(page, r);
      if (r.status() >= 500) problems.push(`${req.method()} ${r.url()} answered ${r.status()}`);
    } else if (['stylesheet', 'script', 'image', 'font'].includes(type) && r.status() >= 400) {
      problems.push(`${type} ${r.url()} answered ${r.status()}`);
    }
  });
  page.on('requestfailed', (req) => {
    if (['stylesheet', 'script', 'image', 'font'].includes(req.resourceType())) {
      problems.push(`${req.resourceType()} ${req.url()} failed: ${req.failure()?.errorText}`);
    }
  });
  return page;
}

async function newPage(ctx, label) {
  const p = watch(await ctx.newPage(), label);
  current = p;
  return p;
}

const pathOf = (page) => new URL(page.url()).pathname;

async function h1(page) {
  return ((await page.locator('h1').first().textContent({ timeout: 5000 })) || '').trim();
}

async function expectH1(page, want) {
  const got = await h1(page).catch(() => '(no h1)');
  expect(got === want, `h1 is "${got}", want "${want}" (at ${page.url()})`);
}

async function expectPath(page, want) {
  const got = pathOf(page);
  expect(got === want, `at ${page.url()}, want path ${want}`);
}

// submit clicks what sends a form (or starts a passkey ceremony), waits for the next
// page and audits it (axe, CSP); a passkey error shown instead (an
// .field-error[role=alert] unhidden by passkey.js) fails with its text.
async function submit(page, locator, what = 'the form', { check = true } = {}) {
  const nav = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: 20_000 });
  nav.catch(() => {}); // awaited below; not an unhandled rejection should the click fail first
  const shown = page.locator('.field-error[role=alert]:visible, .form-error:visible').first();
  const before = await shown.count();
  await locator.click();
  let errorText = null;
  const watcher = (async () => {
    if (before) return new Promise(() => {}); // an error already on the page: wait for the navigation only
    await shown.waitFor({ state: 'visible', timeout: 20_000 });
    errorText = (await shown.textContent()).trim();
  })().catch(() => new Promise(() => {}));
  await Promise.race([nav, watcher]);
  if (errorText !== null) fail(`${what}: the page shows "${errorText}" instead of going on`);
  await page.waitForLoadState('load');
  const doc = lastDoc.get(page);
  if (doc && doc.status() === 403) {
    const d = await describe(page);
    fail(`${what}: ${doc.request().method()} ${new URL(doc.url()).pathname} answered 403 (the page says: ${JSON.stringify(d.formErrors || [])})`);
  }
  if (check) await audit(page, `${pathOf(page)} after ${what}`);
}

// visit opens a URL and audits the page (axe, CSP).
async function visit(page, url) {
  const res = await page.goto(url);
  await audit(page, pathOf(page));
  return res;
}

// click clicks a submit button whose answer is checked by the caller (a 4xx re-render)
// and audits the page it lands on.
async function clickAndAnswer(page, locator, method, pathname) {
  const res = page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname === pathname);
  await locator.click();
  const r = await res;
  await page.waitForLoadState('load');
  if (r.status() === 403) {
    const d = await describe(page);
    fail(`${method} ${pathname} answered 403 (the page says: ${JSON.stringify([...(d.formErrors || []), ...(d.fieldErrors || [])])}): ` +
      'the form was refused, not its values');
  }
  await audit(page, `${pathname} (${r.status()})`);
  return r;
}

// audit runs axe-core in the page: no serious or critical violation.
async function audit(page, label) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ')}`),
    }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = violations.filter((v) => !bad.includes(v));
  if (minor.length) log(`    axe on ${label}: ${minor.map((v) => `${v.id} (${v.impact})`).join(', ')} (not failing: moderate/minor)`);
  if (bad.length) {
    fail(`axe found ${bad.length} serious/critical violation(s) on ${label} (${page.url()}):\n` +
      bad.map((v) => `  - ${v.id} (${v.impact}): ${v.help}\n      ${v.nodes.join('\n      ')}`).join('\n'));
  }
  flushProblems();
}

let browser; // the main browser (localhost)

// shoot audits the page and takes its four screenshots: light and dark at desktop width
// on the page itself, then light and dark on a phone (390x844, isMobile) by replaying
// this very document (the server's HTML and headers, CSP included) in a phone context,
// so that one-time pages (after a POST) are pictured as they were.
async function shoot(page, name) {
  const file = (scheme, device) => path.join(SHOTS, `${name}-${scheme}-${device}.png`);
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await audit(page, `${name} (${scheme}, desktop)`);
    await page.screenshot({ path: file(scheme, 'desktop'), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });

  const url = page.url();
  const doc = lastDoc.get(page);
  expect(doc && doc.url() === url, `no document response for ${url} to replay on a phone`);
  const html = await doc.body();
  const orig = doc.headers();
  const headers = { 'content-type': orig['content-type'] || 'text/html; charset=utf-8' };
  for (const h of ['content-security-policy', 'x-content-type-options', 'referrer-policy']) if (orig[h]) headers[h] = orig[h];
  const phoneCtx = await page.context().browser().newContext({
    viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2, colorScheme: 'light',
  });
  const keep = current;
  try {
    const phone = await newPage(phoneCtx, `${name} phone`);
    await phone.route((u) => u.href === url, (route) => route.fulfill({ status: 200, headers, body: html }));
    await phone.goto(url, { waitUntil: 'load' });
    for (const scheme of ['light', 'dark']) {
      await phone.emulateMedia({ colorScheme: scheme });
      await audit(phone, `${name} (${scheme}, phone)`);
      await phone.screenshot({ path: file(scheme, 'phone'), fullPage: true });
    }
    const width = await phone.evaluate(() => window.innerWidth);
    expect(width === PHONE.width, `${name} on a phone lays out ${width}px wide, not ${PHONE.width}px: no <meta name="viewport" content="width=device-width, initial-scale=1">?`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 1, `${name} on a phone scrolls sideways: the page is ${overflow}px wider than the 390px screen`);
  } finally {
    current = keep;
    await phoneCtx.close();
  }
}

// ------------------------------------------------------------------ TOTP (RFC 6238)

function base32(secret) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const s = secret.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0; let value = 0; const out = [];
  for (const c of s) {
    const i = alphabet.indexOf(c);
    if (i < 0) fail(`the TOTP secret "${secret}" is not base32 (${c})`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

function hotp(key, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const o = mac[mac.length - 1] & 0x0f;
  const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

let lastStep = -1; // the server refuses a step already used: each code from a newer one
async function totp(key) {
  let s = Math.floor(Date.now() / 30_000);
  if (s <= lastStep) {
    const wait = (lastStep + 1) * 30_000 - Date.now() + 250;
    log(`    waiting ${(wait / 1000).toFixed(1)}s for the next TOTP step (a used one is refused)`);
    await sleep(wait);
    s = lastStep + 1;
  }
  lastStep = s;
  return hotp(key, s);
}

function wrongTotp(key) {
  const s = Math.floor(Date.now() / 30_000);
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => hotp(key, s + d)));
  return ['000000', '123456', '654321', '111111'].find((c) => !valid.has(c));
}

// ------------------------------------------------------------------ Mailpit

async function mailLink(rcpt, prefix) {
  const re = new RegExp(prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '[^\\s"\'<>]+');
  const until = Date.now() + 60_000;
  const seen = [];
  while (Date.now() < until) {
    const list = await (await fetch(`${MAILPIT}/api/v1/messages?limit=200`)).json();
    for (const m of list.messages || []) {
      if (!(m.To || []).some((a) => (a.Address || '').toLowerCase() === rcpt.toLowerCase())) continue;
      const msg = await (await fetch(`${MAILPIT}/api/v1/message/${encodeURIComponent(m.ID)}`)).json();
      const found = (msg.Text || '').match(re);
      if (found) return found[0];
      seen.push(`"${msg.Subject}": ${(msg.Text || '').match(/https?:\/\/\S+/g)?.join(' ') || 'no link'}`);
    }
    await sleep(250);
  }
  fail(`no email to ${rcpt} with a link ${prefix}... in 60s${seen.length ? `; seen: ${[...new Set(seen)].join('; ')}` : ''}`);
}

// ------------------------------------------------------------------ node's own requests to the gateway

// gwGet is a GET from node (no browser, no cookies but those given) to the gateway:
// *.example.test resolves to UI_GATEWAY_HOST_IP, the CA comes from NODE_EXTRA_CA_CERTS.
function gwGet(u, headers = {}) {
  const url = new URL(u);
  const lookup = (host, opts, cb) => {
    if (typeof opts === 'function') cb = opts;
    if (opts && opts.all) cb(null, [{ address: GW_HOST_IP, family: 4 }]);
    else cb(null, GW_HOST_IP, 4);
  };
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: url.hostname, port: url.port || 443, path: url.pathname + url.search, method: 'GET',
      headers, lookup, servername: url.hostname, timeout: 15_000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${u}: no answer in 15s`)));
    req.on('error', reject);
    req.end();
  });
}

// ------------------------------------------------------------------ helpers for the pages

const panel = (page, title) => page.locator('section.panel', { has: page.getByRole('heading', { name: title, exact: true }) });
const topSignOut = (page) => page.locator('header.topbar').getByRole('button', { name: 'Sign out', exact: true });

async function signInWithPassword(page, email, password, opts) {
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await submit(page, page.locator('#login-form').getByRole('button', { name: 'Sign in', exact: true }), 'sign in', opts);
}

async function signOut(page) {
  await submit(page, topSignOut(page), 'sign out');
  await expectPath(page, '/ui/login');
}

async function expectAccount(page) {
  await expectPath(page, '/ui/account');
  await expectH1(page, 'Your account');
}

async function enterTotp(page, key) {
  const code = await totp(key);
  await page.getByLabel('Code', { exact: true }).fill(code);
  await submit(page, page.getByRole('button', { name: 'Verify', exact: true }), 'the TOTP code');
}

// ------------------------------------------------------------------ the walk-through

let page; // the main tab, with the virtual authenticator
let cdp;
let totpKey;
let verifyLink;

log(`auth ${AUTH}, gateway ${GW_AUTH} and ${GW_APP}, user ${EMAIL}, screenshots in ${SHOTS}`);

await step('Chromium starts with a virtual WebAuthn authenticator (CTAP2, internal, resident keys, UV)', async () => {
  browser = await launch();
  const ctx = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  page = await newPage(ctx, 'main');
  cdp = await ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  page._authenticatorId = authenticatorId;
  log(`    ${browser.version()}`);
});

await step('GET /ui/login: the sign-in form (Email, Password, Sign in, passkey button, links)', async () => {
  const res = await visit(page, `${AUTH}/ui/login`);
  expect(res.status() === 200, `GET /ui/login answered ${res.status()}`);
  const csp = res.headers()['content-security-policy'] || '';
  for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
    expect(csp.includes(d), `the CSP "${csp}" lacks ${d}`);
  }
  await page.locator('#login-form').waitFor();
  await page.getByLabel('Email', { exact: true }).waitFor();
  await page.getByLabel('Password', { exact: true }).waitFor();
  expect(await page.locator('#email').getAttribute('autocomplete') === 'username', '#email has no autocomplete="username"');
  await page.locator('#login-form').getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  await page.locator('#passkey-signin').waitFor({ state: 'visible' });
  expect((await page.locator('#passkey-signin').textContent()).trim() === 'Sign in with a passkey', '#passkey-signin is not "Sign in with a passkey"');
  await page.getByRole('link', { name: 'Create account', exact: true }).waitFor();
  await page.getByRole('link', { name: 'Forgot password?', exact: true }).waitFor();
  expect(await page.locator('#login-form input[type=hidden][name=csrf]').count() === 1, 'the login form has no hidden csrf input');
  expect(await page.locator('meta[name=csrf-token]').getAttribute('content'), 'no <meta name="csrf-token">');
  await shoot(page, 'login');
});

await step('keyboard: Tab from the top reaches Email, Password, Sign in in that order, each with a visible focus', async () => {
  await page.goto(`${AUTH}/ui/login`);
  await page.evaluate(() => { document.activeElement?.blur?.(); window.scrollTo(0, 0); });
  const seq = [];
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const cs = getComputedStyle(el);
      const label = el.labels?.[0]?.textContent.trim() || el.getAttribute('aria-label') || el.textContent.trim();
      return {
        id: el.id, tag: el.tagName.toLowerCase(), label: label.replace(/\s+/g, ' ').slice(0, 40),
        inLogin: !!el.closest('#login-form'),
        outline: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0, boxShadow: cs.boxShadow !== 'none' && cs.boxShadow !== '',
        style: `outline ${cs.outlineStyle} ${cs.outlineWidth}, box-shadow ${cs.boxShadow}`,
      };
    });
    seq.push(f);
    if (f && f.tag === 'button' && f.inLogin && f.label === 'Sign in') break;
  }
  const names = seq.map((f) => (f ? `${f.tag}${f.id ? '#' + f.id : ''} "${f.label}"` : '(body)'));
  const iEmail = seq.findIndex((f) => f?.id === 'email');
  const iPassword = seq.findIndex((f) => f?.id === 'password');
  const iSubmit = seq.findIndex((f) => f?.tag === 'button' && f.inLogin && f.label === 'Sign in');
  expect(iEmail >= 0 && iPassword > iEmail && iSubmit > iPassword,
    `Tab order ${names.join(' → ')}: want Email, then Password, then Sign in`);
  for (const i of [iEmail, iPassword, iSubmit]) {
    const f = seq[i];
    expect(f.outline || f.boxShadow, `${names[i]} has no visible focus (${f.style})`);
  }
  log(`    Tab order: ${names.join(' → ')}`);
});

await step('GET /ui/register (link "Create account"): errors next to the fields', async () => {
  await submit(page, page.getByRole('link', { name: 'Create account', exact: true }), 'the Create account link');
  await expectPath(page, '/ui/register');
  await page.getByLabel('Name', { exact: true }).waitFor();
  expect(await page.locator('#password').getAttribute('autocomplete') === 'new-password', '#password has no autocomplete="new-password"');
  await shoot(page, 'register');

  await page.getByLabel('Name', { exact: true }).fill(NAME);
  await page.getByLabel('Email', { exact: true }).fill('not-an-email');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  let r = await clickAndAnswer(page, page.getByRole('button', { name: 'Create account', exact: true }), 'POST', '/ui/register');
  expect(r.status() >= 400 && r.status() < 500, `an invalid email: POST /ui/register answered ${r.status()}, want 4xx`);
  await page.locator('#email-error').waitFor({ state: 'visible' });
  expect(await page.locator('#email').getAttribute('aria-invalid') === 'true', 'an invalid email: #email is not aria-invalid="true"');
  log(`    invalid email: "${(await page.locator('#email-error').textContent()).trim()}"`);

  await page.getByLabel('Email', { exact: true }).fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill('abc');
  r = await clickAndAnswer(page, page.getByRole('button', { name: 'Create account', exact: true }), 'POST', '/ui/register');
  expect(r.status() >= 400 && r.status() < 500, `a weak password: POST /ui/register answered ${r.status()}, want 4xx`);
  await page.locator('#password-error').waitFor({ state: 'visible' });
  expect(await page.locator('#password').getAttribute('aria-invalid') === 'true', 'a weak password: #password is not aria-invalid="true"');
  log(`    weak password: "${(await page.locator('#password-error').textContent()).trim()}"`);
});

await step(`register ${EMAIL} (Name, Email, Password) → "Check your email"`, async () => {
  await page.getByLabel('Name', { exact: true }).fill(NAME);
  await page.getByLabel('Email', { exact: true }).fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await submit(page, page.getByRole('button', { name: 'Create account', exact: true }), 'create account');
  await expectH1(page, 'Check your email');
  await page.locator('.notice').first().waitFor({ state: 'visible' });
  await shoot(page, 'check-email');
});

await step(`the verification email reaches Mailpit with ${APP_URL}/verify-email?token=`, async () => {
  verifyLink = await mailLink(EMAIL, `${APP_URL}/verify-email?token=`);
});

await step('open the link: "Verify your email" → Verify email → "Email verified" → Sign in', async () => {
  const res = await visit(page, verifyLink);
  expect(res.status() === 200, `GET ${verifyLink} answered ${res.status()}`);
  await expectH1(page, 'Verify your email');
  await shoot(page, 'verify-email');
  await submit(page, page.getByRole('button', { name: 'Verify email', exact: true }), 'verify email');
  await expectH1(page, 'Email verified');
  await shoot(page, 'email-verified');
  await submit(page, page.locator('main').getByRole('link', { name: 'Sign in', exact: true }), 'the Sign in link');
  await expectPath(page, '/ui/login');
});

await step('a wrong password, typed and sent with the keyboard only, shows "The email or password is incorrect." (401)', async () => {
  await page.locator('#email').focus();
  await page.keyboard.type(EMAIL);
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.id) === 'password', 'Tab from Email does not reach Password');
  await page.keyboard.type('not the password 0');
  const res = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/ui/login');
  await page.keyboard.press('Enter');
  const r = await res;
  await page.waitForLoadState('load');
  expect(r.status() === 401, `POST /ui/login with a wrong password answered ${r.status()}, want 401`);
  const err = page.locator('.form-error');
  await err.first().waitFor({ state: 'visible' });
  const text = (await err.first().textContent()).trim();
  expect(text === 'The email or password is incorrect.', `.form-error says "${text}"`);
  expect(await err.first().getAttribute('role') === 'alert', '.form-error has no role="alert"');
  await audit(page, 'login (wrong password)');
});

await step('sign in with the password → "Your account", cookies __Host-session and __Host-csrf (HttpOnly, Secure, Lax)', async () => {
  await signInWithPassword(page, EMAIL, PASSWORD);
  await expectAccount(page);
  const cookies = await page.context().cookies(AUTH);
  for (const name of ['__Host-session', '__Host-csrf']) {
    const c = cookies.find((k) => k.name === name);
    expect(c, `no ${name} cookie (cookies: ${cookies.map((k) => k.name).join(', ')})`);
    expect(c.httpOnly && c.secure && c.sameSite === 'Lax' && c.path === '/',
      `${name}: httpOnly ${c.httpOnly}, secure ${c.secure}, sameSite ${c.sameSite}, path ${c.path}`);
  }
  await panel(page, 'Profile').waitFor();
  await panel(page, 'Sessions').waitFor();
  await audit(page, 'account');
});

await step('Add a passkey (virtual authenticator) → it is listed', async () => {
  const pk = panel(page, 'Passkeys');
  await page.locator('#passkey-name').fill(PASSKEY_NAME);
  if (await page.locator('#passkey-current-password').count()) await page.locator('#passkey-current-password').fill(PASSWORD);
  const add = page.locator('#passkey-add');
  expect((await add.textContent()).trim() === 'Add a passkey', `#passkey-add is "${(await add.textContent()).trim()}"`);
  await submit(page, add, 'Add a passkey');
  await expectAccount(page);
  await pk.locator('li.row', { hasText: PASSKEY_NAME }).waitFor({ timeout: 5000 })
    .catch(() => fail(`"${PASSKEY_NAME}" is not in the Passkeys list`));
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: page._authenticatorId });
  expect(credentials.length === 1 && credentials[0].isResidentCredential, `the authenticator holds ${credentials.length} credential(s)`);
  expect(credentials[0].rpId === 'localhost', `the credential's rpId is ${credentials[0].rpId}, want localhost`);
  await audit(page, 'account (passkey added)');
});

await step('Sign out → /ui/login with "You are signed out."', async () => {
  await signOut(page);
  const notice = page.locator('.notice');
  await notice.first().waitFor({ state: 'visible' });
  const text = (await notice.first().textContent()).trim();
  expect(text === 'You are signed out.', `the notice says "${text}"`);
  await shoot(page, 'signed-out');
});

await step('Sign in with a passkey → "Your account"', async () => {
  await submit(page, page.locator('#passkey-signin'), 'Sign in with a passkey');
  await expectAccount(page);
});

await step('turn TOTP on: Turn on → QR code and secret → Confirm with the code → 10 recovery codes', async () => {
  const tv = panel(page, 'Two-step verification');
  await page.locator('#totp-current-password').fill(PASSWORD);
  await submit(page, tv.getByRole('button', { name: 'Turn on', exact: true }), 'Turn on');
  const qr = page.locator('.qr');
  await qr.waitFor({ state: 'visible' });
  const loaded = await qr.evaluate((img) => img.complete && img.naturalWidth > 0);
  expect(loaded, 'the QR code image did not load');
  const secret = (await page.locator('.secret').textContent()).trim();
  totpKey = base32(secret);
  expect(totpKey.length >= 10, `the secret "${secret}" is ${totpKey.length} bytes`);
  await audit(page, 'account (TOTP pending)');
  await page.locator('#totp-code').fill(await totp(totpKey));
  if (await page.locator('#totp-confirm-password').count()) await page.locator('#totp-confirm-password').fill(PASSWORD);
  await submit(page, page.getByRole('button', { name: 'Confirm', exact: true }), 'Confirm');
  const codes = page.locator('.codes li');
  await codes.first().waitFor();
  const n = await codes.count();
  expect(n === 10, `${n} recovery codes shown, want 10`);
  const notices = (await page.locator('.notice').allTextContents()).join(' ');
  expect(notices.includes('Save these recovery codes now.'), `no notice "Save these recovery codes now. ..." (notices: ${notices})`);
  await audit(page, 'account (recovery codes)');
});

await step('sign out, sign in with the password → the second-factor page (Code, Verify, Use a passkey)', async () => {
  await signOut(page);
  await signInWithPassword(page, EMAIL, PASSWORD);
  await expectPath(page, '/ui/login/mfa');
  const code = page.getByLabel('Code', { exact: true });
  await code.waitFor();
  expect(await page.locator('#code').getAttribute('autocomplete') === 'one-time-code', '#code has no autocomplete="one-time-code"');
  expect(await page.locator('#code').getAttribute('inputmode') === 'numeric', '#code has no inputmode="numeric"');
  await page.locator('#passkey-mfa').waitFor({ state: 'visible' });
  expect((await page.locator('#passkey-mfa').textContent()).trim() === 'Use a passkey', '#passkey-mfa is not "Use a passkey"');
  const cookies = await page.context().cookies(AUTH);
  expect(cookies.some((c) => c.name === '__Host-mfa'), 'no __Host-mfa cookie while the second factor is pending');
  await shoot(page, 'mfa');
});

await step('a wrong TOTP code shows "That code is not right. Try again." on #code (401)', async () => {
  await page.getByLabel('Code', { exact: true }).fill(wrongTotp(totpKey));
  const r = await clickAndAnswer(page, page.getByRole('button', { name: 'Verify', exact: true }), 'POST', '/ui/login/mfa');
  expect(r.status() === 401, `POST /ui/login/mfa with a wrong code answered ${r.status()}, want 401`);
  const err = page.locator('#code-error');
  await err.waitFor({ state: 'visible' }).catch(() => fail('no #code-error shown'));
  const text = (await err.textContent()).trim();
  expect(text === 'That code is not right. Try again.', `#code-error says "${text}"`);
  expect(await page.locator('#code').getAttribute('aria-invalid') === 'true', '#code is not aria-invalid="true"');
  expect((await page.locator('#code').getAttribute('aria-describedby') || '').split(/\s+/).includes('code-error'),
    '#code is not aria-describedby="code-error"');
});

await step('the right TOTP code (a new 30 s step) → "Your account" with the passkey and TOTP on', async () => {
  await enterTotp(page, totpKey);
  await expectAccount(page);
  await panel(page, 'Passkeys').locator('li.row', { hasText: PASSKEY_NAME }).waitFor();
  await panel(page, 'Two-step verification').getByRole('button', { name: 'Turn off', exact: true }).waitFor()
    .catch(() => fail('TOTP is not shown as on (no "Turn off")'));
  await shoot(page, 'account');
});

let second; // the second browser context's page
await step('a second browser signs in with password and TOTP (another session)', async () => {
  const ua = await page.evaluate(() => navigator.userAgent);
  const ctx = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light', userAgent: `${ua} ${SECOND_UA_MARK}` });
  const keep = page;
  second = await newPage(ctx, 'second');
  await visit(second, `${AUTH}/ui/login`);
  await signInWithPassword(second, EMAIL, PASSWORD);
  await expectPath(second, '/ui/login/mfa');
  await enterTotp(second, totpKey);
  await expectAccount(second);
  current = keep;
});

await step('the first browser ends the other session with its "Sign out"; the second is sent to /ui/login on reload', async () => {
  current = page;
  await page.reload();
  await expectAccount(page);
  const rows = panel(page, 'Sessions').locator('li.row');
  const before = await rows.count();
  expect(before >= 2, `${before} session row(s), want this one and the second browser's`);
  const mine = rows.filter({ has: page.locator('.badge', { hasText: 'This device' }) });
  expect(await mine.count() === 1, `${await mine.count()} rows carry the badge "This device"`);
  let other = rows.filter({ hasText: SECOND_UA_MARK });
  if (await other.count() !== 1) {
    other = rows.filter({ hasNot: page.locator('.badge', { hasText: 'This device' }) });
    expect(await other.count() === 1, `cannot tell the second browser's session among ${before} rows`);
    log('    (the rows do not show the raw user agent: took the one row without "This device")');
  }
  const form = other.locator('form');
  const action = await form.first().getAttribute('action');
  expect(/^\/ui\/account\/sessions\/[^/]+\/revoke$/.test(action || ''), `the row's form posts to ${action}`);
  // The visible text is "Sign out"; its accessible name says whose session (aria-label).
  const button = other.locator('button[type=submit]', { hasText: /^\s*Sign out\s*$/ });
  log(`    ending the session of: ${(await other.locator('.row-main').textContent()).replace(/\s+/g, ' ').trim()}` +
    ` (button "${await button.getAttribute('aria-label') || 'Sign out'}")`);
  await submit(page, button, "the other session's Sign out");
  await expectAccount(page);
  const after = await panel(page, 'Sessions').locator('li.row').count();
  expect(after === before - 1, `${after} session rows after ending one of ${before}`);
  await panel(page, 'Sessions').getByRole('button', { name: 'Sign out everywhere', exact: true }).waitFor();

  current = second;
  await second.reload();
  await expectPath(second, '/ui/login');
  await audit(second, 'login (the ended session reloaded)');
  current = page;
  await page.reload();
  await expectAccount(page);
  await audit(page, 'account (a session ended)');
});

await step('signed out: GET /ui/account → /ui/login?return_to=/ui/account; forgot password → "Check your email"', async () => {
  const ctx = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  const p = await newPage(ctx, 'anonymous');
  await visit(p, `${AUTH}/ui/account`);
  await expectPath(p, '/ui/login');
  const rt = new URL(p.url()).searchParams.get('return_to');
  expect(rt === '/ui/account', `return_to is ${rt}, want /ui/account`);
  await submit(p, p.getByRole('link', { name: 'Forgot password?', exact: true }), 'the Forgot password? link');
  await expectPath(p, '/ui/forgot-password');
  await shoot(p, 'forgot-password');
  await p.getByLabel('Email', { exact: true }).fill(EMAIL);
  await submit(p, p.getByRole('button', { name: 'Send reset link', exact: true }), 'Send reset link');
  await expectH1(p, 'Check your email');
  await audit(p, 'forgot-password (sent)');
  forgotCtx = ctx;
});

await step('Email me a sign-in link → "Check your email" with a Code field', async () => {
  const ctx = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  const p = await newPage(ctx, 'anonymous');
  await visit(p, `${AUTH}/ui/login`);
  await submit(p, p.getByRole('link', { name: 'Email me a sign-in link', exact: true }), 'the Email me a sign-in link link');
  await expectPath(p, '/ui/login/link');
  await shoot(p, 'login-link');
  await p.getByLabel('Email', { exact: true }).fill(EMAIL);
  await submit(p, p.getByRole('button', { name: 'Send sign-in link', exact: true }), 'Send sign-in link');
  await expectH1(p, 'Check your email');
  await p.getByLabel('Code', { exact: true }).waitFor();
  await shoot(p, 'login-code');
  await audit(p, 'login-link (sent)');
  await forgotCtx.close();
});

await step('GET /ui/reset-password with a dummy token: the form; sending it shows a readable error', async () => {
  const p = current;
  const res = await visit(p, `${AUTH}/ui/reset-password?token=dummy-${randomBytes(6).toString('hex')}`);
  expect(res.status() === 200, `GET /ui/reset-password answered ${res.status()}`);
  await p.getByLabel('Password', { exact: true }).waitFor();
  await shoot(p, 'reset-password');
  await p.getByLabel('Password', { exact: true }).fill('a brand new password 12');
  const answer = await clickAndAnswer(p, p.getByRole('button', { name: 'Reset password', exact: true }), 'POST', '/ui/reset-password');
  expect(answer.status() >= 400 && answer.status() < 500, `POST with a dummy token answered ${answer.status()}, want 4xx`);
  const shown = p.locator('.form-error:visible, .field-error:visible');
  await shown.first().waitFor({ state: 'visible' }).catch(() => fail('a dummy token shows no .form-error or .field-error'));
  log(`    dummy token: "${(await shown.first().textContent()).trim()}"`);
  await p.context().close();
  current = page;
});

// ------------------------------------------------------------------ the gateway (Traefik ForwardAuth)

let gwBrowser;
let gwPage;
let gwIgnoreHTTPS = false;
await step(`gateway: ${GW_APP}/private without a session → the login page of ${GW_AUTH} with return_to`, async () => {
  gwBrowser = await launch(GW_ARGS);
  let ctx = await gwBrowser.newContext({ viewport: DESKTOP, colorScheme: 'light' });
  gwPage = await newPage(ctx, 'gateway');
  try {
    await gwPage.goto(`${GW_APP}/private`);
  } catch (e) {
    if (!/ERR_CERT/.test(e.message)) throw e;
    log(`    the certificate pin (--ignore-certificate-errors-spki-list) did not take: ${e.message.split('\n')[0]}; falling back to --ignore-certificate-errors`);
    await gwBrowser.close();
    gwBrowser = await launch([...GW_ARGS.filter((a) => !a.startsWith('--ignore-certificate-errors-spki-list')), '--ignore-certificate-errors']);
    gwIgnoreHTTPS = true;
    ctx = await gwBrowser.newContext({ viewport: DESKTOP, colorScheme: 'light', ignoreHTTPSErrors: true });
    gwPage = await newPage(ctx, 'gateway');
    await gwPage.goto(`${GW_APP}/private`);
  }
  const at = new URL(gwPage.url());
  expect(at.origin === GW_AUTH && at.pathname === '/ui/login', `at ${gwPage.url()}, want ${GW_AUTH}/ui/login?return_to=...`);
  const rt = at.searchParams.get('return_to');
  expect(rt === `${GW_APP}/private`, `return_to is ${rt}, want ${GW_APP}/private`);
  await gwPage.locator('#login-form').waitFor();
  await audit(gwPage, 'gateway login');
});

let gwCookie;
await step('gateway: sign in with the password → back at the app, whose upstream got the real X-Auth-User-Id', async () => {
  await signInWithPassword(gwPage, GW_EMAIL, GW_PASSWORD, { check: false }); // lands on the test upstream, not a page of ours
  expect(gwPage.url() === `${GW_APP}/private`, `at ${gwPage.url()}, want ${GW_APP}/private`);
  const id = (await gwPage.locator('#user').textContent()).trim();
  expect(id === GW_USER_ID, `the upstream got X-Auth-User-Id "${id}", want ${GW_USER_ID}`);
  const email = (await gwPage.locator('#email').textContent()).trim();
  expect(email.toLowerCase() === GW_EMAIL.toLowerCase(), `the upstream got X-Auth-Email "${email}", want ${GW_EMAIL}`);
  const cookies = await gwPage.context().cookies(GW_APP);
  gwCookie = cookies.find((c) => c.name === '__Secure-session');
  expect(gwCookie, `no __Secure-session cookie for ${GW_APP} (cookies: ${cookies.map((c) => `${c.name} (${c.domain})`).join(', ') || 'none'})`);
  expect(gwCookie.domain === '.example.test' && gwCookie.secure && gwCookie.httpOnly && gwCookie.sameSite === 'Lax',
    `__Secure-session: domain ${gwCookie.domain}, secure ${gwCookie.secure}, httpOnly ${gwCookie.httpOnly}, sameSite ${gwCookie.sameSite}`);
  expect(!/^eyJ/.test(gwCookie.value), 'the session cookie holds a JWT: it must be an opaque session reference');
  log(`    __Secure-session (Domain=example.test) sent to app.example.test; the upstream saw ${id}${gwIgnoreHTTPS ? ' (certificate errors ignored)' : ' (certificate pinned by SPKI)'}`);
});

await step('gateway from node: no cookie with Accept: application/json → 401; with Accept: text/html → 302 to the login page', async () => {
  const api = await gwGet(`${GW_APP}/private`, { Accept: 'application/json' });
  expect(api.status === 401, `GET ${GW_APP}/private (Accept: application/json) answered ${api.status} ${api.headers.location || ''}, want 401`);
  const web = await gwGet(`${GW_APP}/private?x=1`, { Accept: 'text/html,application/xhtml+xml' });
  expect(web.status === 302, `GET ${GW_APP}/private (Accept: text/html) answered ${web.status}, want 302`);
  const loc = new URL(web.headers.location || 'about:blank');
  expect(loc.origin === GW_AUTH && loc.pathname === '/ui/login' && loc.searchParams.get('return_to') === `${GW_APP}/private?x=1`,
    `Location ${web.headers.location}, want ${GW_AUTH}/ui/login?return_to=${GW_APP}/private?x=1`);
});

await step('gateway from node: client-sent X-Auth-User-Id and X_Auth_User_Id (and kin) with a valid session cookie reach the upstream as the real id only', async () => {
  const res = await gwGet(`${GW_APP}/private`, {
    Accept: 'text/html',
    Cookie: `__Secure-session=${gwCookie.value}`,
    'X-Auth-User-Id': 'attacker',
    'X_Auth_User_Id': 'attacker',
    'x-auth-user_id': 'attacker',
    'X_AUTH_EMAIL': 'attacker@evil.test',
    'X-Auth-Roles': 'attacker,admin',
    'X_Auth_Session_Id': 'attacker',
  });
  expect(res.status === 200, `answered ${res.status}, want 200`);
  const id = (res.body.match(/<p id="user">([^<]*)<\/p>/) || [])[1];
  expect(id === GW_USER_ID, `the upstream got X-Auth-User-Id "${id}", want ${GW_USER_ID}`);
  const received = [...res.body.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]);
  expect(!res.body.includes('attacker'), `a forged header reached the upstream: ${received.join('; ')}`);
  log(`    the upstream received: ${received.join('; ')}`);
});

await step('gateway: Sign out on the auth host ends the session: the app redirects to the login page again', async () => {
  await visit(gwPage, `${GW_AUTH}/ui/account`);
  await expectAccount(gwPage);
  await signOut(gwPage);
  await gwPage.goto(`${GW_APP}/private`);
  const at = new URL(gwPage.url());
  expect(at.origin === GW_AUTH && at.pathname === '/ui/login', `after sign-out ${GW_APP}/private leads to ${gwPage.url()}, want the login page`);
  const stale = await gwGet(`${GW_APP}/private`, { Accept: 'application/json', Cookie: `__Secure-session=${gwCookie.value}` });
  expect(stale.status === 401, `the ended session's cookie still answers ${stale.status}, want 401`);
});

clearTimeout(watchdog);
await closeAll();
log(`${passed} passed, 0 failed`);
