// Checks docs/configuration.md against the zod schema: every key the schema accepts must be documented,
// and every key the reference documents must exist. The conventions it reads are stated at the top of
// docs/configuration.md: a key is documented where it is written as a dotted path in backticks in a
// heading, in the first cell of a table row, or at the start of a list item; `[]` stands for a list
// element and `<name>` for a key the user chooses (a record); a row that names `Q.*` in another cell says
// that its key takes the keys of Q, documented once under Q; a table's Default column gives, in
// backticks, each default the schema has for the key.
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import type { z } from 'zod';

/** What the schema accepts, as normalised paths (`clusters.<>.members[].url`). */
export interface SchemaKeys {
  /** Every named key at any depth: these must be documented. */
  required: Set<string>;
  /** Every path a document may name: the required ones, their list elements and user-chosen keys. */
  known: Set<string>;
  /** `.default()` values by path (several when union options differ), with the schema they default. */
  defaults: Map<string, { schema: z.ZodType; value: unknown }[]>;
}

interface Def {
  type: string;
  [field: string]: unknown;
}

const defOf = (schema: unknown): Def | undefined => (schema as { _zod?: { def?: Def } })._zod?.def;

const join = (path: string, key: string) => (key === '[]' ? `${path}[]` : path === '' ? key : `${path}.${key}`);

/**
 * The keys of a zod (v4) schema: object shapes are walked through optional, nullable, default,
 * prefault, pipe (transforms), union (options merged), intersection, lazy, array (`[]`) and record
 * (`<>`). A record key is required only when its value has keys of its own.
 */
export function schemaKeys(root: z.ZodType): SchemaKeys {
  const keys: SchemaKeys = { required: new Set(), known: new Set(), defaults: new Map() };
  const walking = new Set<unknown>();
  const walk = (schema: unknown, path: string): boolean => {
    const def = defOf(schema);
    if (!def || walking.has(schema)) return false;
    walking.add(schema);
    try {
      return walkDef(def, path);
    } finally {
      walking.delete(schema);
    }
  };
  // Returns whether the schema has keys of its own (an object somewhere inside).
  const walkDef = (def: Def, path: string): boolean => {
    switch (def.type) {
      case 'object': {
        for (const [key, value] of Object.entries(def.shape as Record<string, unknown>)) {
          const child = join(path, key);
          keys.required.add(child);
          keys.known.add(child);
          walk(value, child);
        }
        return true;
      }
      case 'array': {
        const child = join(path, '[]');
        keys.known.add(child);
        return walk(def.element, child);
      }
      case 'record': {
        const child = join(path, '<>');
        keys.known.add(child);
        keys.required.add(child);
        const nested = walk(def.valueType, child);
        if (!nested) keys.required.delete(child);
        return nested;
      }
      case 'union':
        return (def.options as unknown[]).map((option) => walk(option, path)).some(Boolean);
      case 'intersection':
        return [walk(def.left, path), walk(def.right, path)].some(Boolean);
      case 'pipe':
        return [walk(def.in, path), walk(def.out, path)].some(Boolean);
      case 'lazy':
        return walk((def.getter as () => unknown)(), path);
      default:
        // optional, nullable, default, prefault, nonoptional, readonly, catch: one wrapped schema.
        if (def.type === 'default') {
          const found = keys.defaults.get(path) ?? [];
          keys.defaults.set(path, [...found, { schema: def.innerType as z.ZodType, value: def.defaultValue }]);
        }
        return def.innerType !== undefined && walk(def.innerType, path);
    }
  };
  walk(root, '');
  return keys;
}

/** A key path as written in the document, normalised: `<name>` → `<>`, `[0]` → `[]`. */
export function normalisePath(text: string): string {
  return text.replace(/<[^<>]*>/g, '<>').replace(/\[\d*\]/g, '[]');
}

const KEY_PATH = /^[A-Za-z_][\w-]*(?:\.(?:[\w-]+|<[^<>]*>)|\[\d*\])*$/;
const ALIAS = /^([A-Za-z_][\w-]*(?:\.(?:[\w-]+|<[^<>]*>)|\[\d*\])*)\.\*$/;

/** Where the reference documents keys. */
export interface DocumentedKeys {
  /** Normalised key paths, with the line each was first documented on. */
  keys: Map<string, number>;
  /** `P` takes the keys of `Q` (a row for P that names `Q.*`). */
  aliases: Map<string, string>;
  /** The Default cell of each key documented in a table that has a Default column. */
  defaults: Map<string, string>;
}

const codeSpans = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.trim());

/** Splits a Markdown table row into cells (`\|` is a pipe inside a cell). */
const cells = (line: string) =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/);

