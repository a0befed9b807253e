// Self-signed certificates for TLS tests, made with openssl in a temporary directory (no key is
// committed to the repository).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** Writes NAME.crt and NAME.key for `host` into dir; returns their paths. */
export function selfSigned(dir: string, name: string, host: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${host}`,
      '-addext',
      `subjectAltName=DNS:${host}`,
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}
