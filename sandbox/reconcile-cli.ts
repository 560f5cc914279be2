/**
 * `npm run reconcile -- --from 2026-11-01 --to 2026-11-20`: after an outage, brings every targeted call of
 * a past window into Bitrix24. The worker does the work (POST /admin/reconcile, a day at a time); this
 * prints the progress. Settings: WORKER_URL (default: the local `npm start` worker) and ADMIN_TOKEN
 * (environment or .dev.vars).
 */
import { parseArgs } from "node:util";
import { readDevVars } from "./dev-vars";
import { DEV, workerUrl as localWorkerUrl } from "./dev-settings";

const { values } = parseArgs({
  options: { from: { type: "string" }, to: { type: "string" }, "step-hours": { type: "string", default: "24" }, worker: { type: "string" } },
});

function parseWhen(text: string | undefined, name: string): Date {
  const date = text ? new Date(/^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    console.error(`--${name} must be a date (2026-11-01) or a time (2026-11-01T09:00:00Z)`);
    process.exit(2);
  }
  return date;
}

const from = parseWhen(values.from, "from");
const to = values.to ? parseWhen(values.to, "to") : new Date();
const stepMs = Number(values["step-hours"]) * 3_600_000;
if (!(to > from) || !(stepMs > 0) || stepMs > 7 * 86_400_000) {
  console.error("--to must be after --from, and --step-hours between 1 and 168");
  process.exit(2);
}
const worker = (values.worker ?? process.env.WORKER_URL ?? localWorkerUrl).replace(/\/$/, "");
const token = process.env.ADMIN_TOKEN || readDevVars().ADMIN_TOKEN || (worker === localWorkerUrl ? DEV.adminToken : "");
if (!token) {
  console.error("ADMIN_TOKEN is not set (environment or .dev.vars): the worker's /admin routes need it.");
  process.exit(2);
}

const steps = Math.ceil((to.getTime() - from.getTime()) / stepMs);
const totals = { calls: 0, targeted: 0, alreadyInBitrix: 0, enqueued: 0 };
const short = (d: Date) => d.toISOString().slice(0, 16).replace("T", " ");
for (let i = 0; i < steps; i++) {
  const start = new Date(from.getTime() + i * stepMs);
  const end = new Date(Math.min(to.getTime(), start.getTime() + stepMs));
  const res = await fetch(`${worker}/admin/reconcile`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ from: start.toISOString(), to: end.toISOString() }),
  }).catch((error: unknown) => {
    console.error(`Cannot reach ${worker}: ${String(error)}`);
    process.exit(1);
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    console.error(`[${i + 1}/${steps}] ${short(start)} → ${short(end)} failed: HTTP ${res.status} ${JSON.stringify(body)}`);
    console.error(`Fix the cause and resume with --from ${start.toISOString()}`);
    process.exit(1);
  }
  for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += Number(body[key] ?? 0);
  console.log(`[${i + 1}/${steps}] ${short(start)} → ${short(end)} UTC  calls ${body.calls}  targeted ${body.targeted}  already in Bitrix24 ${body.alreadyInBitrix}  queued ${body.enqueued}`);
}
console.log(`Done: ${totals.calls} calls, ${totals.targeted} targeted, ${totals.alreadyInBitrix} already in Bitrix24, ${totals.enqueued} queued to become leads.`);
