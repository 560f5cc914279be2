import { spawnSync } from "node:child_process";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureCrmUserFields } from "../worker/bitrix/user-fields";
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { installSandboxApp, sandboxWorkerVars, startLocalWorker } from "./local-worker";
import { postSampleCall, waitForLeadOf } from "./sample-call";
import { startSandbox } from "./server";

if (spawnSync(process.execPath, ["snippet/build.mjs"], { stdio: "inherit" }).status !== 0) process.exit(1);
// Visitors nobody seeded get a made-up journey, so enrichment and the CRM tab show something.
const sandbox = await startSandbox({ port: DEV.sandboxPort, demoWorkerUrl: workerUrl, comagic: { syntheticVisitors: true } });
const fields = await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 }));
console.log(`Bitrix24 sandbox on ${sandbox.url} (custom fields created: ${fields.created.length})`);

const worker = await startLocalWorker({
  port: DEV.workerPort,
  vars: sandboxWorkerVars(sandbox, {
    COMAGIC_WEBHOOK_TOKEN: DEV.webhookToken,
    COMAGIC_WEBHOOK_SECRET: DEV.webhookSecret,
    ALLOWED_ORIGINS: sandboxUrl,
    ENRICH_DELAY_SECONDS: "5",
    // The demo shows enrichment within seconds; a deploy waits for the next 10-minute slot (ENRICH_SLOT_SECONDS).
    ENRICH_SLOT_SECONDS: "0",
    ADMIN_TOKEN: DEV.adminToken,
  }),
}).catch(async (error: unknown) => {
  console.error(String(error));
  await sandbox.close();
  process.exit(1);
});

// The Bitrix24 app, installed as the portal's admin would, and a sample lead to open in a card.
await installSandboxApp(sandbox, worker.url);
const sampleLeadId = await createSampleLead();

console.log(`
  Worker   ${workerUrl}             health: ${workerUrl}/health
  Sandbox  ${sandboxUrl}/_sandbox    (the Bitrix24 portal's leads)
  Demo     ${sandboxUrl}/demo?utm_source=demo&utm_medium=cpc&utm_campaign=launch
           (a site with the snippet: submit its form, then look at the sandbox's leads)
  Card     ${sandboxUrl}/_sandbox/lead-card/${sampleLeadId}?user=2
           (a lead card with the CoMagic tab, as Bitrix24 shows it: journey, attribution, Call)
  Report   ${sandboxUrl}/_sandbox/app?user=1&lang=ru   (lang=en for English)
           (CRM Analytics' attribution report, as the portal's admin sees it; fills in as leads are enriched)

  Next:    npm run send:call        posts a signed sample call and prints the lead it made
  Webhook  POST ${workerUrl}/webhooks/comagic?token=${DEV.webhookToken}
  Admin    curl -H "Authorization: Bearer ${DEV.adminToken}" ${workerUrl}/admin/dead-letters
           npm run reconcile -- --from <date>   (calls seeded in the CoMagic sandbox)
  Stop:    Ctrl+C
`);

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
