// Every `docs/...` path the code, tests, benchmarks, examples and docs name must exist, and so must every
// relative link in the Markdown files (README.md, docs/, examples/) and the heading its #anchor names.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SCANNED = ['README.md', 'src', 'test', 'bench', 'scripts', 'ui', 'examples', 'docs'];
const SKIPPED = new Set(['node_modules', 'dist', 'vendor']);
const TEXT = /\.(ts|js|mjs|md|yaml|yml|conf|html|css|json)$/;
/** This file names missing paths on purpose, to test the checks. */
const SELF = 'test/docs-links.test.ts';

function files(path: string): string[] {
  const full = join(root, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return TEXT.test(path) ? [path] : [];
  return readdirSync(full)
    .sort()
    .filter((name) => !SKIPPED.has(name))
    .flatMap((name) => files(join(path, name)))
    .filter((file) => file !== SELF);
}

/** Lines outside fenced code blocks, with their numbers. */
function proseLines(text: string): { line: string; number: number }[] {
  let fenced = false;
  return text.split('\n').flatMap((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return [];
    }
    return fenced ? [] : [{ line, number: i + 1 }];
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const { line } of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

interface Reference {
  from: string;
  /** Path from the repository root. */
  path: string;
  anchor: string | undefined;
}

/** `docs/x.md` or `docs/x.md#anchor` named anywhere in a file, read from the repository root. */
function docsPaths(file: string, text: string): Reference[] {
  return text.split('\n').flatMap((line, i) =>
    [...line.matchAll(/(?<![\w./-])(docs\/[\w./-]*[\w-])(?:#([\w-]+))?/g)].map((m) => ({
      from: `${file}:${i + 1}`,
      path: m[1]!,
      anchor: m[2],
    })),
  );
}

/** Relative Markdown links and images, read from the file's own directory. */
function markdownLinks(file: string, text: string): Reference[] {
  return proseLines(text).flatMap(({ line, number }) =>
    [...line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
      .map((m) => m[1]!)
      .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
      .map((target) => {
        const [path = '', anchor] = target.split('#');
        return {
          from: `${file}:${number}`,
          path: path === '' ? file : relative(root, join(root, dirname(file), path)),
          anchor,
        };
      }),
  );
}

function broken(references: Reference[]): string[] {
  const headings = new Map<string, Set<string>>();
  return references.flatMap((ref) => {
    const full = join(root, ref.path);
    if (!existsSync(full)) return [`${ref.from}: ${ref.path} does not exist`];
    if (ref.anchor === undefined || !ref.path.endsWith('.md')) return [];
    if (!headings.has(ref.path)) headings.set(ref.path, anchors(readFileSync(full, 'utf8')));
    return headings.get(ref.path)!.has(ref.anchor) ? [] : [`${ref.from}: ${ref.path} has no heading #${ref.anchor}`];
  });
}

test('every docs/ path named in the code, tests, benchmarks, examples and docs exists', () => {
  const references = SCANNED.flatMap(files).flatMap((file) => docsPaths(file, readFileSync(join(root, file), 'utf8')));
  assert.ok(
    references.some((r) => r.path === 'docs/configuration.md'),
    'the scan finds the reference named in src/config/schema.ts',
  );
  const problems = broken(references);
  assert.deepEqual(
    problems,
    [],
    `docs/ paths that lead nowhere (fix the path, or write the doc):\n${problems.join('\n')}`,
  );
});

test('every relative link in README.md, docs/ and examples/ leads to a file and heading that exist', () => {
  const references = SCANNED.flatMap(files)
    .filter((file) => file.endsWith('.md'))
    .flatMap((file) => markdownLinks(file, readFileSync(join(root, file), 'utf8')));
  assert.ok(references.length > 20, `expected the docs' links, found ${references.length}`);
  const problems = broken(references);
  assert.deepEqual(problems, [], `links that lead nowhere:\n${problems.join('\n')}`);
});

test('the checks find a missing file and a missing heading', () => {
  assert.deepEqual(
    anchors('# A `b` (c: d)\n## Same\n## Same\n```\n# not a heading\n```\n'),
    new Set(['a-b-c-d', 'same', 'same-1']),
  );
  const problems = broken([
    ...docsPaths('x.ts', '// see docs/no-such-file.md. And docs/design.md#layout, docs/design.md#no-such-heading'),
    ...markdownLinks(
      'docs/x.md',
      'See [design](design.md#habits), [gone](gone.md) and [web](https://example.com/docs/x).',
    ),
  ]);
  assert.deepEqual(problems, [
    'x.ts:1: docs/no-such-file.md does not exist',
    'x.ts:1: docs/design.md has no heading #no-such-heading',
    'docs/x.md:1: docs/gone.md does not exist',
  ]);
});
