// Previews as the control plane makes them: which public site and URL a preview's link is for, who may
// open it, which version the cluster runs. Its admin API is src/admin/preview-routes.ts.
// The proxy side (the link, the cookie, the pin, the banner) is src/proxy/preview.ts.
import { randomBytes } from 'node:crypto';
import { routeTraffic, SITE_ALLOW_PREFIX, type DayshiftConfig } from '../config/schema.js';
import { PREVIEW_PATH } from '../proxy/preview.js';
import { CURRENT_RELEASE_KEY, RELEASE_KEY_PREFIX, type Release } from '../release/types.js';
import type { Store } from '../store/store.js';
import type { PreviewDesired } from '../model.js';
import { PreviewError } from './errors.js';

/** What a preview is asked with (API body, `dayshift preview`, a release's QA checks). */
export interface PreviewRequest {
  cluster: string;
  /** How long it lasts (default preview.for). */
  forMs?: number;
  /** The public site (default: the first site with a shared route over the cluster). */
  site?: string;
  /** Addresses, CIDR blocks or `site:NAME` (default preview.allow). */
  allow?: string[];
  version?: string;
}

/** The longest preview: a link that outlives a day is a standing back door, not a preview. */
export const MAX_PREVIEW_MS = 7 * 24 * 3600_000;

export function newPreviewId(): string {
  return randomBytes(9).toString('base64url');
}

/** The public site a preview of `cluster` is for: `wanted`, or the first whose shared route balances over it. */
export function previewSite(config: DayshiftConfig, cluster: string, wanted?: string): string {
  if (!Object.hasOwn(config.clusters, cluster))
    throw new PreviewError(`unknown cluster "${cluster}"; clusters: ${Object.keys(config.clusters).join(', ')}`);
  const serves = (name: string) =>
    config.sites[name]!.routes.some((r) => r.clusters.includes(cluster) && routeTraffic(r) === 'shared');
  if (wanted !== undefined) {
    if (!Object.hasOwn(config.sites, wanted))
      throw new PreviewError(`unknown site "${wanted}"; sites: ${Object.keys(config.sites).join(', ')}`);
    if (!serves(wanted))
      throw new PreviewError(
        `site ${wanted} has no shared route over ${cluster}: a preview pins a browser among a public site's clusters`,
      );
    return wanted;
  }
  const found = Object.keys(config.sites).find(serves);
  if (!found)
    throw new PreviewError(
      `no site has a shared route over ${cluster}: previews are for the public site (a QA site already reaches it alone)`,
    );
  return found;
}

/**
 * The link: the site's first named host on the https listener if there is one, else the http one; `bound`
 * are the ports the listeners really have (a configured port 0 is chosen at start).
 */
export function previewUrl(
  config: DayshiftConfig,
  site: string,
  token: string,
  bound?: { http?: number; https?: number },
): string {
  const host = config.sites[site]!.hosts.find((h) => !h.includes('*'));
  if (!host)
    throw new PreviewError(
      `site ${site} has only wildcard hosts: name a host in sites.${site}.hosts for the preview link`,
    );
  const https = bound?.https ?? [config.listen.https].flat()[0]?.port;
  const http = bound?.http ?? [config.listen.http].flat()[0]?.port;
  const [scheme, port, standard] = https !== undefined ? ['https', https, 443] : ['http', http ?? 80, 80];
  return `${scheme}://${host}${port === standard ? '' : `:${port}`}${PREVIEW_PATH}?token=${encodeURIComponent(token)}`;
}

/** An allow list with `site:NAME` replaced by that site's `allow` entries (stored resolved, as audited). */
export function resolveAllow(config: DayshiftConfig, entries: string[] | undefined): string[] | undefined {
  if (!entries || entries.length === 0) return undefined;
  return entries.flatMap((entry) => {
    if (!entry.startsWith(SITE_ALLOW_PREFIX)) return [entry];
    const name = entry.slice(SITE_ALLOW_PREFIX.length);
    const list = config.sites[name]?.allow;
    if (!list?.length) throw new PreviewError(`"${entry}": site ${name} has no allow list to limit the preview to`);
    return list;
  });
}

/**
 * The version `cluster` runs, as the release journal knows it: the current release's, once its deploy
 * hook for the cluster succeeded. Undefined when no release deployed it (the banner then names none).
 */
export async function releasedVersion(store: Store, cluster: string): Promise<string | undefined> {
  const pointer = await store.get<{ id: string }>(CURRENT_RELEASE_KEY);
  if (!pointer) return undefined;
  const release = (await store.get<Release>(`${RELEASE_KEY_PREFIX}${pointer.value.id}`))?.value;
  if (!release || release.state === 'aborted') return undefined;
  const deployed = release.steps.some(
    (s) => s.kind === 'hook' && s.hook === 'deploy' && s.cluster === cluster && s.state === 'succeeded',
  );
  return deployed ? release.version : undefined;
}

/** A preview as the API lists it. */
export interface PreviewReport extends PreviewDesired {
  id: string;
}

/** A preview just made: its link, and the token the link and the cookie carry. */
export interface PreviewLink extends PreviewReport {
  url: string;
  token: string;
}

export function listPreviews(previews: Record<string, PreviewDesired> | undefined, now: number): PreviewReport[] {
  return Object.entries(previews ?? {})
    .filter(([, p]) => Date.parse(p.until) > now)
    .map(([id, p]) => ({ id, ...p }))
    .sort((a, b) => a.created.localeCompare(b.created));
}
