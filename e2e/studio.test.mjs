// The Studio in a real browser (issue 21's acceptance): Debian's Chromium
// driven by Playwright against a running stack (e2e/run.sh starts it). The
// test seeds a day through the API, has an admin settle it in the Studio,
// then checks that the creator's dashboard, chart data, videos table and
// CSV show exactly what the API answers; that a viewer is refused the admin
// pages; that signing out kills the cookie; that no page breaks the
// Content-Security-Policy or has a serious or critical axe-core violation;
// and it takes the screenshots in docs/studio/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { client, platformDay as dayIn } from './client.mjs';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const base = process.env.STUDIO_BASE || 'http://127.0.0.1:18080';
const admin = { email: process.env.ADMIN_EMAIL || 'admin@example.com', password: process.env.ADMIN_PASSWORD || 'admin-password' };
const zone = process.env.PLATFORM_TIME_ZONE || 'Asia/Seoul';
const shots = process.env.STUDIO_SCREENSHOTS || '../docs/studio';
const run = Date.now().toString(36);
const creator = { email: `creator-${run}@example.com`, password: 'creator-password', name: `Creator ${run}` };
const viewer = { email: `viewer-${run}@example.com`, password: 'viewer-password', name: `Viewer ${run}` };

const platformDay = (offset) => dayIn(zone, offset);
const yesterday = platformDay(-1);
const { api, login: tokenOf } = client(base);

const won = (n) => new Intl.NumberFormat('ko-KR', { style: 'currency', currency: 'KRW' }).format(n);

/** Opens `hash` and waits until the page under it is drawn. */
async function open(page, hash) {
  await page.goto(`${base}/studio/${hash}`);
  const path = hash.replace(/^#/, '').split('?')[0];
  await page.waitForSelector(`main[data-ready="${path}"]`);
}

const violations = [];

/** An axe-core scan of the page: no serious or critical violation. */
async function scan(page, name) {
  await page.evaluate(`${axeSource}\n;0`);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [], `axe on ${name}`);
}

async function signInThroughPage(page, user) {
  await open(page, '#/login');
  await page.getByLabel(/이메일|Email/).fill(user.email);
  await page.getByLabel(/비밀번호|Password/).fill(user.password);
  await page.locator('form button[type=submit]').click();
  await page.waitForSelector('#sign-out');
}

