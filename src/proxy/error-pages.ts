// The proxy's own answers (404, 403, 400, 431, 502, 503, 504, 505): short, revealing nothing about members,
// HTML or JSON by Accept; 502/503/504 replaceable per site by a file (HTML).
import type { ClientResponse } from './exchange.js';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const DEFAULT_TEXT: Record<number, string> = {
  502: 'The application did not answer properly. Please try again in a moment.',
  503: 'The application is not available right now. Please try again in a moment.',
  504: 'The application took too long to answer. Please try again in a moment.',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.indexOf('json');
  if (json < 0) return false;
  const html = accept.indexOf('text/html');
  return html < 0 || json < html;
}

export interface ErrorPageOptions {
  accept: string | undefined;
  /** Replaces the default text (maintenance message). */
  message?: string;
  /** Replacement HTML page (site.error_pages); `{message}` in it is replaced by the message. */
  page?: string;
  retryAfterSeconds?: number;
  requestIdHeader: string;
  requestId: string;
}

export function sendError(res: ClientResponse, status: number, options: ErrorPageOptions): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const title = TITLES[status] ?? 'Error';
  const text = options.message ?? DEFAULT_TEXT[status] ?? title;
  let body: string;
  let type: string;
  if (wantsJson(options.accept)) {
    body = JSON.stringify({ status, error: title, message: text, requestId: options.requestId });
    type = 'application/json';
  } else if (options.page !== undefined) {
    body = options.page.replaceAll('{message}', escapeHtml(text));
    type = 'text/html; charset=utf-8';
  } else {
    body = `<!doctype html><html><head><meta charset="utf-8"><title>${status} ${title}</title></head><body><h1>${title}</h1><p>${escapeHtml(text)}</p></body></html>\n`;
    type = 'text/html; charset=utf-8';
  }
  const headers: Record<string, string | number> = {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [options.requestIdHeader]: options.requestId,
  };
  if (options.retryAfterSeconds !== undefined) headers['retry-after'] = options.retryAfterSeconds;
  if (status === 400 || status === 431 || status === 505) headers.connection = 'close';
  res.writeHead(status, headers);
  if (res.req.method === 'HEAD') res.end();
  else res.end(body);
}
