// Closing a client connection the way HAProxy and nginx do: send the last bytes, shut our side, read and
// discard what the client still sends for a moment (closing with unread bytes would reset the
// connection and could destroy the answer before the client reads it), then release the socket whether
// or not the client closed its side. The listeners allow half-open sockets, so without this a client
// that never closes keeps the file descriptor for as long as it likes.
import type { Duplex } from 'node:stream';
import { otherMajorVersion } from './request-line.js';

/** How long a closed connection keeps discarding the client's bytes once its answer has been flushed. */
export const LINGER_MS = 1000;

/**
 * Ends `socket` after `data`, then destroys it LINGER_MS after the data has been flushed (or as soon as
 * the client closes its side too: the socket's autoDestroy). A client that does not read gets `flushMs`
 * to take the data.
 */
export function closeAfterFlush(socket: Duplex, data: string | undefined, flushMs: number): void {
  if (socket.destroyed) return;
  let timer = setTimeout(destroy, flushMs, socket).unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => socket.destroy());
  socket.end(data, () => {
    clearTimeout(timer);
    timer = setTimeout(destroy, LINGER_MS, socket).unref();
  });
  // Read (and drop) what the client still sends, so its FIN is seen and the close is clean.
  socket.resume();
}

/** Node's parse error: its code, the bytes it was parsing and where it stopped. */
type ParseError = NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number };

/** The answer to a head Node's parser refused ('clientError'): 431, 408, 505 or 400, then close. */
export function clientErrorAnswer(error: ParseError): string {
  const status =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : error.code === 'HPE_INVALID_VERSION' &&
            error.rawPacket &&
            otherMajorVersion(error.rawPacket, error.bytesParsed ?? 0)
          ? '505 HTTP Version Not Supported'
          : '400 Bad Request';
  return `HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
}

function destroy(socket: Duplex): void {
  socket.destroy();
}
