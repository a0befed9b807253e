// Calls to the admin API with the session cookie; state-changing calls carry the CSRF token.

/** Thrown for any non-2xx answer; `status` 409 is a refusal by the safety rules. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

let csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
/** @type {() => void} */
let onSignedOut = () => undefined;

export function signedIn() {
  return csrf !== '';
}

/** @param {() => void} handler called when the API says the session is gone */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  /** @type {any} */
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text };
  }
  if (!res.ok) {
    if (res.status === 401 && path !== '/ui/session') {
      csrf = '';
      onSignedOut();
    }
    throw new ApiError(res.status, data?.error ?? `${res.status} ${res.statusText}`);
  }
  return data;
}

/** @param {string} token */
export async function signIn(token) {
  const result = await api('POST', '/ui/session', { token });
  csrf = result.csrf;
}

export async function signOut() {
  await api('DELETE', '/ui/session').catch(() => undefined);
  csrf = '';
}

/**
 * Wraps a read-and-draw function so that calls never overlap: a call that comes while one runs asks for
 * one more run after it, so an older answer is never drawn over a newer one.
 * @param {() => Promise<void>} read
 * @returns {() => Promise<void>}
 */
export function oneAtATime(read) {
  /** @type {Promise<void> | undefined} */
  let running;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await read();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
}
