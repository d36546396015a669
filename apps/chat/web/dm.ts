/**
 * Direct messages in the chat page (served as /dm.js after /chat.js; it wraps `chat.on`, `chat.say` and `chat.render`).
 * `/dm NAME [text]` or the DM button next to a name in the online list opens a DM: an RTCPeerConnection whose offer,
 * answer and ICE candidates travel as `signal` messages through the chat server, then a data channel "dm" that carries
 * the text peer to peer. Each DM is echoed back as a receipt over the same path, which gives its round-trip latency.
 * When the channel is not open within the server's dmIceTimeoutMs (told in welcome), or ICE fails, or the other side
 * says bye (a terminal client has no WebRTC), the DM goes through the server instead (`dm` / `dm-ack`), and the page
 * says so per message: "webrtc (p2p)" or "relay (ICE failed)". No STUN or TURN server is configured (iceServers: []):
 * only host candidates. `?ice=relay-only` sets iceTransportPolicy 'relay' with no TURN server: no candidate at all, so
 * ICE fails for real (the tests use it); `?ice-timeout=MS` replaces dmIceTimeoutMs for the page. `window.dm` is the API the Chromium test uses.
 *
 * A page that fell back to the relay tries peer to peer again (the side that offered): after dmRetryMs, doubling, at
 * most dmRetries times (both told in welcome). Meanwhile DMs keep going through the relay; when a retry's channel
 * opens, the next DM goes peer to peer, and the DM header says which path is in use now and the retries so far.
 */
