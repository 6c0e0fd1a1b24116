// The Studio's performance figures (issue 21): seeds one creator with
// VIDEOS videos and DAYS settled days through the API, then, in Chromium,
// loads the dashboard ROUNDS times with the report cache emptied before
// each load, and prints the time its data took to arrive (the resource
// timing of its one API call) and the page's JavaScript, as served (gzip)
// and as `gzip -9` would make it. Run by bench/studio.sh.

import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { client, platformDay as dayIn } from './client.mjs';

const base = process.env.STUDIO_BASE;
const videos = Number(process.env.VIDEOS || 1000);
const days = Number(process.env.DAYS || 365);
const rounds = Number(process.env.ROUNDS || 20);
const generationKey = process.env.REPORT_GENERATION_KEY;
const zone = process.env.PLATFORM_TIME_ZONE || 'Asia/Seoul';
const admin = { email: process.env.ADMIN_EMAIL, password: process.env.ADMIN_PASSWORD };
const creator = { email: `bench-${Date.now()}@example.com`, password: 'bench-password' };

const { api, login } = client(base);
const platformDay = (offset) => dayIn(zone, offset);

/** The bytes `url` sends when gzip is accepted (what a browser downloads). */
function servedBytes(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      let n = 0;
      res.on('data', (chunk) => { n += chunk.length; });
      res.on('end', () => resolve(n));
    }).on('error', reject);
  });
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

// Seed.
let started = Date.now();
const adminToken = await login(admin);
await api('/api/v1/auth/signup', { method: 'POST', json: { ...creator, display_name: 'Bench creator', role: 'creator' } });
const creatorToken = await login(creator);
const ids = [];
for (let i = 0; i < videos; i += 1) {
  ids.push((await api('/api/v1/videos', { token: creatorToken, method: 'POST', json: { title: `Video ${i + 1}`, description: '', duration_seconds: 600 } })).video_id);
}
const first = platformDay(-days);
const last = platformDay(-1);
for (let d = 0; d < days; d += 30) {
  const lines = ['video_id,day,views,watch_seconds,ad_views'];
  for (let k = d; k < Math.min(days, d + 30); k += 1) {
    const day = platformDay(-days + k);
    ids.forEach((id, i) => lines.push(`${id},${day},${(i * 7 + k * 13) % 500 + 1},${((i + k) % 97 + 1) * 60},${(i + k) % 11}`));
  }
  const report = await api('/api/v1/admin/imports/daily-counts', { token: adminToken, method: 'POST', text: `${lines.join('\n')}\n` });
  if (report.rejected.length) throw new Error(`import rejected ${JSON.stringify(report.rejected.slice(0, 3))}`);
}
const seeded = (Date.now() - started) / 1000;
started = Date.now();
const { run_ids: runs } = await api('/api/v1/admin/settlements', { token: adminToken, method: 'POST', json: { from: first, to: last } });
for (const id of runs) {
  for (;;) {
    const run = await api(`/api/v1/admin/settlements/${id}`, { token: adminToken });
    if (run.status === 'succeeded') break;
    if (run.status === 'failed') throw new Error(`run ${id} failed: ${run.error}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const settled = (Date.now() - started) / 1000;
console.log(`seeded ${videos} videos x ${days} days (${first} .. ${last}): imports ${seeded.toFixed(1)} s, ${runs.length} settlement runs ${settled.toFixed(1)} s`);

// Measure.
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const context = await browser.newContext();
const page = await context.newPage();
await page.goto(`${base}/studio/#/login`);
await page.waitForSelector('main[data-ready="/login"]');
await page.fill('input[name=email]', creator.email);
await page.fill('input[name=password]', creator.password);
await page.click('form button[type=submit]');
await page.waitForSelector('main[data-ready="/dashboard"]');

const data = [];
const ready = [];
let scripts = [];
for (let i = 0; i < rounds; i += 1) {
  execFileSync('redis-cli', ['INCR', generationKey], { stdio: 'ignore' });
  await page.goto('about:blank');
  await page.goto(`${base}/studio/#/dashboard`);
  await page.waitForSelector('main[data-ready="/dashboard"]');
  const timing = await page.evaluate(() => {
    const call = performance.getEntriesByType('resource').find((e) => e.name.includes('/api/v1/revenues/daily'));
    return {
      data: call.responseEnd - call.startTime,
      ready: performance.now(),
      scripts: performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'script' || e.name.endsWith('.js')).map((e) => ({ name: e.name, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
    };
  });
  data.push(timing.data);
  ready.push(timing.ready);
  if (i === 0) scripts = timing.scripts;
}
await browser.close();

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const d = sorted(data);
const r = sorted(ready);
console.log(`dashboard data (GET /api/v1/revenues/daily, ${days} days, report cache emptied before each load), ${rounds} loads: median ${quantile(d, 0.5).toFixed(1)} ms, p95 ${quantile(d, 0.95).toFixed(1)} ms, max ${d[d.length - 1].toFixed(1)} ms`);
console.log(`dashboard drawn (navigation to page ready), ${rounds} loads: median ${quantile(r, 0.5).toFixed(1)} ms, p95 ${quantile(r, 0.95).toFixed(1)} ms, max ${r[r.length - 1].toFixed(1)} ms`);
let served = 0;
let gzip9 = 0;
let raw = 0;
const unique = new Map(scripts.map((s) => [s.name, s]));
for (const s of unique.values()) {
  const body = Buffer.from(await (await fetch(s.name)).arrayBuffer());
  raw += body.length;
  gzip9 += gzipSync(body, { level: 9 }).length;
  served += await servedBytes(s.name);
}
console.log(`page JavaScript: ${unique.size} files, ${(raw / 1024).toFixed(1)} KB raw, ${(served / 1024).toFixed(1)} KB as served (gzip), ${(gzip9 / 1024).toFixed(1)} KB with gzip -9`);
