// The admin pages (issue 21, item 3): settlement runs, CSV import, users,
// adjustments, closes and holds, the withholding report, webhooks. Every
// write sends an Idempotency-Key, so a double click acts once.

import { call, withQuery, ApiError } from './api.js';
import { h, table, field, status } from './dom.js';
import { t, won, count, platformDay, instant } from './i18n.js';

/** Runs `action` on submit and shows its result or error below the form. */
function form(id, legend, controls, action) {
  const result = h('div', { 'aria-live': 'polite', class: 'result' });
  return h('form', {
    id,
    class: 'card',
    onsubmit: async (event) => {
      event.preventDefault();
      result.replaceChildren(status(t('loading')));
      try {
        const shown = await action();
        result.replaceChildren(shown ?? status(t('done')));
      } catch (e) {
        result.replaceChildren(status(t('failed', { message: e.message }), 'error'));
      }
    },
  }, h('fieldset', {}, h('legend', {}, legend), controls, h('button', { type: 'submit' }, legend)), result);
}

/** A "more" link for cursor pages. */
function more(path, page) {
  return page.next_cursor ? h('a', { class: 'button secondary', href: withQuery(path, { cursor: page.next_cursor }) }, t('more')) : null;
}

/** Settlement runs: history and status; re-run a day or backfill a range. */
export async function runs(ctx) {
  const page = await call(withQuery('/api/v1/admin/settlements', { limit: 50, cursor: ctx.query.get('cursor') }));
  const from = h('input', { type: 'date', name: 'from', value: platformDay(-1), required: true });
  const to = h('input', { type: 'date', name: 'to', value: platformDay(-1), required: true });
  const queue = form('settle-form', t('queue'), [field(t('from'), from), field(t('to'), to)], async () => {
    const queued = await call('/api/v1/admin/settlements', { method: 'POST', json: { from: from.value, to: to.value }, idempotent: true });
    setTimeout(() => ctx.rerender(), 1500);
    return status(t('queued', { n: queued.run_ids.length }));
  });
  return [
    h('h1', { tabindex: -1 }, t('runs')),
    h('h2', {}, t('settleDays')), queue,
    h('p', {}, h('a', { class: 'button secondary', href: '#/admin/runs', onclick: (e) => { e.preventDefault(); ctx.rerender(); } }, t('refresh'))),
    table(t('runs'), [
      { key: 'run_id', label: t('run'), value: (r) => r.run_id },
      { key: 'day', label: t('date'), value: (r) => r.day },
      { key: 'status', label: t('status'), value: (r) => h('span', { class: `badge ${r.status}` }, t(`run.${r.status}`)) },
      { key: 'rows', label: t('rows'), value: (r) => count(r.rows), raw: (r) => r.rows, numeric: true },
      { key: 'total_amount', label: t('total'), value: (r) => (r.total_amount == null ? '' : won(r.total_amount)), raw: (r) => r.total_amount, numeric: true },
      { key: 'state', label: t('state'), value: (r) => (r.day_state ? t(`state.${r.day_state}`) : '') },
      { key: 'started_at', label: t('startedAt'), value: (r) => instant(r.started_at) },
      { key: 'finished_at', label: t('finishedAt'), value: (r) => instant(r.finished_at) },
      { key: 'error', label: t('error'), value: (r) => r.error ?? '' },
    ], page.items, { id: 'runs-table' }),
    more('#/admin/runs', page),
  ];
}

/** CSV import of daily counts with its line-by-line report. */
export async function imports() {
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true });
  const upload = form('import-form', t('upload'), [field(t('csvFile'), file)], async () => {
    const text = await file.files[0].text();
    const report = await call('/api/v1/admin/imports/daily-counts', { method: 'POST', text, contentType: 'text/csv', idempotent: true });
    return h('div', {}, status(t('accepted', { n: report.accepted })),
      report.rejected.length ? table(t('rejected'), [
        { key: 'line', label: t('line'), value: (r) => r.line },
        { key: 'reason', label: t('reason'), value: (r) => r.reason },
      ], report.rejected, { id: 'import-rejected' }) : null);
  });
  return [h('h1', { tabindex: -1 }, t('imports')), h('p', {}, 'video_id,day,views,watch_seconds,ad_views'), upload];
}

/** Users, paged. */
export async function users(ctx) {
  const page = await call(withQuery('/api/v1/admin/users', { limit: 50, cursor: ctx.query.get('cursor') }));
  return [
    h('h1', { tabindex: -1 }, t('users')),
    table(t('users'), [
      { key: 'user_id', label: 'ID', value: (u) => u.user_id },
      { key: 'email', label: t('email'), value: (u) => u.email },
      { key: 'display_name', label: t('name'), value: (u) => u.display_name },
      { key: 'role', label: t('role'), value: (u) => t(`role.${u.role}`) },
      { key: 'created_at', label: t('createdAt'), value: (u) => instant(u.created_at) },
    ], page.items, { id: 'users-table' }),
    more('#/admin/users', page),
  ];
}

