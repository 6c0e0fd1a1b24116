// The creator's pages, the sign-in page and the public top page (issue 21,
// items 2 and 4). Each page makes one API call per chart or table.

import { call, withQuery, ApiError } from './api.js';
import { h, table, field, status } from './dom.js';
import { t, won, count, watchTime, platformDay, addDays, instant } from './i18n.js';

/** The tally columns every creator table shows. */
const tallyColumns = [
  { key: 'views', label: t('views'), value: (r) => count(r.views), raw: (r) => r.views, numeric: true },
  { key: 'watch_seconds', label: t('watchTime'), value: (r) => watchTime(r.watch_seconds), raw: (r) => r.watch_seconds, numeric: true },
  { key: 'ad_views', label: t('adViews'), value: (r) => count(r.ad_views), raw: (r) => r.ad_views, numeric: true },
  { key: 'total_amount', label: t('earningsAmount'), value: (r) => won(r.total_amount), raw: (r) => r.total_amount, numeric: true },
];

const stateLabel = (state) => (state ? t(`state.${state}`) : '—');

/** The sign-in page: password, then the configured social providers. */
export async function login(ctx) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (event) => {
      event.preventDefault();
      result.replaceChildren();
      try {
        await ctx.signIn(email.value, password.value);
      } catch (e) {
        result.append(status(e instanceof ApiError && e.status === 401 ? t('badLogin') : t('failed', { message: e.message }), 'error'));
      }
    },
  },
  field(t('email'), email), field(t('password'), password),
  h('button', { type: 'submit' }, t('signIn')), result);
  const providers = ctx.providers.map((p) => h('li', {}, h('a', { class: 'button secondary', href: `/studio/oauth/${encodeURIComponent(p)}?role=creator` }, t('signInWith', { name: p }))));
  return [h('h1', { tabindex: -1 }, t('signIn')), form, providers.length ? h('ul', { class: 'providers' }, providers) : null];
}

/** Sums the tallies of `days`. */
function sum(days) {
  const total = { views: 0, watch_seconds: 0, ad_views: 0, total_amount: 0 };
  for (const d of days) for (const k of Object.keys(total)) total[k] += d[k];
  return total;
}

function summaryCard(id, heading, tally) {
  return h('section', { class: 'card summary', id, 'aria-labelledby': `${id}-h` },
    h('h2', { id: `${id}-h` }, heading),
    h('dl', {},
      tallyColumns.filter((c) => c.key !== 'ad_views').map((c) => [
        h('dt', {}, c.label),
        h('dd', { 'data-column': c.key, 'data-value': c.raw(tally) }, c.value(tally)),
      ])));
}

/** A line chart of `values` per day, drawn by uPlot, with its data as a table for screen readers and checks. */
function chart(id, label, days, values, format) {
  const figure = h('figure', { class: 'chart', id, 'aria-label': label });
  const plot = h('div', { class: 'plot', 'aria-hidden': 'true' });
  figure.append(h('figcaption', {}, label), plot);
  const xs = days.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
  requestAnimationFrame(() => {
    // eslint-disable-next-line no-undef
    new uPlot({
      width: Math.max(plot.clientWidth, 320), height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      legend: { show: false },
      series: [{}, { label, stroke: '#1d4ed8', width: 2, fill: 'rgba(29, 78, 216, 0.08)', value: (u, v) => (v == null ? '' : format(v)) }],
      axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => format(v)) }],
    }, [xs, values], plot);
  });
  return figure;
}

/** The creator's dashboard: yesterday, month to date, and daily charts over 30, 90 or 365 days, from one series call. */
export async function dashboard(ctx) {
  const yesterday = platformDay(-1);
  const span = Number(ctx.query.get('days')) || 30;
  const series = await call(withQuery('/api/v1/revenues/daily', { from: addDays(yesterday, -364), to: yesterday }));
  const days = series.days;
  const monthStart = `${platformDay(0).slice(0, 8)}01`;
  const shown = days.slice(-span);
  const ranges = [30, 90, 365].map((n) => h('a', {
    href: `#/dashboard?days=${n}`, class: n === span ? 'tab current' : 'tab', 'aria-current': n === span ? 'page' : null,
  }, t(`last${n}`)));
  return [
    h('h1', { tabindex: -1 }, t('dashboard')),
    h('div', { class: 'cards' },
      summaryCard('yesterday', `${t('yesterday')} (${yesterday})`, sum(days.filter((d) => d.day === yesterday))),
      summaryCard('month-to-date', `${t('monthToDate')} (${monthStart} – ${yesterday})`, sum(days.filter((d) => d.day >= monthStart)))),
    h('nav', { class: 'tabs', 'aria-label': t('range') }, ranges),
    chart('chart-views', t('chartViews'), shown, shown.map((d) => d.views), count),
    chart('chart-earnings', t('chartEarnings'), shown, shown.map((d) => d.total_amount), won),
    h('details', { class: 'chart-data' }, h('summary', {}, t('chartData')),
      table(t('chartData'), [
        { key: 'day', label: t('date'), value: (d) => d.day },
        ...tallyColumns,
        { key: 'state', label: t('state'), value: (d) => stateLabel(d.state) },
      ], [...shown].reverse(), { id: 'chart-data' })),
  ];
}

