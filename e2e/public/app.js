// The demo page: a chat room over Holdline. The tabs of this browser share one
// session (HoldlineTabClient); every page, in any browser, sees every message.
//
// URL parameters: ?server=URL  a Holdline endpoint on another origin (default: /holdline here)
//                 ?name=NAME   the name to post as, in this tab only (otherwise the
//                              browser's name, kept in localStorage: every tab shares it)
//                 ?share=0     one session per tab (a plain HoldlineClient, no tab sharing)
//                 ?transports=polling or websocket,polling ...  the client's `transports` option
//
// The page shows what carries the session (polling or a WebSocket) in the
// pill beside the state and under "Transport", updated on the client's
// 'transport' event.
//
// Sent and Received count chat messages: the ones this tab posted, and the
// ones the log shows (history included), so they agree with what is on screen.
// When the page goes away (pagehide) and its session would go with it (no
// other tab of this browser takes it over, no ?resume=session), the page
// closes it through the demo server's /demo/leave (a beacon), so the session
// count the other pages show drops at once rather than after the server's
// idle timeout.
//
// For tests: window.__states (every state, in order), window.__events
// (window.__events of type 'transport': every switch), window.__holdline
// (the client), window.__chat.post(text).
import { HoldlineClient, HoldlineTabClient } from '/lib/holdline-tabs.js';

const params = new URLSearchParams(location.search);
const channelUrl = params.get('server') || new URL('/holdline', location.href).href;
const share = params.get('share') !== '0';
const transports = params.get('transports')?.split(',').map((t) => t.trim()).filter((t) => t !== '');
//                 ?resume=session  reload continuity (a plain HoldlineClient with resume: 'session')
const resume = params.get('resume') === 'session';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'), transportPill: $('transport-pill'), transport: $('transport'), session: $('session'), role: $('role'),
  sent: $('sent'), received: $('received'), rtt: $('rtt'), note: $('note'),
  log: $('log'), chat: document.querySelector('.chat'), form: $('compose'), name: $('name'), text: $('text'), send: $('send'),
};

const states = [];
const events = [];
window.__states = states;
window.__events = events;
// For tests: window.__chatSeen, the number of every chat message as it arrived
// (repeats too); with ?resume=session it lasts across reloads (sessionStorage).
const SEEN_KEY = 'holdline-demo-seen';
const chatSeen = resume ? JSON.parse(sessionStorage.getItem(SEEN_KEY) ?? '[]') : [];
window.__chatSeen = chatSeen;
if (resume) addEventListener('pagehide', () => sessionStorage.setItem(SEEN_KEY, JSON.stringify(chatSeen)));

// Who this page is: its name goes with every open (the `auth` option, read
// again at each open), and the server posts under it.
const options = { auth: () => ({ name: ui.name.value.trim() || 'anonymous' }), ...(transports ? { transports } : {}), ...(resume ? { resume: 'session' } : {}) };
const client = share ? new HoldlineTabClient(channelUrl, options) : new HoldlineClient(channelUrl, options);
window.__holdline = client;

// ---- names and ids ----

