// The operations console: a client of the public GraphQL API only.
// No build step: one ES module, DOM built with h() (text is always set as
// text, never parsed as HTML). The bearer token lives in sessionStorage.

const TOKEN_KEY = 'oms-console-token';
const page = document.getElementById('page');
let me = null;
let live = null;
/** Counts navigations: a page's answers land only while it is the one shown. */
let navigation = 0;

/** A DOM element with attributes and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** The server's refusal, as shown: message and code. */
class ApiFailure extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Runs one GraphQL operation; the data, or throws an ApiFailure. */
async function gql(query, variables = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  // Signed out meanwhile: nothing to send.
  if (!token) throw new ApiFailure('Signed out: sign in again.', 'UNAUTHENTICATED');
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new ApiFailure('The server cannot be reached (it may be restarting): try again in a moment.',
      'UNREACHABLE');
  }
  if (response.status === 401) {
    const refused = new ApiFailure('The token was refused: sign in again.', 'UNAUTHENTICATED');
    // Whatever page asked (a poll, an action, a button): the sign-in page,
    // which also ends that page's polling and subscription.
    tokenRefused(refused);
    throw refused;
  }
  let body;
  try {
    body = await response.json();
  } catch (error) {
    // A proxy's error page, or an answer cut short.
    throw new ApiFailure(`The server cannot be reached: it answered ${response.status} without a `
      + 'GraphQL answer. Try again in a moment.', 'UNREACHABLE');
  }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    throw new ApiFailure(first.message, (first.extensions || {}).code || 'ERROR');
  }
  return body.data;
}

function errorBox(error) {
  const code = error.code ? ` (${error.code})` : '';
  return h('div', { class: 'error', role: 'alert' }, `${error.message}${code}`);
}

