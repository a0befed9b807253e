// The demo's deploy hook (`dayshift demo-deploy`, run per member by the release conductor): asks a demo
// app server to restart with the release's version and waits until it answers with it — what a real
// deploy script does with its application server.
import { request } from 'undici';
import { DEMO_TOKEN_ENV } from './environment.js';

export async function deployMember(env: NodeJS.ProcessEnv = process.env, timeoutMs = 20_000): Promise<string> {
  const url = env.DAYSHIFT_MEMBER_URL;
  const version = env.DAYSHIFT_VERSION;
  const token = env[DEMO_TOKEN_ENV];
  if (!url || !version || !token)
    throw new Error(
      `demo-deploy needs DAYSHIFT_MEMBER_URL, DAYSHIFT_VERSION and ${DEMO_TOKEN_ENV} (it runs as the demo's deploy hook)`,
    );
  const asked = await request(new URL(`/_demo/deploy?version=${encodeURIComponent(version)}`, url), {
    method: 'POST',
    headers: { 'x-demo-token': token },
  });
  const answer = await asked.body.text();
  if (asked.statusCode !== 202) throw new Error(`${url} refused the deploy: ${asked.statusCode} ${answer.trim()}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const health = await request(new URL('/health', url), { headersTimeout: 1000, bodyTimeout: 1000 });
      const text = (await health.body.text()).trim();
      if (text.endsWith(` ${version}`)) return `${url} runs ${version} (${text.split(' ')[0]})`;
    } catch {
      // Down while it restarts.
    }
    if (Date.now() > deadline)
      throw new Error(`${url} did not come back with version ${version} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
