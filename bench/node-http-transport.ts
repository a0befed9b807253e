// The forwarding engine the benchmark compares undici against: node:http's client with a keep-alive
// Agent, registered for http: through the transport registry (bench only; Dayshift ships undici).
import http from 'node:http';
import type { Transport, UpstreamRequest, UpstreamResponse } from '../src/proxy/member-transport.js';
import { UpstreamError } from '../src/proxy/errors.js';
import type { TransportSettings } from '../src/proxy/transport-factory.js';

export function createNodeHttpTransport(url: URL, _member: unknown, settings: TransportSettings): Transport {
  const agent = new http.Agent({ keepAlive: true, maxSockets: settings.poolMax, maxFreeSockets: settings.poolIdle });
  const port = Number(url.port) || 80;
  return {
    request(request: UpstreamRequest): Promise<UpstreamResponse> {
      return new Promise((resolve, reject) => {
        const headers: string[] = [];
        for (const [name, value] of request.headers) headers.push(name, value);
        const req = http.request({
          host: url.hostname,
          port,
          method: request.method,
          path: request.path,
          headers,
          agent,
        });
        req.on('response', (res) => {
          const pairs: [string, string][] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2)
            pairs.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
          resolve({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? '', headers: pairs, body: res });
        });
        req.on('error', (error: NodeJS.ErrnoException) => {
          const phase = error.code === 'ECONNREFUSED' ? 'connect' : 'before-response';
          reject(new UpstreamError(error.message, { phase, reusedConnection: req.reusedSocket, cause: error }));
        });
        // A listener added to a signal that has already fired is never called.
        const cancel = () => req.destroy(request.signal.reason as Error);
        if (request.signal.aborted) {
          cancel();
          return;
        }
        request.signal.addEventListener('abort', cancel);
        if (request.body) request.body.pipe(req);
        else req.end();
      });
    },
    close: () => {
      agent.destroy();
      return Promise.resolve();
    },
  };
}
