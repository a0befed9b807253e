// HTTP/1.1 parsing with llhttp, the parser inside Node's own http module, in the WebAssembly build that
// undici ships (undici is a dependency already; the build and its constants are loaded from its
// package, pinned by package-lock.json). One wasm instance serves every parser in the process: a parser
// is a pointer into its memory, and the callbacks find their parser through `current`. The build is
// strict (no lenient flags), as Node's is by default.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const constants = require('undici/lib/llhttp/constants.js') as {
  ERROR: Record<string, number>;
  TYPE: Record<string, number>;
};
const OK = constants.ERROR.OK!;
/** Returned by a callback to stop after the current message; execute() then reports where it stopped. */
const PAUSED = constants.ERROR.PAUSED!;

// The few WebAssembly globals used here (the project's TypeScript libs leave out the DOM ones).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, (...args: number[]) => number>>,
  ) => { exports: object };
};

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(pointer: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(parser: number): void;
  llhttp_execute(parser: number, data: number, length: number): number;
  llhttp_finish(parser: number): number;
  llhttp_resume(parser: number): void;
  llhttp_get_error_reason(parser: number): number;
  llhttp_get_error_pos(parser: number): number;
  llhttp_get_method(parser: number): number;
  llhttp_method_name(method: number): number;
  llhttp_get_http_major(parser: number): number;
  llhttp_get_http_minor(parser: number): number;
}

let current: Parser | undefined;
/** The chunk being parsed, and where its copy sits in wasm memory. */
let chunk: Buffer | undefined;
let bufferPointer = 0;
let bufferSize = 0;
/** A view of the wasm memory, made again when the memory grows (which detaches the old buffer). */
let memory: Uint8Array | undefined;

function text(at: number, length: number): string {
  const start = at - bufferPointer;
  return chunk!.toString('latin1', start, start + length);
}

let wasm: LlhttpExports | undefined;

function instance(): LlhttpExports {
  if (wasm) return wasm;
  let module: object;
  try {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer);
  } catch {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Buffer);
  }
  const env = {
    wasm_on_url: (_p: number, at: number, length: number) => current!.onUrl(text(at, length)),
    wasm_on_status: (_p: number, at: number, length: number) => current!.onStatus(text(at, length)),
    wasm_on_message_begin: () => current!.onBegin(),
    wasm_on_header_field: (_p: number, at: number, length: number) => current!.onField(text(at, length)),
    wasm_on_header_value: (_p: number, at: number, length: number) => current!.onValue(text(at, length)),
    wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) =>
      current!.onHeadersComplete(status, upgrade === 1, keepAlive === 1),
    wasm_on_body: (_p: number, at: number, length: number) => {
      const start = at - bufferPointer;
      return current!.onBody(chunk!.subarray(start, start + length));
    },
    wasm_on_message_complete: () => current!.onMessageComplete(),
  };
  wasm = new WebAssembly.Instance(module, { env }).exports as unknown as LlhttpExports;
  return wasm;
}

/** One llhttp parser, and the header bookkeeping requests and responses share. */
abstract class Parser {
  protected headers: string[] = [];
  /** Bytes of start line and headers so far (for header size limits). */
  protected headerBytes = 0;
  protected readonly llhttp: LlhttpExports;
  protected readonly pointer: number;
  /** Inside llhttp_execute/finish: a free() then waits until it returns (the parser is still in use). */
  private busy = false;
  private freed = false;

  constructor(type: number) {
    this.llhttp = instance();
    this.pointer = this.llhttp.llhttp_alloc(type);
  }

  /**
   * Parses one chunk from the socket. Returns undefined when all of it was taken, the offset where a
   * callback paused the parser, or an error message when the bytes are not valid HTTP.
   */
  execute(data: Buffer): number | string | undefined {
    if (this.freed) return undefined;
    const llhttp = this.llhttp;
    if (data.length > bufferSize) {
      if (bufferPointer) llhttp.free(bufferPointer);
      bufferSize = Math.ceil(data.length / 4096) * 4096;
      bufferPointer = llhttp.malloc(bufferSize);
    }
    if (memory?.buffer !== llhttp.memory.buffer) memory = new Uint8Array(llhttp.memory.buffer);
    memory.set(data, bufferPointer);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the wasm callbacks find their parser here
    current = this;
    chunk = data;
    this.busy = true;
    let code: number;
    try {
      code = llhttp.llhttp_execute(this.pointer, bufferPointer, data.length);
    } finally {
      this.busy = false;
      current = undefined;
      chunk = undefined;
    }
    if (code === PAUSED && !this.freed) return llhttp.llhttp_get_error_pos(this.pointer) - bufferPointer;
    return this.settle(code);
  }

  /** Lets a parser paused at the end of a message go on to the next one. */
  resume(): void {
    if (!this.freed) this.llhttp.llhttp_resume(this.pointer);
  }

  /** The peer closed the connection: completes a message delimited by the close, or reports one cut short. */
  finish(): string | undefined {
    if (this.freed) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- as in execute()
    current = this;
    this.busy = true;
    let code: number;
    try {
      code = this.llhttp.llhttp_finish(this.pointer);
    } finally {
      this.busy = false;
      current = undefined;
    }
    return this.settle(code);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    if (!this.busy) this.llhttp.llhttp_free(this.pointer);
  }

  /** After a call into llhttp: frees a parser released meanwhile, else reads the error, if any. */
  private settle(code: number): string | undefined {
    if (this.freed) {
      if (!this.busy) this.llhttp.llhttp_free(this.pointer);
      return undefined;
    }
    if (code === OK) return undefined;
    const pointer = this.llhttp.llhttp_get_error_reason(this.pointer);
    if (!pointer) return `parse error ${code}`;
    const bytes = new Uint8Array(this.llhttp.memory.buffer, pointer);
    return Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
  }

