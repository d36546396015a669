/**
 * The chat web page: plain HTML and one script, no build step, no external resource (the page's Content-Security-Policy
 * allows only its own origin). Every piece of user data reaches the DOM through textContent, never innerHTML.
 * `window.chat` is the page's API, used by the Chromium test. Query string: ?name=ana&room=lobby joins at once.
 * Direct messages (WebRTC, relay fallback) are web/dm.ts, served as /dm.js. Sign-in: GET /auth.json says whether the
 * server has accounts with passwords, with tokens, and whether a secret may go over plain HTTP (allowInsecureAuth); the
 * password and token fields show only when such accounts exist, are enabled on https:// (or when the server allows
 * plain http), and a secret is never sent over http:// unless the server allows it. A token names its user: the name
 * may be left empty, and the welcome says who signed in.
 */

export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wirelab chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; display: grid; grid-template-columns: 14em 1fr 18em; grid-template-rows: auto 1fr auto; height: 100vh; }
  header { grid-column: 1 / 4; padding: .4em .8em; background: #234; color: #fff; display: flex; gap: 1em; align-items: center; }
  header form { display: flex; gap: .4em; }
  #state { margin-left: auto; padding: .1em .6em; border-radius: 1em; background: #a33; }
  #state.online { background: #3a5; }
  nav, aside { padding: .6em; background: #f3f4f6; overflow: auto; }
  nav li, aside li { list-style: none; cursor: pointer; padding: .15em .3em; }
  nav li.current { font-weight: bold; background: #dde; }
  nav ul, aside ul { padding: 0; margin: .3em 0; }
  main { overflow: auto; padding: .6em; }
  #messages li { list-style: none; padding: .25em 0; border-bottom: 1px solid #eee; }
  .meta { color: #667; font-size: 12px; margin-right: .5em; }
  .who { font-weight: bold; margin-right: .4em; }
  .wire { color: #468; font-size: 12px; margin-left: .6em; }
  .receipt { color: #385; font-size: 12px; margin-left: .6em; }
  .system { color: #777; font-style: italic; }
  .deleted { color: #999; text-decoration: line-through; }
  footer { grid-column: 2 / 3; padding: .5em; display: flex; gap: .5em; }
  footer input { flex: 1; }
  #typing { grid-column: 1 / 2; padding: .5em; color: #777; font-size: 13px; }
  #errors { color: #a33; font-size: 13px; }
  #online li.dm::after { content: ' · DM'; color: #468; font-size: 12px; }
  #dmbox { margin-top: 1em; border-top: 1px solid #ccd; padding-top: .4em; }
  #dmlog { max-height: 50vh; overflow: auto; }
  #dmlog li { cursor: default; border-bottom: 1px solid #e4e4e8; }
  #dmbox input { width: 100%; box-sizing: border-box; }
</style>
</head>
<body>
<header>
  <strong>wirelab chat</strong>
  <form id="login"><input id="name" placeholder="your name" maxlength="32"><input id="password" type="password" placeholder="password (registered names)" autocomplete="current-password" hidden><input id="token" type="password" placeholder="or a token" autocomplete="off" hidden><input id="room" placeholder="room" value="lobby" required><button>join</button></form>
  <span id="whoami" class="meta"></span>
  <label>transport <select id="transport"><option value="ws">WebSocket</option><option value="sse">SSE + POST</option><option value="poll">long polling</option></select></label>
  <span id="errors"></span>
  <span id="state">offline</span>
</header>
<nav><b>rooms</b><ul id="rooms"></ul><button id="older" type="button">older messages</button></nav>
<main><ul id="messages"></ul></main>
<aside><b>online</b> <span id="owner" class="meta"></span><ul id="online"></ul>
<div id="dmbox" hidden><b id="dmwith"></b><ul id="dmlog"></ul><input id="dmtext" placeholder="direct message" autocomplete="off"><button id="dmsend" type="button">send DM</button></div></aside>
<div id="typing"></div>
<footer><input id="text" placeholder="message" autocomplete="off" disabled><button id="sendbtn" disabled>send</button></footer>
<script src="/chat.js"></script>
<script src="/dm.js"></script>
</body>
</html>
`;

export const CHAT_JS = String.raw`'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
const chat = {
  ws: undefined, link: undefined, name: undefined, auth: undefined, transport: 'ws', state: 'offline', current: undefined, refused: false, authInfo: { accounts: false, passwords: false, tokens: false, guests: true, allowInsecureAuth: false },
  rooms: new Map(), pending: new Map(), errors: [], attempts: 0, reconnects: 0, seq: 0,
  room(name) {
    let r = chat.rooms.get(name);
    if (!r) { r = { name, events: new Map(), last: -1, first: Infinity, online: [], owner: undefined, typing: new Map(), receipts: new Map() }; chat.rooms.set(name, r); }
    return r;
  },
  // The transport: ?transport=ws (default), sse (EventSource + POST) or poll (long polling + POST), as in Socket.IO.
  connect() {
    const t = chat.transport;
    chat.setState('connecting');
    const link = { chain: Promise.resolve() };
    chat.link = link;
    // With a token and no name typed, the token names the user (the welcome says who).
    const opened = () => { chat.attempts = 0; link.send({ type: 'hello', ...(chat.name ? { name: chat.name } : {}), ...secret }); };
    const lost = () => {
      if (chat.link !== link) return;
      chat.link = undefined;
      if (chat.refused) return chat.setState('signed out');
      chat.setState('reconnecting');
      const delay = Math.min(5000, 200 * 2 ** chat.attempts++) * (0.5 + Math.random() / 2);
      setTimeout(() => { chat.reconnects++; chat.connect(); }, delay);
    };
    const onText = (text) => { let m; try { m = JSON.parse(text); } catch { return; } chat.on(m); };
    // SSE and polling post each message, one after the other so they keep their order.
    const post = (m) => {
      if (!link.conn) return false;
      link.chain = link.chain.then(() => fetch('/send?conn=' + link.conn, { method: 'POST', body: JSON.stringify(m) })).then((r) => { if (!r.ok) link.close(); }, () => link.close());
      return true;
    };
    if (t === 'sse') {
      const es = new EventSource('/sse');
      link.send = post;
      link.close = () => { es.close(); lost(); };
      es.addEventListener('conn', (e) => { link.conn = JSON.parse(e.data).conn; opened(); });
      es.onmessage = (e) => onText(e.data);
      es.onerror = () => link.close();
    } else if (t === 'poll') {
      let stopped = false;
      link.send = post;
      link.close = () => { stopped = true; lost(); };
      fetch('/poll', { method: 'POST' }).then((r) => r.json()).then(async (r) => {
        link.conn = r.conn; opened();
        while (!stopped && chat.link === link) {
          const res = await fetch('/poll?conn=' + link.conn);
          if (!res.ok) throw new Error('poll ' + res.status);
          for (const m of await res.json()) chat.on(m);
        }
      }).catch(() => link.close());
    } else {
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
      const ws = new WebSocket(url);
      chat.ws = ws;
      link.send = (m) => { if (ws.readyState !== 1) return false; ws.send(JSON.stringify(m)); return true; };
      link.close = () => ws.close();
      ws.onopen = opened;
      ws.onmessage = (e) => onText(e.data);
      ws.onclose = lost;
    }
  },
  send(m) { return chat.link && chat.link.send ? chat.link.send(m) : false; },
  setState(s) { chat.state = s; const e = $('state'); e.textContent = s; e.className = s === 'online' ? 'online' : ''; },
  join(room) {
    const r = chat.room(room);
    chat.send({ type: 'join', room, ...(r.last >= 0 ? { since: r.last } : {}) });
    chat.current = room; chat.render();
  },
  say(text) {
    const room = chat.current; if (!room || !text.trim()) return;
    const cid = Date.now().toString(36) + '-' + (chat.seq++);
    chat.pending.set(cid, { room, text, cid, at: performance.now() });
    chat.send({ type: 'send', room, text, cid });
    chat.render();
  },
  on(m) {
    if (m.type === 'welcome') {
      chat.setState('online'); chat.limits = m.limits; chat.auth = m.auth; chat.name = m.name; $('name').value = m.name;
      $('whoami').textContent = m.name + (m.auth === 'guest' ? ' (guest)' : ' (signed in with a ' + m.auth + ')');
      for (const name of chat.rooms.keys()) chat.join(name);
      if (chat.current && !chat.rooms.has(chat.current)) chat.join(chat.current);
      // Messages not yet stored are sent again with the same cid: the broker's dedup stores them once.
      for (const p of chat.pending.values()) chat.send({ type: 'send', room: p.room, text: p.text, cid: p.cid });
    } else if (m.type === 'joined') {
      const r = chat.room(m.room); r.online = m.online; r.owner = m.owner; r.recovered = m.recovered;
      if (!m.recovered && r.last >= m.from) { for (const k of [...r.events.keys()]) if (k >= m.from) r.events.delete(k); r.last = m.from - 1; }
    } else if (m.type === 'event') {
      chat.event(m);
    } else if (m.type === 'sent') {
      const p = chat.pending.get(m.cid); if (p) { p.offset = m.offset; }
    } else if (m.type === 'presence') {
      const r = chat.room(m.room); r.online = m.online;
    } else if (m.type === 'who') {
      const r = chat.room(m.room); r.online = m.online; r.owner = m.owner;
    } else if (m.type === 'typing') {
      const r = chat.room(m.room); if (m.on) r.typing.set(m.user, Date.now()); else r.typing.delete(m.user);
    } else if (m.type === 'receipt') {
      const r = chat.room(m.room); const cur = r.receipts.get(m.user) || { delivered: -1, seen: -1 };
      cur[m.state] = Math.max(cur[m.state], m.offset); if (m.state === 'seen') cur.delivered = Math.max(cur.delivered, m.offset);
      r.receipts.set(m.user, cur);
    } else if (m.type === 'history') {
      for (const ev of m.events) chat.event(ev, true);
    } else if (m.type === 'left') {
      chat.rooms.delete(m.room); chat.errors.push('left ' + m.room + ': ' + m.reason); if (chat.current === m.room) chat.current = chat.rooms.keys().next().value;
    } else if (m.type === 'error' && chat.state !== 'online' && (m.code === 'WL_ERR_CHAT_AUTH' || m.code === 'WL_ERR_CHAT_NAME')) {
      // The hello was refused (a wrong password, a registered name): no reconnect with the same; the form is open again.
      chat.errors.push(m.code + ': ' + m.message); chat.refused = true; chat.name = undefined; secret = {};
      $('name').disabled = false; $('password').value = ''; $('token').value = '';
      if (chat.link) chat.link.close();
    } else if (m.type === 'error') {
      chat.errors.push(m.code + ': ' + m.message);
      if (m.cid && m.code !== 'WL_ERR_CHAT_BROKER') chat.pending.delete(m.cid);
    }
    chat.flushReceipts();
    chat.render();
  },
  event(ev, old) {
    const r = chat.room(ev.room);
    if (r.events.has(ev.offset)) { chat.dupes = (chat.dupes || 0) + 1; return; }
    const rec = { ...ev, transport: chat.transport };
    if (ev.kind === 'msg' && ev.user === chat.name && chat.pending.has(ev.cid)) {
      rec.latency = Math.round(performance.now() - chat.pending.get(ev.cid).at); rec.latencyKind = 'round trip'; chat.pending.delete(ev.cid);
    } else if (!old) { rec.latency = Math.max(0, Date.now() - ev.t); rec.latencyKind = 'since stored'; }
    r.events.set(ev.offset, rec);
    if (ev.kind === 'edit' || ev.kind === 'delete') { const target = r.events.get(ev.ref); if (target) { if (ev.kind === 'edit') { target.text = ev.text; target.edited = true; } else target.deleted = true; } }
    if (!old) r.last = Math.max(r.last, ev.offset);
    r.first = Math.min(r.first, ev.offset);
    if (!old && ev.user !== chat.name) r.ackDue = Math.max(r.ackDue ?? -1, ev.offset);
  },
  // One receipt per room per batch of events, not one per event.
  flushReceipts() {
    for (const r of chat.rooms.values()) {
      if ((r.ackDue ?? -1) <= (r.ackSent ?? -1)) continue;
      const state = document.hidden || chat.current !== r.name ? 'delivered' : 'seen';
      if (chat.send({ type: 'receipt', room: r.name, offset: r.ackDue, state })) r.ackSent = r.ackDue;
    }
  },
  receiptOf(r, ev) {
    let state = 'sent';
    for (const [user, x] of r.receipts) { if (user === chat.name) continue; if (x.seen >= ev.offset) return 'seen by ' + user; if (x.delivered >= ev.offset) state = 'delivered'; }
    return state;
  },
  render() {
    const rooms = $('rooms'); rooms.replaceChildren();
    for (const name of chat.rooms.keys()) { const li = el('li', name === chat.current ? 'current' : '', '#' + name); li.onclick = () => { chat.current = name; chat.render(); }; rooms.append(li); }
    const r = chat.current && chat.rooms.get(chat.current);
    const list = $('messages'); list.replaceChildren(); $('online').replaceChildren(); $('typing').textContent = '';
    $('errors').textContent = chat.errors.length ? chat.errors[chat.errors.length - 1] : '';
    $('text').disabled = $('sendbtn').disabled = !r;
    if (!r) return;
    $('owner').textContent = r.owner ? 'owner: ' + r.owner : '';
    for (const u of r.online) $('online').append(el('li', '', u));
    const now = Date.now(); const typers = [...r.typing].filter(([u, t]) => u !== chat.name && now - t < 5000).map(([u]) => u);
    $('typing').textContent = typers.length ? typers.join(', ') + ' typing…' : '';
    for (const ev of [...r.events.values()].sort((a, b) => a.offset - b.offset)) {
      if (ev.kind === 'edit' || ev.kind === 'delete') continue;
      const li = el('li'); li.dataset.offset = String(ev.offset);
      li.append(el('span', 'meta', new Date(ev.t).toLocaleTimeString()));
      if (ev.kind === 'msg') {
        li.append(el('span', 'who', ev.user));
        li.append(el('span', ev.deleted ? 'deleted' : 'text', ev.deleted ? '(deleted)' : ev.text));
        if (ev.edited) li.append(el('span', 'meta', ' (edited)'));
        li.append(el('span', 'wire', ev.transport + (ev.latency !== undefined ? ' · ' + ev.latency + ' ms ' + ev.latencyKind : ' · history')));
        if (ev.user === chat.name) li.append(el('span', 'receipt', chat.receiptOf(r, ev)));
      } else {
        const what = ev.kind === 'created' ? ev.user + ' created #' + ev.room : ev.kind === 'kick' ? ev.user + ' kicked ' + ev.target : ev.kind === 'mute' ? ev.user + (ev.until ? ' muted ' : ' unmuted ') + ev.target : ev.kind;
        li.append(el('span', 'system', what));
      }
      list.append(li);
    }
    for (const p of chat.pending.values()) if (p.room === r.name) { const li = el('li', 'pending'); li.append(el('span', 'who', chat.name), el('span', 'text', p.text), el('span', 'receipt', 'sending…')); list.append(li); }
  },
};
window.chat = chat;
// The password or token stays in this closure (not on window.chat), for the hello of each reconnect.
let secret = {};
let typingSent = 0;
const insecure = () => location.protocol !== 'https:' && !chat.authInfo.allowInsecureAuth;
const authLoaded = fetch('/auth.json').then((r) => r.json()).then((a) => {
  chat.authInfo = a;
  for (const [id, shown, what] of [['password', a.passwords, 'passwords'], ['token', a.tokens, 'tokens']]) {
    $(id).hidden = !shown;
    if (shown && insecure()) { $(id).disabled = true; $(id).placeholder = what + ' need https'; $(id).title = 'this page is plain http and the server does not allow a secret over it (allowInsecureAuth)'; }
  }
}).catch(() => {});
$('login').onsubmit = (e) => {
  e.preventDefault();
  const room = $('room').value.trim().toLowerCase();
  if (chat.name) return chat.join(room);
  const password = $('password').value;
  const token = $('token').value.trim();
  const name = $('name').value.trim();
  chat.errors = [];
  if ((password || token) && insecure()) { chat.errors.push('a password or token is not sent over plain http (the server does not set allowInsecureAuth)'); return chat.render(); }
  if (password && token) { chat.errors.push('a password or a token, not both'); return chat.render(); }
  if (!name && !token) { chat.errors.push('a name (or a token, which names its user)'); return chat.render(); }
  secret = password ? { password } : token ? { token } : {}; chat.refused = false;
  chat.name = name || undefined; chat.current = room; chat.room(room); chat.connect(); $('name').disabled = true;
};
$('sendbtn').onclick = () => { chat.say($('text').value); $('text').value = ''; chat.send({ type: 'typing', room: chat.current, on: false }); typingSent = 0; };
$('text').onkeydown = (e) => { if (e.key === 'Enter') $('sendbtn').onclick(); };
$('text').oninput = () => { if (Date.now() - typingSent > 2000 && chat.current) { typingSent = Date.now(); chat.send({ type: 'typing', room: chat.current, on: true }); } };
$('older').onclick = () => { const r = chat.current && chat.rooms.get(chat.current); if (r && r.first > 0 && r.first !== Infinity) chat.send({ type: 'history', room: r.name, before: r.first, limit: 50 }); };
document.addEventListener('visibilitychange', () => { const r = chat.current && chat.rooms.get(chat.current); if (!document.hidden && r && r.last >= 0) chat.send({ type: 'receipt', room: r.name, offset: r.last, state: 'seen' }); });
setInterval(() => chat.render(), 2000);
const q = new URLSearchParams(location.search);
chat.transport = ['ws', 'sse', 'poll'].includes(q.get('transport')) ? q.get('transport') : 'ws';
$('transport').value = chat.transport;
$('transport').onchange = () => { q.set('transport', $('transport').value); if (chat.name) { q.set('name', chat.name); q.set('room', chat.current || 'lobby'); } location.search = q.toString(); };
// ?name=ana&room=lobby joins at once (a guest name; a registered one waits for its password in the form).
if (q.get('name')) { $('name').value = q.get('name'); if (q.get('room')) $('room').value = q.get('room'); authLoaded.then(() => { if (!chat.name) $('login').requestSubmit(); }); }
`;
