/**
 * The dashboard's script (served inline by page.ts). No template literals inside: this file is itself one. Every
 * value from the wire goes through textContent. Paths are relative to /_wirelab/.
 */
export const DASHBOARD_SCRIPT = String.raw`
'use strict';
const MAX_ROWS = 2000;
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
const row = (cells) => { const tr = document.createElement('tr'); for (const c of cells) { const td = document.createElement('td'); if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c); tr.appendChild(td); } return tr; };
const api = async (path, init) => { const r = await fetch(path, init); const text = await r.text(); let body = null; try { body = text ? JSON.parse(text) : null; } catch { body = text; } if (!r.ok) throw new Error((body && (body.detail || body.error)) || (r.status + ' ' + r.statusText)); return body; };

const dash = window.dash = { events: [], connected: false, paused: false, protos: new Set(), selected: null, source: null };

// Tabs
for (const b of document.querySelectorAll('nav button')) b.onclick = () => {
  for (const x of document.querySelectorAll('nav button')) x.classList.toggle('on', x === b);
  for (const s of document.querySelectorAll('section')) s.classList.toggle('on', s.id === 'tab-' + b.dataset.tab);
  refresh(b.dataset.tab);
};

// Live events
function isSelf(e) { return /\/_wirelab\//.test(e.summary || ''); }
function matches(e) {
  const p = $('f-proto').value, c = $('f-cid').value.trim(), d = $('f-dir').value, t = $('f-text').value.trim().toLowerCase();
  if (!$('f-self').checked && isSelf(e)) return false;
  return (!p || e.proto === p) && (!c || e.cid === c) && (!d || e.dir === d) && (!t || (e.summary || '').toLowerCase().includes(t) || e.kind.includes(t));
}
function eventRow(e) {
  const cid = el('span', e.cid, 'cid'); cid.onclick = () => { $('f-cid').value = e.cid; select(e.cid); render(); };
  const tr = row([new Date(e.ts).toISOString().slice(11, 23), e.proto, cid, e.dir, e.kind, e.summary, e.bytes]);
  tr.children[3].className = e.dir === '>' ? 'dir-gt' : e.dir === '<' ? 'dir-lt' : 'dir-st';
  tr.children[5].className = 'mono';
  if (e.cid === dash.selected) tr.classList.add('sel');
  return tr;
}
function render() {
  const body = $('events').tBodies[0];
  body.textContent = '';
  const shown = dash.events.filter(matches).slice(-500);
  for (const e of shown) body.appendChild(eventRow(e));
  $('shown').textContent = shown.length + ' shown of ' + dash.events.length;
  if (dash.selected) ladder(dash.selected);
}
function add(batch) {
  for (const e of batch) {
    dash.events.push(e);
    if (!dash.protos.has(e.proto)) { dash.protos.add(e.proto); const o = el('option', e.proto); o.value = e.proto; $('f-proto').appendChild(o); }
  }
  if (dash.events.length > MAX_ROWS) dash.events.splice(0, dash.events.length - MAX_ROWS);
  if (dash.paused) return;
  const body = $('events').tBodies[0];
  for (const e of batch) if (matches(e)) body.appendChild(eventRow(e));
  while (body.rows.length > 500) body.deleteRow(0);
  $('shown').textContent = body.rows.length + ' shown of ' + dash.events.length;
  if (dash.selected && batch.some((e) => e.cid === dash.selected)) ladder(dash.selected);
}
function connect() {
  const es = dash.source = new EventSource('api/events');
  es.onopen = () => { dash.connected = true; $('state').textContent = 'live'; $('state').className = 'live'; };
  es.onerror = () => { dash.connected = false; $('state').textContent = 'reconnecting'; $('state').className = ''; };
  es.addEventListener('trace', (m) => add(JSON.parse(m.data)));
  es.addEventListener('dropped', (m) => add([{ ts: Date.now(), t: 0, proto: 'dashboard', cid: '-', dir: '*', kind: 'dropped', summary: m.data + ' events dropped: this page read too slowly' }]));
}
for (const id of ['f-proto', 'f-dir', 'f-self']) $(id).onchange = render;
for (const id of ['f-cid', 'f-text']) $(id).oninput = render;
$('pause').onclick = () => { dash.paused = !dash.paused; $('pause').textContent = dash.paused ? 'resume' : 'pause'; if (!dash.paused) render(); };
$('clear').onclick = () => { dash.events = []; render(); };

// One connection as a ladder: client lane left, server lane right, one arrow per event with a direction.
function select(cid) { dash.selected = cid; $('ladder-cid').textContent = cid; ladder(cid); }
function ladder(cid) {
  const NS = 'http://www.w3.org/2000/svg';
  const evs = dash.events.filter((e) => e.cid === cid).slice(-200);
  const W = 900, L = 120, R = 780, step = 26, H = 50 + evs.length * step;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('width', W); svg.setAttribute('height', H); svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  const mk = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const k in attrs) n.setAttribute(k, attrs[k]); if (text !== undefined) n.textContent = text; svg.appendChild(n); return n; };
  const defs = mk('defs', {}); const marker = document.createElementNS(NS, 'marker');
  for (const [k, v] of Object.entries({ id: 'arrow', markerWidth: 8, markerHeight: 8, refX: 8, refY: 4, orient: 'auto' })) marker.setAttribute(k, v);
  const path = document.createElementNS(NS, 'path'); path.setAttribute('d', 'M0,0 L8,4 L0,8 z'); marker.appendChild(path); defs.appendChild(marker);
  mk('text', { x: L, y: 16, 'text-anchor': 'middle', 'font-weight': 'bold' }, 'client');
  mk('text', { x: R, y: 16, 'text-anchor': 'middle', 'font-weight': 'bold' }, 'server');
  mk('line', { x1: L, y1: 24, x2: L, y2: H, stroke: '#889' });
  mk('line', { x1: R, y1: 24, x2: R, y2: H, stroke: '#889' });
  const t0 = evs.length ? evs[0].t : 0;
  evs.forEach((e, i) => {
    const y = 44 + i * step;
    mk('text', { x: 4, y: y + 4, 'font-size': 10, fill: '#667' }, '+' + (e.t - t0).toFixed(1) + ' ms');
    const label = (e.summary || e.kind).slice(0, 90);
    if (e.dir === '>' || e.dir === '<') {
      const [a, b] = e.dir === '>' ? [L, R] : [R, L];
      mk('line', { x1: a, y1: y, x2: b, y2: y, stroke: e.dir === '>' ? '#25a' : '#a52', 'marker-end': 'url(#arrow)' });
      mk('text', { x: (L + R) / 2, y: y - 4, 'text-anchor': 'middle', 'font-size': 11, 'font-family': 'monospace' }, label);
    } else {
      mk('text', { x: (L + R) / 2, y: y + 4, 'text-anchor': 'middle', 'font-size': 11, fill: '#777', 'font-style': 'italic' }, '* ' + e.kind + ': ' + label);
    }
  });
  const box = $('ladder'); box.textContent = ''; box.appendChild(svg);
}

// Servers
async function servers() {
  const { servers } = await api('api/servers');
  const body = $('servers').tBodies[0]; body.textContent = '';
  for (const s of servers) {
    const code = el('code', s.try, 'try'); code.title = 'click to copy';
    code.onclick = () => navigator.clipboard && navigator.clipboard.writeText(s.try);
    body.appendChild(row([s.name + (s.impairment ? ' (impaired: ' + s.impairment + ')' : ''), s.proto, s.url || (s.host + ':' + s.port), s.describe || '', code]));
  }
}

// Pub/sub
async function pubsub() {
  const p = await api('api/pubsub');
  $('ps-note').textContent = p.running ? 'Rates are end offsets per second between two refreshes (every 2 s while this tab is open).' : 'No pub/sub broker runs in this process (wirelab up --only without a pubsub door).';
  const fill = (id, rows) => { const b = $(id).tBodies[0]; b.textContent = ''; for (const r of rows) b.appendChild(row(r)); };
  fill('ps-topics', (p.topics || []).map((t) => [t.name, t.partitions, t.records, t.bytes, t.ratePerSecond === null ? '' : t.ratePerSecond]));
  fill('ps-dlq', (p.dlq || []).map((t) => [t.name, t.records]));
  fill('ps-groups', (p.groups || []).map((g) => [g.name, g.mode, g.members, g.lag, g.ackPending, g.redelivered, g.deadLettered]));
  $('ps-stats').textContent = p.stats ? JSON.stringify(p.stats, null, 1) : '';
}

// Impairment, through the Toxiproxy-compatible control API (proxied by the dashboard)
function attrsOf(text) { const out = {}; for (const kv of text.split(/[\s,]+/).filter(Boolean)) { const [k, v] = kv.split('='); out[k] = Number(v); } return out; }
dash.setToxic = async (proxy, toxic, on) => api('api/impair/proxies/' + encodeURIComponent(proxy) + '/toxics/' + encodeURIComponent(toxic), { method: 'POST', body: JSON.stringify({ toxicity: on ? 1 : 0 }) });
async function impair() {
  let proxies, relays;
  try { proxies = await api('api/impair/proxies'); relays = await api('api/impair/relays'); $('im-note').textContent = 'A toxic applies to a new connection with probability toxicity (on = 1, off = 0); connections already open keep what they drew.'; }
  catch (err) { $('im-note').textContent = err.message; $('im-note').className = 'note err'; proxies = {}; relays = {}; }
  const body = $('proxies').tBodies[0]; body.textContent = '';
  const sel = $('t-proxy'); const keep = sel.value; sel.textContent = '';
  for (const [name, p] of Object.entries(proxies)) {
    const o = el('option', name); o.value = name; sel.appendChild(o);
    if (p.toxics.length === 0) body.appendChild(row([name, p.listen + ' → ' + p.upstream, '(none)', '', '', '', '']));
    for (const t of p.toxics) {
      const box = document.createElement('input'); box.type = 'checkbox'; box.checked = t.toxicity > 0; box.dataset.toxic = name + '/' + t.name;
      box.onchange = async () => { try { await dash.setToxic(name, t.name, box.checked); problem('toxic'); } catch (err) { problem('toxic', err); } impair(); };
      const del = el('button', 'remove'); del.onclick = async () => { await api('api/impair/proxies/' + encodeURIComponent(name) + '/toxics/' + encodeURIComponent(t.name), { method: 'DELETE' }); impair(); };
      body.appendChild(row([name, p.listen + ' → ' + p.upstream, t.name, t.type + ', ' + t.stream, JSON.stringify(t.attributes) + (t.toxicity > 0 && t.toxicity < 1 ? ' toxicity ' + t.toxicity : ''), box, del]));
    }
  }
  if (keep) sel.value = keep;
  $('relays').textContent = Object.keys(relays).length ? JSON.stringify(relays, null, 1) : '(none)';
}
$('add-toxic').onsubmit = async (ev) => {
  ev.preventDefault();
  try {
    const t = await api('api/impair/proxies/' + encodeURIComponent($('t-proxy').value) + '/toxics', { method: 'POST', body: JSON.stringify({ type: $('t-type').value, stream: $('t-stream').value, attributes: attrsOf($('t-attrs').value) }) });
    $('t-result').textContent = 'added ' + t.name;
  } catch (err) { $('t-result').textContent = err.message; }
  impair();
};

// Mail
async function mail() {
  let boxes;
  try { boxes = await api('api/mail/mailboxes'); } catch (err) { $('m-note').textContent = err.message; return; }
  const sel = $('m-box'); const keep = sel.value || 'demo/INBOX'; sel.textContent = '';
  for (const u of boxes.users) for (const m of u.mailboxes) { const o = el('option', u.user + '/' + m.name + ' (' + m.messages + ')'); o.value = u.user + '/' + m.name; sel.appendChild(o); }
  sel.value = keep;
  await mailList();
}
function boxQuery() { const v = $('m-box').value || 'demo/INBOX'; const i = v.indexOf('/'); return 'user=' + encodeURIComponent(v.slice(0, i)) + '&mailbox=' + encodeURIComponent(v.slice(i + 1)); }
async function mailList() {
  const list = await api('api/mail/messages?' + boxQuery());
  $('m-note').textContent = list.total + ' messages';
  const body = $('mails').tBodies[0]; body.textContent = '';
  for (const m of list.messages) { const tr = row([m.uid, m.from, m.subject + (m.attachments ? ' 📎' + m.attachments : ''), m.date.slice(0, 19).replace('T', ' '), m.size]); tr.style.cursor = 'pointer'; tr.onclick = () => mailShow(m.uid); body.appendChild(tr); }
}
async function mailShow(uid) {
  const m = await api('api/mail/message/' + uid + '?' + boxQuery());
  const v = $('mailview'); v.textContent = '';
  v.appendChild(el('h3', m.subject || '(no subject)'));
  v.appendChild(el('div', 'From: ' + m.from)); v.appendChild(el('div', 'To: ' + m.to)); if (m.cc) v.appendChild(el('div', 'Cc: ' + m.cc));
  v.appendChild(el('div', 'Date: ' + m.date + ', ' + m.size + ' bytes'));
  const links = el('div');
  const raw = el('a', 'raw source'); raw.href = 'api/mail/message/' + uid + '/raw?' + boxQuery(); raw.target = '_blank'; links.appendChild(raw);
  links.appendChild(document.createTextNode(' · '));
  const hdr = el('a', 'headers'); hdr.href = 'api/mail/message/' + uid + '/headers?' + boxQuery(); hdr.target = '_blank'; links.appendChild(hdr);
  links.appendChild(document.createTextNode(' · '));
  const del = el('button', 'delete'); del.onclick = async () => { await api('api/mail/message/' + uid + '?' + boxQuery(), { method: 'DELETE' }); v.textContent = ''; mail(); }; links.appendChild(del);
  v.appendChild(links);
  // The HTML part is shown as text: a received mail's markup never runs in the dashboard's origin.
  v.appendChild(el('pre', m.text ? m.text.text : m.html ? m.html.text : '(no text part)'));
  if (m.attachments.length) {
    v.appendChild(el('h4', 'Attachments'));
    for (const a of m.attachments) { const d = el('div'); const l = el('a', (a.filename || 'part ' + a.partId) + ' (' + a.contentType + ', ' + a.size + ' B)'); l.href = 'api/mail/message/' + uid + '/part/' + a.partId + '?' + boxQuery(); d.appendChild(l); v.appendChild(d); }
  }
}
$('m-box').onchange = mailList;
$('m-refresh').onclick = mail;

// Status line and periodic refresh of the open tab
async function status() {
  try { const s = await api('api/status'); $('counts').textContent = 'watchers ' + s.watchers + ' · sent ' + s.sent + (s.dropped ? ' · dropped ' + s.dropped : '') + ' · recorded ' + s.recorded; } catch { /* offline: the EventSource says so */ }
}
function current() { const b = document.querySelector('nav button.on'); return b ? b.dataset.tab : 'traffic'; }
// A failure the page cannot show where it happened goes to the status line (until the next success of that view).
function problem(where, err) {
  const p = $('problem');
  if (err) { p.textContent = '⚠ ' + where + ': ' + (err.message || String(err)); p.dataset.where = where; }
  else if (p.dataset.where === where) { p.textContent = ''; delete p.dataset.where; }
}
dash.problem = problem;
async function refresh(tab) {
  try {
    if (tab === 'servers') await servers();
    else if (tab === 'pubsub') await pubsub();
    else if (tab === 'impair') await impair();
    else if (tab === 'mail') await mail();
    problem(tab);
  } catch (err) { problem(tab, err); }
}
dash.refresh = refresh;
for (const kind of ['pcapng', 'har']) $('dl-' + kind).onclick = async (ev) => {
  ev.preventDefault();
  try {
    const r = await fetch('export/' + kind);
    if (!r.ok) { const b = await r.json().catch(() => ({})); throw new Error(b.detail || (r.status + ' ' + r.statusText)); }
    const a = document.createElement('a'); a.href = URL.createObjectURL(await r.blob()); a.download = 'wirelab-session.' + kind; a.click();
    problem('download ' + kind);
  } catch (err) { problem('download ' + kind, err); }
};
connect();
status(); refresh('servers');
setInterval(() => { status(); const t = current(); if (t === 'pubsub' || t === 'impair') refresh(t); }, 2000);
`;