/** Invalid-traffic adjustments: the list, and a new one. */
export async function adjustments(ctx) {
  const page = await call(withQuery('/api/v1/adjustments', { limit: 50, cursor: ctx.query.get('cursor') }));
  const input = (name, type = 'number') => h('input', { type, name, required: true, min: type === 'number' ? 0 : null });
  const videoId = input('video_id'); const day = input('day', 'date'); const views = input('views');
  const adViews = input('ad_views'); const watch = input('watch_seconds'); const reason = input('reason', 'text');
  const create = form('adjust-form', t('create'), [
    field(t('videoId'), videoId), field(t('date'), day), field(t('views'), views),
    field(t('adViews'), adViews), field(t('watchTime'), watch), field(t('reason'), reason),
  ], async () => {
    const a = await call('/api/v1/admin/adjustments', {
      method: 'POST', idempotent: true,
      json: { video_id: Number(videoId.value), day: day.value, views: Number(views.value), ad_views: Number(adViews.value), watch_seconds: Number(watch.value), reason: reason.value },
    });
    return status(`${t('clawedBack')}: ${won(a.amount_clawed_back)}`);
  });
  return [
    h('h1', { tabindex: -1 }, t('adjustments')), create,
    table(t('adjustments'), [
      { key: 'adjustment_id', label: 'ID', value: (a) => a.adjustment_id },
      { key: 'video_id', label: t('videoId'), value: (a) => a.video_id },
      { key: 'day', label: t('date'), value: (a) => a.day },
      { key: 'views', label: t('views'), value: (a) => count(a.views), raw: (a) => a.views, numeric: true },
      { key: 'ad_views', label: t('adViews'), value: (a) => count(a.ad_views), raw: (a) => a.ad_views, numeric: true },
      { key: 'amount_clawed_back', label: t('clawedBack'), value: (a) => won(a.amount_clawed_back), raw: (a) => a.amount_clawed_back, numeric: true },
      { key: 'reason', label: t('reason'), value: (a) => a.reason },
    ], page.items, { id: 'adjustments-table' }),
    more('#/admin/adjustments', page),
  ];
}

/** Closing a month, and holding or releasing a creator's payouts. */
export async function closes() {
  const month = h('input', { type: 'month', name: 'month', required: true, value: platformDay(0).slice(0, 7) });
  const close = form('close-form', t('closeMonth'), [field(t('month'), month)], async () => {
    const c = await call('/api/v1/admin/closes', { method: 'POST', json: { month: month.value }, idempotent: true });
    return status(`${c.month}: ${count(c.statements)} ${t('statements')}`);
  });
  const creator = h('input', { type: 'number', name: 'creator_id', min: 1, required: true });
  const reason = h('input', { type: 'text', name: 'reason' });
  const hold = form('hold-form', t('setHold'), [field(t('creatorId'), creator), field(t('reason'), reason)], async () => {
    await call(`/api/v1/admin/creators/${Number(creator.value)}/hold`, { method: 'PUT', json: { reason: reason.value }, idempotent: true });
  });
  const released = h('input', { type: 'number', name: 'creator_id', min: 1, required: true });
  const release = form('release-form', t('releaseHold'), [field(t('creatorId'), released)], async () => {
    await call(`/api/v1/admin/creators/${Number(released.value)}/hold`, { method: 'DELETE', idempotent: true });
  });
  return [h('h1', { tabindex: -1 }, t('closes')), close, hold, release];
}

/** The month's withholding report (Korean income and local tax). */
export async function withholding(ctx) {
  const month = ctx.query.get('month') || platformDay(0).slice(0, 7);
  const input = h('input', { type: 'month', name: 'month', value: month, required: true });
  const picker = h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); location.hash = withQuery('#/admin/withholding', { month: input.value }); } },
    field(t('month'), input), h('button', { type: 'submit' }, t('show')));
  let report;
  try {
    report = await call(withQuery('/api/v1/admin/withholding', { month }));
  } catch (e) {
    // 409: the month is not closed yet; the API's message says so.
    if (e instanceof ApiError && e.status === 409) return [h('h1', { tabindex: -1 }, `${t('withholding')} ${month}`), picker, status(e.message)];
    throw e;
  }
  const money = (key, label) => ({ key, label: t(label), value: (r) => won(r[key]), raw: (r) => r[key], numeric: true });
  return [
    h('h1', { tabindex: -1 }, `${t('withholding')} ${report.month}`), picker,
    table(t('withholding'), [
      { key: 'creator_id', label: t('creatorId'), value: (r) => r.creator_id },
      money('payout', 'payout'), money('income_tax', 'incomeTax'), money('local_tax', 'localTax'), money('net', 'net'),
    ], [...report.items, { creator_id: t('total'), ...report.totals }], { id: 'withholding-table' }),
  ];
}

/** Webhooks: the list, a new one (its secret shown once), deletion. */
export async function webhooks(ctx) {
  const list = await call('/api/v1/admin/webhooks');
  const url = h('input', { type: 'url', name: 'url', required: true });
  const events = h('input', { type: 'text', name: 'events', value: 'day.settled' });
  const create = form('webhook-form', t('create'), [field(t('url'), url), field(t('events'), events)], async () => {
    const w = await call('/api/v1/admin/webhooks', {
      method: 'POST', idempotent: true,
      json: { url: url.value, events: events.value.split(',').map((e) => e.trim()).filter(Boolean) },
    });
    return h('p', {}, `${t('secret')}: `, h('code', {}, w.secret ?? ''));
  });
  return [
    h('h1', { tabindex: -1 }, t('webhooks')), create,
    table(t('webhooks'), [
      { key: 'webhook_id', label: 'ID', value: (w) => w.webhook_id },
      { key: 'url', label: t('url'), value: (w) => w.url },
      { key: 'events', label: t('events'), value: (w) => w.events.join(', ') },
      { key: 'created_at', label: t('createdAt'), value: (w) => instant(w.created_at) },
      { key: 'delete', label: t('remove'), value: (w) => h('button', {
        type: 'button', class: 'secondary',
        'aria-label': `${t('remove')} ${w.webhook_id}`,
        onclick: async () => { await call(`/api/v1/admin/webhooks/${w.webhook_id}`, { method: 'DELETE', idempotent: true }); ctx.rerender(); },
      }, t('remove')) },
    ], list.items, { id: 'webhooks-table' }),
  ];
}
