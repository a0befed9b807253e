// Loads and validates a configuration file. Every error names file:line:column, the key path, what was
// found and what was expected, so `dayshift check` output can be acted on without reading the schema.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isNode, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type DayshiftConfig } from './schema.js';
import { messageOf } from '../errors.js';
import { ConfigError, type ConfigProblem } from './errors.js';

export const DEFAULT_CONFIG_FILE = 'dayshift.yaml';

export interface LoadedConfig {
  config: DayshiftConfig;
  /** Absolute path of the file, or "<inline>". */
  file: string;
  /** Directory relative paths in the config are resolved against. */
  baseDir: string;
  /** The raw text, kept so that a reload can tell whether anything changed. */
  source: string;
}

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  const { absolute, source } = await readConfigSource(file);
  return { ...parseConfig(source, absolute), baseDir: dirname(absolute) };
}

/** Parses YAML text; `file` is used in messages only. */
export function parseConfig(source: string, file = '<inline>'): LoadedConfig {
  const config = parseYamlWith(source, file, configSchema);
  return { config, file, baseDir: file === '<inline>' ? process.cwd() : dirname(file), source };
}

/**
 * Parses YAML text and validates it with any schema, reporting problems as parseConfig does. Commands
 * that need only one section of the file (e.g. `dayshift db`) pass a schema that ignores the rest.
 */
export function parseYamlWith<S extends z.ZodType>(source: string, file: string, schema: S): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, path: '', message: e.message.split('\n')[0] ?? e.message };
      }),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => toProblem(schema, issue, doc, lineCounter, file, raw)));
  }
  return result.data;
}

/** Reads a file for parsing, turning a missing or unreadable file into a ConfigError. */
export async function readConfigSource(file: string): Promise<{ absolute: string; source: string }> {
  const absolute = resolve(file);
  try {
    return { absolute, source: await readFile(absolute, 'utf8') };
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : messageOf(err);
    throw new ConfigError([{ file: absolute, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` }]);
  }
}

function toProblem(
  root: z.ZodType,
  issue: z.core.$ZodIssue,
  doc: Document,
  lines: LineCounter,
  file: string,
  raw: unknown,
): ConfigProblem {
  let path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    path = [...path, key];
    message = `unknown key "${key}"${issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).join(', ')})` : ''}; expected one of: ${knownKeys(root, issue, raw)}`;
  } else if (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union') {
    const found = valueAt(raw, path);
    message = `${message}, found ${describe(found)}`;
  }
  const { line, column } = locate(doc, lines, path, issue.code === 'unrecognized_keys');
  return { file, line, column, path: formatPath(path), message };
}

/** Keys the schema accepts where an unknown key was found (read back from the schema by path). */
function knownKeys(root: z.ZodType, issue: z.core.$ZodIssue, raw: unknown): string {
  const found = valueAt(raw, issue.path as (string | number)[]);
  const given = found && typeof found === 'object' ? Object.keys(found) : [];
  const unknown = new Set((issue as { keys: string[] }).keys);
  const shape = shapeAt(root, issue.path as (string | number)[]);
  const known = shape ?? given.filter((k) => !unknown.has(k));
  return known.join(', ') || '(none)';
}

function shapeAt(root: z.ZodType, path: (string | number)[]): string[] | undefined {
  let schema: unknown = root;
  for (const key of [...path, null]) {
    // Unwrap pipes, defaults, optionals and unions until an object, array or record is reached.
    for (let guard = 0; guard < 10; guard++) {
      const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return undefined;
      if (def.type === 'object' || def.type === 'array' || def.type === 'record') break;
      schema =
        def.innerType ??
        def.in ??
        (def.options as unknown[] | undefined)?.find(
          (o) => (o as { _zod: { def: { type: string } } })._zod.def.type === 'object',
        ) ??
        def.schema;
      if (schema === undefined) return undefined;
    }
    const def = (schema as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (key === null) return def.type === 'object' ? Object.keys(def.shape as object) : undefined;
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[key];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    if (schema === undefined) return undefined;
  }
  return undefined;
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Position of the deepest YAML node on the path that exists (a key node for a missing or unknown key). */
function locate(
  doc: Document,
  lines: LineCounter,
  path: (string | number)[],
  atKey: boolean,
): { line: number; column: number } {
  let node: unknown = doc.contents;
  let best: Node | undefined = isNode(node) ? node : undefined;
  for (const [depth, key] of path.entries()) {
    if (!isNode(node)) break;
    const mapNode = node;
    if (isMap(mapNode)) {
      const pair = mapNode.items.find(
        (p) => (isNode(p.key) ? String((p.key as { value?: unknown }).value) : String(p.key)) === String(key),
      );
      if (!pair) break;
      if (isNode(pair.key)) best = pair.key;
      if (atKey && depth === path.length - 1) break;
      node = pair.value;
      if (isNode(node)) best = node;
    } else {
      const next = (mapNode as { get?: (k: unknown, keepScalar: boolean) => unknown }).get?.(key, true);
      if (!isNode(next)) break;
      node = next;
      best = next;
    }
  }
  const offset = best?.range?.[0];
  if (offset === undefined) return { line: 0, column: 0 };
  const pos = lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function formatPath(path: (string | number)[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}
