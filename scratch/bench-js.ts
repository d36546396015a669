import { jetstreamRows } from '../bench/fixtures/pubsub-jetstream.ts';
const rows = await jetstreamRows();
for (const r of rows) console.log(r.label.padEnd(90), r.value.toFixed(1), r.unit, r.baseline ? `vs ${r.baseline}` : '');
export {};