/** The period picker shared by the videos and earnings pages. */
function periodForm(ctx, path, period, date) {
  const periodSelect = h('select', { name: 'period' }, ['day', 'week', 'month'].map((p) => h('option', { value: p, selected: p === period }, t(p))));
  const dateInput = h('input', { type: 'date', name: 'date', value: date, required: true });
  return h('form', {
    class: 'inline',
    onsubmit: (event) => {
      event.preventDefault();
      location.hash = withQuery(path, { period: periodSelect.value, date: dateInput.value });
    },
  }, field(t('period'), periodSelect), field(t('date'), dateInput), h('button', { type: 'submit' }, t('show')));
}

function periodOf(ctx) {
  const period = ['day', 'week', 'month'].includes(ctx.query.get('period')) ? ctx.query.get('period') : 'month';
  const date = ctx.query.get('date') || platformDay(-1);
  return { period, date };
}

/** The creator's videos for a period, sortable by views, watch time and earnings. */
export async function videos(ctx) {
  const { period, date } = periodOf(ctx);
  const sort = ['views', 'watch_seconds', 'total_amount'].includes(ctx.query.get('sort')) ? ctx.query.get('sort') : 'views';
  const report = await call(withQuery('/api/v1/revenues', { period, date }));
  const rows = [...report.videos].sort((a, b) => b[sort] - a[sort] || a.video_id - b.video_id);
  const sortable = (column) => {
    const c = tallyColumns.find((x) => x.key === column);
    return {
      ...c,
      header: h('a', {
        href: withQuery('#/videos', { period, date, sort: column }),
        'aria-label': t('sortBy', { column: c.label }),
        'aria-current': sort === column ? 'true' : null,
      }, c.label, sort === column ? ' ▼' : ''),
    };
  };
  return [
    h('h1', { tabindex: -1 }, t('videos')),
    periodForm(ctx, '#/videos', period, date),
    h('p', {}, `${report.start} – ${report.end}`),
    rows.length ? table(t('videos'), [
      { key: 'title', label: t('title'), value: (r) => h('a', { href: `#/videos/${r.video_id}?period=${period}&date=${date}` }, r.title) },
      sortable('views'), sortable('watch_seconds'), tallyColumns[2], sortable('total_amount'),
    ], rows, { id: 'videos-table' }) : status(t('noData')),
  ];
}

/** Every day from `start` to `end`, the given `days` where they are, zeros elsewhere (for a chart's axis). */
function everyDay(start, end, days) {
  const byDay = new Map(days.map((d) => [d.day, d]));
  const all = [];
  for (let day = start; day <= end; day = addDays(day, 1)) {
    all.push(byDay.get(day) ?? { day, views: 0, watch_seconds: 0, ad_views: 0, total_amount: 0 });
  }
  return all;
}

/** A video's days: counts before and after adjustments, amounts and day states. */
export async function video(ctx, id) {
  const { period, date } = periodOf(ctx);
  const [meta, stats] = await Promise.all([
    call(`/api/v1/videos/${id}`),
    call(withQuery(`/api/v1/videos/${id}/stats`, { period, date })),
  ]);
  const days = stats.days;
  const every = everyDay(stats.start, stats.end, days);
  return [
    h('h1', { tabindex: -1 }, meta.title),
    periodForm(ctx, `#/videos/${id}`, period, date),
    chart('chart-video-views', t('chartViews'), every, every.map((d) => d.views), count),
    table(`${t('video')} ${id}: ${stats.start} – ${stats.end}`, [
      { key: 'day', label: t('date'), value: (d) => d.day },
      ...tallyColumns.slice(0, 2),
      { key: 'original_views', label: t('originalViews'), value: (d) => count(d.original_views), raw: (d) => d.original_views, numeric: true },
      tallyColumns[2],
      { key: 'original_ad_views', label: t('originalAdViews'), value: (d) => count(d.original_ad_views), raw: (d) => d.original_ad_views, numeric: true },
      tallyColumns[3],
      { key: 'state', label: t('state'), value: (d) => stateLabel(d.state) },
    ], days, { id: 'video-days' }),
  ];
}