function show(...nodes) {
  page.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function can(action) {
  const role = me ? me.role : '';
  if (action === 'operate') return role === 'operator' || role === 'admin' || role === 'platform';
  // Rebuilds and consumer resets touch every tenant of the server.
  if (action === 'every tenant') return Boolean(me && me.everyTenant);
  return false;
}

function age(ms) {
  if (ms === null || ms === undefined) return '';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

function table(headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

function link(href, text) {
  return h('a', { href }, text);
}

/** The link to a list's next page (its other filters kept), or null on the last page. */
function nextPage(name, params, pageInfo) {
  if (!pageInfo.hasNextPage) return null;
  const next = new URLSearchParams({ ...Object.fromEntries(params), after: pageInfo.endCursor });
  return h('p', {}, link(`#/${name}?${next}`, 'Next page'));
}

/** What a case is about: its forward step, else what its handoff asked. */
function stepLabel(kase) {
  if (kase.step) return kase.step;
  const purposes = {
    RELEASE: 'compensation: release',
    CANCEL: 'compensation: cancel',
    NOTIFY: 'customer notification',
    GENERATE_DOCUMENT: 'confirmation document',
  };
  return purposes[kase.purpose] || kase.purpose;
}

function commandId() {
  return `console-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * A live subscription over graphql-transport-ws; calls onEvent per event
 * and onSubscribed each time it is (re)subscribed, so the page can read
 * what changed meanwhile. A socket the server closes (a restart closes
 * with 1012) is opened again after 1 s, doubling to 30 s, unless the
 * credential was refused (4401, 4403).
 */
/** Says whether the live page is live: `text` shown, or nothing. */
function liveNotice(text) {
  const notice = document.getElementById('live-status');
  notice.textContent = text || '';
  notice.hidden = !text;
}

function subscribe(query, onEvent, onSubscribed) {
  let socket = null;
  let closed = false;
  let delay = 1000;
  const open = () => {
    const url = new URL('/ws', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(url, 'graphql-transport-ws');
    socket.onopen = () => socket.send(JSON.stringify({
      type: 'connection_init',
      payload: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
    }));
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === 'connection_ack') {
        delay = 1000;
        liveNotice(null);
        socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
        // What changed between the first read and the subscription.
        if (onSubscribed) onSubscribed();
      } else if (frame.type === 'next') {
        onEvent(frame.payload);
      } else if (frame.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      }
    };
    socket.onclose = (event) => {
      if (closed) return;
      // The server no longer takes the token (revoked, or new tokens):
      // say so rather than show a queue that no longer updates.
      if (event.code === 4401) {
        tokenRefused();
        return;
      }
      if (event.code === 4403) {
        liveNotice('Live updates are not open to this role: reload the page to see changes.');
        return;
      }
      // Say so rather than show a queue that silently stops updating.
      const why = event.reason ? `${event.code}: ${event.reason}` : String(event.code);
      liveNotice(`Live updates interrupted (${why}); retrying in ${Math.round(delay / 1000)} s. `
        + 'What is shown may be out of date.');
      setTimeout(() => { if (!closed) open(); }, delay);
      delay = Math.min(delay * 2, 30000);
    };
  };
  open();
  return { close: () => { closed = true; liveNotice(null); socket.close(); } };
}

/** The server refused the token: forget it and ask for another. */
function tokenRefused(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  signIn(error || new ApiFailure('The token was refused: sign in again.', 'UNAUTHENTICATED'));
}

function stopLive() {
  if (live) live.close();
  live = null;
}

/**
 * One visit to a page. What it shows, and the subscription or polling it
 * keeps live, take effect only while it is still the page the operator is
 * on: a page left before its answer came neither replaces the next page
 * nor stays live behind it.
 */
function visit() {
  stopLive();
  const mine = ++navigation;
  const current = () => mine === navigation;
  return {
    current,
    show: (...nodes) => { if (current()) show(...nodes); },
    keepLive: (handle) => {
      if (current()) live = handle;
      else handle.close();
    },
  };
}

// ---------------------------------------------------------------- sign in

function signIn(message) {
  visit();
  document.getElementById('who').textContent = '';
  document.getElementById('sign-out').hidden = true;
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true });
  const form = h('form', { class: 'action', id: 'sign-in' },
    h('label', {}, 'Bearer token', input),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    // A token pasted with its scheme is the same token.
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    if (!token) {
      signIn(new Error('Enter the bearer token your administrator gave you.'));
      return;
    }
    // Only visible ASCII can travel in a header.
    if (!/^[\x21-\x7e]+$/.test(token)) {
      signIn(new Error('A token is letters, digits and punctuation only, with no space: check what was pasted.'));
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    await start();
  });
  show(h('h1', {}, 'Sign in'), message ? errorBox(message) : null, form);
  input.focus();
}

// ---------------------------------------------------------------- fallout

const REASONS = ['BUSINESS_REJECTED', 'VALIDATION_REJECTED', 'DUPLICATE_CONFLICT',
  'SECURITY_CONFIGURATION', 'SCHEMA_MISMATCH', 'UNCLASSIFIED', 'RETRIES_EXHAUSTED', 'SLA_BREACH',
  'LOCAL_IMPOSSIBLE'];
const TARGETS = ['INVENTORY', 'PROVISIONING', 'BILLING', 'CRM', 'DOCUMENT', 'NOTIFICATION'];

const FALLOUT = `query Fallout($target: TargetSystem, $reason: FalloutReason, $minAgeMs: Int, $after: String) {
  fallout(targetSystem: $target, reason: $reason, minAgeMs: $minAgeMs, first: 50, after: $after) {
    nodes { handoffId orderId lineId step purpose target reason attempt ageMs }
    pageInfo { hasNextPage endCursor }
  }
}`;

function select(name, label, values, current) {
  return h('label', {}, label,
    h('select', { name },
      h('option', { value: '' }, 'any'),
      values.map((v) => h('option', { value: v, selected: v === current }, v))));
}

/** Minutes typed in a filter as milliseconds; `undefined` when not a usable age. */
function minutesAsMs(text) {
  if (!text) return null;
  const ms = Number(text) * 60000;
  return Number.isSafeInteger(Math.round(ms)) && ms >= 0 ? Math.round(ms) : undefined;
}

async function falloutPage(view, params) {
  const filters = {
    target: params.get('target') || null,
    reason: params.get('reason') || null,
    minAgeMs: minutesAsMs(params.get('minAgeMin')),
    after: params.get('after') || null,
  };
  const form = h('form', { class: 'filters', id: 'fallout-filters' },
    select('target', 'Target system', TARGETS, filters.target),
    select('reason', 'Reason', REASONS, filters.reason),
    h('label', {}, 'Older than (min)',
      h('input', { name: 'minAgeMin', type: 'number', min: 0, value: params.get('minAgeMin') || '' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    window.location.hash = `#/fallout?${next}`;
  });
  const list = h('div', { id: 'fallout-list', 'aria-live': 'polite' }, 'Loading…');
  view.show(h('h1', {}, 'Fallout queue'), form, list);
  const render = async () => {
    if (filters.minAgeMs === undefined) {
      list.replaceChildren(h('div', { class: 'error', role: 'alert' },
        'Older than (min): give a number of minutes, 0 or more.'));
      return;
    }
    try {
      const data = await gql(FALLOUT, filters);
      const rows = data.fallout.nodes.map((c) => [
        link(`#/case/${encodeURIComponent(c.handoffId)}`, c.handoffId),
        link(`#/order/${encodeURIComponent(c.orderId)}`, c.orderId),
        c.lineId, stepLabel(c), c.target, h('span', { class: 'badge bad' }, c.reason),
        String(c.attempt), age(c.ageMs)]);
      const next = nextPage('fallout', params, data.fallout.pageInfo);
      list.replaceChildren(...[
        table(['Case', 'Order', 'Line', 'Step', 'Target', 'Reason', 'Attempt', 'Age'], rows,
          'No open fallout: nothing waits for an operator.'),
        next].filter((n) => n !== null));
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  };
  await render();
  if (view.current()) {
    const refresh = coalesced(render);
    view.keepLive(subscribe(`subscription { falloutChanges { position eventType } }`, refresh, refresh));
  }
}

/**
 * `run` called at most once at a time: calls made while it runs are
 * folded into one more run after it, so a burst of live events costs two
 * reads, not one per event, and no older answer lands after a newer one.
 */
function coalesced(run) {
  let running = false;
  let again = false;
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await run();
      } while (again);
    } finally {
      running = false;
    }
  };
}

// ---------------------------------------------------------------- case

const CASE = `query Case($id: String!) {
  handoff(id: $id) {
    id status target purpose attempt idempotencyKey
    redactedRequest { name value }
    dispatches { send at }
    observations { class rawCode rawLabel source observedAt }
    calls { at source operation httpStatus latencyMs request response class rawCode }
    falloutCase {
      orderId lineId step purpose reason attempt ageMs status allowedActions lineInFallout
      evidence { rawCode rawLabel externalReference source }
      resolution { resolvedBy at how { kind reference note reason } }
      order { version }
    }
  }
}`;

