// HTTP/0.9 requests ("GET /" and a line end, no version): llhttp reads the line, then waits for header
// lines that a 0.9 client never sends, so without this check such a connection would sit until the head
// timeout. Nothing behind Dayshift speaks 0.9: the request is refused as soon as its line is complete.

/** The answer to a request line without a version. */
export const VERSIONLESS_ANSWER = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

const VERSION = /^ HTTP\/\d\.\d$/;

/**
 * Whether a request line that Node's parser refused for its version (HPE_INVALID_VERSION; `at`, its
 * bytesParsed, is where the version ends) names a major version other than 1, such as HTTP/3.0: that is
 * a 505 (RFC 9110 §15.6.6), while a malformed or unknown 1.x version (HTTP/1.2) stays a 400.
 */
export function otherMajorVersion(packet: Buffer, at: number): boolean {
  const start = packet.lastIndexOf(10, at - 1) + 1;
  const version = / HTTP\/(\d)\.\d$/.exec(packet.toString('latin1', start, at));
  return version !== null && version[1] !== '1';
}

/**
 * Whether the start of a request has a complete request line that ends without " HTTP/x.y";
 * undefined while the line is incomplete. Empty lines before it are skipped, as the parser does.
 */
export function versionless(bytes: Buffer): boolean | undefined {
  let start = 0;
  while (start < bytes.length && (bytes[start] === 13 || bytes[start] === 10)) start++;
  const end = bytes.indexOf(10, start);
  if (end < 0) return undefined;
  const lineEnd = bytes[end - 1] === 13 ? end - 1 : end;
  return lineEnd - start < 9 || !VERSION.test(bytes.toString('latin1', lineEnd - 9, lineEnd));
}
