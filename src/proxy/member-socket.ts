// A connection to an http(s) member. A member with proxy_protocol gets the PROXY header first, on the
// TCP connection before any TLS (HAProxy send-proxy): the caller waits for 'connect' or 'secureConnect'
// as with a plain net/tls connection.
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export interface MemberSocketOptions {
  url: URL;
  rejectUnauthorized: boolean;
  ALPNProtocols?: string[];
  /** The PROXY protocol header to send first. */
  header?: Buffer;
}

export function connectMember({ url, rejectUnauthorized, ALPNProtocols, header }: MemberSocketOptions): Socket {
  const secure = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port) || (secure ? 443 : 80);
  const tlsOptions = {
    servername: isIP(host) ? undefined : host,
    rejectUnauthorized,
    ...(ALPNProtocols ? { ALPNProtocols } : {}),
  };
  if (!header) return secure ? connectTls({ host, port, ...tlsOptions }) : connectTcp({ host, port });
  const raw = connectTcp({ host, port });
  // Queued until connected, and written before the TLS handshake starts (it waits for 'connect' too).
  raw.write(header);
  // A TLS socket wrapped around a TCP one may report its connect error twice: callers listen with on().
  return secure ? connectTls({ socket: raw, ...tlsOptions }) : raw;
}
