// The one way pages call the gateway: the same JSON API as every other
// client, authenticated by the HttpOnly session cookie the browser sends
// by itself; state-changing requests carry the session's CSRF token.

let csrfToken = null;

/** Remembers the CSRF token of the session (from GET /studio/session). */
export function setCsrfToken(token) {
  csrfToken = token;
}

/** A failed call: `status` and the API's error envelope (`body.error`). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
    this.body = body;
  }
}

/**
 * Calls `path` and answers its JSON (null for 204).
 * Options: `method`, `json` (a body to send as JSON), `text` and
 * `contentType` (a raw body), `accept`, `idempotent` (adds an
 * Idempotency-Key, for admin writes).
 */
export async function call(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { accept: options.accept || 'application/json' };
  let body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.text !== undefined) {
    headers['content-type'] = options.contentType || 'text/plain';
    body = options.text;
  }
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  if (options.idempotent) headers['idempotency-key'] = crypto.randomUUID();
  const response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  if (response.status === 204) return null;
  if (options.accept === 'text/csv' && response.ok) return response.blob();
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `path` with the defined entries of `params` as its query. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