// Selects `order`, so the answer waits for the order's end when the
// action settled its last line: the order page opened next shows it
// CANCELLED or COMPLETED, not OPEN.
const RESOLVE = `mutation Resolve($commandId: String!, $orderId: String!, $lineId: String!,
    $action: FalloutAction!, $reference: String, $note: String, $expectedVersion: Int) {
  resolveFallout(commandId: $commandId, orderId: $orderId, lineId: $lineId, action: $action,
      reference: $reference, note: $note, expectedVersion: $expectedVersion) {
    version deduplicated correlationId
    order { id status }
    auditTrail(first: 50) { nodes { position streamId eventType } }
  }
}`;

const RESOLVE_ON_HANDOFF = `mutation ResolveOnHandoff($commandId: String!, $handoffId: String!,
    $reference: String!, $note: String!) {
  resolveHandoffFallout(commandId: $commandId, handoffId: $handoffId, reference: $reference,
      note: $note) {
    version deduplicated correlationId
    auditTrail(first: 50) { nodes { position streamId eventType } }
  }
}`;

/**
 * Runs one action on a case: on the order when its line holds the case
 * (or is about to: a forward step's case is the line's even before the
 * line shows it, which the server says by offering CANCEL_LINE), else (a
 * failed compensation, a notification, a local impossibility) on the
 * handoff.
 */
async function resolveCase(kase, handoffId, action, values, intent) {
  const lineHolds = kase.lineInFallout || (kase.allowedActions || []).includes('CANCEL_LINE');
  if (!lineHolds && action === 'EXTERNAL_RESOLUTION') {
    const data = await gql(RESOLVE_ON_HANDOFF, {
      commandId: intent, handoffId, reference: values.reference || '', note: values.note || '',
    });
    return data.resolveHandoffFallout;
  }
  // The order as this page showed it: if it moved since (another
  // operator's action, a new attempt that fell out again as a new case),
  // the server refuses with VERSION_CONFLICT rather than resolve a case
  // the operator never saw.
  const data = await gql(RESOLVE, {
    commandId: intent, orderId: kase.orderId, lineId: kase.lineId, action,
    reference: values.reference || null, note: values.note || null,
    expectedVersion: kase.order ? kase.order.version : null,
  });
  return data.resolveFallout;
}

function actionForm(kase, handoffId, action, outcome, reload) {
  const fields = [];
  if (action === 'EXTERNAL_RESOLUTION') {
    fields.push(h('label', {}, 'Reference', h('input', { name: 'reference', required: true })));
    fields.push(h('label', {}, 'Note', h('input', { name: 'note', required: true })));
  } else if (action === 'CANCEL_LINE') {
    fields.push(h('label', {}, 'Reason', h('input', { name: 'note', required: true })));
  }
  const form = h('form', { class: 'action', 'data-action': action }, fields,
    h('button', { type: 'submit' }, action.replace('_', ' ').toLowerCase()));
  // One command id per intent: submitting again after an unanswered
  // request (a network failure) retries the same command, never a second.
  let intent = commandId();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!window.confirm(`${action} on line ${kase.lineId} of order ${kase.orderId}?`)) return;
    const values = Object.fromEntries(new FormData(form));
    try {
      const result = await resolveCase(kase, handoffId, action, values, intent);
      // The page shows the case as it is now (resolved, its actions gone),
      // with what the action did below.
      const done = await reload();
      if (!done) return;
      done.replaceChildren(
        h('div', { class: 'ok', role: 'status' },
          `Done${result.deduplicated ? ' (already done by this action before)' : ''}: the case's stream is at version ${result.version}.`),
        h('h2', {}, 'Events the action caused'),
        table(['Position', 'Stream', 'Event'],
          result.auditTrail.nodes.map((e) => [String(e.position), e.streamId, e.eventType]), 'None yet.'));
    } catch (error) {
      // The server answered with a refusal: the next submit is a new intent
      // (the user may have changed the form). Without an answer, keep it.
      if (error instanceof ApiFailure) intent = commandId();
      outcome.replaceChildren(errorBox(error));
      if (error instanceof ApiFailure && error.code === 'VERSION_CONFLICT') {
        outcome.append(h('p', { class: 'error' },
          'The order changed since this page was loaded: reload the case to see it as it is now.'));
      }
    }
  });
  return form;
}

async function casePage(view, id) {
  view.show(h('h1', {}, `Fallout case ${id}`), 'Loading…');
  const data = await gql(CASE, { id });
  const handoff = data.handoff;
  if (!handoff) {
    view.show(h('h1', {}, `Fallout case ${id}`), h('p', { class: 'empty' }, 'No such case in your tenant.'));
    return;
  }
  if (!handoff.falloutCase) {
    view.show(h('h1', {}, `Handoff ${handoff.id} `, h('span', { class: 'badge' }, handoff.status || 'REQUESTED')),
      h('p', { class: 'empty', id: 'not-in-fallout' },
        `This handoff is not in fallout: ${handoff.purpose} to ${handoff.target}, attempt ${handoff.attempt}.`),
      handoffDetail(handoff));
    return;
  }
  const kase = handoff.falloutCase;
  const outcome = h('div', { id: 'case-outcome', 'aria-live': 'polite' });
  // The case as it is now, and where to say what the action did: only
  // while this case is still the page shown (null once the operator left).
  const reload = async () => {
    try {
      await casePage(view, id);
    } catch (error) {
      // The action is done; only the re-read failed: say so, not "Loading…".
      view.show(h('h1', {}, `Fallout case ${id}`), errorBox(error),
        h('p', {}, 'The case could not be read again: reload the page to see it as it is now.'),
        h('div', { id: 'case-outcome', 'aria-live': 'polite' }));
    }
    return view.current() ? document.getElementById('case-outcome') : null;
  };
  const actions = can('operate') && kase.status === 'OPEN'
    ? kase.allowedActions.map((a) => actionForm(kase, handoff.id, a, outcome, reload))
    : [];
  const resolution = kase.resolution;
  const resolved = resolution
    ? h('p', { id: 'resolution' }, `Resolved by ${resolution.resolvedBy} at ${resolution.at}: `
      + [resolution.how.kind, resolution.how.reference, resolution.how.note, resolution.how.reason]
        .filter((part) => part).join(' · '))
    : h('p', { class: 'empty', id: 'no-actions' }, 'The case is resolved.');
  view.show(
    h('h1', {}, `Fallout case ${id}`),
    table(['Order', 'Line', 'Step', 'Attempt', 'Reason', 'Status', 'Age'], [[
      link(`#/order/${encodeURIComponent(kase.orderId)}`, kase.orderId), kase.lineId,
      stepLabel(kase), String(kase.attempt), kase.reason, kase.status, age(kase.ageMs)]], ''),
    h('h2', {}, 'Evidence'),
    table(['Raw code', 'Raw label', 'Reference', 'Source'], [[free(kase.evidence.rawCode),
      free(kase.evidence.rawLabel), free(kase.evidence.externalReference), kase.evidence.source || '']], ''),
    handoffDetail(handoff),
    h('h2', {}, 'Actions'),
    actions.length ? actions : (kase.status === 'OPEN'
      ? h('p', { class: 'empty', id: 'no-actions' }, 'Your role may not act on cases.')
      : resolved),
    outcome);
}

