import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startMember, type TestMember } from '../support/members.js';
import { startTestProxy, waitFor, type TestProxy } from '../support/proxy.js';

const GB = 1024 ** 3;
const CHUNK = Buffer.alloc(256 * 1024, 'x');
/** Growth of resident memory a 1 GB transfer may cause; far below the body, so nothing is buffered whole. */
const MAX_GROWTH = 160 * 1024 ** 2;

/** Writes `total` bytes honouring backpressure; `written` tracks progress. */
function produce(out: NodeJS.WritableStream, total: number, progress: { written: number }, done: () => void): void {
  const write = () => {
    while (progress.written < total) {
      progress.written += CHUNK.length;
      if (!out.write(CHUNK)) {
        out.once('drain', write);
        return;
      }
    }
    done();
  };
  write();
}

describe('streaming bodies', () => {
  let member: TestMember;
  let proxy: TestProxy;
  const download = { written: 0, blocked: false };

  before(async () => {
    member = await startMember('m', (req, res) => {
      const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size') ?? 0);
      if (req.method === 'POST') {
        let bytes = 0;
        req.on('data', (c: Buffer) => (bytes += c.length));
        req.on('end', () => res.end(String(bytes)));
        return;
      }
      if (req.url?.startsWith('/slow')) {
        let n = 0;
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => {
          res.write(`tick ${n}\n`);
          if (++n === 5) {
            clearInterval(timer);
            res.end();
          }
        }, 40);
        return;
      }
      download.written = 0;
      res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
      const progress = { written: 0 };
      const tick = setInterval(() => {
        download.written = progress.written;
        download.blocked = res.writableNeedDrain;
      }, 5);
      produce(res, size, progress, () => {
        clearInterval(tick);
        download.written = progress.written;
        res.end();
      });
    });
    proxy = await startTestProxy({
      clusters: { c: { members: [{ url: member.url }] } },
      health: { enabled: false },
      timeouts: { idle: '2s' },
      sites: { s: { hosts: ['example.com'], routes: [{ path: '/', clusters: ['c'] }] } },
    });
  });
  after(async () => {
    await proxy?.handle.close(1000);
    await member.close();
  });

  function sampleRss(): { stop: () => number } {
    const start = process.memoryUsage().rss;
    let peak = start;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    return {
      stop: () => {
        clearInterval(timer);
        return peak - start;
      },
    };
  }

  it('uploads 1 GB with bounded memory', async () => {
    const rss = sampleRss();
    const answer = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        {
          port: proxy.port,
          host: '127.0.0.1',
          method: 'POST',
          path: '/',
          headers: { host: 'example.com', 'content-length': String(GB) },
          agent: false,
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      produce(req, GB, { written: 0 }, () => req.end());
    });
    const growth = rss.stop();
    assert.equal(answer, String(GB));
    assert.ok(growth < MAX_GROWTH, `RSS grew by ${Math.round(growth / 1024 ** 2)} MB`);
  });

  it('downloads 1 GB with bounded memory', async () => {
    const rss = sampleRss();
    const received = await new Promise<number>((resolve, reject) => {
      http
        .get(
          { port: proxy.port, host: '127.0.0.1', path: `/?size=${GB}`, headers: { host: 'example.com' }, agent: false },
          (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve(bytes));
          },
        )
        .on('error', reject);
    });
    const growth = rss.stop();
    assert.equal(received, GB);
    assert.ok(growth < MAX_GROWTH, `RSS grew by ${Math.round(growth / 1024 ** 2)} MB`);
  });

  it('holds a member back while a client does not read (backpressure reaches the member)', async () => {
    const size = 256 * 1024 ** 2;
    let response: http.IncomingMessage | undefined;
    const req = http.get(
      { port: proxy.port, host: '127.0.0.1', path: `/?size=${size}`, headers: { host: 'example.com' }, agent: false },
      (res) => {
        response = res;
        res.pause();
      },
    );
    await waitFor(
      () => response !== undefined && download.blocked && download.written > 0,
      10_000,
      'the member to block',
    );
    const stalled = download.written;
    assert.ok(stalled < size / 4, `member wrote ${stalled} bytes to a client that reads nothing`);
    let bytes = 0;
    const done = new Promise<void>((resolve) => response!.on('end', resolve));
    response!.on('data', (c: Buffer) => (bytes += c.length));
    response!.resume();
    await done;
    assert.equal(bytes, size);
    req.destroy();
  });

  it('streams a slow member response as it comes, within the idle timeout', async () => {
    const lines: number[] = [];
    await new Promise<void>((resolve, reject) => {
      http
        .get(
          { port: proxy.port, host: '127.0.0.1', path: '/slow', headers: { host: 'example.com' }, agent: false },
          (res) => {
            res.on('data', (c: Buffer) => lines.push(c.toString().split('\n').filter(Boolean).length));
            res.on('end', resolve);
          },
        )
        .on('error', reject);
    });
    assert.equal(
      lines.reduce((a, b) => a + b, 0),
      5,
    );
    assert.ok(lines.length > 1, 'the body arrived in pieces, not buffered whole');
  });
});
