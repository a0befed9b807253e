// docs/configuration.md is the configuration reference: these tests keep it in step with the schema, so
// that a key added to src/config/*schema.ts without a row in the reference fails the suite, and so do a
// row left behind by a renamed key, a default that is not the schema's and an example it refuses.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';
import { duration, size } from '../../src/config/units.js';
import {
  displayPath,
  documentedKeys,
  schemaKeys,
  undocumentedKeys,
  unknownDocumentedKeys,
  wrongDefaults,
} from '../support/config-reference.js';

const REFERENCE = 'docs/configuration.md';
const reference = readFileSync(new URL(`../../../${REFERENCE}`, import.meta.url), 'utf8');

test('every key of the config schema has a row in docs/configuration.md', () => {
  const missing = undocumentedKeys(schemaKeys(configSchema), documentedKeys(reference));
  assert.deepEqual(
    missing.map(displayPath),
    [],
    `${missing.length} config key(s) have no entry in ${REFERENCE}:\n${missing.map((p) => `  ${displayPath(p)}`).join('\n')}\n` +
      `Add a row to the table of each key's section in ${REFERENCE}: | \`${displayPath(missing[0] ?? 'section.key')}\` | type | \`default\` | meaning | ` +
      '(the conventions are at the top of that file).',
  );
});

test('every key docs/configuration.md documents exists in the schema', () => {
  const stale = unknownDocumentedKeys(schemaKeys(configSchema), documentedKeys(reference));
  assert.deepEqual(
    stale,
    [],
    `${REFERENCE} documents keys the schema does not have (renamed or removed?):\n${stale.map((s) => `  ${REFERENCE}:${s.line}: ${displayPath(s.path)}`).join('\n')}`,
  );
});

test("every default in docs/configuration.md is the schema's", () => {
  const wrong = wrongDefaults(schemaKeys(configSchema), documentedKeys(reference));
  assert.deepEqual(
    wrong,
    [],
    `defaults in ${REFERENCE} that differ from the schema's:\n${wrong.map((w) => `  ${REFERENCE} ${w}`).join('\n')}`,
  );
});

test('the examples in docs/configuration.md pass the schema, each as part of the minimal file', () => {
  const blocks = [...reference.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => ({
    line: reference.slice(0, m.index).split('\n').length,
    value: parse(m[1]!) as Record<string, unknown>,
  }));
  assert.ok(blocks.length >= 10, `expected the reference's YAML examples, found ${blocks.length}`);
  // The first example is the minimal file; release steps need the database example beside them.
  const database = blocks.find((b) => 'database' in b.value && !('release' in b.value));
  assert.ok(database, 'the reference has an example of the database section');
  const base = merge(blocks[0]!.value, database.value);
  const refused = blocks.flatMap((block) => {
    const result = configSchema.safeParse(merge(base, block.value));
    return result.success
      ? []
      : result.error.issues.map((i) => `${REFERENCE}:${block.line}: ${i.path.join('.')}: ${i.message}`);
  });
  assert.deepEqual(refused, [], `examples the schema refuses:\n${refused.join('\n')}`);
});

/** Mappings merged key by key (the second wins); anything else is replaced. */
function merge(a: unknown, b: unknown): Record<string, unknown> {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const out: Record<string, unknown> = { ...(isMap(a) ? a : {}) };
  for (const [key, value] of Object.entries(isMap(b) ? b : {}))
    out[key] = isMap(value) && isMap(out[key]) ? merge(out[key], value) : value;
  return out;
}

// The checker itself, on a small schema and document, so that the tests above cannot pass by finding
// nothing.

const sample = z.strictObject({
  listen: z.strictObject({ http: z.union([z.string(), z.array(z.string())]).optional() }).prefault({}),
  timeouts: z.strictObject({ connect: z.number().default(5), tunnel: z.number().nullable().optional() }).prefault({}),
  driver: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('a'), url: z.string() }),
      z.strictObject({ type: z.literal('b'), socket: z.string() }),
    ])
    .optional(),
  hook: z
    .union([
      z.string().transform((run) => ({ run })),
      z.strictObject({ run: z.string(), per: z.enum(['x', 'y']).default('x') }),
    ])
    .optional(),
  clusters: z.record(
    z.string(),
    z.strictObject({
      members: z.array(z.strictObject({ url: z.string() })),
      health: z.strictObject({ path: z.string(), rise: z.number() }).partial().optional(),
    }),
  ),
  health: z.strictObject({ path: z.string().default('/'), rise: z.number().default(2) }).prefault({}),
  tags: z.record(z.string(), z.string()).optional(),
  nested: z.lazy(() => z.strictObject({ deep: z.boolean() })).optional(),
});

