// The Studio's entry: reads the session, draws the header, and routes
// `#/…` addresses to pages. Roles decide which pages a user may open; the
// API refuses the rest anyway (a page only shows what the API answers).

import { call, setCsrfToken, ApiError } from './api.js';
import { h, status } from './dom.js';
import { t, switchLanguage } from './i18n.js';
import * as pages from './pages.js';
import * as admin from './admin.js';

const CREATOR = ['creator'];
const OWNER = ['creator', 'admin'];
const ADMIN = ['admin'];

/** `#/path` patterns, their page and who may open it (none: anyone). */
const routes = [
  { path: /^\/login$/, page: pages.login },
  { path: /^\/top$/, page: pages.top, nav: 'top' },
  { path: /^\/dashboard$/, page: pages.dashboard, roles: CREATOR, nav: 'dashboard' },
  { path: /^\/videos$/, page: pages.videos, roles: CREATOR, nav: 'videos' },
  { path: /^\/videos\/(\d+)$/, page: pages.video, roles: OWNER },
  { path: /^\/earnings$/, page: pages.earnings, roles: CREATOR, nav: 'earnings' },
  { path: /^\/statements$/, page: pages.statements, roles: CREATOR, nav: 'statements' },
  { path: /^\/statements\/(\d+)$/, page: pages.statement, roles: OWNER },
  { path: /^\/admin\/runs$/, page: admin.runs, roles: ADMIN, nav: 'runs' },
  { path: /^\/admin\/import$/, page: admin.imports, roles: ADMIN, nav: 'imports' },
  { path: /^\/admin\/users$/, page: admin.users, roles: ADMIN, nav: 'users' },
  { path: /^\/admin\/adjustments$/, page: admin.adjustments, roles: ADMIN, nav: 'adjustments' },
  { path: /^\/admin\/closes$/, page: admin.closes, roles: ADMIN, nav: 'closes' },
  { path: /^\/admin\/withholding$/, page: admin.withholding, roles: ADMIN, nav: 'withholding' },
  { path: /^\/admin\/webhooks$/, page: admin.webhooks, roles: ADMIN, nav: 'webhooks' },
];

const state = { session: null };

function home() {
  const role = state.session?.user.role;
  if (role === 'creator') return '#/dashboard';
  if (role === 'admin') return '#/admin/runs';
  return state.session ? '#/top' : '#/login';
}

async function loadSession() {
  try {
    state.session = await call('/studio/session');
    setCsrfToken(state.session.csrf_token);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) throw e;
    state.session = null;
    setCsrfToken(null);
  }
}

async function signIn(email, password) {
  state.session = await call('/studio/session', { method: 'POST', json: { email, password } });
  setCsrfToken(state.session.csrf_token);
  location.hash = home();
  drawHeader();
}

async function signOut() {
  await call('/studio/session', { method: 'DELETE' });
  state.session = null;
  setCsrfToken(null);
  location.hash = '#/login';
  drawHeader();
}

/** The configured social-login providers (none when the list cannot be had). */
async function providerNames() {
  try {
    return (await call('/api/v1/auth/providers')).providers;
  } catch {
    return [];
  }
}

function drawHeader() {
  const role = state.session?.user.role;
  const current = location.hash.split('?')[0];
  const links = routes
    .filter((r) => r.nav && (!r.roles || r.roles.includes(role)))
    .map((r) => {
      const href = `#${r.path.source.replace(/^\^|\$$/g, '').replace(/\\\//g, '/')}`;
      return h('li', {}, h('a', { href, 'aria-current': href === current ? 'page' : null }, t(r.nav)));
    });
  const user = state.session
    ? [h('span', { class: 'who' }, t('signedInAs', { name: state.session.user.display_name, role: t(`role.${role}`) })),
      h('button', { type: 'button', id: 'sign-out', class: 'secondary', onclick: () => signOut() }, t('signOut'))]
    : [h('a', { href: '#/login', class: 'button secondary' }, t('signIn'))];
  document.getElementById('top').replaceChildren(
    h('a', { class: 'brand', href: '#/' }, t('studio')),
    h('nav', { 'aria-label': t('studio') }, h('ul', {}, links)),
    h('div', { class: 'account' }, user,
      h('button', { type: 'button', id: 'language', class: 'secondary', lang: t('language') === 'English' ? 'en' : 'ko', onclick: switchLanguage }, t('language'))),
  );
}

/** Counts navigations: a page that finishes after a later navigation is dropped, not drawn over it. */
let navigation = 0;

async function render() {
  const current = ++navigation;
  const main = document.getElementById('main');
  const [path, queryText] = (location.hash.slice(1) || '/').split('?');
  if (path === '/' || path === '') {
    location.replace(home());
    return;
  }
  const ctx = {
    query: new URLSearchParams(queryText || ''),
    session: state.session,
    providers: path === '/login' ? await providerNames() : [],
    signIn,
    rerender: render,
  };
  drawHeader();
  const route = routes.find((r) => r.path.test(path));
  let content;
  if (!route) {
    content = [h('h1', { tabindex: -1 }, t('notFound'))];
  } else if (route.roles && !state.session) {
    content = [h('h1', { tabindex: -1 }, t('signIn')), status(t('signInFirst')), h('a', { href: '#/login' }, t('signIn'))];
  } else if (route.roles && !route.roles.includes(state.session.user.role)) {
    content = [h('h1', { tabindex: -1, id: 'forbidden' }, t('forbidden'))];
  } else {
    main.setAttribute('aria-busy', 'true');
    try {
      content = await route.page(ctx, ...path.match(route.path).slice(1));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        state.session = null;
        drawHeader();
        content = [h('h1', { tabindex: -1 }, t('signIn')), status(t('signInFirst'), 'error')];
      } else if (e instanceof ApiError && e.status === 403) {
        content = [h('h1', { tabindex: -1, id: 'forbidden' }, t('forbidden'))];
      } else {
        content = [h('h1', { tabindex: -1 }, t('error')), status(t('failed', { message: e.message }), 'error')];
      }
    }
    if (current !== navigation) return;
    main.removeAttribute('aria-busy');
  }
  main.replaceChildren(...[content].flat().filter(Boolean));
  const heading = main.querySelector('h1');
  document.title = `${heading?.textContent || ''} · ${t('studio')}`;
  main.dataset.ready = path;
}

window.addEventListener('hashchange', render);
await loadSession();
await render();
