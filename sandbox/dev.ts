import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureCrmUserFields } from "../worker/bitrix/user-fields";
import { buildDemo, DEMO_DEPARTED, seedDemo, type DemoResult } from "./demo-seed";
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { installSandboxApp, sandboxWorkerVars, startLocalWorker } from "./local-worker";
import { postSampleCall, waitForLeadOf } from "./sample-call";
import { startSandbox } from "./server";

if (spawnSync(process.execPath, ["snippet/build.mjs"], { stdio: "inherit" }).status !== 0) process.exit(1);
// `npm start -- --demo` seeds a shop's 90 days through the worker (sandbox/demo-seed.ts) into a worker state of its
// own, made anew each time: the demo's CoMagic ids are the same on every run, and a kept ledger would skip them.
const demo = process.argv.includes("--demo");
const DEMO_STATE_DIR = ".wrangler/demo-state";
if (demo) rmSync(DEMO_STATE_DIR, { recursive: true, force: true });
// Visitors nobody seeded get a made-up journey, so enrichment and the CRM tab show something.
const SECOND_TOKEN = "dev-second-token";
// A second portal (its own Bitrix24 and CoMagic account under /p/second), served by the same worker as a stored portal.
const sandbox = await startSandbox({ port: DEV.sandboxPort, demoWorkerUrl: workerUrl, comagic: { syntheticVisitors: true }, portals: ["second", "fresh"], ownPorts: true });
const fields = await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 }));
console.log(`Bitrix24 sandbox on ${sandbox.url} (custom fields created: ${fields.created.length})`);

const worker = await startLocalWorker({
  port: DEV.workerPort,
  ...(demo ? { stateDir: DEMO_STATE_DIR } : {}),
  vars: sandboxWorkerVars(sandbox, {
    // The demo's manager who left (user 4) is still mapped to his CoMagic employee: his call becomes a dead letter.
    ...(demo ? { COMAGIC_EMPLOYEES: JSON.stringify({ "1": 25, "2": 26, [DEMO_DEPARTED.userId]: DEMO_DEPARTED.employeeId }) } : {}),
    COMAGIC_WEBHOOK_TOKEN: DEV.webhookToken,
    COMAGIC_WEBHOOK_SECRET: DEV.webhookSecret,
    ALLOWED_ORIGINS: sandboxUrl,
    ENRICH_DELAY_SECONDS: "5",
    // The demo shows enrichment within seconds; a deploy waits for the next 10-minute slot (ENRICH_SLOT_SECONDS).
    ENRICH_SLOT_SECONDS: "0",
    ADMIN_TOKEN: DEV.adminToken,
    // The sandbox's stand-in for a Slack hook: a portal's change of health is posted there (GET /_sandbox/alerts).
    ALERT_WEBHOOK_URL: `${sandboxUrl}/_sandbox/alerts`,
  }),
}).catch(async (error: unknown) => {
  console.error(String(error));
  await sandbox.close();
  process.exit(1);
});

// The Bitrix24 app, installed as the portal's admin would, and a sample lead to open in a card.
await installSandboxApp(sandbox, worker.url);
const sampleLeadId = await createSampleLead();
await addSecondPortal();
const demoResult = demo ? await seedDemoPortal() : null;
const cardLeadId = demoResult?.showcaseLeadId ?? sampleLeadId;
const freshUrl = sandbox.portals.fresh?.url ?? "";