test('schemaKeys walks objects through optional, default, prefault, nullable, unions, pipes, lists, records and lazy', () => {
  const keys = schemaKeys(sample);
  assert.deepEqual(
    [...keys.required],
    [
      'listen',
      'listen.http',
      'timeouts',
      'timeouts.connect',
      'timeouts.tunnel',
      'driver',
      'driver.type',
      'driver.url',
      'driver.socket',
      'hook',
      'hook.run',
      'hook.per',
      'clusters',
      'clusters.<>',
      'clusters.<>.members',
      'clusters.<>.members[].url',
      'clusters.<>.health',
      'clusters.<>.health.path',
      'clusters.<>.health.rise',
      'health',
      'health.path',
      'health.rise',
      'tags',
      'nested',
      'nested.deep',
    ],
  );
  assert.ok(keys.known.has('clusters.<>.members[]') && keys.known.has('tags.<>') && keys.known.has('listen.http[]'));
});

test('schemaKeys finds the nested keys of the real schema, release plan and drivers included', () => {
  const { required } = schemaKeys(configSchema);
  for (const path of [
    'driver.socket',
    'driver.disabled_flag',
    'store.tls.ca',
    'database.writer.verify',
    'release.database[].migrate.on',
    'release.clusters.<>.shift.analysis.window',
    'release.hooks.rollback.per',
    'sites.<>.routes[].sticky.max_age',
  ]) {
    assert.ok(required.has(path), `${path} is found`);
  }
});

const sampleDoc = `# Sample

Prose that mentions \`timeouts.tunnel\` does not document it, nor does code:

\`\`\`yaml
| \`nested.deep\` | in a code block |
\`\`\`

## \`listen\`

| Key | Default | Meaning |
| --- | --- | --- |
| \`listen.http\` | — | one \\| many |
| \`timeouts\` / \`timeouts.connect\` | \`5\` | both documented |
| \`driver.type\` | | a \\| b |

- \`driver\`, \`driver.url\`: the driver
- \`driver.socket\` — socket
* \`hook\`: a command or \`hook.*\` keys? no: a list item alias is not one

### \`clusters.<cluster>.members[0].url\`

| Key | Meaning |
| --- | --- |
| \`clusters\` | | |
| \`clusters.<name>\` | | |
| \`clusters.<name>.members\` | | |
| \`clusters.<name>.health\` | | the keys of \`health.*\` |
| \`health\` | | |
| \`health.path\` | | |
| \`hook.run\` | | |
| \`health.interval\` | | left behind |
`;

test('documentedKeys reads headings, first cells and list items, with <name> and [] normalised, and aliases', () => {
  const doc = documentedKeys(sampleDoc);
  assert.deepEqual(
    [...doc.keys.keys()],
    [
      'listen',
      'listen.http',
      'timeouts',
      'timeouts.connect',
      'driver.type',
      'driver',
      'driver.url',
      'driver.socket',
      'hook',
      'clusters.<>.members[].url',
      'clusters',
      'clusters.<>',
      'clusters.<>.members',
      'clusters.<>.health',
      'health',
      'health.path',
      'hook.run',
      'health.interval',
    ],
  );
  assert.deepEqual([...doc.aliases], [['clusters.<>.health', 'health']]);
  assert.equal(doc.keys.get('listen'), 9);
});

test('a key without a row is reported, an alias covers the keys of its target, and a stale row is reported with its line', () => {
  const keys = schemaKeys(sample);
  const doc = documentedKeys(sampleDoc);
  // clusters.<>.health.path is covered through health.path; clusters.<>.health.rise is left to health.rise,
  // whose row would cover both; hook.per, tags and nested have no row.
  assert.deepEqual(undocumentedKeys(keys, doc), [
    'timeouts.tunnel',
    'hook.per',
    'health.rise',
    'tags',
    'nested',
    'nested.deep',
  ]);
  assert.deepEqual(unknownDocumentedKeys(keys, doc), [{ path: 'health.interval', line: 32 }]);
  assert.equal(displayPath('clusters.<>.members[].url'), 'clusters.<name>.members[].url');
});

test('a default is read through its key’s schema, units included, and a wrong or unquoted one is reported', () => {
  const schema = z.strictObject({
    connect: duration.default(5000),
    size: size.default(16 * 1024),
    path: z.string().default('/'),
    rise: z.number().default(2),
    expect: z.array(z.string()).default(['2xx', '3xx']),
    kind: z
      .union([
        z.strictObject({ match: z.enum(['url', 'route']).default('url') }),
        z.strictObject({ match: z.enum(['name']).default('name') }),
      ])
      .optional(),
  });
  const doc = documentedKeys(`| Key | Type | Default |
| --- | --- | --- |
| \`connect\` | duration | \`5s\` |
| \`size\` | size | \`16k\` |
| \`path\` | string | \`/health\` |
| \`rise\` | integer | two |
| \`expect\` | list | \`[2xx, 3xx]\` |
| \`kind.match\` | | \`url\` (a); \`name\` (b) |
`);
  assert.deepEqual(wrongDefaults(schemaKeys(schema), doc), [
    'line 5: path: the schema\'s default is "/", the reference has Default cell "`/health`"',
    'line 6: rise: the schema\'s default is 2, the reference has Default cell "two"',
  ]);
});
