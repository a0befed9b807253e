// AJP13 wire constants (the Tomcat AJPv13 reference; httpd's ajp_header.c is what mod_proxy_ajp sends).
// Every integer on the wire is a big-endian uint16; strings are length + bytes + NUL, length 0xFFFF = null.

/** Packets from the proxy start with 0x12 0x34, packets from the container with "AB". */
export const TO_CONTAINER_MAGIC = 0x1234;
export const FROM_CONTAINER_MAGIC = 0x4142;
/** Magic (2 bytes) + payload length (2 bytes). */
export const PACKET_HEADER_SIZE = 4;
/** Tomcat's default packetSize (and httpd's ProxyIOBufferSize): the whole packet, header included. */
export const DEFAULT_PACKET_SIZE = 8192;
export const MIN_PACKET_SIZE = 8192;
export const MAX_PACKET_SIZE = 65536;
export const NULL_STRING_LENGTH = 0xffff;

/** First payload byte of proxy → container packets. */
export const PREFIX_FORWARD_REQUEST = 2;
export const PREFIX_CPING = 10;

/** First payload byte of container → proxy packets. */
export const PREFIX_SEND_BODY_CHUNK = 3;
export const PREFIX_SEND_HEADERS = 4;
export const PREFIX_END_RESPONSE = 5;
export const PREFIX_GET_BODY_CHUNK = 6;
export const PREFIX_CPONG = 9;

/** Method codes; any other method is sent as 0xFF with the name in the stored_method attribute. */
export const METHOD_CODES: ReadonlyMap<string, number> = new Map(
  [
    'OPTIONS',
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'DELETE',
    'TRACE',
    'PROPFIND',
    'PROPPATCH',
    'MKCOL',
    'COPY',
    'MOVE',
    'LOCK',
    'UNLOCK',
    'ACL',
    'REPORT',
    'VERSION-CONTROL',
    'CHECKIN',
    'CHECKOUT',
    'UNCHECKOUT',
    'SEARCH',
    'MKWORKSPACE',
    'UPDATE',
    'LABEL',
    'MERGE',
    'BASELINE-CONTROL',
    'MKACTIVITY',
  ].map((name, i) => [name, i + 1]),
);
export const METHOD_STORED = 0xff;

/** Request header names sent as 0xA0xx codes (lower-case, as the proxy hands them over). */
export const REQUEST_HEADER_CODES: ReadonlyMap<string, number> = new Map(
  [
    'accept',
    'accept-charset',
    'accept-encoding',
    'accept-language',
    'authorization',
    'connection',
    'content-type',
    'content-length',
    'cookie',
    'cookie2',
    'host',
    'pragma',
    'referer',
    'user-agent',
  ].map((name, i) => [name, 0xa001 + i]),
);

/** Response header codes 0xA001… → lower-case names. */
export const RESPONSE_HEADER_NAMES: readonly string[] = [
  'content-type',
  'content-language',
  'content-length',
  'date',
  'last-modified',
  'location',
  'set-cookie',
  'set-cookie2',
  'servlet-engine',
  'status',
  'www-authenticate',
];
export const RESPONSE_HEADER_CODE_BASE = 0xa001;

/** Forward Request attribute codes Dayshift sends (context, servlet_path, remote_user, auth_type are not used). */
export const ATTR = {
  queryString: 0x05,
  route: 0x06,
  sslCert: 0x07,
  sslCipher: 0x08,
  sslSession: 0x09,
  reqAttribute: 0x0a,
  sslKeySize: 0x0b,
  secret: 0x0c,
  storedMethod: 0x0d,
  areDone: 0xff,
} as const;

/** The largest data part of one request body packet: packet - header - the chunk's own length field. */
export function maxRequestChunk(packetSize: number): number {
  return packetSize - PACKET_HEADER_SIZE - 2;
}
