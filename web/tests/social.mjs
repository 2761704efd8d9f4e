// End-to-end tests of the social pages in headless Chromium (Playwright), against a real
// stentor server: follow, post, a followed host goes live (the follower's home shows the live
// bar, the bell counts the alert, the inbox says so), the Space's listeners see the likes of
// the post announcing it, like counts that move on a second page without a reload, and
// screenshots at desktop and phone widths. Run by .ci/run:
// `node social.mjs`.
//
// Environment: STENTOR_BIN (default ../../target/debug/stentor), CHROMIUM (default
// /usr/bin/chromium). Screenshots go to web/tests/screenshots/social/.

import { join } from 'node:path';
import assert from 'node:assert/strict';
import { consoleErrors, page, results, screenshots, signUp, sleep, step, suite, waitFor } from './harness.mjs';

const shots = screenshots('social');

/** Waits until a page's list of posts has rendered (the app routes after the load event). */
async function feedShown(p) {
  await p.locator('.feed > article, .feed > .empty').first().waitFor();
}

await suite('social', [], async ({ base, browser: b }) => {
  const host = await page(b, 'host');
  const fan = await page(b, 'fan');
  const watcher = await page(b, 'watcher');
  let postId;
  let spaceId;

  await step('a fan follows a host from the host\'s profile', async () => {
    await signUp(host, base, 'ada_host');
    await signUp(fan, base, 'bo_fan');
    await fan.goto(`${base}/u/ada_host`);
    await fan.getByTestId('follow').click();
    await fan.getByTestId('follow').getByText('Following').waitFor();
    await fan.getByText('1 followers').waitFor();
    await fan.getByTestId('alerts').getByText('Alerts on').waitFor();
  });

  await step('the host posts from home and the fan\'s timeline shows it', async () => {
    await host.goto(base);
    await host.getByLabel('Your post').fill('Tonight at nine: the launch, live. Bring questions.');
    await host.getByRole('button', { name: 'Post', exact: true }).click();
    const article = host.locator('article.post').first();
    await article.getByText('Tonight at nine').waitFor();
    postId = await article.getAttribute('data-post');
    await waitFor('the post in the fan\'s timeline', async () => {
      await fan.goto(base);
      await feedShown(fan);
      return (await fan.getByText('Tonight at nine').count()) > 0;
    }, 10000, 700);
  });

  await step('the host goes live: the fan\'s home shows the live bar and the bell counts the alert', async () => {
    await host.goto(`${base}/new`);
    await host.getByLabel('Title').fill('Launch night');
    await host.getByRole('button', { name: 'Create Space' }).click();
    await host.waitForURL(/\/s\//);
    spaceId = new URL(host.url()).pathname.split('/').pop();
    await host.getByTestId('start').click();
    await waitFor('the live bar', async () => {
      await fan.goto(base);
      await feedShown(fan);
      return (await fan.getByTestId(`live-${spaceId}`).count()) > 0;
    }, 10000, 700);
    await waitFor('the unread badge', async () => {
      await fan.goto(base);
      await feedShown(fan);
      await fan.waitForTimeout(300);
      const badge = fan.getByTestId('unread');
      return (await badge.isVisible()) && Number(await badge.textContent()) >= 1;
    }, 10000, 700);
    await fan.screenshot({ path: join(shots, 'home-desktop.png'), fullPage: true });
    await fan.getByRole('link', { name: 'Notifications' }).click();
    await fan.getByText('is live now').waitFor();
    await fan.screenshot({ path: join(shots, 'notifications-desktop.png'), fullPage: true });
    await fan.getByRole('link', { name: 'listen' }).click();
    await fan.waitForURL(new RegExp(`/s/${spaceId}$`));
  });

  await step('the Space\'s listeners see the likes of the post announcing it move, over the Space\'s events', async () => {
    await host.goto(base);
    await host.getByLabel('Your post').fill(`We are live: ${base}/s/${spaceId}`);
    await host.getByRole('button', { name: 'Post', exact: true }).click();
    const article = host.locator('article.post').first();
    await article.getByText('We are live').waitFor();
    const announceId = await article.getAttribute('data-post');
    await signUp(watcher, base, 'cy_watch');
    await watcher.goto(`${base}/p/${announceId}`);
    const t0 = Date.now();
    await watcher.getByTestId(`like-${announceId}`).click();
    const chip = fan.locator(`[data-announcement="${announceId}"]`);
    await waitFor('the announcement\'s like in the Space', async () =>
      (await chip.count()) === 1 && (await chip.locator('[data-stat="like"]').textContent()).trim() === '1', 5000);
    results.push(`     the Space page showed the announcement's like after ${Date.now() - t0} ms`);
    await fan.screenshot({ path: join(shots, 'space-desktop.png'), fullPage: true });
  });

  await step('a like moves the count on a second page within two seconds, without a reload', async () => {
    await watcher.goto(`${base}/p/${postId}`);
    const count = watcher.getByTestId(`like-${postId}`);
    await count.waitFor();
    assert.equal((await count.textContent()).trim().endsWith('0'), true);
    await sleep(1200); // the stream is open
    await fan.goto(`${base}/p/${postId}`);
    const t0 = Date.now();
    await fan.getByTestId(`like-${postId}`).click();
    await waitFor('the like on the second page', async () => (await count.getAttribute('aria-label')) === 'Like (1)', 4000);
    results.push(`     the second page showed the like after ${Date.now() - t0} ms`);
    await fan.getByTestId(`like-${postId}`).getByText('1').waitFor();
    assert.equal(await fan.getByTestId(`like-${postId}`).getAttribute('aria-pressed'), 'true');
  });

  await step('a reply shows under the post and counts on it', async () => {
    await fan.getByLabel('Your reply').fill('Count me in!');
    await fan.getByRole('button', { name: 'Reply', exact: true }).click();
    await fan.getByText('Count me in!').waitFor();
    await waitFor('the reply count on the second page', async () =>
      (await watcher.locator(`article[data-post="${postId}"] a[aria-label="Replies (1)"]`).count()) === 1, 4000);
    await watcher.screenshot({ path: join(shots, 'post-desktop.png'), fullPage: true });
  });

  await step('profile, home, post and inbox look finished on a 390 px phone', async () => {
    const phone = await page(b, 'phone', 390, 844);
    await signUp(phone, base, 'di_phone');
    await phone.goto(`${base}/u/ada_host`);
    await phone.getByTestId('follow').click();
    await phone.getByTestId('follow').getByText('Following').waitFor();
    await phone.screenshot({ path: join(shots, 'profile-phone.png'), fullPage: true });
    await waitFor('the phone timeline', async () => {
      await phone.goto(base);
      await feedShown(phone);
      return (await phone.getByText('Tonight at nine').count()) > 0;
    }, 10000, 700);
    await phone.screenshot({ path: join(shots, 'home-phone.png'), fullPage: true });
    await phone.goto(`${base}/p/${postId}`);
    await phone.getByText('Count me in!').waitFor();
    await phone.screenshot({ path: join(shots, 'post-phone.png'), fullPage: true });
    await phone.goto(`${base}/s/${spaceId}`);
    await phone.locator('[data-announcement]').waitFor();
    await phone.screenshot({ path: join(shots, 'space-phone.png'), fullPage: true });
    const spaceOverflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(spaceOverflow <= 0, `the Space page is ${spaceOverflow} px wider than the phone`);
    await phone.goto(`${base}/notifications`);
    await phone.getByRole('heading', { name: 'Notifications' }).waitFor();
    await phone.screenshot({ path: join(shots, 'notifications-phone.png'), fullPage: true });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
    await host.goto(`${base}/u/ada_host`);
    await host.screenshot({ path: join(shots, 'profile-desktop.png'), fullPage: true });
  });

  await step('no console errors on any page', async () => {
    assert.deepEqual(consoleErrors, []);
  });
});