console.log(`
  Worker   ${workerUrl}             health: ${workerUrl}/health
  Sandbox  ${sandboxUrl}/_sandbox    (the Bitrix24 portal's leads)
  Demo     ${sandboxUrl}/demo?utm_source=demo&utm_medium=cpc&utm_campaign=launch
           (a site with the snippet: submit its form, then look at the sandbox's leads)
  Card     ${sandboxUrl}/_sandbox/lead-card/${cardLeadId}?user=2
           (a lead card with the CoMagic tab, as Bitrix24 shows it: journey, attribution, Call)
  Report   ${sandboxUrl}/_sandbox/app?user=1&lang=ru   (lang=en for English)
           (CRM Analytics' attribution report, as the portal's admin sees it; fills in as leads are enriched)${
             demoResult
               ? `
  Seeded   ${demoResult.leads} leads over 90 days (${demoResult.lostCalls} missed calls with call-back to-dos), ${demoResult.deals.won} deals won and ${demoResult.deals.lost} lost (${demoResult.deals.currencies.join(", ")}), ad cost of ${demoResult.costDays} days: in ${demoResult.seconds} s
           in the report: period "Last 90 days", grouped by source / medium; group by CoMagic campaign for cost and ROMI
           one dead letter (a call of a manager who left): curl -H "Authorization: Bearer ${DEV.adminToken}" ${workerUrl}/admin/dead-letters`
               : ""
           }

  New      a portal nothing is set up for ("fresh", a Bitrix24 portal of its own): set it up in the app alone
           1. install the app   ${freshUrl}/_sandbox/market/install?worker=${encodeURIComponent(workerUrl)}&lang=en
           2. open its settings ${freshUrl}/_sandbox/app/open?lang=en   (lang=ru for Russian)
              CoMagic account: "Local sandbox", login ${sandbox.comagic.login}, password ${sandbox.comagic.password}; sites: ${sandboxUrl}; Save
           3. a call            npm run send:call -- '<the notification address the page shows>'
           4. a form            ${sandboxUrl}/demo?portal=<the key in the page's script tag>
           leads at ${freshUrl}/_sandbox

  Agency   ${workerUrl}/agency   (every portal's health; sign in with the admin token ${DEV.adminToken})
           alerts at ${sandboxUrl}/_sandbox/alerts (the cron posts them; wrangler dev runs no cron by itself)

  Portals  curl -H "Authorization: Bearer ${DEV.adminToken}" ${workerUrl}/admin/portals
           (the default one from these settings, and "second": webhook ${workerUrl}/webhooks/comagic/second?token=${SECOND_TOKEN},
            script ${workerUrl}/s/second.js, leads at ${sandbox.portals.second?.url ?? ""}/_sandbox)

  Next:    npm run send:call        posts a signed sample call and prints the lead it made
  Webhook  POST ${workerUrl}/webhooks/comagic?token=${DEV.webhookToken}
  Admin    curl -H "Authorization: Bearer ${DEV.adminToken}" ${workerUrl}/admin/dead-letters
           npm run reconcile -- --from <date>   (calls seeded in the CoMagic sandbox)
  Stop:    Ctrl+C
`);

/** Stores the sandbox's second portal in the worker, as an agency's operator adds a client (PUT /admin/portals/<key>). */
async function addSecondPortal(): Promise<void> {
  const second = sandbox.portals.second;
  if (!second) return;
  await ensureCrmUserFields(createBitrixClient({ baseUrl: second.bitrixWebhookUrl, timeoutMs: 10_000 }));
  const settings = {
    BITRIX_WEBHOOK_URL: second.bitrixWebhookUrl,
    COMAGIC_DATA_API_URL: second.dataApiUrl,
    COMAGIC_CALL_API_URL: second.callApiUrl,
    COMAGIC_LOGIN: second.comagic.login,
    COMAGIC_PASSWORD: second.comagic.password,
    COMAGIC_WEBHOOK_TOKEN: SECOND_TOKEN,
    ALLOWED_ORIGINS: sandboxUrl,
    ENRICH_DELAY_SECONDS: "5",
  };
  const res = await fetch(`${workerUrl}/admin/portals/second`, {
    method: "PUT",
    headers: { authorization: `Bearer ${DEV.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ settings }),
  });
  if (!res.ok) console.error(`Adding the second portal failed: HTTP ${res.status} ${await res.text()}`);
}

/** `--demo`: the shop's history through the worker's routes, then the report's refresh (sandbox/demo-seed.ts). */
async function seedDemoPortal(): Promise<DemoResult> {
  const plan = buildDemo({ now: new Date(), siteOrigin: sandboxUrl, mediaBase: sandboxUrl, departedEmployeeId: DEMO_DEPARTED.employeeId });
  console.log("Seeding the demo shop through the worker …");
  return seedDemo(plan, {
    worker: (request) => fetch(request),
    workerUrl,
    sandboxUrl,
    bitrixWebhookUrl: sandbox.bitrixWebhookUrl,
    adminToken: DEV.adminToken,
    webhook: { token: DEV.webhookToken, secret: DEV.webhookSecret, template: readFileSync("docs/comagic-call-notification.template", "utf8") },
    siteOrigin: sandboxUrl,
    departedUserId: DEMO_DEPARTED.userId,
    log: (line) => console.log(`  demo: ${line}`),
  }).catch(async (error: unknown) => {
    console.error(`The demo could not be seeded: ${String(error)}`);
    await worker.stop();
    await sandbox.close();
    process.exit(1);
  });
}

async function createSampleLead(): Promise<string> {
  const answer = await postSampleCall(workerUrl, sandboxUrl, DEV.webhookToken, DEV.webhookSecret);
  const lead = answer?.id ? await waitForLeadOf(sandboxUrl, answer.id, 15_000) : null;
  return lead ? String(lead.ID) : "1";
}

const stop = async () => {
  await worker.stop();
  await sandbox.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
worker.process.on("exit", async (code) => {
  await sandbox.close();
  process.exit(code ?? 0);
});