/** Free text for a table cell: it wraps anywhere rather than widen the page. */
function free(text) {
  return h('span', { class: 'free' }, text || '');
}

/** A handoff's calls and its redacted request. */
function handoffDetail(handoff) {
  return [
    h('h2', {}, 'Calls'),
    table(['At', 'Source', 'Operation', 'HTTP', 'Latency', 'Class', 'Request', 'Response'],
      handoff.calls.map((c) => [c.at, c.source, c.operation, String(c.httpStatus ?? ''),
        `${c.latencyMs} ms`, c.class || '', h('pre', {}, c.request), h('pre', {}, c.response || '')]),
      'No call recorded.'),
    h('h2', {}, 'Request (redacted)'),
    table(['Field', 'Value'], handoff.redactedRequest.map((f) => [f.name, free(f.value)]), 'Empty.'),
  ];
}

// ---------------------------------------------------------------- order journey

const ORDER = `query Order($id: String!) {
  order(id: $id) {
    id status quoteId createdAt completedAt version
    quote { id revision customerName }
    lines {
      id offeringId stage inFallout
      steps { kind state attempt requestedAt }
      handoffs {
        handoffId step purpose target attempt requestedAt status sends overdue
        handoff {
          dispatches { send at }
          observations { class rawCode source observedAt }
          calls { at source httpStatus latencyMs class }
        }
      }
      history { at kind step attempt handoffId falloutReason }
    }
    auditTrail(first: 200) { nodes { eventId eventType streamId correlationId } }
  }
}`;

const TRAIL = `query Trail($correlationId: String!) {
  auditTrail(correlationId: $correlationId, first: 200) {
    nodes { position causedByPosition eventType streamId recordedAt }
  }
}`;

/** The events of a correlation as a tree: each under the event that caused it. */
function causalTree(nodes) {
  const children = new Map();
  const positions = new Set(nodes.map((n) => n.position));
  for (const n of nodes) {
    const cause = n.causedByPosition;
    const parent = cause !== null && positions.has(cause) ? cause : 'root';
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(n);
  }
  const branch = (key) => h('ul', { class: 'tree' }, (children.get(key) || []).map((n) =>
    h('li', {}, `${n.position} ${n.eventType} `, h('span', { class: 'badge' }, n.streamId),
      children.has(n.position) ? branch(n.position) : null)));
  return branch('root');
}

/**
 * One handoff of a step (an attempt) or a compensation: its sends, and
 * what was observed of it by dispatch answer, callback and reconciliation
 * check, oldest first.
 */
function attemptView(x, current) {
  const detail = x.handoff || { dispatches: [], observations: [], calls: [] };
  const entries = [
    ...detail.dispatches.map((d) => [d.at, `sent (send ${d.send})`]),
    ...detail.observations.map((o) => [o.observedAt,
      `${{ DISPATCH: 'dispatch answer', CALLBACK: 'callback', RECONCILIATION: 'reconciliation check' }[o.source] || o.source}: ${o.class} ${o.rawCode || ''}`]),
    ...detail.calls.map((c) => [c.at, `${c.source} call: HTTP ${c.httpStatus ?? '—'} in ${c.latencyMs} ms`]),
  ].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return h('div', { class: `attempt ${current ? '' : 'earlier'}` },
    `Attempt ${x.attempt}: `, link(`#/case/${encodeURIComponent(x.handoffId)}`, x.handoffId),
    ` ${x.status || 'REQUESTED'} (${x.target}, requested ${x.requestedAt}, ${x.sends} send(s))`,
    x.overdue ? h('span', { class: 'badge bad' }, 'overdue') : null,
    entries.length ? h('ul', {}, entries.map(([at, text]) => h('li', {}, `${at} ${text}`))) : null);
}

