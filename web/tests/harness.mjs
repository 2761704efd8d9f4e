// What the browser suites share: a stentor server of their own, Chromium pages that record
// console errors, signing up, waiting, and named steps with their times.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const bin = resolve(process.env.STENTOR_BIN || join(here, '../../target/debug/stentor'));
export const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const healthy = (url) => new Promise((ok, fail) => {
  get(url, (res) => { res.resume(); ok(res.statusCode === 200); }).on('error', fail);
});

/** Starts `stentor serve` on a free port with a data directory of its own and `extra` flags. */
export async function startServer(name, extra = []) {
  const work = mkdtempSync(join(tmpdir(), `stentor-${name}-`));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const args = ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', join(work, 'data'), ...extra];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => process.env.E2E_VERBOSE && process.stderr.write(d));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if (await healthy(`${base}/healthz`)) return { proc, base };
    } catch { /* not yet */ }
    await sleep(100);
  }
  throw new Error('the server did not start');
}

/** Headless Chromium. */
export function launch() {
  return chromium.launch({
    executablePath: chromePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-quic'],
  });
}

/** Console errors of every page made by `page`. */
export const consoleErrors = [];

/** A page of its own context (cookies apart), `width` × `height`. */
export async function page(b, name, width = 1200, height = 860) {
  const context = await b.newContext({ viewport: { width, height } });
  const p = await context.newPage();
  p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${name}: ${m.text()}`); });
  p.on('pageerror', (e) => consoleErrors.push(`${name}: ${e.message}`));
  p.on('console', (m) => { if (process.env.E2E_VERBOSE) console.log(`[${name}] ${m.type()}: ${m.text()}`); });
  return p;
}

/** Signs `handle` up on the page. */
export async function signUp(p, base, handle) {
  await p.goto(`${base}/signup`);
  await p.getByLabel('Handle').fill(handle);
  await p.getByLabel('Password').fill('correct horse battery');
  await p.getByRole('button', { name: 'Sign up' }).click();
  await p.getByRole('link', { name: 'Your profile' }).waitFor();
}

/** Waits until `fn()` holds, asking every `every` ms. */
export async function waitFor(what, fn, ms = 10000, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

/** Lines of the run's summary. */
export const results = [];

/** Runs a named step and records its time. */
export async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  results.push(`ok   ${name} (${Date.now() - t0} ms)`);
  console.log(results.at(-1));
}

/** The folder for suite `name`'s screenshots (made if missing). */
export function screenshots(name) {
  const dir = join(here, 'screenshots', name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Runs browser suite `name`: a stentor server of its own (with `flags`) and Chromium, then
 * `body({ base, browser })`; closes both whatever happened, prints the steps' summary, and
 * exits with 1 on a failure (with the console errors seen).
 */
export async function suite(name, flags, body) {
  const { proc, base } = await startServer(name, flags);
  let browser = null;
  let failed = null;
  try {
    browser = await launch();
    await body({ base, browser });
  } catch (e) {
    failed = e;
  } finally {
    if (browser) await browser.close();
    proc.kill();
  }
  console.log(`\n${results.join('\n')}`);
  if (failed) {
    console.error(`\nFAILED: ${failed.stack || failed}`);
    if (consoleErrors.length) console.error(`console errors:\n${consoleErrors.join('\n')}`);
    process.exit(1);
  }
  console.log(`\nall ${name} web tests passed; screenshots in ${join(here, 'screenshots', name)}`);
}
