// Reads an Apache httpd configuration into a tree of directives and sections, each with the file and line
// it came from, following Include / IncludeOptional (with wildcards) as httpd does. Only the syntax is
// read here; import.ts decides what the directives mean for Dayshift.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ApacheConfError } from '../errors.js';

export interface Directive {
  /** As written, e.g. "ProxyPass" or "VirtualHost" for a section. */
  name: string;
  args: string[];
  file: string;
  line: number;
  /** Present for sections (<VirtualHost ...> ... </VirtualHost>). */
  children?: Directive[];
}

/** Splits a directive's arguments: whitespace separates, double or single quotes group, \" escapes. */
export function splitArgs(text: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const quote = text[i] === '"' || text[i] === "'" ? text[i] : undefined;
    let arg = '';
    if (quote) {
      i++;
      while (i < text.length && text[i] !== quote) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        arg += text[i++];
      }
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) arg += text[i++];
    }
    args.push(arg);
  }
  return args;
}

interface Line {
  text: string;
  line: number;
}

/** Joins backslash-continued lines and drops comments and blank lines, keeping each directive's first line number. */
function logicalLines(source: string): Line[] {
  const out: Line[] = [];
  const raw = source.split(/\r?\n/);
  for (let i = 0; i < raw.length; i++) {
    const start = i + 1;
    let text = raw[i]!;
    while (/\\$/.test(text) && i + 1 < raw.length) text = text.slice(0, -1) + ' ' + raw[++i]!;
    const trimmed = text.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    out.push({ text: trimmed, line: start });
  }
  return out;
}

export interface ParseOptions {
  /** Where relative Include paths start, overriding ServerRoot. Default: ServerRoot, else the main file's directory. */
  serverRoot?: string;
}

export function parseApacheConf(file: string, options: ParseOptions = {}): Directive[] {
  const state = {
    serverRoot: options.serverRoot ?? dirname(resolve(file)),
    fixedRoot: options.serverRoot !== undefined,
    defines: new Map<string, string>(),
    seen: new Set<string>(),
  };
  return parseFile(resolve(file), state);
}

interface ParseState {
  serverRoot: string;
  /** Define NAME VALUE, substituted as ${NAME} in later directives, as httpd does. */
  defines: Map<string, string>;
  /** Set by the caller (a copy of another machine's config): ServerRoot directives do not move it. */
  fixedRoot: boolean;
  /** Files on the current include chain: an include loop is an error, not a hang. */
  seen: Set<string>;
}

function parseFile(file: string, state: ParseState): Directive[] {
  if (state.seen.has(file)) throw new ApacheConfError('includes itself (include loop)', { file, line: 0 });
  state.seen.add(file);
  const root: Directive[] = [];
  const stack: Directive[] = [];
  for (const { text: raw, line } of logicalLines(readFileSync(file, 'utf8'))) {
    // Only names defined earlier are replaced; others (${APACHE_LOG_DIR} from the environment) stay.
    const text = raw.replace(/\$\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => state.defines.get(name) ?? whole);
    const close = /^<\/([^>\s]+)\s*>$/.exec(text);
    if (close) {
      const open = stack.pop();
      if (!open || open.name.toLowerCase() !== close[1]!.toLowerCase()) {
        throw new ApacheConfError(`</${close[1]}> without a matching <${close[1]}>`, { file, line });
      }
      continue;
    }
    const section = /^<([^>\s/]+)\s*([^>]*)>$/.exec(text);
    const target = stack.at(-1)?.children ?? root;
    if (section) {
      const directive: Directive = { name: section[1]!, args: splitArgs(section[2]!), file, line, children: [] };
      target.push(directive);
      stack.push(directive);
      continue;
    }
    const [name = '', ...args] = splitArgs(text);
    const lower = name.toLowerCase();
    if (lower === 'serverroot' && args[0] && !state.fixedRoot) state.serverRoot = args[0];
    if (lower === 'define' && args[0]) state.defines.set(args[0], args[1] ?? '');
    if (lower === 'undefine' && args[0]) state.defines.delete(args[0]);
    if (lower === 'include' || lower === 'includeoptional') {
      const pattern = args[0];
      if (!pattern) throw new ApacheConfError(`${name} needs a path`, { file, line });
      const files = expand(isAbsolute(pattern) ? pattern : join(state.serverRoot, pattern));
      if (files.length === 0 && lower === 'include' && !/[*?[]/.test(pattern)) {
        throw new ApacheConfError(`Include ${pattern}: no such file (IncludeOptional would skip it)`, { file, line });
      }
      for (const included of files) target.push(...parseFile(included, state));
      continue;
    }
    target.push({ name, args, file, line });
  }
  const open = stack.pop();
  if (open) throw new ApacheConfError(`<${open.name}> is never closed`, { file, line: open.line });
  state.seen.delete(file);
  return root;
}

/** Files a path names: wildcards (* ? [..]) in any component, directories read whole, sorted as httpd does. */
function expand(path: string): string[] {
  const parts = resolve(path).split('/').filter(Boolean);
  let bases = ['/'];
  for (const part of parts) {
    if (/[*?[]/.test(part)) {
      const re = globToRegExp(part);
      bases = bases.flatMap((b) =>
        listDir(b)
          .filter((n) => re.test(n))
          .sort()
          .map((n) => join(b, n)),
      );
    } else {
      bases = bases.map((b) => join(b, part));
    }
  }
  return bases.flatMap((p) => {
    const stat = statOrUndefined(p);
    if (!stat) return [];
    if (stat.isDirectory()) return expand(join(p, '*'));
    return [p];
  });
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, '^')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  // httpd skips dot files when a wildcard is used.
  return new RegExp(`^(?!\\.)${re}$`);
}
