import { spawnSync } from "node:child_process";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureLeadUserFields } from "../worker/bitrix/user-fields";
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { startLocalWorker } from "./local-worker";
import { startSandbox } from "./server";

if (spawnSync(process.execPath, ["snippet/build.mjs"], { stdio: "inherit" }).status !== 0) process.exit(1);
// Visitors nobody seeded get a made-up journey, so enrichment and the CRM tab show something.
const sandbox = await startSandbox({ port: DEV.sandboxPort, demoWorkerUrl: workerUrl, comagic: { syntheticVisitors: true } });
const fields = await ensureLeadUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 }));
console.log(`Bitrix24 sandbox on ${sandbox.url} (custom fields created: ${fields.created.length})`);

const worker = await startLocalWorker({
  port: DEV.workerPort,
  vars: {
    BITRIX_WEBHOOK_URL: sandbox.bitrixWebhookUrl,
    BITRIX_TIMEOUT_MS: "10000",
    COMAGIC_WEBHOOK_TOKEN: DEV.webhookToken,
    COMAGIC_WEBHOOK_SECRET: DEV.webhookSecret,
    ALLOWED_ORIGINS: sandboxUrl,
    COMAGIC_DATA_API_URL: sandbox.dataApiUrl,
    COMAGIC_LOGIN: DEV.comagicLogin,
    COMAGIC_PASSWORD: DEV.comagicPassword,
    ENRICH_DELAY_SECONDS: "5",
    ADMIN_TOKEN: DEV.adminToken,
  },
}).catch(async (error: unknown) => {
  console.error(String(error));
  await sandbox.close();
  process.exit(1);
});

console.log(`
  Worker   ${workerUrl}             health: ${workerUrl}/health
  Sandbox  ${sandboxUrl}/_sandbox    (the Bitrix24 portal's leads)
  Demo     ${sandboxUrl}/demo?utm_source=demo&utm_medium=cpc&utm_campaign=launch
           (a site with the snippet: submit its form, then look at the sandbox's leads)

  Next:    npm run send:call        posts a signed sample call and prints the lead it made
  Webhook  POST ${workerUrl}/webhooks/comagic?token=${DEV.webhookToken}
  Admin    curl -H "Authorization: Bearer ${DEV.adminToken}" ${workerUrl}/admin/dead-letters
           npm run reconcile -- --from <date>   (calls seeded in the CoMagic sandbox)
  Stop:    Ctrl+C
`);

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