function lineView(line) {
  const compensations = line.handoffs.filter((x) => !x.step);
  return h('section', {},
    h('h2', {}, `Line ${line.id} (${line.offeringId}): `, h('span', { class: `badge ${line.inFallout ? 'bad' : ''}` }, line.stage)),
    h('ol', { class: 'timeline' },
      line.steps.map((step) => {
        const attempts = line.handoffs.filter((x) => x.step === step.kind);
        return h('li', {},
          h('strong', {}, step.kind), ` ${step.state}`,
          attempts.map((x, i) => attemptView(x, i === attempts.length - 1)));
      }),
      compensations.length
        ? h('li', {}, h('strong', {}, 'Compensations'), compensations.map((x) => attemptView(x, true)))
        : null),
    h('details', {}, h('summary', {}, 'History'),
      table(['At', 'Change', 'Step', 'Attempt', 'Handoff', 'Reason'], line.history.map((e) => [
        e.at, e.kind, e.step || '', String(e.attempt), e.handoffId || '', e.falloutReason || '']), 'No history.')));
}

/** Most correlations shown as causal trees on an order's page. */
const MAX_CHAINS = 10;

async function orderPage(view, id) {
  view.show(h('h1', {}, `Order ${id}`), 'Loading…');
  const data = await gql(ORDER, { id });
  const order = data.order;
  if (!order) {
    view.show(h('h1', {}, `Order ${id}`), h('p', { class: 'empty' }, 'No such order in your tenant.'));
    return;
  }
  // The order's events come from the accepting command and from each
  // operator action since: one causal tree per correlation, oldest first.
  const every = [...new Set(order.auditTrail.nodes.map((n) => n.correlationId))];
  const correlations = every.slice(0, MAX_CHAINS);
  const trails = await Promise.all(correlations.map((c) => gql(TRAIL, { correlationId: c })));
  view.show(
    h('h1', {}, `Order ${order.id} `, h('span', { class: 'badge', id: 'order-status' }, order.status)),
    h('p', {}, 'Quote ', link(`#/quote/${encodeURIComponent(order.quoteId)}`, order.quoteId),
      order.quote ? ` (revision ${order.quote.revision}, ${order.quote.customerName})` : '',
      `; captured ${order.createdAt}`, order.completedAt ? `; completed ${order.completedAt}` : ''),
    (order.lines || []).map(lineView),
    h('h2', {}, 'Causal chains'),
    correlations.length
      ? correlations.map((c, i) => h('section', { class: 'chain' },
        h('h3', {}, `Correlation ${c}`), causalTree(trails[i].auditTrail.nodes)))
      : h('p', { class: 'empty' }, 'No events.'),
    every.length > correlations.length
      ? h('p', { class: 'empty', id: 'more-chains' },
        `${every.length - correlations.length} later correlation(s) not shown: `
        + 'oms-replay trace, or auditTrail(correlationId:), shows each.')
      : null);
}

// ---------------------------------------------------------------- handoffs

const HANDOFFS = `query Handoffs($after: String) {
  handoffs(pendingOnly: true, first: 50, after: $after) {
    nodes { id orderId status target purpose attempt ageMs overdue lastObservation { class rawCode } }
    pageInfo { hasNextPage endCursor }
  }
}`;

async function handoffsPage(view, params, done) {
  const report = h('div', { 'aria-live': 'polite' }, done || null);
  const reconcile = can('operate')
    ? h('button', { type: 'button', id: 'reconcile', onclick: async (event) => {
      event.target.disabled = true;
      report.replaceChildren(h('div', { class: 'ok', role: 'status' }, 'Reconciling…'));
      try {
        const data = await gql(`mutation { triggerReconciliation { checked changed openHandoffs } }`);
        const r = data.triggerReconciliation;
        // The list as it is now, with what the run found above it.
        await handoffsPage(view, params, h('div', { class: 'ok', role: 'status' },
          `Reconciliation checked ${r.checked} of ${r.openHandoffs} open handoffs, changed ${r.changed}.`));
      } catch (error) {
        report.replaceChildren(errorBox(error));
        event.target.disabled = false;
      }
    } }, 'Reconcile now')
    : null;
  const data = await gql(HANDOFFS, { after: params.get('after') || null });
  view.show(h('h1', {}, 'Pending handoffs (unknown first)'), reconcile, report,
    table(['Handoff', 'Order', 'Status', 'Target', 'Purpose', 'Attempt', 'Age', 'Last answer'],
      data.handoffs.nodes.map((x) => [link(`#/case/${encodeURIComponent(x.id)}`, x.id),
        link(`#/order/${encodeURIComponent(x.orderId)}`, x.orderId),
        h('span', { class: `badge ${x.status === 'UNKNOWN' || x.overdue ? 'bad' : ''}` }, x.overdue ? `${x.status} overdue` : x.status),
        x.target, x.purpose, String(x.attempt), age(x.ageMs),
        x.lastObservation ? `${x.lastObservation.class} ${x.lastObservation.rawCode || ''}` : '']),
      'Nothing pending.'),
    nextPage('handoffs', params, data.handoffs.pageInfo));
}

// ---------------------------------------------------------------- dashboard

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes and children (strings become text). */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** One colour per outcome class: success greens, waiting blues, refusals reds. */
const CLASS_COLORS = {
  SUCCEEDED: '#2f9e44', IDEMPOTENT_SUCCESS: '#8ce99a', ACCEPTED: '#4c7bd9',
  UNKNOWN: '#f59f00', TECHNICAL_RETRYABLE: '#ffd43b', BUSINESS_REJECTED: '#e03131',
  VALIDATION_REJECTED: '#f783ac', DUPLICATE_CONFLICT: '#ae3ec9',
  SECURITY_CONFIGURATION: '#862e9c', SCHEMA_MISMATCH: '#5c3c00',
};

/** A colour swatch: set through the style object, which the page's CSP allows. */
function swatch(color) {
  const el = h('span', { class: 'swatch' });
  el.style.background = color;
  return el;
}

function legend(entries) {
  return h('p', { class: 'legend' }, entries.map(([name, color]) =>
    h('span', {}, swatch(color), name)));
}

