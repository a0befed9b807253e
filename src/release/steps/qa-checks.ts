// The QA checks step: HTTP requests through the cluster's QA site, or through the public site with a
// preview pinning them to the cluster (`via: preview`), and commands (checks.ts runs them).
import { PREVIEW_COOKIE } from '../../proxy/preview.js';
import { listenerOrigin } from '../../observe/status-report.js';
import type { PreviewLink } from '../../control/previews.js';
import { qaTargetFor, runQaChecks, type QaTarget } from '../checks.js';
import { ReleaseStepError } from '../errors.js';
import { clusterPlan } from '../plan.js';
import type { QaChecksStep } from '../types.js';
import { captureOutput, releaseActor, releaseEnv, type StepContext, type StepRunner } from './step.js';
import { messageOf } from '../../errors.js';

/** A preview outlives its checks by this much, in case one is slow to give up. */
const PREVIEW_MARGIN_MS = 60_000;

export const runQaStep: StepRunner<QaChecksStep> = async (step, ctx) => {
  const { plane, release } = ctx;
  const { lines, onLine } = captureOutput(step, ctx);
  const checks = clusterPlan(plane.config, step.cluster).qa;
  const viaPreview = checks.filter((c) => c.via === 'preview');
  const target = checks.some((c) => c.via === 'qa')
    ? qaTargetFor(plane.config, step.cluster, ctx.httpOrigin?.())
    : undefined;
  const preview =
    viaPreview.length > 0
      ? await openPreview(
          ctx,
          step.cluster,
          viaPreview.reduce((ms, c) => ms + c.timeout, PREVIEW_MARGIN_MS),
        )
      : undefined;
  try {
    await runQaChecks(checks, {
      ...(target ? { target } : {}),
      ...(preview ? { preview: preview.target } : {}),
      cwd: plane.loaded.baseDir,
      env: releaseEnv(plane, release, step.cluster),
      signal: ctx.signal,
      onLine,
    });
  } finally {
    // Ended with the checks, pass or fail: nobody else was given the link.
    if (preview) await plane.revokePreview(releaseActor(release), preview.link.id).catch(() => undefined);
  }
  return { detail: `${lines.filter((l) => l.startsWith('GET ') || l.startsWith('$ ')).length} check(s) passed` };
};

/** A preview of the cluster for the release's checks, reached on Dayshift's own http listener. */
async function openPreview(
  ctx: StepContext,
  cluster: string,
  forMs: number,
): Promise<{ link: PreviewLink; target: QaTarget }> {
  const { plane, release } = ctx;
  const origin = ctx.httpOrigin?.() ?? listenerOrigin([plane.config.listen.http].flat()[0]);
  if (!origin)
    throw new ReleaseStepError(
      "QA checks via: preview go through Dayshift's http listener, and there is none: add listen.http",
    );
  let link: PreviewLink;
  try {
    link = await plane.openPreview(releaseActor(release), { cluster, forMs, version: release.version });
  } catch (err) {
    throw new ReleaseStepError(`QA checks via: preview could not open a preview of ${cluster}: ${messageOf(err)}`);
  }
  const url = new URL(link.url);
  return { link, target: { url: `${url.origin}/`, origin, host: url.host, cookie: `${PREVIEW_COOKIE}=${link.token}` } };
}