  /** @internal The callbacks, called by the wasm instance; 0 goes on, -1 fails, PAUSED stops. */
  onBegin(): number {
    this.headers = [];
    this.headerBytes = 0;
    return 0;
  }
  onUrl(_piece: string): number {
    return 0;
  }
  onStatus(_piece: string): number {
    return 0;
  }
  /** Names sit at even indexes and values at odd ones; a piece continues the last entry. */
  onField(piece: string): number {
    const headers = this.headers;
    if (headers.length % 2 === 0) headers.push(piece);
    else headers[headers.length - 1] += piece;
    this.headerBytes += piece.length;
    return 0;
  }
  onValue(piece: string): number {
    const headers = this.headers;
    if (headers.length % 2 === 1) headers.push(piece);
    else headers[headers.length - 1] += piece;
    this.headerBytes += piece.length;
    return 0;
  }
  /** A header whose value was empty never got a value callback: gives it its empty value. */
  protected completeHeaders(): string[] {
    if (this.headers.length % 2 === 1) this.headers.push('');
    return this.headers;
  }
  abstract onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): number;
  abstract onBody(chunk: Buffer): number;
  abstract onMessageComplete(): number;
}

/** What a response parser reports. */
export interface ResponseEvents {
  /**
   * Status line and headers are in. Return true to skip the body (a response to HEAD): llhttp cannot
   * tell from the response alone. `keepAlive`: the connection may carry another exchange.
   */
  headersComplete(status: number, statusText: string, headers: string[], upgrade: boolean, keepAlive: boolean): boolean;
  body(chunk: Buffer): void;
  messageComplete(): void;
}

export class ResponseParser extends Parser {
  private statusText = '';
  private expecting = true;
  /** The parse failed because the head grew past maxHeadBytes. */
  headTooLarge = false;

  constructor(
    private readonly events: ResponseEvents,
    /** Bytes of status text, header names and values at most: the heap a member's head may take. */
    private readonly maxHeadBytes: number,
  ) {
    super(constants.TYPE.RESPONSE!);
  }

  /** The next response is expected (a request was sent). */
  expect(): void {
    this.expecting = true;
  }

  override onBegin(): number {
    // A message while nobody expects one (bytes after a complete response) is a protocol error.
    if (!this.expecting) return -1;
    this.statusText = '';
    return super.onBegin();
  }

  override onStatus(piece: string): number {
    this.statusText += piece;
    this.headerBytes += piece.length;
    return this.headerBytes > this.maxHeadBytes ? this.tooLarge() : 0;
  }

  override onField(piece: string): number {
    super.onField(piece);
    return this.headerBytes > this.maxHeadBytes ? this.tooLarge() : 0;
  }

  override onValue(piece: string): number {
    super.onValue(piece);
    return this.headerBytes > this.maxHeadBytes ? this.tooLarge() : 0;
  }

  private tooLarge(): number {
    this.headTooLarge = true;
    return -1;
  }

  onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): number {
    // 1xx interim responses (100 Continue, 103 Early Hints) are parsed and dropped: the final one follows.
    if (status < 200) return 1;
    this.expecting = false;
    return this.events.headersComplete(status, this.statusText, this.completeHeaders(), upgrade, keepAlive) ? 1 : 0;
  }

  onBody(data: Buffer): number {
    this.events.body(data);
    return 0;
  }

  onMessageComplete(): number {
    if (!this.expecting) this.events.messageComplete();
    return 0;
  }
}

/** A request's start line and headers, as the request parser hands them over. */
export interface RequestHead {
  method: string;
  url: string;
  httpMajor: number;
  httpMinor: number;
  /** Raw names and values, alternating, as the client wrote them. */
  headers: string[];
  /** Bytes of request target and headers. */
  headerBytes: number;
  upgrade: boolean;
  keepAlive: boolean;
}

/**
 * What a request parser reports: each request's head. The parser stops after each message, until
 * resume(). Bodies are not reported: the one user, the fast lane, takes only requests without one.
 */
export interface RequestEvents {
  /** Return false to stop parsing here (the request is not one to take). */
  head(head: RequestHead): boolean;
}

const methodNames: string[] = [];

function methodName(llhttp: LlhttpExports, method: number): string {
  let name = methodNames[method];
  if (name === undefined) {
    const bytes = new Uint8Array(llhttp.memory.buffer, llhttp.llhttp_method_name(method));
    name = methodNames[method] = Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
  }
  return name;
}

export class RequestParser extends Parser {
  private url = '';

  constructor(private readonly events: RequestEvents) {
    super(constants.TYPE.REQUEST!);
  }

  override onBegin(): number {
    this.url = '';
    return super.onBegin();
  }

  override onUrl(piece: string): number {
    this.url += piece;
    this.headerBytes += piece.length;
    return 0;
  }

  onHeadersComplete(_status: number, upgrade: boolean, keepAlive: boolean): number {
    const llhttp = this.llhttp;
    const head: RequestHead = {
      method: methodName(llhttp, llhttp.llhttp_get_method(this.pointer)),
      url: this.url,
      httpMajor: llhttp.llhttp_get_http_major(this.pointer),
      httpMinor: llhttp.llhttp_get_http_minor(this.pointer),
      headers: this.completeHeaders(),
      headerBytes: this.headerBytes,
      upgrade,
      keepAlive,
    };
    return this.events.head(head) ? 0 : PAUSED;
  }

  onBody(): number {
    return 0;
  }

  onMessageComplete(): number {
    return PAUSED;
  }
}