/**
 * Horizontal stacked bars: one row per label, one segment per series
 * value; each segment has a tooltip, and the figures stay readable as
 * the table under the chart.
 */
function stackedBars(id, rows, colors, caption) {
  const total = (row) => row.segments.reduce((sum, [, count]) => sum + count, 0);
  const max = Math.max(1, ...rows.map(total));
  const width = 720;
  const label = 130;
  const height = rows.length * 28 + 8;
  const chart = svg('svg', { id, class: 'chart', viewBox: `0 0 ${width + label + 60} ${height}`, role: 'img',
    'aria-label': caption },
  svg('title', {}, caption),
  rows.map((row, i) => {
    let x = label;
    const y = 6 + i * 28;
    const segments = row.segments.filter(([, count]) => count > 0).map(([name, count]) => {
      const w = (count / max) * width;
      const rect = svg('rect', { x, y, width: Math.max(w, 1), height: 20, fill: colors[name] || '#868e96' },
        svg('title', {}, `${row.label} ${name}: ${count}`));
      x += w;
      return rect;
    });
    return svg('g', {},
      svg('text', { x: 0, y: y + 15, class: 'axis' }, row.label),
      segments,
      svg('text', { x: x + 6, y: y + 15, class: 'axis' }, String(total(row))));
  }));
  const names = [...new Set(rows.flatMap((r) => r.segments.filter(([, c]) => c > 0).map(([n]) => n)))];
  return h('figure', {}, chart, legend(names.map((n) => [n, colors[n] || '#868e96'])));
}

/** Columns per hour: opened and resolved fallout side by side. */
function hourlyChart(hours) {
  const width = 960;
  const height = 180;
  const left = 40;
  const max = Math.max(1, ...hours.flatMap((x) => [x.opened, x.resolved]));
  const step = hours.length ? width / hours.length : width;
  const bar = Math.max(2, step / 2 - 2);
  const y = (v) => 10 + height - (v / max) * height;
  const caption = `Fallout opened and resolved per hour over the last ${hours.length} hours; at most ${max} in an hour.`;
  return h('figure', {},
    svg('svg', { id: 'fallout-by-hour', class: 'chart', viewBox: `0 0 ${width + left + 10} ${height + 40}`, role: 'img',
      'aria-label': caption },
    svg('title', {}, caption),
    svg('line', { x1: left, x2: left + width, y1: y(0), y2: y(0), class: 'rule' }),
    svg('text', { x: 0, y: y(max) + 4, class: 'axis' }, String(max)),
    svg('text', { x: 0, y: y(0) + 4, class: 'axis' }, '0'),
    hours.map((x, i) => {
      const x0 = left + i * step + 1;
      const hour = x.hourStart.slice(11, 16);
      return svg('g', {},
        svg('rect', { x: x0, y: y(x.opened), width: bar, height: y(0) - y(x.opened), fill: '#e03131' },
          svg('title', {}, `${x.hourStart}: ${x.opened} opened`)),
        svg('rect', { x: x0 + bar + 1, y: y(x.resolved), width: bar, height: y(0) - y(x.resolved), fill: '#2f9e44' },
          svg('title', {}, `${x.hourStart}: ${x.resolved} resolved`)),
        i % 3 === 0 ? svg('text', { x: x0, y: height + 30, class: 'axis' }, hour) : null);
    })),
    legend([['opened', '#e03131'], ['resolved', '#2f9e44']]));
}

function tile(label, value, bad) {
  return h('div', { class: `tile ${bad ? 'bad' : ''}` }, h('span', { class: 'figure' }, value), h('span', {}, label));
}

async function dashboardPage(view) {
  const data = await gql(`{ dashboard { pending unknown openFallout oldestPendingAgeMs
    targets { target pending unknown outcomes { class count } }
    falloutByHour { hourStart opened resolved } } }`);
  const d = data.dashboard;
  const waiting = d.targets.map((t) => ({ label: t.target,
    segments: [['unknown', t.unknown], ['other pending', Math.max(0, t.pending - t.unknown)]] }));
  const outcomes = d.targets.map((t) => ({ label: t.target,
    segments: t.outcomes.map((o) => [o.class, o.count]) }));
  view.show(h('h1', {}, 'Dashboard'),
    h('div', { class: 'tiles' },
      tile('pending handoffs', String(d.pending), false),
      tile('unknown outcome', String(d.unknown), d.unknown > 0),
      tile('open fallout', String(d.openFallout), d.openFallout > 0),
      tile('oldest pending', age(d.oldestPendingAgeMs) || '—', false)),
    h('h2', {}, 'Pending by target'),
    stackedBars('pending-by-target', waiting, { unknown: '#f59f00', 'other pending': '#4c7bd9' },
      'Handoffs waiting for an outcome per target system, unknown outcomes first.'),
    h('h2', {}, 'Outcomes by target'),
    stackedBars('outcomes-by-target', outcomes, CLASS_COLORS,
      'Observations per target system by normalized outcome class.'),
    h('h2', {}, 'Fallout per hour'),
    hourlyChart(d.falloutByHour),
    h('details', {}, h('summary', {}, 'The figures as tables'),
      table(['Target', 'Pending', 'Unknown', 'Outcomes'], d.targets.map((t) => [t.target, String(t.pending),
        String(t.unknown), t.outcomes.map((o) => `${o.class} ${o.count}`).join(', ')]), 'No targets.'),
      table(['Hour', 'Opened', 'Resolved'], d.falloutByHour.map((x) => [x.hourStart, String(x.opened),
        String(x.resolved)]), 'No fallout yet.')));
}

