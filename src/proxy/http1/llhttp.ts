// HTTP/1.1 response parsing with llhttp, the parser inside Node's own http module, in the WebAssembly
// build that undici ships (undici is a dependency already; the build and its constants are loaded from
// its package, pinned by package-lock.json). One wasm instance serves every parser in the process: a
// parser is a pointer into its memory, and the callbacks find their parser through `current`.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const constants = require('undici/lib/llhttp/constants.js') as { ERROR: Record<string, number>; TYPE: Record<string, number> };

/** What a response parser reports. Header names and values arrive whole (pieces are joined here). */
export interface ResponseEvents {
  /**
   * Status line and headers are in. Return true to skip the body (a response to HEAD): llhttp cannot
   * tell from the response alone. `keepAlive`: the connection may carry another exchange.
   */
  headersComplete(status: number, statusText: string, headers: string[], upgrade: boolean, keepAlive: boolean): boolean;
  body(chunk: Buffer): void;
  messageComplete(): void;
  /** A message starts while nobody expects one (bytes after a complete response): a protocol error. */
  unexpected(): boolean;
}

// The few WebAssembly globals used here (the project's TypeScript libs leave out the DOM ones).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, (...args: number[]) => number>>) => { exports: object };
};

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  malloc(size: number): number;
  free(pointer: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(parser: number): void;
  llhttp_execute(parser: number, data: number, length: number): number;
  llhttp_finish(parser: number): number;
  llhttp_get_error_reason(parser: number): number;
}

let current: ResponseParser | undefined;
/** The chunk being parsed, and where its copy sits in wasm memory. */
let chunk: Buffer | undefined;
let chunkPointer = 0;
let bufferPointer = 0;
let bufferSize = 0;

function text(at: number, length: number): string {
  const start = at - chunkPointer;
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
    wasm_on_url: () => 0,
    wasm_on_status: (_p: number, at: number, length: number) => {
      current!.statusText += text(at, length);
      return 0;
    },
    wasm_on_message_begin: () => (current!.begin() ? 0 : -1),
    wasm_on_header_field: (_p: number, at: number, length: number) => {
      current!.field(text(at, length));
      return 0;
    },
    wasm_on_header_value: (_p: number, at: number, length: number) => {
      current!.value(text(at, length));
      return 0;
    },
    wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) => current!.headersComplete(status, upgrade === 1, keepAlive === 1),
    wasm_on_body: (_p: number, at: number, length: number) => {
      const start = at - chunkPointer;
      current!.events.body(chunk!.subarray(start, start + length));
      return 0;
    },
    wasm_on_message_complete: () => {
      current!.messageComplete();
      return 0;
    },
  };
  wasm = new WebAssembly.Instance(module, { env }).exports as unknown as LlhttpExports;
  return wasm;
}

export class ResponseParser {
  statusText = '';
  private headers: string[] = [];
  private readonly pointer: number;
  private readonly llhttp: LlhttpExports;
  private expecting = true;
  /** Inside llhttp_execute/finish: a free() then waits until it returns (the parser is still in use). */
  private busy = false;
  private freed = false;

  constructor(readonly events: ResponseEvents) {
    this.llhttp = instance();
    this.pointer = this.llhttp.llhttp_alloc(constants.TYPE.RESPONSE!);
  }

  /** The next response is expected (a request was sent). */
  expect(): void {
    this.expecting = true;
  }

  /** Parses one chunk from the socket; returns an error message when the bytes are not valid HTTP. */
  execute(data: Buffer): string | undefined {
    if (this.freed) return undefined;
    const llhttp = this.llhttp;
    if (data.length > bufferSize) {
      if (bufferPointer) llhttp.free(bufferPointer);
      bufferSize = Math.ceil(data.length / 4096) * 4096;
      bufferPointer = llhttp.malloc(bufferSize);
    }
    new Uint8Array(llhttp.memory.buffer, bufferPointer, data.length).set(data);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the wasm callbacks find their parser here
    current = this;
    chunk = data;
    chunkPointer = bufferPointer;
    this.busy = true;
    let code: number;
    try {
      code = llhttp.llhttp_execute(this.pointer, bufferPointer, data.length);
    } finally {
      this.busy = false;
      current = undefined;
      chunk = undefined;
    }
    return this.settle(code);
  }

  /** The member closed the connection: completes a response delimited by the close, or reports one cut short. */
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
      this.llhttp.llhttp_free(this.pointer);
      return undefined;
    }
    return code === constants.ERROR.OK ? undefined : this.reason(code);
  }

  /** @internal callbacks from the wasm instance */
  begin(): boolean {
    if (!this.expecting) return this.events.unexpected();
    this.statusText = '';
    this.headers = [];
    return true;
  }

  /** @internal Names sit at even indexes and values at odd ones; a piece continues the last entry. */
  field(piece: string): void {
    const headers = this.headers;
    if (headers.length % 2 === 0) headers.push(piece);
    else headers[headers.length - 1] += piece;
  }

  /** @internal */
  value(piece: string): void {
    const headers = this.headers;
    if (headers.length % 2 === 1) headers.push(piece);
    else headers[headers.length - 1] += piece;
  }

  /** @internal */
  headersComplete(status: number, upgrade: boolean, keepAlive: boolean): number {
    // 1xx interim responses (100 Continue, 103 Early Hints) are parsed and dropped: the final one follows.
    if (status < 200) return 1;
    this.expecting = false;
    // A header whose value was empty never got a value callback: give it its empty value.
    if (this.headers.length % 2 === 1) this.headers.push('');
    return this.events.headersComplete(status, this.statusText, this.headers, upgrade, keepAlive) ? 1 : 0;
  }

  /** @internal */
  messageComplete(): void {
    if (this.expecting) return;
    this.events.messageComplete();
  }

  private reason(code: number): string {
    const pointer = this.llhttp.llhttp_get_error_reason(this.pointer);
    if (!pointer) return `parse error ${code}`;
    const bytes = new Uint8Array(this.llhttp.memory.buffer, pointer);
    return Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
  }
}
