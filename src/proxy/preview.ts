// Previews on the public host: a signed, expiring link sets a cookie that pins the browser to one cluster
// on shared routes, whatever its traffic state, with a banner saying so. The proxy answers the link and
// "end preview" itself under /.dayshift/, a path no application route gets. The cookie carries the
// preview's id, expiry and cluster, signed with the sticky cookie's secret; the ids still valid come from
// the desired state, so a revocation on one instance ends the preview on all of them.
import type { BlockList } from 'node:net';
import type { StickySigner } from '../balance/sticky.js';
import type { DesiredState } from '../model.js';
import { bannerHtml } from './drain-notice.js';

export const PREVIEW_COOKIE = 'DAYSHIFT_PREVIEW';
/** The link: `?token=…` sets the cookie; `/end` clears it. */
export const PREVIEW_PATH = '/.dayshift/preview';
export const PREVIEW_END_PATH = `${PREVIEW_PATH}/end`;

/** What a preview token says, once its signature checks. */
export interface PreviewClaim {
  id: string;
  cluster: string;
  /** Expiry, ms since the epoch. */
  until: number;
}

/** A valid preview as the snapshot holds it: the banner is built once, not per response. */
export interface PreviewPin {
  id: string;
  cluster: string;
  until: number;
  allow: BlockList | undefined;
  banner: Buffer;
}

/** `id.until(base36).cluster(base64url).mac`: the cookie's and the link's value. */
export function previewToken(signer: StickySigner, claim: PreviewClaim): string {
  return signer.sign(`${claim.id}.${claim.until.toString(36)}.${Buffer.from(claim.cluster).toString('base64url')}`);
}

export function readPreviewToken(signer: StickySigner, value: string | undefined): PreviewClaim | undefined {
  const payload = signer.open(value);
  if (payload === undefined) return undefined;
  const [id, until, cluster, extra] = payload.split('.');
  if (!id || !until || !cluster || extra !== undefined) return undefined;
  return { id, until: parseInt(until, 36), cluster: Buffer.from(cluster, 'base64url').toString() };
}

/** "Preview of prod-a, version 2.0" (the version when known). */
export function previewLabel(cluster: string, version: string | undefined): string {
  return `Preview of ${cluster}${version ? `, version ${version}` : ''}`;
}

/** The previews of a desired state, by id, for the snapshot; `blockList` turns an allow list into a BlockList. */
export function buildPreviews(
  state: DesiredState,
  blockList: (entries: string[] | undefined) => BlockList | undefined,
): Map<string, PreviewPin> {
  const pins = new Map<string, PreviewPin>();
  for (const [id, p] of Object.entries(state.previews ?? {})) {
    const until = Date.parse(p.until);
    if (Number.isNaN(until)) continue;
    const banner = Buffer.from(
      bannerHtml(previewLabel(p.cluster, p.version), { href: PREVIEW_END_PATH, text: 'end preview' }),
    );
    pins.set(id, { id, cluster: p.cluster, until, allow: blockList(p.allow), banner });
  }
  return pins;
}

/** Why a preview token does not pin: the status the link answers with. */
export type PreviewRefusal = 400 | 403 | 410;

/** The preview a token names, if it is signed, still valid and open to this client; else why not. */
export function checkPreview(
  pins: Map<string, PreviewPin>,
  signer: StickySigner,
  token: string | undefined,
  now: number,
  admits: (allow: BlockList) => boolean,
): PreviewPin | PreviewRefusal {
  const claim = readPreviewToken(signer, token);
  if (!claim) return 400;
  const pin = pins.get(claim.id);
  // Revoked, expired, or a forged pairing of a valid id with another cluster or expiry.
  if (!pin || pin.cluster !== claim.cluster || pin.until !== claim.until || pin.until <= now) return 410;
  if (pin.allow && !admits(pin.allow)) return 403;
  return pin;
}

/** The Set-Cookie value pinning the browser until the preview ends (or clearing it: `token` undefined). */
export function previewCookie(token: string | undefined, maxAgeSeconds: number, secure: boolean): string {
  return `${PREVIEW_COOKIE}=${token ?? ''}; Path=/; Max-Age=${token === undefined ? 0 : maxAgeSeconds}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}