export function documentedKeys(markdown: string): DocumentedKeys {
  const found: DocumentedKeys = { keys: new Map(), aliases: new Map(), defaults: new Map() };
  let fenced = false;
  // The Default column of the table being read (-1: none), known from its header row.
  let defaultColumn: number | undefined;
  markdown.split('\n').forEach((line, index) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) return;
    let defining: string[] = [];
    let rest: string[] = [];
    let defaultCell: string | undefined;
    if (!/^\s*\|/.test(line)) defaultColumn = undefined;
    if (/^#{1,6}\s/.test(line)) defining = codeSpans(line);
    else if (/^\s*\|/.test(line)) {
      const row = cells(line);
      if (defaultColumn === undefined) {
        defaultColumn = row.findIndex((cell) => cell.trim().toLowerCase() === 'default');
        return;
      }
      const [first = '', ...others] = row;
      defining = codeSpans(first);
      rest = others.flatMap(codeSpans);
      if (defaultColumn > 0) defaultCell = row[defaultColumn]?.trim() ?? '';
    } else {
      // A list item that starts with its key(s): "- `a.b` / `a.c`: ...".
      const item = /^\s*[-*+]\s+((?:`[^`]+`[\s,/]*)+)/.exec(line);
      if (item) defining = codeSpans(item[1]!);
    }
    const paths = defining.filter((span) => KEY_PATH.test(span)).map(normalisePath);
    for (const path of paths) {
      if (!found.keys.has(path)) found.keys.set(path, index + 1);
      // A heading may name the key before its table row does: the first Default cell counts.
      if (defaultCell !== undefined && !found.defaults.has(path)) found.defaults.set(path, defaultCell);
    }
    const target = rest.map((span) => ALIAS.exec(span)?.[1]).find((t) => t !== undefined);
    if (target !== undefined) for (const path of paths) found.aliases.set(path, normalisePath(target));
  });
  return found;
}

/** Paths that extend `path`: `path` itself ('' rest), `path.x`, `path[]`. */
function restAfter(path: string, prefix: string): string | undefined {
  if (path === prefix) return '';
  return path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[]`) ? path.slice(prefix.length) : undefined;
}

/** The documented key that covers a schema key: itself, or its counterpart under an alias's target. */
function rowOf(path: string, doc: DocumentedKeys, depth = 0): string | undefined {
  if (doc.keys.has(path)) return path;
  if (depth > 8) return undefined;
  for (const [alias, target] of doc.aliases) {
    const rest = restAfter(path, alias);
    const row = rest ? rowOf(target + rest, doc, depth + 1) : undefined;
    if (row !== undefined) return row;
  }
  return undefined;
}

const covered = (path: string, doc: DocumentedKeys) => rowOf(path, doc) !== undefined;

/**
 * Schema keys the document does not cover, in schema order. A key under an alias whose counterpart under
 * the alias's target is a schema key too is left to that counterpart: one row fixes both.
 */
export function undocumentedKeys(schema: SchemaKeys, doc: DocumentedKeys): string[] {
  const counterpart = (path: string) =>
    [...doc.aliases].some(([alias, target]) => {
      const rest = restAfter(path, alias);
      return rest !== undefined && rest !== '' && schema.required.has(target + rest);
    });
  return [...schema.required].filter((path) => !covered(path, doc) && !counterpart(path));
}

/** Whether a documented path names something the schema has, directly or as the shape of an alias. */
function exists(path: string, schema: SchemaKeys, doc: DocumentedKeys, depth = 0): boolean {
  if (schema.known.has(path)) return true;
  if (depth > 8) return false;
  for (const [alias, target] of doc.aliases) {
    const rest = restAfter(path, target);
    if (rest !== undefined && exists(alias + rest, schema, doc, depth + 1)) return true;
  }
  return false;
}

/**
 * Keys the document names (headings, first cells, list items) that the schema does not have: renamed or
 * removed keys left behind. Only paths under a top-level key of the schema are judged, so other code
 * spans (`X-Request-Id`, file names) are left alone.
 */
export function unknownDocumentedKeys(schema: SchemaKeys, doc: DocumentedKeys): { path: string; line: number }[] {
  const topLevel = new Set([...schema.required].filter((p) => !/[.[]/.test(p)));
  return [...doc.keys]
    .filter(([path]) => topLevel.has(path.split(/[.[]/)[0]!) && !exists(path, schema, doc))
    .map(([path, line]) => ({ path, line }));
}

/** A Default cell's code span read as the YAML it stands for (or as plain text), through the key's schema. */
function readsAs(schema: z.ZodType, span: string, value: unknown): boolean {
  const candidates: unknown[] = [span];
  try {
    candidates.unshift(parse(span));
  } catch {
    // not YAML: plain text only
  }
  return candidates.some((candidate) => {
    const result = schema.safeParse(candidate);
    return result.success && isDeepStrictEqual(result.data, value);
  });
}

/**
 * Rows whose Default cell does not give a default the schema has: each default must be written as a code
 * span (`5s`, `[2xx, 3xx]`, `manual`) that the key's own schema reads as that value.
 */
export function wrongDefaults(schema: SchemaKeys, doc: DocumentedKeys): string[] {
  const problems = new Set<string>();
  for (const [path, defaults] of schema.defaults) {
    const row = rowOf(path, doc);
    if (row === undefined) continue;
    const cell = doc.defaults.get(row);
    for (const { schema: field, value } of defaults) {
      if (cell !== undefined && codeSpans(cell).some((span) => readsAs(field, span, value))) continue;
      const said = cell === undefined ? 'no Default cell' : `Default cell ${JSON.stringify(cell)}`;
      problems.add(
        `line ${doc.keys.get(row)}: ${displayPath(row)}: the schema's default is ${JSON.stringify(value)}, the reference has ${said}`,
      );
    }
  }
  return [...problems];
}

/** Renders a normalised path back in the document's convention: `<>` as `<name>`. */
export function displayPath(path: string): string {
  return path.replace(/<>/g, '<name>');
}
