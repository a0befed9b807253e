// The statement dialects. MariaDB's statements also run against real servers in the other db tests;
// MySQL 8 is not available here, so its statements are pinned by these tests (text from the MySQL 8.0.26+
// and 8.4 reference manuals: REPLICA/SOURCE syntax, super_read_only, WAIT_FOR_EXECUTED_GTID_SET).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dialectFor, globalPrivileges, mariaDbCovers, missingGrants, parseVersion } from '../../src/db/dialect.js';

const mysql = dialectFor(parseVersion('8.0.36'));
const mysql84 = dialectFor(parseVersion('8.4.2'));
const mariadb = dialectFor(parseVersion('10.11.19-MariaDB-0+deb12u1-log'));
const source = { host: '10.0.0.5', port: 3307, user: 'repl', password: "pa'ss" };

test('flavour and version are read from @@version', () => {
  assert.deepEqual(parseVersion('10.11.19-MariaDB-0+deb12u1-log'), {
    flavour: 'mariadb',
    major: 10,
    minor: 11,
    patch: 19,
    text: '10.11.19-MariaDB-0+deb12u1-log',
  });
  assert.equal(parseVersion('8.0.36-0ubuntu0.22.04.1').flavour, 'mysql');
  assert.throws(() => parseVersion('garbage'), /unrecognised server version/);
});

test('versions without the needed statements are refused', () => {
  assert.match(dialectFor(parseVersion('8.0.25')).unsupported() ?? '', /8\.0\.26 or later/);
  assert.equal(dialectFor(parseVersion('8.0.26')).unsupported(), undefined);
  assert.equal(mysql.unsupported(), undefined);
  assert.equal(mysql84.unsupported(), undefined);
  assert.match(dialectFor(parseVersion('10.6.18-MariaDB')).unsupported() ?? '', /MASTER_DEMOTE_TO_SLAVE needs 10\.10/);
  assert.equal(mariadb.unsupported(), undefined);
});

test('MySQL uses the REPLICA/SOURCE statements that 8.4 still accepts', () => {
  for (const d of [mysql, mysql84]) {
    assert.equal(d.replicaStatus, 'SHOW REPLICA STATUS');
    assert.equal(d.stopReplica, 'STOP REPLICA');
    assert.equal(d.startReplica, 'START REPLICA');
  }
  assert.equal(
    mysql.changeSource(source, true),
    "CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.5', SOURCE_PORT=3307, SOURCE_USER='repl', SOURCE_PASSWORD='pa\\'ss', SOURCE_CONNECT_RETRY=1, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1",
  );
  assert.equal(
    mysql.changeSource(source, false),
    mysql.changeSource(source, true),
    'auto-position needs no demote step',
  );
});

test('MariaDB re-attaches a demoted primary with MASTER_DEMOTE_TO_SLAVE, a replica with slave_pos', () => {
  assert.equal(
    mariadb.changeSource(source, true),
    "CHANGE MASTER TO MASTER_HOST='10.0.0.5', MASTER_PORT=3307, MASTER_USER='repl', MASTER_PASSWORD='pa\\'ss', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos, MASTER_DEMOTE_TO_SLAVE=1",
  );
  assert.doesNotMatch(mariadb.changeSource(source, false), /DEMOTE/);
});

test('promotion: MySQL lifts super_read_only before RESET REPLICA ALL and read_only last', () => {
  assert.deepEqual(mysql.promote, [
    'STOP REPLICA',
    'SET PERSIST super_read_only=OFF',
    'RESET REPLICA ALL',
    'SET PERSIST read_only=OFF',
  ]);
  assert.deepEqual(mariadb.promote, ['STOP SLAVE', 'RESET SLAVE ALL', 'SET GLOBAL read_only=OFF']);
});

test('MySQL fences with super_read_only, persisted across restarts, and unfences in the order the server requires', () => {
  assert.deepEqual(mysql.fence, ['SET PERSIST super_read_only=ON']);
  assert.deepEqual(mysql.unfence, ['SET PERSIST super_read_only=OFF', 'SET PERSIST read_only=OFF']);
  assert.deepEqual(mariadb.fence, ['SET GLOBAL read_only=ON']);
  assert.equal(mysql.readOnly, 'SELECT @@global.read_only AS read_only, @@global.super_read_only AS super_read_only');
});

test('a replica counts as read-only only as far as the flavour can close it: MySQL needs super_read_only', () => {
  assert.equal(mysql.fenced({ read_only: 1, super_read_only: 0 }), false, 'SUPER users still write');
  assert.equal(mysql.fenced({ read_only: 1, super_read_only: 1 }), true);
  assert.equal(mariadb.fenced({ read_only: 1, super_read_only: 0 }), true);
  assert.equal(mariadb.fenced({ read_only: 0, super_read_only: 0 }), false);
  assert.match(mysql.keepReadOnly, /SET PERSIST super_read_only=ON/);
  assert.match(mariadb.keepReadOnly, /read_only=ON under \[mariadbd\] in its my\.cnf/);
});

test('lock_wait_timeout is an inlined whole number of seconds, at least 1', () => {
  assert.equal(mysql.lockWait(2000), 'SET SESSION lock_wait_timeout=2');
  assert.equal(mysql.lockWait(1500), 'SET SESSION lock_wait_timeout=2');
  assert.equal(mariadb.lockWait(100), 'SET SESSION lock_wait_timeout=1');
});