export const DM_JS = String.raw`'use strict';
(() => {
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; };
const q = new URLSearchParams(location.search);
const rid = () => Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
const dm = {
  relayOnly: q.get('ice') === 'relay-only',
  peers: new Map(), threads: new Map(), sent: new Map(), current: undefined, log: [],
  // Per user: { n: retries started, timer, at: when the next one starts (Date.now()) }.
  retries: new Map(),
  // ?ice-timeout=MS overrides the server's dmIceTimeoutMs for this page (with ?ice=relay-only: fail fast).
  timeoutMs() { return Number(q.get('ice-timeout')) > 0 ? Number(q.get('ice-timeout')) : (chat.limits && chat.limits.dmIceTimeoutMs) || 5000; },
  thread(name) { let t = dm.threads.get(name); if (!t) { t = []; dm.threads.set(name, t); } return t; },
  signal(to, session, kind, extra) { chat.send({ type: 'signal', to, session, kind, ...extra }); },
  // A peer per user: { session, pc, ch, mode: 'connecting' | 'p2p' | 'relay', reason, queue, cands }.
  peer(name, session, offerer) {
    const pc = new RTCPeerConnection({ iceServers: [], iceTransportPolicy: dm.relayOnly ? 'relay' : 'all' });
    const p = { name, session, pc, ch: undefined, mode: 'connecting', reason: '', queue: [], cands: [], offerer, started: performance.now() };
    dm.peers.set(name, p);
    pc.onicecandidate = (e) => { if (dm.peers.get(name) === p) dm.signal(name, session, 'candidate', { candidate: e.candidate ? e.candidate.toJSON() : null }); };
    pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === 'failed') dm.fallback(p, 'ICE failed', true); };
    pc.ondatachannel = (e) => dm.attach(p, e.channel);
    p.timer = setTimeout(() => dm.fallback(p, 'ICE failed', true), dm.timeoutMs());
    return p;
  },
  attach(p, ch) {
    p.ch = ch;
    ch.onopen = () => {
      if (dm.peers.get(p.name) !== p || p.mode === 'relay') return;
      clearTimeout(p.timer); p.mode = 'p2p'; p.setupMs = Math.round(performance.now() - p.started);
      const r = dm.retries.get(p.name);
      dm.note(p.name, 'peer to peer' + (p.retry ? ' again (retry ' + (r ? r.n : 1) + ')' : '') + ': data channel open after ' + p.setupMs + ' ms');
      for (const m of p.queue.splice(0)) dm.transmit(p, m);
      chat.render();
    };
    ch.onclose = () => { if (dm.peers.get(p.name) === p && p.mode === 'p2p') dm.fallback(p, 'channel closed', false); };
    ch.onmessage = (e) => { let m; try { m = JSON.parse(e.data); } catch { return; } if (m && typeof m.id === 'string') dm.got(p.name, m, 'webrtc (p2p)'); };
  },
  async open(name, retry) {
    if (!name || name === chat.name) return;
    if (!retry) dm.current = name;
    dm.thread(name);
    const old = dm.peers.get(name);
    if (old && old.mode !== 'relay') return chat.render();
    // A retry: DMs keep going through the relay until the new channel opens.
    if (old && retry) clearTimeout((dm.retries.get(name) || {}).timer);
    const p = dm.peer(name, 's' + rid(), true);
    if (old && old.mode === 'relay') { p.retry = true; p.reason = old.reason; }
    dm.attach(p, p.pc.createDataChannel('dm'));
    try {
      await p.pc.setLocalDescription(await p.pc.createOffer());
      dm.signal(name, p.session, 'offer', { sdp: p.pc.localDescription.sdp });
    } catch (err) { dm.fallback(p, 'ICE failed: ' + err.message, true); }
    chat.render();
  },
  // ICE failed, timed out, or the other side hung up: this user's DMs go through the server from now on.
  fallback(p, reason, bye) {
    if (dm.peers.get(p.name) !== p || p.mode === 'relay') return;
    const was = p.mode;
    clearTimeout(p.timer); p.mode = 'relay'; p.reason = reason;
    if (bye) dm.signal(p.name, p.session, 'bye', {});
    try { p.pc.close(); } catch {}
    dm.note(p.name, (was === 'p2p' ? 'data channel lost' : 'no peer-to-peer path') + ': relay through the server (' + reason + ')');
    for (const m of p.queue.splice(0)) dm.transmit(p, m);
    if (p.offerer) dm.scheduleRetry(p.name);
    chat.render();
  },
  // The next try at peer to peer, with backoff, at most dmRetries times per user.
  scheduleRetry(name) {
    const every = (chat.limits && chat.limits.dmRetryMs) || 0;
    const most = (chat.limits && chat.limits.dmRetries) || 0;
    let r = dm.retries.get(name);
    if (!r) { r = { n: 0, timer: undefined, at: 0 }; dm.retries.set(name, r); }
    clearTimeout(r.timer); r.at = 0;
    if (every <= 0 || r.n >= most) { if (most > 0 && r.n >= most) dm.note(name, 'no more peer-to-peer retries (' + most + ', dmRetries): relay from now on'); return; }
    const delay = every * 2 ** r.n;
    r.at = Date.now() + delay;
    r.timer = setTimeout(() => {
      const p = dm.peers.get(name);
      r.at = 0;
      if (!p || p.mode !== 'relay') return;
      r.n++;
      dm.note(name, 'retrying peer to peer (' + r.n + ' of ' + most + ')');
      dm.open(name, true).catch(() => {});
    }, delay);
  },
  // Which path a DM to this user takes now, in words (the DM header, and the test).
  path(name) {
    const p = dm.peers.get(name); const r = dm.retries.get(name);
    if (!p) return 'not connected';
    const tries = r && r.n ? ' · ' + r.n + ' p2p ' + (r.n === 1 ? 'retry' : 'retries') : '';
    if (p.mode === 'p2p') return 'webrtc (p2p)' + tries;
    if (p.mode === 'relay' || p.retry) {
      const next = r && r.at ? ' · p2p retry in ' + Math.max(0, Math.ceil((r.at - Date.now()) / 1000)) + ' s' : p.retry ? ' · retrying p2p…' : '';
      return 'relay (' + p.reason + ')' + tries + next;
    }
    return 'connecting…';
  },
  note(name, text) { dm.thread(name).push({ system: true, text }); dm.log.push(name + ': ' + text); },
  say(name, text) {
    if (!text || !text.trim()) return;
    const p = dm.peers.get(name);
    const m = { id: rid(), text };
    dm.sent.set(m.id, { to: name, at: performance.now(), entry: { from: chat.name, text, via: 'sending…' } });
    dm.thread(name).push(dm.sent.get(m.id).entry);
    if (!p) { dm.open(name).then(() => dm.transmit(dm.peers.get(name), m)); return; }
    dm.transmit(p, m);
    chat.render();
  },
  transmit(p, m) {
    if (!p) return;
    if (p.mode === 'connecting' && !p.retry) return void p.queue.push(m);
    const rec = dm.sent.get(m.id);
    if (p.mode === 'p2p' && p.ch && p.ch.readyState === 'open') { p.ch.send(JSON.stringify(m)); if (rec) rec.via = 'webrtc (p2p)'; }
    else { chat.send({ type: 'dm', to: p.name, id: m.id, text: m.text }); if (rec) rec.via = 'relay (' + (p.reason || 'ICE failed') + ')'; }
    if (rec) rec.entry.via = rec.via + ' · waiting for receipt';
    chat.render();
  },
  // A DM or its receipt, over the data channel or the relay.
  got(from, m, via) {
    if (m.ack) {
      const rec = dm.sent.get(m.id); if (!rec) return;
      dm.sent.delete(m.id);
      rec.entry.latency = Math.round(performance.now() - rec.at);
      rec.entry.via = rec.via + ' · ' + rec.entry.latency + ' ms round trip';
    } else {
      const p = dm.peers.get(from);
      const relayVia = 'relay (' + ((p && p.reason) || 'ICE failed') + ')';
      dm.thread(from).push({ from, text: String(m.text), via: via === 'relay' ? relayVia : via });
      if (via === 'relay') chat.send({ type: 'dm-ack', to: from, id: m.id });
      else { const ch = p && p.ch; if (ch && ch.readyState === 'open') ch.send(JSON.stringify({ id: m.id, ack: true })); }
      if (!dm.current) dm.current = from;
    }
    chat.render();
  },
  async on(m) {
    if (m.type === 'dm') return dm.got(m.from, { id: m.id, text: m.text }, 'relay');
    if (m.type === 'dm-ack') return dm.got(m.from, { id: m.id, ack: true }, 'relay');
    const p = dm.peers.get(m.from);
    if (m.kind === 'offer') {
      // Both sides offered at once: the name that sorts first keeps its own offer.
      if (p && p.mode === 'connecting' && p.offerer && chat.name < m.from) return;
      if (p && p.mode !== 'relay') { try { p.pc.close(); } catch {} }
      const n = dm.peer(m.from, m.session, false);
      // The other side retries peer to peer: until the channel opens, DMs back still go through the relay.
      if (p && p.mode === 'relay') { n.retry = true; n.reason = p.reason; }
      dm.thread(m.from);
      try {
        await n.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
        for (const c of n.cands.splice(0)) await n.pc.addIceCandidate(c).catch(() => {});
        await n.pc.setLocalDescription(await n.pc.createAnswer());
        dm.signal(m.from, m.session, 'answer', { sdp: n.pc.localDescription.sdp });
      } catch (err) { dm.fallback(n, 'ICE failed: ' + err.message, true); }
      return chat.render();
    }
    if (!p || p.session !== m.session) return;
    if (m.kind === 'answer') {
      await p.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp }).catch((err) => dm.fallback(p, 'ICE failed: ' + err.message, true));
      for (const c of p.cands.splice(0)) await p.pc.addIceCandidate(c).catch(() => {});
    } else if (m.kind === 'candidate') {
      if (!m.candidate) return;
      if (p.pc.remoteDescription) await p.pc.addIceCandidate(m.candidate).catch(() => {}); else p.cands.push(m.candidate);
    } else if (m.kind === 'bye') dm.fallback(p, p.mode === 'connecting' ? 'ICE failed' : 'peer hung up', false);
  },
  render() {
    for (const li of $('online').querySelectorAll('li')) {
      const name = li.textContent;
      if (name === chat.name) continue;
      // The entry itself is the DM button (its label is CSS, so the entry's text stays the name).
      li.className = 'dm'; li.title = 'direct message ' + name; li.onclick = () => dm.open(name);
    }
    const box = $('dmbox'); box.hidden = !dm.current;
    if (!dm.current) return;
    $('dmwith').textContent = 'DM with ' + dm.current + ' · ' + dm.path(dm.current);
    const list = $('dmlog'); list.replaceChildren();
    for (const e of dm.thread(dm.current)) {
      const li = el('li', e.system ? 'system' : '');
      if (e.system) li.textContent = e.text;
      else li.append(el('span', 'who', e.from), el('span', 'dmtext', e.text), el('span', 'wire', e.via));
      list.append(li);
    }
  },
};
window.dm = dm;
const on = chat.on;
chat.on = (m) => {
  if (m.type === 'signal' || m.type === 'dm' || m.type === 'dm-ack') { dm.on(m).catch((err) => dm.log.push('error: ' + err.message)); return; }
  if (m.type === 'error' && m.code === 'WL_ERR_CHAT_PEER') dm.log.push(m.message);
  on(m);
};
const say = chat.say;
chat.say = (text) => {
  const d = /^\/dm\s+(\S+)\s*(.*)$/.exec(text);
  if (!d) return say(text);
  if (d[2]) dm.say(d[1], d[2]); else dm.open(d[1]);
};
const render = chat.render;
chat.render = () => { render(); dm.render(); };
$('dmsend').onclick = () => { if (dm.current) dm.say(dm.current, $('dmtext').value); $('dmtext').value = ''; };
$('dmtext').onkeydown = (e) => { if (e.key === 'Enter') $('dmsend').onclick(); };
})();
`;