test('the Studio, end to end', async (t) => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const newPage = async (locale = 'ko-KR') => {
    const context = await browser.newContext({ locale, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    // An answered error status is the page's business (it shows it); a
    // blocked script or style, or an exception, is a failure.
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) violations.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => violations.push(`${page.url()}: ${e.message}`));
    return { context, page };
  };
  mkdirSync(shots, { recursive: true });

  // Seed: a creator with three videos and a day of counts for them.
  const adminToken = await tokenOf(admin);
  for (const user of [creator, viewer]) {
    await api('/api/v1/auth/signup', { method: 'POST', json: { email: user.email, password: user.password, display_name: user.name, role: user === creator ? 'creator' : 'viewer' } });
  }
  const creatorToken = await tokenOf(creator);
  const videos = [];
  for (const [i, title] of ['김치 담그기', 'Hiking Bukhansan', '서울 야경'].entries()) {
    const v = await api('/api/v1/videos', { token: creatorToken, method: 'POST', json: { title, description: '', duration_seconds: 600 + 60 * i } });
    videos.push(v.video_id);
  }
  const csv = ['video_id,day,views,watch_seconds,ad_views',
    `${videos[0]},${yesterday},1234,456789,321`,
    `${videos[1]},${yesterday},987,123456,12`,
    `${videos[2]},${yesterday},4321,987654,1500`].join('\n');
  const imported = await api('/api/v1/admin/imports/daily-counts', { token: adminToken, method: 'POST', text: `${csv}\n` });
  assert.equal(imported.accepted, 3, JSON.stringify(imported));

  await t.test('an admin queues a settlement in the Studio and sees it succeed', async () => {
    const { context, page } = await newPage();
    await signInThroughPage(page, admin);
    await open(page, '#/admin/runs');
    await page.locator('#settle-form input[name=from]').fill(yesterday);
    await page.locator('#settle-form input[name=to]').fill(yesterday);
    await page.locator('#settle-form button[type=submit]').click();
    await page.waitForSelector('#settle-form .result [role=status]');
    const succeeded = page.locator('#runs-table tbody tr', { hasText: yesterday }).filter({ has: page.locator('.badge.succeeded') });
    for (let i = 0; i < 60 && (await succeeded.count()) === 0; i += 1) {
      await page.waitForTimeout(1000);
      await open(page, '#/admin/runs');
    }
    assert.ok((await succeeded.count()) > 0, 'a succeeded run of the day is listed');
    await scan(page, 'admin runs');
    await page.screenshot({ path: `${shots}/runs-ko.png`, fullPage: true });
    await page.locator('#language').click();
    await page.waitForSelector('html[lang=en] main[data-ready="/admin/runs"]');
    await page.screenshot({ path: `${shots}/runs-en.png`, fullPage: true });
    for (const hash of ['#/admin/import', '#/admin/users', '#/admin/adjustments', '#/admin/closes', '#/admin/withholding', '#/admin/webhooks']) {
      await open(page, hash);
      await scan(page, hash);
    }
    await context.close();
  });

  const expected = (await api(`/api/v1/revenues/daily?from=${yesterday}&to=${yesterday}`, { token: creatorToken })).days[0];
  assert.ok(expected.views > 0 && expected.total_amount > 0, 'the seeded day is settled');

  await t.test('a creator sees the API\'s numbers on the dashboard, in the chart data, the table and the CSV', async () => {
    const { context, page } = await newPage();
    await signInThroughPage(page, creator);
    await open(page, '#/dashboard');
    const card = page.locator('#yesterday');
    for (const column of ['views', 'watch_seconds', 'total_amount']) {
      assert.equal(Number(await card.locator(`dd[data-column=${column}]`).getAttribute('data-value')), expected[column], `dashboard ${column}`);
    }
    assert.equal(await card.locator('dd[data-column=total_amount]').textContent(), won(expected.total_amount));
    await page.screenshot({ path: `${shots}/dashboard-ko.png`, fullPage: true });
    await page.locator('details.chart-data summary').click();
    const row = page.locator('#chart-data tbody tr', { hasText: yesterday });
    for (const column of ['views', 'watch_seconds', 'total_amount']) {
      assert.equal(Number(await row.locator(`[data-column=${column}]`).getAttribute('data-value')), expected[column], `chart data ${column}`);
    }
    assert.equal(await page.locator('#chart-views canvas').count(), 1, 'uPlot drew the chart');
    await scan(page, 'dashboard');

    const report = await api(`/api/v1/revenues?period=day&date=${yesterday}`, { token: creatorToken });
    await open(page, `#/videos?period=day&date=${yesterday}&sort=total_amount`);
    const rows = page.locator('#videos-table tbody tr');
    assert.equal(await rows.count(), report.videos.length);
    const byEarnings = [...report.videos].sort((a, b) => b.total_amount - a.total_amount || a.video_id - b.video_id);
    for (const [i, v] of byEarnings.entries()) {
      const r = rows.nth(i);
      assert.equal(await r.locator('th').textContent(), v.title);
      for (const column of ['views', 'watch_seconds', 'total_amount']) {
        assert.equal(Number(await r.locator(`[data-column=${column}]`).getAttribute('data-value')), v[column], `table ${v.title} ${column}`);
      }
    }
    await scan(page, 'videos');

    await open(page, `#/videos/${videos[2]}?period=month&date=${yesterday}`);
    const day = page.locator('#video-days tbody tr', { hasText: yesterday });
    assert.equal(Number(await day.locator('[data-column=views]').getAttribute('data-value')), 4321);
    await scan(page, 'video');
    await page.screenshot({ path: `${shots}/video-ko.png`, fullPage: true });

    await open(page, `#/earnings?period=day&date=${yesterday}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-csv').click()]);
    const file = readFileSync(await download.path(), 'utf8');
    assert.equal(file, await api(`/api/v1/revenues?period=day&date=${yesterday}`, { token: creatorToken, accept: 'text/csv' }));
    await scan(page, 'earnings');
    await open(page, '#/statements');
    await scan(page, 'statements');

    await page.locator('#language').click();
    await page.waitForSelector('html[lang=en]');
    await open(page, '#/dashboard');
    assert.equal(await page.locator('#yesterday dd[data-column=total_amount]').textContent(), won(expected.total_amount));
    await page.screenshot({ path: `${shots}/dashboard-en.png`, fullPage: true });
    await open(page, `#/videos/${videos[2]}?period=month&date=${yesterday}`);
    await page.screenshot({ path: `${shots}/video-en.png`, fullPage: true });

    // Signing out ends the session: the cookie it had no longer works.
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'studio_session');
    assert.ok(cookie.httpOnly && cookie.sameSite === 'Strict', 'HttpOnly, SameSite=Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('studio_session')), false, 'page script cannot read it');
    await page.locator('#sign-out').click();
    await page.waitForSelector('main[data-ready="/login"]');
    const replay = await fetch(`${base}/api/v1/users/me`, { headers: { cookie: `studio_session=${cookie.value}` } });
    assert.equal(replay.status, 401);
    await context.close();
  });

  await t.test('a viewer is refused the admin pages; the public top page works signed out', async () => {
    const { context, page } = await newPage('en-US');
    await open(page, `#/top?period=day&date=${yesterday}`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'Accept-Language picks English');
    const top = await api(`/api/v1/stats/top?metric=views&period=day&date=${yesterday}&limit=5`);
    assert.equal(await page.locator('#top-views tbody tr').count(), top.items.length);
    assert.equal(await page.locator('#top-views tbody tr').first().locator('[data-column=title]').textContent(), top.items[0].title);
    await scan(page, 'top');
    await open(page, '#/login');
    await scan(page, 'login');
    await signInThroughPage(page, viewer);
    for (const hash of ['#/admin/runs', '#/admin/users', '#/dashboard']) {
      await open(page, hash);
      assert.equal(await page.locator('#forbidden').count(), 1, `${hash} refused`);
    }
    const status = await page.evaluate(async () => (await fetch('/api/v1/admin/settlements')).status);
    assert.equal(status, 403, 'the API refuses the viewer too');
    await context.close();
  });

  await browser.close();
  assert.deepEqual(violations, [], 'no console error, no Content-Security-Policy violation');
});
