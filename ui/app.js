// The dashboard page: sign-in, navigation between views, the live status stream and refresh timers.
import { api, signIn, signOut, signedIn, whenSignedOut, ApiError } from './api.js';
import { createAuditView } from './audit.js';
import { createOverview } from './overview.js';
import { createReleaseView } from './release.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const signInSection = $('signin');
const appSection = $('app');
const liveRegion = $('announcer');
const connection = $('connection');

/** Speaks short updates to screen readers (aria-live), one at a time. */
function announce(/** @type {string} */ message) {
  liveRegion.textContent = '';
  window.setTimeout(() => (liveRegion.textContent = message), 50);
}

const overview = createOverview($('view-overview'), announce);
const releaseNav = $('nav-release-state');
const release = createReleaseView($('view-release'), announce, (state) => {
  releaseNav.hidden = !state;
  releaseNav.textContent = state ?? '';
});
const audit = createAuditView($('view-audit'));

const VIEWS = ['overview', 'release', 'audit'];
let view = 'overview';

function show(/** @type {string} */ name, /** @type {boolean} */ focus) {
  view = VIEWS.includes(name) ? name : 'overview';
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = v !== view;
    const link = $(`nav-${v}`);
    if (v === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'release') void release.refresh().catch(report);
  if (view === 'audit') void audit.refresh().catch(report);
  if (focus) focusHeading(view);
}

/** Moves focus to a view's heading, so keyboard and screen-reader users land at its start. */
function focusHeading(/** @type {string} */ name) {
  const heading = $(`view-${name}`).querySelector('h2');
  heading?.setAttribute('tabindex', '-1');
  heading?.focus();
}
window.addEventListener('hashchange', () => show(window.location.hash.slice(1), true));

/** @type {EventSource | undefined} */
let events;
/** @type {number[]} */
let timers = [];
/** @type {(() => void) | undefined} */
let unfollowRelease;

function setConnection(/** @type {'live' | 'connecting' | 'lost'} */ state) {
  connection.className = `connection ${state}`;
  connection.textContent =
    state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Connection lost — retrying';
}

function report(/** @type {unknown} */ err) {
  if (err instanceof ApiError && err.status === 401) return;
  console.error(err);
}

function start() {
  signInSection.hidden = true;
  appSection.hidden = false;
  document.body.classList.remove('signed-out');
  show(window.location.hash.slice(1), false);
  setConnection('connecting');
  events = new EventSource('/api/events');
  events.addEventListener('status', (event) => {
    setConnection('live');
    overview.update(JSON.parse(/** @type {MessageEvent} */ (event).data));
  });
  events.addEventListener('error', () => {
    setConnection('lost');
    // A refused stream (session gone) is not retried by the browser: find out why.
    if (events?.readyState === EventSource.CLOSED)
      void api('GET', '/api/status').then(() => window.setTimeout(restartEvents, 2000), report);
  });
  unfollowRelease = release.follow();
  let ticks = 0;
  timers = [
    window.setInterval(() => view === 'overview' && void overview.refreshCharts().catch(report), 5000),
    // Every second on the release view (durations and the drain countdown move); elsewhere only for
    // the navigation's state pill.
    window.setInterval(() => (view === 'release' || ++ticks % 5 === 0) && void release.refresh().catch(report), 1000),
    window.setInterval(() => view === 'audit' && void audit.refresh().catch(report), 3000),
  ];
}

function restartEvents() {
  if (!signedIn()) return;
  stop();
  start();
}

function stop() {
  events?.close();
  events = undefined;
  unfollowRelease?.();
  unfollowRelease = undefined;
  timers.forEach((t) => window.clearInterval(t));
  timers = [];
}

function showSignIn(/** @type {string} */ message) {
  stop();
  // A dialog left open over the sign-in form would trap focus on an action that can no longer run.
  document.querySelectorAll('dialog').forEach((dialog) => dialog.remove());
  appSection.hidden = true;
  signInSection.hidden = false;
  document.body.classList.add('signed-out');
  const error = $('signin-error');
  error.textContent = message;
  error.hidden = message === '';
  $('token').focus();
}

whenSignedOut(() => showSignIn('Your session has ended: sign in again.'));

$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  const button = /** @type {HTMLButtonElement} */ ($('signin-button'));
  button.disabled = true;
  try {
    await signIn(input.value.trim());
    input.value = '';
    start();
    focusHeading(view);
  } catch (err) {
    const error = $('signin-error');
    error.textContent =
      err instanceof ApiError && err.status === 401
        ? 'Wrong admin token.'
        : err instanceof Error
          ? err.message
          : String(err);
    error.hidden = false;
    input.select();
  } finally {
    button.disabled = false;
  }
});

$('signout').addEventListener('click', async () => {
  await signOut();
  showSignIn('');
  announce('Signed out');
});

if (signedIn()) start();
else showSignIn('');
document.documentElement.classList.add('ready');