// ---------------------------------------------------------------- consumers

const CONSUMERS = `{ consumers { running parkedCallbacks
  fulfillment { name state checkpoint lag inFlight retries lastError failure }
  relay { checkpoint lag connected lastError } } }`;

/** How often the consumers page refreshes its figures while shown. */
const CONSUMERS_REFRESH_MS = 2000;

function rebuildText(p) {
  if (!p.rebuild) return '';
  const percent = p.rebuild.total ? Math.floor((p.rebuild.done / p.rebuild.total) * 100) : 0;
  return `rebuilding: ${p.rebuild.done} of ${p.rebuild.total} (${percent} %)`;
}

async function consumersPage(view) {
  const outcome = h('div', { 'aria-live': 'polite' });
  const rebuild = (name) => can('every tenant')
    ? h('button', { type: 'button', onclick: async (event) => {
      if (!window.confirm(`Rebuild ${name} from position 0?`)) return;
      event.target.disabled = true;
      outcome.replaceChildren(h('div', { class: 'ok', role: 'status' }, `Rebuilding ${name}: progress shows in the table.`));
      try {
        const data = await gql(`mutation($n: String!) { rebuildProjection(name: $n) { name events eventsPerS } }`, { n: name });
        outcome.replaceChildren(h('div', { class: 'ok', role: 'status' },
          data.rebuildProjection.map((r) => `${r.name}: ${r.events} events at ${Math.round(r.eventsPerS)}/s`).join('; ')));
      } catch (error) {
        outcome.replaceChildren(errorBox(error));
      } finally {
        event.target.disabled = false;
      }
    } }, 'Rebuild')
    : '';
  const projectorRows = h('div', { id: 'projectors' }, 'Loading…');
  const consumerRows = h('div', { id: 'fulfillment-consumers' }, 'Loading…');
  const buttons = new Map();
  const refresh = async () => {
    try {
      const projectors = (await gql(`{ projectors { name checkpoint head lag eventsPerS failure rebuild { done total } } }`)).projectors;
      for (const p of projectors) if (!buttons.has(p.name)) buttons.set(p.name, rebuild(p.name));
      projectorRows.replaceChildren(table(['Name', 'Checkpoint', 'Head', 'Lag', 'Events/s', 'Rebuild', 'Failure', ''],
        projectors.map((p) => [p.name, String(p.checkpoint), String(p.head), String(p.lag), p.eventsPerS.toFixed(0),
          rebuildText(p), p.failure || '', buttons.get(p.name)]), 'None.'));
    } catch (error) {
      projectorRows.replaceChildren(errorBox(error));
    }
    // The fulfillment consumers are an operator's to read.
    if (!can('operate')) {
      consumerRows.replaceChildren(h('p', { class: 'empty' }, 'Your role does not see the fulfillment consumers.'));
      return null;
    }
    try {
      const consumers = (await gql(CONSUMERS)).consumers;
      consumerRows.replaceChildren(table(['Name', 'State', 'Checkpoint', 'Lag', 'In flight', 'Retries', 'Last error'],
        consumers.fulfillment.map((c) => [c.name, c.state, String(c.checkpoint), String(c.lag), String(c.inFlight),
          String(c.retries), c.failure || c.lastError || '']), 'The fulfillment runtime is stopped.'));
      return consumers;
    } catch (error) {
      consumerRows.replaceChildren(errorBox(error));
      return null;
    }
  };
  const consumers = await refresh();
  const reset = can('every tenant') && consumers ? resetForm(consumers.fulfillment, outcome) : null;
  view.show(h('h1', {}, 'Consumers and projectors'), outcome,
    h('h2', {}, 'Projectors'), projectorRows,
    h('h2', {}, 'Fulfillment consumers'), consumerRows,
    reset);
  // Live while shown: the next visit ends it.
  if (!view.current()) return;
  const timer = setInterval(refresh, CONSUMERS_REFRESH_MS);
  view.keepLive({ close: () => clearInterval(timer) });
}

const RESET = `mutation Reset($name: String!, $to: Int!, $recovery: Boolean) {
  resetConsumer(name: $name, toPosition: $to, recovery: $recovery) {
    consumer previousCheckpoint checkpoint recoveryUntil sideEffects
  }
}`;

/** Admin only: move a consumer's checkpoint, behind a confirmation. */
function resetForm(consumers, outcome) {
  const form = h('form', { class: 'action', id: 'reset-consumer' },
    h('label', {}, 'Consumer', h('select', { name: 'name', required: true },
      consumers.map((c) => h('option', { value: c.name }, c.name)))),
    h('label', {}, 'To position', h('input', { name: 'to', type: 'number', min: 0, required: true })),
    h('label', {}, 'Recovery mode (no external calls below the old checkpoint)',
      h('input', { name: 'recovery', type: 'checkbox', checked: true })),
    h('button', { type: 'submit' }, 'Reset checkpoint'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = new FormData(form);
    const name = values.get('name');
    const to = Number(values.get('to'));
    if (!window.confirm(`Move ${name}'s checkpoint to ${to}?`)) return;
    try {
      const r = (await gql(RESET, { name, to, recovery: values.get('recovery') === 'on' })).resetConsumer;
      outcome.replaceChildren(h('div', { class: 'ok', role: 'status' },
        `${r.consumer}: checkpoint ${r.previousCheckpoint} → ${r.checkpoint}` +
        (r.recoveryUntil !== null ? `, recovery until ${r.recoveryUntil}` : '')));
    } catch (error) {
      outcome.replaceChildren(errorBox(error));
    }
  });
  return h('section', {}, h('h2', {}, 'Reset a consumer (every tenant)'), form);
}

