// End-to-end tests of trust and safety in headless Chromium (Playwright), against a real
// stentor server: a reader reports a post from its dialog, a moderator decides from the
// console, the author reads the statement of reasons from the inbox and appeals, a second
// moderator reverses, the post is back, and the public report counts one decision and one
// reversal. Then in a live Space: a listener reports a speaker, a moderator mutes them from
// the console and, listening unseen, removes them from the Space page; the speaker reads the
// statement and appeals; a second moderator reverses and the speaker may come back; the
// transparency page counts it. Screenshots at desktop and phone widths. Run by .ci/run:
// `node moderation.mjs`.
//
// Environment: STENTOR_BIN, CHROMIUM (as the other suites). Screenshots go to
// web/tests/screenshots/moderation/.

import { join } from 'node:path';
import assert from 'node:assert/strict';
import { consoleErrors, page, screenshots, signUp, step, suite, waitFor } from './harness.mjs';

const shots = screenshots('moderation');

await suite('moderation', ['--admin', 'ro_admin'], async ({ base, browser: b }) => {
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

  const api = (p, method, path, body) => p.evaluate(async ([m, u, b]) => {
    const r = await fetch(`/api/v1${u}`, { method: m, headers: { 'content-type': 'application/json' }, body: b == null ? undefined : JSON.stringify(b) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${m} ${u}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }, [method, path, body]);
  const fillDecision = async (form, why) => {
    await form.getByLabel('The term or law relied on').fill('Terms §3.1: no harassment');
    await form.getByLabel('Why it breaks it').fill(why);
    await form.getByLabel('The facts relied on').fill('Reported live by a listener; heard by a moderator listening in.');
  };
  const host = await page(b, 'host');
  const speaker = await page(b, 'speaker');
  let spaceId;

  await step('a live Space with a speaker on stage; a listener reports the speaker', async () => {
    await signUp(host, base, 'ho_st');
    await signUp(speaker, base, 'sp_eaker');
    spaceId = (await api(host, 'POST', '/spaces', { title: 'Night talk' })).id;
    await api(host, 'POST', `/spaces/${spaceId}/commands`, { cmd: 'start' });
    const me = await api(speaker, 'GET', '/me');
    await api(host, 'POST', `/spaces/${spaceId}/commands`, { cmd: 'invite', user: me.id });
    await api(speaker, 'POST', `/spaces/${spaceId}/commands`, { cmd: 'accept_invite' });
    await speaker.goto(`${base}/s/${spaceId}`);
    await speaker.getByTestId('mic').waitFor();
    await reader.goto(`${base}/s/${spaceId}`);
    await reader.getByText('sp_eaker').first().waitFor();
    await reader.getByTestId('report-space').click();
    await reader.getByLabel('Category').selectOption('illegal_or_harmful_speech');
    await reader.getByLabel('What is wrong, and where exactly').fill('sp_eaker is insulting a listener by name, right now.');
    await reader.getByLabel(/good faith/).check();
    await reader.getByRole('button', { name: 'Send report' }).click();
    await reader.getByText(/Report #\d+ received/).waitFor();
  });

  await step('a moderator mutes the speaker from the console; the speaker cannot unmute', async () => {
    await modA.goto(`${base}/moderation`);
    const card = modA.locator('[data-notice]').first();
    await card.getByText('insulting a listener').waitFor();
    assert.match(await card.textContent(), /at \d+ s/, 'the moment in the Space is on the report');
    await card.getByText('History of this subject and notes').click();
    await card.getByLabel('A note for the other moderators').fill('Heard it myself from 0:40.');
    await card.getByRole('button', { name: 'Add note' }).click();
    await card.getByText('Note: Heard it myself from 0:40.').waitFor();
    await card.getByLabel('Action').selectOption('mute_speaker');
    await card.getByLabel('Speaker').locator('option', { hasText: '@sp_eaker' }).waitFor({ state: 'attached' });
    await card.getByLabel('Speaker').selectOption('sp_eaker');
    await fillDecision(card, 'Insults aimed at a listener by name.');
    await modA.screenshot({ path: join(shots, 'console-space-report-desktop.png'), fullPage: true });
    await card.getByRole('button', { name: 'Decide' }).click();
    await modA.getByText('No reports are waiting.').waitFor();
    await speaker.getByTestId('mic-held').waitFor();
    await speaker.getByText('muted by moderators').waitFor();
    await reader.getByText('muted by moderators').waitFor();
  });

  await step('listening unseen, the moderator removes the speaker from the Space page', async () => {
    const before = await api(host, 'GET', `/spaces/${spaceId}`);
    await modA.goto(`${base}/s/${spaceId}`);
    const panel = modA.getByTestId('platform-moderation');
    await panel.getByText('You listen unseen').waitFor();
    // The reader listens; the moderator is not counted.
    await waitFor('the count leaves the moderator out', async () => (await modA.locator('[data-count]').textContent()) === '1 listening');
    await modA.screenshot({ path: join(shots, 'space-platform-moderation-desktop.png'), fullPage: true });
    await panel.getByTestId('pm-remove-sp_eaker').click();
    const dialog = modA.getByRole('dialog', { name: 'Remove @sp_eaker' });
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('Action').inputValue(), 'remove_speaker');
    await dialog.getByLabel('Speaker').locator('option', { hasText: '@sp_eaker' }).waitFor({ state: 'attached' });
    await dialog.getByLabel('Category').selectOption('illegal_or_harmful_speech');
    await fillDecision(dialog, 'Went on insulting the listener after being muted.');
    await modA.screenshot({ path: join(shots, 'decision-dialog-desktop.png') });
    await dialog.getByRole('button', { name: 'Decide' }).click();
    await dialog.waitFor({ state: 'detached' });
    await speaker.getByText('You were removed from this Space').waitFor();
    const after = await api(host, 'GET', `/spaces/${spaceId}`);
    assert.ok(!after.stage.some(([, role]) => role === 'speaker'), 'the speaker is off the stage');
    assert.ok(after.stage.length === before.stage.length - 1);
  });

  await step('the speaker reads the statement and appeals; another moderator reverses', async () => {
    await speaker.goto(`${base}/notifications`);
    await speaker.getByRole('link', { name: 'read why, and appeal' }).first().click();
    await speaker.waitForURL(/\/statements\/\d+$/);
    await speaker.getByText('You were removed from this live Space').waitFor();
    await speaker.getByText('Terms §3.1: no harassment').waitFor();
    await speaker.screenshot({ path: join(shots, 'statement-space-desktop.png'), fullPage: true });
    await speaker.getByLabel('Why is this decision wrong?').fill('I was quoting what the listener had said to me.');
    await speaker.getByTestId('appeal').click();
    await speaker.getByText('Waiting for a moderator').waitFor();
    await modA.goto(`${base}/moderation`);
    await modA.getByText('You took this decision: another moderator answers.').waitFor();
    await modB.goto(`${base}/moderation`);
    const card = modB.locator('[data-appeal]').first();
    await card.getByText('quoting what the listener').waitFor();
    await card.getByLabel('Reasons for the answer').fill('The recording shows a quotation; reversed.');
    await card.getByRole('button', { name: 'Reverse' }).click();
    await modB.getByText('No appeals are waiting.').waitFor();
    await speaker.reload();
    assert.equal((await speaker.getByTestId('standing').textContent()).trim(), 'Reversed');
    await speaker.goto(`${base}/s/${spaceId}`);
    await speaker.getByTestId('request').waitFor();
  });

  await step('the transparency page counts the decisions and reversals; it fits a phone', async () => {
    const report = await api(reader, 'GET', '/transparency/report');
    const total = (k) => report.rows.reduce((n, r) => n + r[k], 0);
    const speech = report.rows.find((r) => r.category === 'illegal_or_harmful_speech' && r.ground === 'incompatible');
    assert.deepEqual([speech.notices, speech.decisions, speech.reversals], [1, 2, 1]);
    assert.deepEqual([speech.by_action.mute_speaker, speech.by_action.remove_speaker], [1, 1]);
    await reader.goto(`${base}/transparency`);
    for (const k of ['notices', 'decisions', 'appeals', 'reversals']) {
      const shown = await reader.locator(`[data-total="${k}"] strong`).textContent();
      assert.equal(Number(shown), total(k), `${k} on the page`);
    }
    await reader.locator('[data-row="illegal_or_harmful_speech/incompatible"]').waitFor();
    await reader.screenshot({ path: join(shots, 'transparency-desktop.png'), fullPage: true });
    const phone = await page(b, 'phone-transparency', 390, 844);
    await phone.goto(`${base}/transparency`);
    await phone.locator('[data-row="illegal_or_harmful_speech/incompatible"]').waitFor();
    await phone.screenshot({ path: join(shots, 'transparency-phone.png'), fullPage: true });
    let overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the transparency page is ${overflow} px wider than the phone`);
    const phoneMod = await page(b, 'phone-space-mod', 390, 844);
    await phoneMod.context().addCookies(await modA.context().cookies());
    await phoneMod.goto(`${base}/s/${spaceId}`);
    await phoneMod.getByTestId('platform-moderation').waitFor();
    await phoneMod.screenshot({ path: join(shots, 'space-platform-moderation-phone.png'), fullPage: true });
    overflow = await phoneMod.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the Space page is ${overflow} px wider than the phone`);
  });

  await step('the lists say what orders them, offer time order, and explain it (Art. 27)', async () => {
    await reader.goto(base);
    await reader.getByTestId('order-listeners').waitFor();
    assert.equal(await reader.getByTestId('order-listeners').getAttribute('aria-pressed'), 'true');
    await reader.locator('[data-list="Live now"]').getByText('Night talk').waitFor();
    await reader.getByTestId('order-newest').click();
    await waitFor('the newest order chosen', async () => (await reader.getByTestId('order-newest').getAttribute('aria-pressed')) === 'true');
    assert.equal(await reader.evaluate(() => localStorage.getItem('stentor.order')), 'newest');
    await reader.screenshot({ path: join(shots, 'home-order-desktop.png'), fullPage: true });
    await reader.getByRole('link', { name: 'Why this order?' }).click();
    await reader.getByTestId('recommendations').getByText('most people listening right now').waitFor();
    await reader.screenshot({ path: join(shots, 'recommendations-desktop.png'), fullPage: true });
    const phone = await page(b, 'phone-recommendations', 390, 844);
    await phone.goto(`${base}/recommendations`);
    await phone.getByTestId('recommendations').waitFor();
    await phone.screenshot({ path: join(shots, 'recommendations-phone.png'), fullPage: true });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the recommendations page is ${overflow} px wider than the phone`);
  });

  await step('no console errors on any page', async () => {
    assert.deepEqual(consoleErrors, []);
  });
});
