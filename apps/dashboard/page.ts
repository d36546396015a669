/**
 * The dashboard page: plain HTML and one script, no build step, nothing from another origin (the CSP allows only
 * 'self'). Every value from the wire reaches the DOM through textContent, never innerHTML. `window.dash` is the page's
 * API, used by the Chromium test (test/apps/dashboard/page.test.ts).
 */
import { DASHBOARD_SCRIPT } from './script.ts';

export const DASHBOARD_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wirelab dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
  header { padding: .5em 1em; background: #234; color: #fff; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  header a, header button { color: #fff; background: #456; border: 0; padding: .3em .7em; border-radius: .3em; text-decoration: none; cursor: pointer; font: inherit; }
  #state { padding: .1em .6em; border-radius: 1em; background: #a33; }
  #state.live { background: #3a5; }
  nav { display: flex; gap: .3em; padding: .4em 1em 0; background: #eef; }
  nav button { border: 0; background: transparent; padding: .4em .8em; cursor: pointer; font: inherit; }
  nav button.on { background: #fff; border-radius: .3em .3em 0 0; font-weight: bold; }
  section { padding: .6em 1em; display: none; }
  section.on { display: block; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .15em .5em; border-bottom: 1px solid #eee; vertical-align: top; }
  th { background: #f6f6f8; }
  code, .mono { font: 12px/1.3 ui-monospace, monospace; }
  .try { cursor: copy; }
  .filters { display: flex; gap: .5em; flex-wrap: wrap; align-items: center; margin-bottom: .4em; }
  #events { max-height: 55vh; overflow: auto; display: block; }
  #events tr.sel { background: #ffd; }
  .dir-gt { color: #25a; } .dir-lt { color: #a52; } .dir-st { color: #777; }
  .cid { cursor: pointer; text-decoration: underline dotted; }
  #ladder svg { background: #fcfcff; border: 1px solid #ddd; }
  .note { color: #667; font-size: 12px; }
  .err { color: #a22; }
  .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
  #mailview pre { white-space: pre-wrap; background: #f8f8f8; padding: .5em; max-height: 40vh; overflow: auto; }
</style>
</head>
<body>
<header>
  <h1>wirelab</h1>
  <span id="state">offline</span>
  <span id="counts" class="note" style="color:#cde"></span>
  <span id="problem" role="status" style="color:#fbb"></span>
  <button id="pause">pause</button>
  <button id="clear">clear</button>
  <a id="dl-pcapng" href="export/pcapng" download>download pcapng</a>
  <a id="dl-har" href="export/har" download>download HAR</a>
  <a href="/">HTTP playground</a>
</header>
<nav>
  <button data-tab="traffic" class="on">traffic</button>
  <button data-tab="servers">servers</button>
  <button data-tab="pubsub">pub/sub</button>
  <button data-tab="impair">impairment</button>
  <button data-tab="mail">mail</button>
</nav>
<section id="tab-traffic" class="on">
  <div class="filters">
    <label>protocol <select id="f-proto"><option value="">all</option></select></label>
    <label>connection <input id="f-cid" size="10" placeholder="http#3"></label>
    <label>direction <select id="f-dir"><option value="">all</option><option value="&gt;">&gt; client to server</option><option value="&lt;">&lt; server to client</option><option value="*">* state</option></select></label>
    <label>text <input id="f-text" size="14"></label>
    <label><input type="checkbox" id="f-self"> show the dashboard's own requests</label>
    <span id="shown" class="note"></span>
  </div>
  <table id="events"><thead><tr><th>time</th><th>proto</th><th>conn</th><th>dir</th><th>kind</th><th>summary</th><th>bytes</th></tr></thead><tbody></tbody></table>
  <h3>Conversation <span id="ladder-cid" class="mono"></span></h3>
  <p class="note">Click a connection id above: its events as a ladder, client on the left, server on the right.</p>
  <div id="ladder"></div>
</section>
<section id="tab-servers">
  <table id="servers"><thead><tr><th>service</th><th>proto</th><th>address</th><th>what it is</th><th>try it with (click to copy)</th></tr></thead><tbody></tbody></table>
</section>
<section id="tab-pubsub">
  <p id="ps-note" class="note"></p>
  <div class="cols">
    <div><h3>Topics</h3><table id="ps-topics"><thead><tr><th>topic</th><th>partitions</th><th>records</th><th>bytes</th><th>msg/s</th></tr></thead><tbody></tbody></table>
    <h3>Dead letters</h3><table id="ps-dlq"><thead><tr><th>topic</th><th>records</th></tr></thead><tbody></tbody></table></div>
    <div><h3>Consumer groups</h3><table id="ps-groups"><thead><tr><th>group</th><th>mode</th><th>members</th><th>lag</th><th>unacked</th><th>redelivered</th><th>dead-lettered</th></tr></thead><tbody></tbody></table>
    <h3>Broker counters</h3><pre id="ps-stats" class="mono"></pre></div>
  </div>
</section>
<section id="tab-impair">
  <p id="im-note" class="note"></p>
  <table id="proxies"><thead><tr><th>proxy</th><th>listen → upstream</th><th>toxic</th><th>type, stream</th><th>attributes</th><th>on</th><th></th></tr></thead><tbody></tbody></table>
  <h3>Add a toxic</h3>
  <form id="add-toxic" class="filters">
    <select id="t-proxy"></select>
    <select id="t-type"><option>latency</option><option>bandwidth</option><option>slow_close</option><option>timeout</option><option>reset_peer</option><option>slicer</option><option>limit_data</option></select>
    <select id="t-stream"><option>downstream</option><option>upstream</option></select>
    <label>attributes <input id="t-attrs" size="28" value="latency=300 jitter=0"></label>
    <button>add</button> <span id="t-result" class="note"></span>
  </form>
  <h3>Relays (UDP)</h3>
  <pre id="relays" class="mono"></pre>
</section>
<section id="tab-mail">
  <div class="filters"><label>mailbox <select id="m-box"></select></label> <button id="m-refresh">refresh</button> <span id="m-note" class="note"></span></div>
  <div class="cols">
    <table id="mails"><thead><tr><th>UID</th><th>from</th><th>subject</th><th>date</th><th>size</th></tr></thead><tbody></tbody></table>
    <div id="mailview"></div>
  </div>
</section>
<script>@@SCRIPT@@</script>
</body>
</html>
`.replace('@@SCRIPT@@', () => DASHBOARD_SCRIPT);