/** Earnings by day, week or month, with the CSV the API gives. */
export async function earnings(ctx) {
  const { period, date } = periodOf(ctx);
  const path = withQuery('/api/v1/revenues', { period, date });
  const report = await call(path);
  const download = h('button', {
    type: 'button',
    id: 'download-csv',
    onclick: async () => {
      const blob = await call(path, { accept: 'text/csv' });
      const link = h('a', { href: URL.createObjectURL(blob), download: `revenues-${period}-${date}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    },
  }, t('downloadCsv'));
  return [
    h('h1', { tabindex: -1 }, t('earnings')),
    periodForm(ctx, '#/earnings', period, date),
    h('section', { class: 'card summary', id: 'earnings-total' },
      h('h2', {}, `${report.start} – ${report.end}`),
      h('dl', {},
        h('dt', {}, t('videoAmount')), h('dd', { 'data-value': report.video_amount }, won(report.video_amount)),
        h('dt', {}, t('adAmount')), h('dd', { 'data-value': report.ad_amount }, won(report.ad_amount)),
        h('dt', {}, t('total')), h('dd', { 'data-column': 'total_amount', 'data-value': report.total_amount }, won(report.total_amount)))),
    download,
    report.videos.length ? table(t('videos'), [
      { key: 'title', label: t('title'), value: (r) => r.title },
      { key: 'video_amount', label: t('videoAmount'), value: (r) => won(r.video_amount), raw: (r) => r.video_amount, numeric: true },
      { key: 'ad_amount', label: t('adAmount'), value: (r) => won(r.ad_amount), raw: (r) => r.ad_amount, numeric: true },
      tallyColumns[3],
    ], report.videos, { id: 'earnings-table' }) : status(t('noData')),
  ];
}

const statementLines = ['opening_balance', 'earnings', 'restatements', 'adjustments', 'gross', 'payout', 'income_tax', 'local_tax', 'net', 'closing_balance'];
const statementLabels = {
  opening_balance: 'opening', earnings: 'earningsAmount', restatements: 'restatements', adjustments: 'adjustments', gross: 'gross',
  payout: 'payout', income_tax: 'incomeTax', local_tax: 'localTax', net: 'net', closing_balance: 'closing',
};

/** The creator's monthly statements. */
export async function statements() {
  const page = await call('/api/v1/statements?limit=100');
  return [
    h('h1', { tabindex: -1 }, t('statements')),
    page.items.length ? table(t('statements'), [
      { key: 'month', label: t('month'), value: (s) => h('a', { href: `#/statements/${s.statement_id}` }, s.month) },
      { key: 'payout', label: t('payout'), value: (s) => won(s.payout), raw: (s) => s.payout, numeric: true },
      { key: 'net', label: t('net'), value: (s) => won(s.net), raw: (s) => s.net, numeric: true },
      { key: 'status', label: t('status'), value: (s) => s.status },
    ], page.items) : status(t('noData')),
  ];
}

/** One statement with its withholding breakdown; printable. */
export async function statement(ctx, id) {
  const s = await call(`/api/v1/statements/${id}`);
  return [
    h('h1', { tabindex: -1 }, `${t('statement')} ${s.month}`),
    h('button', { type: 'button', class: 'no-print', onclick: () => window.print() }, t('print')),
    h('section', { class: 'card statement' },
      h('dl', {},
        statementLines.map((k) => [h('dt', {}, t(statementLabels[k])), h('dd', { 'data-column': k, 'data-value': s[k] }, won(s[k]))]),
        h('dt', {}, t('status')), h('dd', {}, s.status),
        h('dt', {}, t('issuedAt')), h('dd', {}, instant(s.issued_at)),
        s.paid_at ? [h('dt', {}, t('paidAt')), h('dd', {}, instant(s.paid_at))] : null,
        s.payout_reference ? [h('dt', {}, t('reference')), h('dd', {}, s.payout_reference)] : null,
        s.carried_reason ? [h('dt', {}, t('carried')), h('dd', {}, s.carried_reason)] : null,
        s.hold_reason ? [h('dt', {}, t('hold')), h('dd', {}, s.hold_reason)] : null)),
  ];
}

/** The public top 5 by views and by watch time for a day, week or month. */
export async function top(ctx) {
  const { period, date } = periodOf(ctx);
  const [byViews, byWatch] = await Promise.all(['views', 'watch_time'].map((metric) => call(withQuery('/api/v1/stats/top', { metric, period, date, limit: 5 }))));
  const ranking = (caption, report, format, id) => (report.items.length ? table(caption, [
    { key: 'rank', label: t('rank'), value: (r) => r.rank },
    { key: 'title', label: t('title'), value: (r) => r.title },
    { key: 'value', label: t('value'), value: (r) => format(r.value), raw: (r) => r.value, numeric: true },
  ], report.items, { id }) : status(t('noData')));
  return [
    h('h1', { tabindex: -1 }, t('top')),
    periodForm(ctx, '#/top', period, date),
    h('p', {}, `${byViews.start} – ${byViews.end}`),
    h('div', { class: 'cards' },
      h('section', { class: 'card' }, ranking(t('metricViews'), byViews, count, 'top-views')),
      h('section', { class: 'card' }, ranking(t('metricWatch'), byWatch, watchTime, 'top-watch'))),
  ];
}
