import autocannon from "autocannon";
import { startStack, TOKEN } from "./common";

const { sandbox, worker } = await startStack({ ENRICH_DELAY_SECONDS: "3600" }, `.wrangler/probe-${process.pid}`);
const run = (opts: autocannon.Options) => autocannon({ connections: 20, duration: 6, ...opts });
const call = (extra: Record<string, unknown>) => JSON.stringify({ event_type: "call_session_completed", call_session: { id: 777000111, visitor_phone_number: "+79120000001", duration_total: 60, ...extra } });
await run({ url: `${worker.url}/health`, duration: 2 });
for (const [name, opts] of [
  ["health", { url: `${worker.url}/health` }],
  ["bad token (401)", { url: `${worker.url}/webhooks/comagic?token=x`, method: "POST", body: call({}) }],
  ["ignored call (no enqueue)", { url: `${worker.url}/webhooks/comagic?token=${TOKEN}`, method: "POST", body: call({ is_lost_call: true, duration_total: 1 }) }],
  ["accepted call", { url: `${worker.url}/webhooks/comagic?token=${TOKEN}`, method: "POST", body: call({}) }],
  ["health again", { url: `${worker.url}/health` }],
] as const) {
  const r = await run(opts as autocannon.Options);
  console.log(`${name.padEnd(28)} ${r.requests.average.toFixed(0).padStart(6)} req/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms`);
}
await worker.stop();
await sandbox.close();
