import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ApacheDriver } from '../../src/drivers/apache/driver.js';
import type { Driver } from '../../src/drivers/driver.js';
import { createDriver } from '../../src/drivers/factory.js';
import { HaproxyDriver } from '../../src/drivers/haproxy/driver.js';

const base =
  'listen: {http: 8080}\nclusters:\n  a:\n    members: [{url: "http://127.0.0.1:9001"}]\nsites:\n  s:\n    hosts: [x]\n    routes: [{clusters: [a]}]\n';

test('no driver section means the built-in driver the caller supplies', () => {
  const { config } = parseConfig(base);
  const builtin = { name: 'builtin' } as Driver;
  assert.equal(createDriver(config, { builtin: () => builtin }), builtin);
  assert.throws(() => createDriver(config), /needs the proxy/);
});

test('driver sections make Apache and HAProxy drivers with their defaults', () => {
  const apache = parseConfig(
    `${base}driver: {type: apache, url: "http://127.0.0.1:8080/balancer-manager", balancer: web-prod}\n`,
  ).config;
  assert.deepEqual(apache.driver, {
    type: 'apache',
    url: 'http://127.0.0.1:8080/balancer-manager',
    balancer: 'web-prod',
    match: 'url',
    disabled_flag: 'D',
    timeout: 5000,
    verify_interval: 10_000,
  });
  assert.ok(createDriver(apache) instanceof ApacheDriver);
  const haproxy = parseConfig(
    `${base}driver: {type: haproxy, socket: run/admin.sock, backend: web-prod, state_file: run/state}\n`,
  ).config;
  assert.ok(createDriver(haproxy, { baseDir: '/etc/dayshift' }) instanceof HaproxyDriver);
});

test('a bad driver section is refused with the reason', () => {
  assert.throws(
    () => parseConfig(`${base}driver: {type: haproxy, backend: web-prod}\n`),
    /set exactly one of socket .* or address/,
  );
  assert.throws(() => parseConfig(`${base}driver: {type: nginx}\n`), /driver\.type/);
  assert.throws(
    () => parseConfig(`${base}driver: {type: apache, url: "ftp://x", balancer: b}\n`),
    /balancer-manager URL/,
  );
});
