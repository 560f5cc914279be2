/**
 * `npm run backfill:attribution -- --from 2026-09-01 [--entity deal]`: gives the attribution report the leads
 * (or, on portals without leads, deals) made before it existed. The worker does the work (POST
 * /admin/attribution/backfill, 200 a step, queued for enrichment); this prints the progress. Interrupted, the
 * same command resumes after the last id done. Settings: WORKER_URL (default: the local `npm start` worker)
 * and ADMIN_TOKEN (environment or .dev.vars).
 */
import { parseArgs } from "node:util";
import { readDevVars } from "./dev-vars";
import { DEV, workerUrl as localWorkerUrl } from "./dev-settings";

const { values } = parseArgs({ options: { from: { type: "string" }, entity: { type: "string", default: "lead" }, worker: { type: "string" } } });
if (!values.from || !/^\d{4}-\d{2}-\d{2}$/.test(values.from) || !["lead", "deal"].includes(String(values.entity))) {
  console.error("Usage: npm run backfill:attribution -- --from 2026-09-01 [--entity lead|deal]");
  process.exit(2);
}
const worker = (values.worker ?? process.env.WORKER_URL ?? localWorkerUrl).replace(/\/$/, "");
const token = process.env.ADMIN_TOKEN || readDevVars().ADMIN_TOKEN || (worker === localWorkerUrl ? DEV.adminToken : "");
if (!token) {
  console.error("ADMIN_TOKEN is not set (environment or .dev.vars): the worker's /admin routes need it.");
  process.exit(2);
}

const totals = { read: 0, queued: 0 };
for (let step = 1; ; step++) {
  const res = await fetch(`${worker}/admin/attribution/backfill`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ from: values.from, entity: values.entity }),
  }).catch((error: unknown) => {
    console.error(`Cannot reach ${worker}: ${String(error)}`);
    process.exit(1);
  });
  const body = (await res.json().catch(() => ({}))) as { read?: number; queued?: number; lastId?: string; done?: boolean };
  if (!res.ok) {
    console.error(`Step ${step} failed: HTTP ${res.status} ${JSON.stringify(body)}. Run the same command again to resume.`);
    process.exit(1);
  }
  totals.read += body.read ?? 0;
  totals.queued += body.queued ?? 0;
  console.log(`[step ${step}] ${values.entity}s read ${totals.read}, queued for attribution ${totals.queued}, last id ${body.lastId}`);
  if (body.done) break;
}
console.log(`Done: ${totals.read} ${values.entity}s since ${values.from}, ${totals.queued} with a CoMagic visitor queued; the report fills in as the enrichment queue drains.`);