// ---------------------------------------------------------------- quotes

async function quotesPage(view, params) {
  const data = await gql(`query Quotes($after: String) { quotes(first: 50, after: $after) {
    nodes { id status revision customerName updatedAt recurringMonthlyTotal { amount currency } }
    pageInfo { hasNextPage endCursor } } }`, { after: params.get('after') || null });
  view.show(h('h1', {}, 'Quotes'), table(['Quote', 'Status', 'Revision', 'Customer', 'Monthly', 'Updated'],
    data.quotes.nodes.map((q) => [link(`#/quote/${encodeURIComponent(q.id)}`, q.id), q.status, String(q.revision),
      q.customerName, q.recurringMonthlyTotal ? `${q.recurringMonthlyTotal.amount} ${q.recurringMonthlyTotal.currency}` : '',
      q.updatedAt]), 'No quotes yet.'),
    nextPage('quotes', params, data.quotes.pageInfo));
}

async function quotePage(view, id) {
  const data = await gql(`query($id: String!) { quote(id: $id) { id status revision customerName
    lines { lineId offeringId quantity termMonths }
    price { revision totals { oneTime { amount currency } recurringMonthly { amount currency } } discount { percent } }
    approval { state decidedBy } proposal { revision artifactHash } signature { revision signer }
    earlierRevisions { price { revision } approval { state } proposal { revision } signature { revision } }
    acceptance { orderId revision } } }`, { id });
  const q = data.quote;
  if (!q) {
    view.show(h('h1', {}, `Quote ${id}`), h('p', { class: 'empty' }, 'No such quote in your tenant.'));
    return;
  }
  const money = (m) => (m ? `${m.amount} ${m.currency}` : '');
  const earlier = q.earlierRevisions;
  view.show(h('h1', {}, `Quote ${q.id} `, h('span', { class: 'badge' }, q.status)),
    h('p', {}, `${q.customerName}, revision ${q.revision}`,
      q.acceptance ? h('span', {}, '; order ', link(`#/order/${encodeURIComponent(q.acceptance.orderId)}`, q.acceptance.orderId)) : ''),
    h('h2', {}, 'Lines'), table(['Line', 'Offering', 'Quantity', 'Term'],
      (q.lines || []).map((l) => [l.lineId, l.offeringId, String(l.quantity), `${l.termMonths} months`]), 'No lines.'),
    h('h2', {}, 'Current revision'),
    table(['Price', 'Discount', 'Approval', 'Proposal', 'Signature'], [[
      q.price ? `${money(q.price.totals.oneTime)} once, ${money(q.price.totals.recurringMonthly)} monthly` : 'not priced',
      q.price ? `${q.price.discount.percent} %` : '', q.approval ? q.approval.state : 'none',
      q.proposal ? q.proposal.artifactHash : 'none', q.signature ? q.signature.signer : 'none']], ''),
    h('h2', {}, 'Earlier revisions'),
    earlier ? table(['Price of', 'Approval', 'Proposal of', 'Signature of'], [[
      earlier.price ? String(earlier.price.revision) : '', earlier.approval ? earlier.approval.state : '',
      earlier.proposal ? String(earlier.proposal.revision) : '', earlier.signature ? String(earlier.signature.revision) : '']], '')
      : h('p', { class: 'empty' }, 'None.'));
}

// ---------------------------------------------------------------- router

async function route() {
  const view = visit();
  const [path, query] = window.location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query || '');
  // A malformed escape (`#/case/%E0`) is kept as typed: the page then
  // says the id is not found instead of the router failing unseen.
  const decode = (part) => { try { return decodeURIComponent(part); } catch { return part; } };
  const [, name, id] = (path || '/fallout').split('/').map(decode);
  try {
    if (name === 'case' && id) await casePage(view, id);
    else if (name === 'order' && id) await orderPage(view, id);
    else if (name === 'handoffs') await handoffsPage(view, params);
    else if (name === 'dashboard') await dashboardPage(view);
    else if (name === 'consumers') await consumersPage(view);
    else if (name === 'quotes') await quotesPage(view, params);
    else if (name === 'quote' && id) await quotePage(view, id);
    else await falloutPage(view, params);
  } catch (error) {
    if (!view.current()) return;
    if (error.code === 'UNAUTHENTICATED') tokenRefused(error);
    // An id no record can have (the grammar refused it) is not found.
    else if (error.code === 'VALIDATION' && id) {
      show(h('h1', {}, `${name} ${id}`), h('p', { class: 'empty' }, `No such ${name} in your tenant: ${error.message}`));
    } else show(h('h1', {}, 'Something went wrong'), errorBox(error));
  }
  if (view.current()) page.focus();
}

async function start() {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    signIn();
    return;
  }
  try {
    me = (await gql(`{ me { tenant role name everyTenant } }`)).me;
  } catch (error) {
    // Only a refused token is forgotten: a server out of reach keeps it.
    if (error.code === 'UNAUTHENTICATED') {
      sessionStorage.removeItem(TOKEN_KEY);
      signIn(error);
    } else {
      visit();
      show(h('h1', {}, 'Cannot sign in now'), errorBox(error),
        h('button', { type: 'button', id: 'retry', onclick: () => start() }, 'Try again'));
    }
    return;
  }
  document.getElementById('who').textContent = `${me.name} (${me.role}) · tenant ${me.tenant}`;
  const out = document.getElementById('sign-out');
  out.hidden = false;
  out.onclick = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    me = null;
    signIn();
  };
  await route();
}

window.addEventListener('hashchange', () => { if (me) route(); });
start();
