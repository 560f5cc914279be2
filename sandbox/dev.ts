import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureLeadUserFields } from "../worker/bitrix/user-fields";
import { DEV, sandboxUrl, workerUrl } from "./dev-settings";
import { startSandbox } from "./server";

const sandbox = await startSandbox({ port: DEV.sandboxPort });
const fields = await ensureLeadUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 }));
console.log(`Bitrix24 sandbox on ${sandbox.url} (custom fields created: ${fields.created.length})`);

// Settings for the local worker go in a file of their own, so a developer's .dev.vars is left alone.
mkdirSync(".wrangler", { recursive: true });
const envFile = ".wrangler/sandbox.env";
writeFileSync(
  envFile,
  [
    `BITRIX_WEBHOOK_URL=${sandbox.bitrixWebhookUrl}`,
    `BITRIX_TIMEOUT_MS=10000`,
    `COMAGIC_WEBHOOK_TOKEN=${DEV.webhookToken}`,
    `COMAGIC_WEBHOOK_SECRET=${DEV.webhookSecret}`,
  ].join("\n"),
);

const wrangler = spawn(
  "npx",
  ["wrangler", "dev", "--local", "--ip", "127.0.0.1", "--port", String(DEV.workerPort), "--env-file", envFile, "--show-interactive-dev-session=false"],
  { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" } },
);

async function waitForWorker(): Promise<boolean> {
  for (let i = 0; i < 120; i++) {
    try {
      const res = await fetch(`${workerUrl}/health`);
      if (res.status === 200 || res.status === 503) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

if (await waitForWorker()) {
  console.log(`
  Worker   ${workerUrl}            health: ${workerUrl}/health
  Sandbox  ${sandboxUrl}/_sandbox   (the Bitrix24 portal's leads)

  Next:    npm run send:call       posts a signed sample call and prints the lead it made
  Webhook  POST ${workerUrl}/webhooks/comagic?token=${DEV.webhookToken}
  Stop:    Ctrl+C
`);
} else {
  console.error("The worker did not answer on /health within a minute; see wrangler's output above.");
}

const stop = async () => {
  wrangler.kill("SIGINT");
  await sandbox.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
wrangler.on("exit", async (code) => {
  await sandbox.close();
  process.exit(code ?? 0);
});
