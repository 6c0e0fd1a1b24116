// What the browser tests and the dashboard benchmark share: calling the
// API as a plain client (bearer tokens) to seed and to read the expected
// answers, and the platform's days.

/**
 * A client of the gateway at `base`: `api(path, {token, method, json, text, accept})`
 * answers the JSON (the text for `accept: 'text/csv'`) and throws on any
 * error status; `login(user)` answers the user's access token.
 */
export function client(base) {
  async function api(path, { token, method = 'GET', json, text, accept } = {}) {
    const headers = { accept: accept || 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let body;
    if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json); }
    if (text !== undefined) { headers['content-type'] = 'text/csv'; body = text; }
    const r = await fetch(`${base}${path}`, { method, headers, body });
    const raw = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${raw}`);
    return accept === 'text/csv' ? raw : (raw ? JSON.parse(raw) : null);
  }
  const login = async (user) => (await api('/api/v1/auth/login', {
    method: 'POST', json: { email: user.email, password: user.password },
  })).access_token;
  return { api, login };
}

/** The day (YYYY-MM-DD) `offset` days from today in the time zone `zone`. */
export function platformDay(zone, offset) {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(new Date());
  const d = new Date(`${today}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + offset);
  return d.toISOString().slice(0, 10);
}
