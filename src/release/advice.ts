// What a release of a configuration would get wrong without an error to show for it: QA checks that can
// reach nothing, a health gate that checks nothing, a drain that forgets sessions the application still
// keeps, sticky sessions with no route to follow. `dayshift check` and `dayshift release start` print it.
import { formatDuration } from '../config/units.js';
import type { DayshiftConfig } from '../config/schema.js';
import { previewSite } from '../control/previews.js';
import { noSharedRoute } from '../control/shadow.js';
import { qaUrlFor } from '../observe/status-report.js';
import { clusterOrder, clusterPlan } from './plan.js';
import { messageOf } from '../errors.js';

/** Tomcat's default session-timeout (conf/web.xml), the most common application timeout behind AJP. */
const TOMCAT_SESSION_TIMEOUT_MS = 30 * 60_000;

export function releaseAdvice(config: DayshiftConfig): string[] {
  const advice: string[] = [];
  const driver = config.driver?.type ?? 'builtin';
  for (const cluster of clusterOrder(config)) {
    const plan = clusterPlan(config, cluster);
    if (plan.qa.some((check) => check.via === 'preview')) {
      if (driver !== 'builtin') {
        advice.push(
          `clusters.${cluster}: its QA checks via: preview need the built-in proxy (with the ${driver} driver Dayshift serves no public traffic to pin): use via: qa`,
        );
      } else {
        try {
          previewSite(config, cluster);
        } catch (err) {
          advice.push(`clusters.${cluster}: its QA checks via: preview cannot run: ${messageOf(err)}`);
        }
      }
    }
    if (plan.shadow) {
      const why =
        driver !== 'builtin'
          ? `it needs the built-in proxy (with the ${driver} driver Dayshift sees no requests to copy)`
          : noSharedRoute(config, cluster);
      if (why) advice.push(`clusters.${cluster}: its shadow step would fail: ${why}`);
    }
    if (!plan.qa.some((check) => 'path' in check && check.via === 'qa')) continue;
    if (driver === 'builtin' && !qaUrlFor(config, cluster)) {
      advice.push(
        `clusters.${cluster}: its QA checks have no QA site to go to: add a site pinned to ${cluster}, or set clusters.${cluster}.qa_url`,
      );
    } else if (driver !== 'builtin' && !config.clusters[cluster]?.qa_url) {
      advice.push(
        `clusters.${cluster}.qa_url: with the ${driver} driver Dayshift's own port serves nothing, so its QA checks would reach nothing: ` +
          `set qa_url to ${cluster}'s QA site on the load balancer (e.g. http://${cluster}.example.com/), and qa_connect (host:port) if that name does not lead there from this machine`,
      );
    }
  }
  const unchecked = Object.entries(config.clusters).filter(
    ([, c]) =>
      (c.health?.enabled ?? config.health.enabled) === false || c.members.some((m) => m.health?.enabled === false),
  );
  if (unchecked.length > 0) {
    advice.push(
      `health.enabled is false for ${unchecked.map(([name]) => name).join(', ')}: the release's health gate counts those members up without checking them, ` +
        'so a stopped application server passes it. Turn health checks on (health.enabled: true) with a health.path the application answers',
    );
  }
  const isAjp = (cluster: string) => config.clusters[cluster]?.members.some((m) => m.url.startsWith('ajp:')) ?? false;
  const unsticky = Object.entries(config.sites).filter(([, site]) =>
    site.routes.some(
      (r) =>
        !r.sticky &&
        r.clusters.some(isAjp) &&
        (r.clusters.length > 1 || r.clusters.some((c) => (config.clusters[c]?.members.length ?? 0) > 1)),
    ),
  );
  if (unsticky.length > 0) {
    advice.push(
      `sites ${unsticky.map(([name]) => name).join(', ')}: ajp members without sticky sessions, so a Tomcat session (HttpSession) is lost when the next request goes to another member. ` +
        'Give each member its route (the jvmRoute of its Tomcat: <Engine jvmRoute="web-1-a">) and the route sticky: { mode: route, cookie: JSESSIONID, path_param: jsessionid }',
    );
  }
  const stickyRoutes = Object.values(config.sites).flatMap((site) =>
    site.routes.filter((r) => r.sticky?.mode === 'route'),
  );
  if (stickyRoutes.length > 0) {
    const ajp = Object.values(config.clusters).some((c) => c.members.some((m) => m.url.startsWith('ajp:')));
    const idle = Math.min(...clusterOrder(config).map((c) => clusterPlan(config, c).drainIdleMs));
    if (idle < TOMCAT_SESSION_TIMEOUT_MS) {
      advice.push(
        `drain.session_idle is ${formatDuration(idle)}: a user idle longer than that but within the application's session timeout ` +
          `${ajp ? "(Tomcat's default session-timeout is 30m) " : ''}loses the session when the cluster goes out. ` +
          "Set drain.session_idle (or release.drain.session_idle) to the application's session timeout, or accept that idle sessions move",
      );
    }
    const clusters = new Set(stickyRoutes.flatMap((r) => r.clusters));
    const routeless = [...clusters].filter((name) => config.clusters[name]?.members.some((m) => m.route === undefined));
    if (routeless.length > 0) {
      advice.push(
        `sticky route sessions need each member's route: members of ${routeless.join(', ')} have none, so their sessions cannot follow them. ` +
          `Set route to the member's session suffix (Tomcat: <Engine jvmRoute="..."> in server.xml${ajp ? '; httpd: BalancerMember ... route=...' : ''})`,
      );
    }
  }
  return advice;
}