test('GTID waits: WAIT_FOR_EXECUTED_GTID_SET on MySQL, MASTER_GTID_WAIT on MariaDB, always with a positive timeout', () => {
  const set = '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5';
  const wait = mysql.waitFor(set, 2500);
  assert.equal(wait.sql, `SELECT WAIT_FOR_EXECUTED_GTID_SET('${set}', 2.500) AS r`);
  assert.equal(wait.read({ r: 0 }), true);
  assert.equal(wait.read({ r: 1 }), false);
  assert.equal(mariadb.waitFor('0-1-5', 0).sql, "SELECT MASTER_GTID_WAIT('0-1-5', 0.001) AS r");
  assert.equal(mariadb.waitFor('0-1-5', 10_000).read({ r: -1 }), false);
  const reached = mysql.reached(set);
  assert.equal(reached.sql, `SELECT GTID_SUBSET('${set}', @@global.gtid_executed) AS ok`);
  assert.equal(reached.read({ ok: 1 }), true);
});

test('errant transactions: MySQL subtracts on the primary, MariaDB compares binlog and slave positions on the target', () => {
  const errant = mysql.errant('uuid-a:1-10,uuid-b:1');
  assert.equal(errant.on, 'primary');
  assert.equal(errant.sql, "SELECT GTID_SUBTRACT('uuid-a:1-10,uuid-b:1', @@global.gtid_executed) AS errant");
  assert.equal(errant.read({ errant: 'uuid-b:1\n' }), 'uuid-b:1');
  assert.equal(errant.read({ errant: '' }), '');
  const m = mariadb.errant('');
  assert.equal(m.on, 'target');
  assert.equal(m.read({ executed: '0-1-100', applied: '0-1-100', server_id: 2 }), '');
  // Written on this server (server_id 2), past what replication applied: errant.
  assert.match(
    m.read({ executed: '0-2-101', applied: '0-1-100', server_id: 2 }),
    /0-2-101 is ahead of gtid_slave_pos 0-1-100/,
  );
  // Another server's transaction, binlogged but not yet in gtid_slave_pos: replication in flight.
  assert.equal(m.read({ executed: '0-1-101', applied: '0-1-100', server_id: 2 }), '');
});

test('MySQL status columns are normalised like MariaDB ones', () => {
  const row = {
    Source_Host: 'db1',
    Source_Port: 3306,
    Replica_IO_Running: 'Yes',
    Replica_SQL_Running: 'No',
    Seconds_Behind_Source: null,
    Auto_Position: '1',
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 1062,
    Last_SQL_Error: 'Duplicate entry',
  };
  assert.deepEqual(mysql.parseReplicaStatus(row), {
    sourceHost: 'db1',
    sourcePort: 3306,
    ioRunning: 'Yes',
    sqlRunning: 'No',
    lagSeconds: null,
    usingGtid: true,
    gtidMode: 'Auto_Position',
    ioError: '',
    sqlError: '1062: Duplicate entry',
  });
  assert.equal(
    mysql.settings.read({
      log_bin: 1,
      log_updates: 1,
      binlog_format: 'ROW',
      gtid_mode: 'ON',
      enforce_gtid_consistency: 'ON',
    }).length,
    0,
  );
  assert.deepEqual(
    mysql.settings.read({
      log_bin: 1,
      log_updates: 0,
      binlog_format: 'MIXED',
      gtid_mode: 'OFF_PERMISSIVE',
      enforce_gtid_consistency: 'ON',
    }),
    ['log_replica_updates is off', 'binlog_format is MIXED, expected ROW', 'gtid_mode is OFF_PERMISSIVE, expected ON'],
  );
});

test('MariaDB positions: covered domain by domain', () => {
  assert.equal(mariaDbCovers('0-1-10,1-2-5', '0-1-10'), true);
  assert.equal(mariaDbCovers('0-2-11', '0-1-10'), true);
  assert.equal(mariaDbCovers('0-1-9', '0-1-10'), false);
  assert.equal(mariaDbCovers('0-1-10', '0-1-10,1-2-1'), false);
  assert.equal(mariaDbCovers('', ''), true);
});

test('grants: SHOW GRANTS lines are read for *.* privileges; SUPER stands in for the MySQL dynamic ones', () => {
  const lines = [
    'GRANT PROCESS, RELOAD, REPLICATION CLIENT ON *.* TO `switcher`@`%`',
    'GRANT SELECT ON `app`.* TO `switcher`@`%`',
  ];
  assert.deepEqual([...globalPrivileges(lines)], ['PROCESS', 'RELOAD', 'REPLICATION CLIENT']);
  assert.deepEqual(missingGrants(mysql, lines), [
    'SYSTEM_VARIABLES_ADMIN',
    'REPLICATION_SLAVE_ADMIN',
    'CONNECTION_ADMIN',
  ]);
  assert.deepEqual(missingGrants(mysql, [...lines, 'GRANT SUPER ON *.* TO `switcher`@`%`']), []);
  assert.deepEqual(
    missingGrants(mysql, [
      'GRANT SYSTEM_VARIABLES_ADMIN,REPLICATION_SLAVE_ADMIN,CONNECTION_ADMIN ON *.* TO `switcher`@`%`',
      ...lines,
    ]),
    [],
  );
  assert.deepEqual(missingGrants(mariadb, ['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`']), []);
});
