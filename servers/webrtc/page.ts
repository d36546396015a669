import { send, type Ctx, type Router } from '../http/index.ts';

/**
 * The browser peer: a plain RTCPeerConnection page that speaks the signaling format of servers/webrtc/signaling.ts.
 * Open /webrtc?signal=ws://127.0.0.1:PORT/signal&room=demo in two tabs (or one tab and a werift peer): the second one
 * to join calls every peer already in the room. `window.wl` is the page's API, used by the Chromium test. Channels
 * named echo* send back what they get; count* count bytes and answer "done" with the count.
 * Script only, no framework, no external resources: the page makes no request beyond the signaling WebSocket.
 */
const SCRIPT = String.raw`
const q = new URLSearchParams(location.search);
const log = (s) => { const li = document.createElement('li'); li.textContent = new Date().toISOString().slice(11, 23) + ' ' + s; document.getElementById('log').append(li); };
const wl = {
  id: undefined, peers: new Map(), received: [], opened: [], events: [],
  config: { iceServers: [] },
  connect(url, room) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      wl.ws = ws;
      ws.onerror = () => reject(new Error('signaling WebSocket failed'));
      ws.onmessage = async (e) => {
        const m = JSON.parse(e.data);
        wl.events.push(m.type);
        if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'join', room }));
        else if (m.type === 'joined') { wl.id = m.id; log('joined ' + room + ' as ' + m.id + ', peers: ' + (m.peers.join(', ') || 'none')); for (const p of m.peers) wl.call(p); resolve(m); }
        else if (m.type === 'offer') await wl.answer(m);
        else if (m.type === 'answer') { const p = wl.peers.get(m.from); if (p && p.session === m.session) { await p.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp }); wl.flush(p); } }
        else if (m.type === 'candidate') { const p = wl.peers.get(m.from); if (p && p.session === m.session) { if (p.pc.remoteDescription) await p.pc.addIceCandidate(m.candidate ?? undefined); else p.pending.push(m.candidate); } }
        else if (m.type === 'error') log('signaling error ' + m.code + ': ' + m.message);
        else if (m.type === 'bye') { const p = wl.peers.get(m.from); if (p && p.session === m.session) { p.pc.close(); wl.peers.delete(m.from); log(m.from + ' hung up'); } }
        else if (m.type === 'peer-left') { wl.peers.get(m.peer)?.pc.close(); wl.peers.delete(m.peer); log(m.peer + ' left'); }
      };
    });
  },
  signal(msg) { wl.ws.send(JSON.stringify(msg)); },
  peer(remote, session) {
    const pc = new RTCPeerConnection(wl.config);
    const p = { pc, session, pending: [], channels: {} };
    wl.peers.set(remote, p);
    pc.onicecandidate = (e) => wl.signal({ type: 'candidate', to: remote, session, candidate: e.candidate ? e.candidate.toJSON() : null });
    pc.ondatachannel = (e) => wl.attach(p, e.channel);
    return p;
  },
  attach(p, ch) {
    ch.binaryType = 'arraybuffer';
    p.channels[ch.label] = ch;
    ch.onopen = () => { wl.opened.push(ch.label); log('channel ' + ch.label + ' open (ordered=' + ch.ordered + ', maxRetransmits=' + ch.maxRetransmits + ')'); };
    if (ch.readyState === 'open') ch.onopen();
    let counted = 0;
    ch.onmessage = (e) => {
      // "count*" channels: bytes are counted, not kept; the text "done" is answered with the count (bulk transfers).
      if (ch.label.startsWith('count')) { if (e.data === 'done') { ch.send(String(counted)); counted = 0; } else counted += e.data.byteLength ?? e.data.length; return; }
      const binary = typeof e.data !== 'string';
      const data = binary ? Array.from(new Uint8Array(e.data)) : e.data;
      wl.received.push({ label: ch.label, binary, data });
      log(ch.label + ' got ' + (binary ? data.length + ' bytes' : JSON.stringify(data)));
      if (ch.label.startsWith('echo')) ch.send(e.data);
    };
  },
  async call(remote) {
    const p = wl.peer(remote, 'b' + Math.random().toString(36).slice(2, 10));
    wl.attach(p, p.pc.createDataChannel('chat'));
    wl.attach(p, p.pc.createDataChannel('unreliable', { ordered: false, maxRetransmits: 0 }));
    await p.pc.setLocalDescription(await p.pc.createOffer());
    wl.signal({ type: 'offer', to: remote, session: p.session, sdp: p.pc.localDescription.sdp });
  },
  async answer(m) {
    const p = wl.peer(m.from, m.session);
    await p.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    wl.flush(p);
    await p.pc.setLocalDescription(await p.pc.createAnswer());
    wl.signal({ type: 'answer', to: m.from, session: m.session, sdp: p.pc.localDescription.sdp });
  },
  flush(p) { for (const c of p.pending.splice(0)) p.pc.addIceCandidate(c ?? undefined); },
  send(label, data) { for (const p of wl.peers.values()) { const ch = p.channels[label]; if (ch && ch.readyState === 'open') ch.send(Array.isArray(data) ? new Uint8Array(data) : data); } },
};
window.wl = wl;
document.getElementById('send').onclick = () => { const v = document.getElementById('text').value; wl.send('chat', v); log('sent ' + JSON.stringify(v)); };
if (q.get('signal')) wl.connect(q.get('signal'), q.get('room') || 'demo').catch((e) => log(String(e)));
else log('add ?signal=ws://HOST:PORT/signal&room=NAME to the address to join a room');
`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wirelab WebRTC peer</title></head>
<body>
<h1>wirelab WebRTC peer</h1>
<p>Plain RTCPeerConnection and two data channels (<code>chat</code>: reliable and ordered; <code>unreliable</code>:
unordered, maxRetransmits 0), signaled over wirelab's WebSocket signaling server.</p>
<input id="text" value="hello from the browser"> <button id="send">send on chat</button>
<ol id="log"></ol>
<script type="module">${SCRIPT}</script>
</body></html>
`;

/** GET /webrtc: the browser peer page. */
export function registerWebRtcPage(router: Router): void {
  router.add('GET', '/webrtc', (ctx: Ctx) => send(ctx, 200, PAGE, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }));
}
