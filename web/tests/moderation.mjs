// End-to-end tests of trust and safety in headless Chromium (Playwright), against a real
// stentor server: a reader reports a post from its dialog, a moderator decides from the
// console, the author reads the statement of reasons from the inbox and appeals, a second
// moderator reverses, the post is back, and the public report counts one decision and one
// reversal; screenshots at desktop and phone widths. Run by .ci/run: `node moderation.mjs`.
//
// Environment: STENTOR_BIN, CHROMIUM (as the other suites). Screenshots go to
// web/tests/screenshots/moderation/.

import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { consoleErrors, launch, page, results, signUp, startServer, step, waitFor } from './harness.mjs';

const shots = join(dirname(fileURLToPath(import.meta.url)), 'screenshots', 'moderation');
mkdirSync(shots, { recursive: true });

const { proc, base } = await startServer('moderation', ['--admin', 'ro_admin']);
const b = await launch();
let failed = null;
try {
  const admin = await page(b, 'admin');
  const modA = await page(b, 'mod_a');
  const modB = await page(b, 'mod_b');
  const author = await page(b, 'author');
  const reader = await page(b, 'reader');
  let postId;
  let statementId;

  await step('the administrator grants two moderators; the console link shows for them', async () => {
    await signUp(admin, base, 'ro_admin');
    await signUp(modA, base, 'mo_anna');
    await signUp(modB, base, 'mo_ben');
    for (const handle of ['mo_anna', 'mo_ben']) {
      const status = await admin.evaluate(async (h) => (await fetch('/api/v1/moderators', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: h }),
      })).status, handle);
      assert.equal(status, 204);
    }
    await modA.goto(base);
    await modA.getByTestId('console').waitFor();
  });

  await step('a reader reports a post from its dialog and is acknowledged', async () => {
    await signUp(author, base, 'au_thor');
    await author.goto(base);
    await author.getByLabel('Your post').fill('Send me 100 and get 1000 back, guaranteed!');
    await author.getByRole('button', { name: 'Post', exact: true }).click();
    const article = author.locator('article.post').first();
    await article.getByText('Send me 100').waitFor();
    postId = await article.getAttribute('data-post');
    await signUp(reader, base, 're_ader');
    await reader.goto(`${base}/p/${postId}`);
    await reader.getByTestId('report-post').first().click();
    await reader.getByLabel('Category').selectOption('scams_and_fraud');
    await reader.getByLabel('What is wrong, and where exactly').fill('An advance-fee scam in the first line.');
    await reader.getByLabel(/good faith/).check();
    await reader.screenshot({ path: join(shots, 'report-dialog-desktop.png') });
    await reader.getByRole('button', { name: 'Send report' }).click();
    await reader.getByText(/Report #\d+ received/).waitFor();
  });

  await step('a moderator removes it from the console; the statement reaches the author', async () => {
    await modA.goto(`${base}/moderation`);
    const card = modA.locator('[data-notice]').first();
    await card.getByText('An advance-fee scam').waitFor();
    await modA.screenshot({ path: join(shots, 'console-desktop.png'), fullPage: true });
    await card.getByLabel('Action').selectOption('remove');
    await card.getByLabel('The term or law relied on').fill('Terms §4.2: no scams');
    await card.getByLabel('Why it breaks it').fill('It promises money back for a payment to a stranger.');
    await card.getByLabel('The facts relied on').fill('Reported by a reader; the post asks for a transfer.');
    await card.getByRole('button', { name: 'Decide' }).click();
    await modA.getByText('No reports are waiting.').waitFor();
    // Asked from here, not from a page (a page logs the 404 as a console error).
    const status = (await fetch(`${base}/api/v1/posts/${postId}`)).status;
    assert.equal(status, 404, 'removed for others');
    await author.goto(`${base}/notifications`);
    await author.getByRole('link', { name: 'read why, and appeal' }).click();
    await author.waitForURL(/\/statements\/\d+$/);
    statementId = author.url().split('/').pop();
    await author.getByText('Terms §4.2: no scams').waitFor();
    await author.getByText('out-of-court dispute settlement body', { exact: false }).waitFor();
    assert.equal((await author.getByTestId('standing').textContent()).trim(), 'In effect');
    await author.screenshot({ path: join(shots, 'statement-desktop.png'), fullPage: true });
  });

  await step('the author appeals; the deciding moderator cannot answer; another reverses', async () => {
    await author.getByLabel('Why is this decision wrong?').fill('It was a joke between friends, not a request.');
    await author.getByTestId('appeal').click();
    await author.getByText('Waiting for a moderator').waitFor();
    await modA.goto(`${base}/moderation`);
    await modA.getByText('You took this decision: another moderator answers.').waitFor();
    await modB.goto(`${base}/moderation`);
    const card = modB.locator('[data-appeal]').first();
    await card.getByLabel('Reasons for the answer').fill('Read in context it is a joke; reversed.');
    await card.getByRole('button', { name: 'Reverse' }).click();
    await modB.getByText('No appeals are waiting.').waitFor();
    await author.goto(`${base}/statements/${statementId}`);
    assert.equal((await author.getByTestId('standing').textContent()).trim(), 'Reversed');
    await author.getByText('Reversed: Read in context').waitFor();
    await reader.goto(`${base}/p/${postId}`);
    await reader.getByText('Send me 100').waitFor();
  });

  await step('the report counts one decision and one reversal; pages fit a 390 px phone', async () => {
    const report = await reader.evaluate(async () => (await fetch('/api/v1/transparency/report')).json());
    const decisions = report.rows.reduce((n, r) => n + r.decisions, 0);
    const reversals = report.rows.reduce((n, r) => n + r.reversals, 0);
    assert.deepEqual([decisions, reversals], [1, 1]);
    const phone = await page(b, 'phone', 390, 844);
    await phone.context().addCookies(await author.context().cookies());
    await phone.goto(`${base}/statements/${statementId}`);
    await phone.getByTestId('standing').waitFor();
    await phone.screenshot({ path: join(shots, 'statement-phone.png'), fullPage: true });
    let overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the statement is ${overflow} px wider than the phone`);
    const phoneMod = await page(b, 'phone-mod', 390, 844);
    await phoneMod.context().addCookies(await modA.context().cookies());
    await phoneMod.goto(`${base}/moderation`);
    await phoneMod.getByRole('heading', { name: 'Moderation' }).waitFor();
    await phoneMod.screenshot({ path: join(shots, 'console-phone.png'), fullPage: true });
    overflow = await phoneMod.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the console is ${overflow} px wider than the phone`);
  });

  await step('no console errors on any page', async () => {
    assert.deepEqual(consoleErrors, []);
  });
} catch (e) {
  failed = e;
} finally {
  await b.close();
  proc.kill();
}
console.log(`\n${results.join('\n')}`);
if (failed) {
  console.error(`\nFAILED: ${failed.stack || failed}`);
  if (consoleErrors.length) console.error(`console errors:\n${consoleErrors.join('\n')}`);
  process.exit(1);
}
console.log(`\nall moderation web tests passed; screenshots in ${shots}`);
