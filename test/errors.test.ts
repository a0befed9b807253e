// The errors' contract: stable, distinct codes; messageOf for any thrown value; one table each for the
// admin API's statuses and the CLI's exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusOf, HttpError } from '../src/admin/router.js';
import { exitCodeOf, CliError, EXIT } from '../src/cli/output.js';
import { ConfigError } from '../src/config/errors.js';
import { RefusedError, TargetError } from '../src/control/errors.js';
import { DbConnectError, LateWritesError, SwitchoverStepError } from '../src/db/errors.js';
import { ApacheConfError, BalancerApiError, DriverUnsupportedError } from '../src/drivers/errors.js';
import { DayshiftError, messageOf } from '../src/errors.js';
import { AjpEncodeError, AjpProtocolError, UpstreamError } from '../src/proxy/errors.js';
import { ReleaseRefusedError, ReleaseStepError } from '../src/release/errors.js';
import { SocketActivationError } from '../src/socket-activation.js';
import {
  LockHeldError,
  MigrationConflictError,
  StoreConflictError,
  StoreUnavailableError,
} from '../src/store/errors.js';

const server = { name: 'db-a', host: '127.0.0.1', port: 3306, user: 'dayshift' } as ConstructorParameters<
  typeof DbConnectError
>[0]['server'];
const every: DayshiftError[] = [
  new ConfigError([{ file: 'dayshift.yaml', line: 1, column: 1, path: 'sites', message: 'required' }]),
  new RefusedError('no live cluster left'),
  new TargetError('unknown cluster "x"'),
  new DbConnectError({
    server,
    reason: 'ECONNREFUSED',
    cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
  }),
  new SwitchoverStepError('freeze: timeout'),
  new LateWritesError({ server: 'db-a', now: '0-1-9', frozen: '0-1-8', to: 'db-b' }),
  new DriverUnsupportedError({ driver: 'haproxy', what: 'set weight 300' }),
  new BalancerApiError('HAProxy refused "set server"'),
  new ApacheConfError('never closed', { file: 'httpd.conf', line: 3 }),
  new UpstreamError('connect timeout', { phase: 'connect', kind: 'timeout' }),
  new UpstreamError('reset', { phase: 'before-response' }),
  new AjpEncodeError('too large'),
  new AjpProtocolError('bad prefix'),
  new ReleaseRefusedError('a release is running'),
  new ReleaseStepError('hook failed', { output: ['exit 1'] }),
  new SocketActivationError('fd 3 is not a socket'),
  new StoreConflictError({ key: 'state', expected: 1, actual: 2 }),
  new LockHeldError({ lockName: 'release', holder: 'alice' }),
  new StoreUnavailableError('etcd: no answer'),
  new MigrationConflictError({ keys: ['state'], to: 'etcd' }),
];

test('every error has a DAYSHIFT_ code of its own and its class name as its name', () => {
  for (const err of every) {
    assert.match(err.code, /^DAYSHIFT_[A-Z_]+$/, err.name);
    assert.equal(err.name, err.constructor.name);
  }
  const byClass = new Map(every.filter((e) => !(e instanceof UpstreamError)).map((e) => [e.constructor.name, e.code]));
  assert.equal(new Set(byClass.values()).size, byClass.size, 'two classes share a code');
});

test('an upstream failure is coded by its kind, and options default to a fresh connection and network', () => {
  const plain = new UpstreamError('reset', { phase: 'before-response' });
  assert.deepEqual(
    [plain.code, plain.kind, plain.reusedConnection, 'cause' in plain],
    ['DAYSHIFT_UPSTREAM_NETWORK', 'network', false, false],
  );
  assert.equal(new UpstreamError('slow', { phase: 'connect', kind: 'timeout' }).code, 'DAYSHIFT_UPSTREAM_TIMEOUT');
});

test('messageOf reads an Error, a thrown string and anything else', () => {
  const cases: [unknown, string][] = [
    [new Error('boom'), 'boom'],
    [new StoreUnavailableError('etcd: no answer'), 'etcd: no answer'],
    ['plain text', 'plain text'],
    [42, '42'],
    [undefined, 'undefined'],
  ];
  for (const [thrown, message] of cases) assert.equal(messageOf(thrown), message);
});

test('the admin API answers each error with its status', () => {
  const cases: [string, unknown, number][] = [
    ['an HttpError its own', new HttpError(422, 'bad'), 422],
    ['a release refusal the status it names', new ReleaseRefusedError('no release', { status: 404 }), 404],
    ['a refusal 409', new RefusedError('no'), 409],
    ['an unknown target 404', new TargetError('x'), 404],
    ['what the driver cannot do 501', new DriverUnsupportedError({ driver: 'apache', what: 'x' }), 501],
    ['the store out of reach 503', new StoreUnavailableError('x'), 503],
    ['any other Dayshift error 500', new BalancerApiError('x'), 500],
    ['a plain Error 500', new Error('x'), 500],
  ];
  for (const [name, err, status] of cases) assert.equal(statusOf(err), status, name);
});

test('the CLI exits with the code each error names', () => {
  const cases: [string, unknown, number | undefined][] = [
    ['a CliError its own', new CliError('x', EXIT.timeout), EXIT.timeout],
    ['a config error 2', new ConfigError([]), EXIT.usage],
    ['an httpd.conf error 2', new ApacheConfError('x', { file: 'f', line: 1 }), EXIT.usage],
    ['an unusable inherited socket 2', new SocketActivationError('x'), EXIT.usage],
    ['a migration conflict 3', new MigrationConflictError({ keys: ['a'], to: 'etcd' }), EXIT.refused],
    ['the store out of reach 5', new StoreUnavailableError('x'), EXIT.unreachable],
    ['an error with no exit code of its own: main prints its stack, exits 1', new BalancerApiError('x'), undefined],
    ['a plain Error likewise', new Error('x'), undefined],
  ];
  for (const [name, err, code] of cases) assert.equal(exitCodeOf(err), code, name);
});