function randomHex(bytes) {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

// One name per browser, whoever asks: a second tab gets the same one, and a
// change in one tab shows in the others. ?name= names this tab only.
function setupName() {
  const KEY = 'holdline-demo-name';
  const load = () => {
    try {
      return localStorage.getItem(KEY);
    } catch {
      return null; // Storage may be unavailable (private mode): the name lasts as long as the page.
    }
  };
  const save = (name) => {
    try {
      localStorage.setItem(KEY, name);
    } catch {
      // As above.
    }
  };
  const fromUrl = params.get('name');
  ui.name.value = fromUrl || load() || `guest-${randomHex(2)}`;
  if (fromUrl) return;
  save(ui.name.value);
  ui.name.addEventListener('change', () => {
    if (ui.name.value.trim() !== '') save(ui.name.value.trim());
  });
  addEventListener('storage', (e) => {
    if (e.key === KEY && e.newValue) ui.name.value = e.newValue;
  });
}
setupName();

// ---- the chat log ----
// Messages are ordered by (server instance, n) and shown once per id: history
// merged after a reset, or a post re-sent after a change of leading tab, never
// shows twice. A restarted server numbers from 1 again, so each server
// instance ("era") sorts after the ones seen before it.

const eras = new Map(); // server instance id -> index
const shown = new Set(); // message ids
const mine = new Set(); // ids this page posted (and messages under this page's name)
// Round trip, as a person sees it: from posting to the message coming back
// from the server, smoothed (the same figure on polling and on a WebSocket).
const postedAt = new Map(); // id -> performance.now() when posted
let roundTripMs;
let postsSent = 0; // chat messages this tab posted (the Sent counter)
let chatReceived = 0; // chat messages the log shows (the Received counter)

function eraOf(srv) {
  if (!eras.has(srv)) eras.set(srv, eras.size);
  return eras.get(srv);
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function addMessage(srv, m) {
  if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || typeof m.n !== 'number') return;
  if (shown.has(m.id)) return;
  shown.add(m.id);
  chatReceived++;
  const posted = postedAt.get(m.id);
  if (posted !== undefined) {
    postedAt.delete(m.id);
    const ms = performance.now() - posted;
    roundTripMs = roundTripMs === undefined ? ms : 0.7 * roundTripMs + 0.3 * ms;
  }
  const era = eraOf(srv);
  const li = document.createElement('li');
  li.className = mine.has(m.id) || m.name === ui.name.value.trim() ? 'msg mine' : 'msg';
  li.dataset.era = String(era);
  li.dataset.n = String(m.n);
  li.dataset.id = m.id;
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = String(m.name);
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = String(m.text);
  const time = document.createElement('time');
  time.dateTime = new Date(m.at).toISOString();
  time.textContent = timeOf(m.at);
  li.append(who, text, time);

  // Usually the newest: walk back from the end to the first item that sorts before it.
  const atBottom = ui.chat.scrollHeight - ui.chat.scrollTop - ui.chat.clientHeight < 40;
  let after = ui.log.lastElementChild;
  while (after && (Number(after.dataset.era) > era || (Number(after.dataset.era) === era && Number(after.dataset.n) > m.n))) {
    after = after.previousElementSibling;
  }
  if (after) after.after(li);
  else ui.log.prepend(li);
  while (ui.log.childElementCount > 500) ui.log.firstElementChild.remove();
  if (atBottom) ui.chat.scrollTop = ui.chat.scrollHeight;
}

let sessionsOnServer;
// The key the demo server gave this session, for /demo/leave: { sid, key }.
let leaveKey;

function onData(data) {
  if (typeof data !== 'string') return;
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  if (msg.type === 'welcome' && typeof msg.key === 'string') leaveKey = { sid: client.sessionId, key: msg.key };
  else if (msg.type === 'chat') {
    chatSeen.push(msg.message?.n);
    addMessage(msg.srv, msg.message);
  }
  else if (msg.type === 'history' && Array.isArray(msg.messages)) {
    for (const m of msg.messages) addMessage(msg.srv, m);
    sessionsOnServer = msg.sessions;
  } else if (msg.type === 'presence') sessionsOnServer = msg.sessions;
  render();
}

async function post(text) {
  const id = randomHex(12);
  mine.add(id);
  postedAt.set(id, performance.now());
  if (postedAt.size > 100) postedAt.delete(postedAt.keys().next().value);
  await client.send(JSON.stringify({ type: 'post', id, text }));
  postsSent++;
  render();
  return id;
}

function sync() {
  client.send(JSON.stringify({ type: 'sync' })).catch(() => undefined);
}

// ---- status ----

let noteText = '';
let noteUntil = 0;

function note(text, ms = 6000) {
  noteText = text;
  noteUntil = Date.now() + ms;
  render();
}

function event(type, detail) {
  events.push({ type, at: Date.now(), ...detail });
}

// window.__states: the tab client tells each state ('state' event); a plain
// HoldlineClient tells its events, and each of them notes the state it left.
function noteState() {
  const s = client.state;
  if (s !== 'idle' && states[states.length - 1] !== s) states.push(s);
}

function render() {
  noteState();
  const s = client.state;
  ui.state.textContent = s;
  ui.state.dataset.state = s;
  const transport = s === 'open' || s === 'reconnecting' ? client.transport : undefined;
  ui.transport.textContent = transport ?? '–';
  ui.transportPill.textContent = transport ?? '–';
  ui.transportPill.dataset.transport = transport ?? 'none';
  ui.transportPill.title = transport === 'websocket' ? 'The session rides a WebSocket' : transport === 'polling' ? 'The session rides HTTP long polls' : 'No session';
  const sid = client.sessionId;
  ui.session.textContent = sid ? sid.slice(0, 8) : '–';
  ui.session.title = sid ?? '';
  ui.role.textContent = client.shared !== true ? 'own session' : client.role === 'none' ? '–' : client.role;
  const st = client.stats;
  ui.sent.textContent = String(postsSent);
  ui.received.textContent = String(chatReceived);
  ui.sent.title = `Chat messages this tab posted (on the channel: ${st.messagesSent} sent, with history requests)`;
  ui.received.title = `Chat messages shown (on the channel: ${st.messagesReceived} received, with history and presence)`;
  ui.rtt.textContent = roundTripMs === undefined ? '–' : `${Math.round(roundTripMs)} ms`;
  ui.send.disabled = s === 'closed' || s === 'closing';
  if (Date.now() < noteUntil) ui.note.textContent = noteText;
  else if (typeof sessionsOnServer === 'number') {
    ui.note.textContent = `${sessionsOnServer} session${sessionsOnServer === 1 ? '' : 's'} on the server` +
      (client.shared ? ' · the tabs of this browser share one' : '');
  } else ui.note.textContent = '';
}

client.on('state', () => render());
client.on('role', (role) => {
  event('role', { role });
  render();
});
let leaderChangedAt = 0; // when this page last heard of a change of leader (the 'leader' event below)
client.on('open', (e) => {
  event('open', { sessionId: e.sessionId, resumed: e.resumed });
  if (!e.resumed) sync();
  if (e.resumed && Date.now() - leaderChangedAt > 5_000) note('Back online: missed messages delivered.');
  render();
});
client.on('reconnecting', (e) => {
  event('reconnecting', { code: e.error.code });
  note(e.error.code === 'session_lost' ? 'Session lost: opening a new one…' : 'Connection lost: reconnecting…', 60_000);
});
// A change of leader among this browser's tabs: the session goes on (the
// 'open' that follows it is not news of its own).
if (share) {
  client.on('leader', (e) => {
    event('leader', { self: e.self, sessionId: e.sessionId });
    leaderChangedAt = Date.now();
    note(e.self ? 'Another tab closed: this tab holds the session now, nothing lost.' : 'Another tab holds the session now.');
  });
}
// Why a new session began, in words: these are normal events, not errors.
function resetReason(reason) {
  switch (reason.code) {
    // HoldlineTabClient: the tab that held the session closed.
    case 'transport_error': return client.shared === true ? 'Another tab took over' : 'The connection failed';
    case 'server_shutdown': return 'The server restarted';
    case 'idle_timeout': return 'The session had been idle too long';
    case 'session_unknown': return 'The server no longer knew this session';
    case 'server_closed': return 'The server ended the session';
    default: return reason.message;
  }
}

client.on('reset', (e) => {
  event('reset', { previousSessionId: e.previousSessionId, sessionId: e.sessionId, code: e.reason.code });
  note(`${resetReason(e.reason)}: new session ${e.sessionId.slice(0, 8)}, history reloaded.`);
});
client.on('transport', (e) => {
  event('transport', { transport: e.transport, previous: e.previous, ...(e.reason ? { reason: e.reason.code } : {}) });
  render();
});
client.on('message', onData);
client.on('error', (err) => event('error', { code: err.code, message: err.message }));
client.on('close', (reason, unacked) => {
  event('close', { code: reason.code, unacked: unacked.length });
  note(`Closed: ${reason.message}${unacked.length ? ` (${unacked.length} unsent)` : ''}`, 1e9);
});

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (text === '') return;
  ui.text.value = '';
  post(text).catch((err) => note(`Not sent: ${err.message}`));
});

// The page goes away: the session ends with it, now, unless it goes on
// without this page (a reloaded page resumes it with ?resume=session; another
// tab of this browser takes it over). A beacon outlives the page.
addEventListener('pagehide', () => {
  if (resume) return;
  if (client.shared === true && (client.role !== 'leader' || client.otherTabs > 0)) return;
  if (!leaveKey || leaveKey.sid !== client.sessionId) return;
  navigator.sendBeacon(new URL('/demo/leave', channelUrl), JSON.stringify(leaveKey));
});

window.__chat = { post, channelUrl };
setInterval(render, 500);
render();
client.connect().catch((err) => note(`Could not connect: ${err.message}`, 1e9));
render();
