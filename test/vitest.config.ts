import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL("..", import.meta.url));

/*
 * The workerd tests share a sandbox portal and a queue within a project, so a project runs its files one after
 * another. They mostly wait (for queue batches, retries, lagging reports), so five projects, each with its own
 * sandbox, Miniflare and queues, run side by side (test/run.mjs: one Vitest process each, since Vitest runs
 * the projects of one pool one after another). Shards are balanced by the files' durations in `npm test`.
 *
 * Isolated shards start a fresh Miniflare for each file (a few seconds of CPU each): what a file left in its
 * queues (retries, follow-ups) dies with it. Their files count the sandboxes' requests, logins or quiet
 * periods, which another file's leftovers would disturb. The shared shard's files assert nothing of the kind,
 * so they share one Miniflare; each resets the sandbox it changes, and test/worker/file-setup.ts what the
 * worker caches in KV.
 */
type Shard = { name: string; isolate: boolean; files: string[] };
const WORKER_SHARDS: Shard[] = [
  {
    name: "worker-1",
    isolate: true,
    files: ["test/worker/call-record.test.ts", "test/worker/reconcile.test.ts", "test/worker/webhook.test.ts", "test/worker/feed.test.ts", "test/worker/demo.test.ts"],
  },
  {
    name: "worker-2",
    isolate: true,
    files: [
      "test/worker/enrich.test.ts",
      "test/worker/faults.test.ts",
      "test/worker/consumer.test.ts",
      "test/worker/comagic-budget.test.ts",
      "test/worker/deal-loop.test.ts",
      "test/worker/conversions.test.ts",
      "test/worker/form-uploads.test.ts",
    ],
  },
  {
    name: "worker-3",
    isolate: true,
    files: [
      "test/worker/duplicate-lag.test.ts",
      "test/worker/new-portal.test.ts",
      "test/worker/settings-page.test.ts",
      "test/worker/ingest.test.ts",
      "test/worker/forms.test.ts",
      "test/worker/repeat-clients.test.ts",
      "test/security/form-attribution.test.ts",
      "test/worker/portals-app.test.ts",
    ],
  },
  {
    name: "worker-4",
    isolate: true,
    files: ["test/worker/simple-crm.test.ts", "test/worker/bitrix-app.test.ts", "test/worker/telephony.test.ts", "test/security/forms.test.ts", "test/worker/portals.test.ts"],
  },
  {
    name: "worker-shared",
    isolate: false,
    files: [
      "test/worker/fuzz.test.ts",
      "test/worker/attribution-report.test.ts",
      "test/worker/required-fields.test.ts",
      "test/worker/snippet-route.test.ts",
      "test/worker/admin.test.ts",
      "test/worker/health.test.ts",
      "test/security/app-tokens.test.ts",
      "test/security/batch-references.test.ts",
      "test/security/click-to-call.test.ts",
      "test/security/operator-routes.test.ts",
      "test/security/retention.test.ts",
      "test/security/report-export.test.ts",
      "test/security/report-access.test.ts",
      "test/security/admin-token.test.ts",
      "test/security/oauth-endpoint.test.ts",
      "test/security/tab-journey.test.ts",
      "test/security/contact-injection.test.ts",
      "test/worker/portal-state.test.ts",
      "test/worker/agency.test.ts",
    ],
  },
];

// A new test file must be given a shard, or it would silently not run.
const sharded = new Set(WORKER_SHARDS.flatMap((shard) => shard.files));
for (const dir of ["test/worker", "test/security"]) {
  // `*.browser.test.ts` run in Chromium (the "browser" project), not in workerd.
  for (const file of readdirSync(`${root}/${dir}`).filter((f) => f.endsWith(".test.ts") && !f.endsWith(".browser.test.ts"))) {
    if (!sharded.has(`${dir}/${file}`)) throw new Error(`${dir}/${file} is in no WORKER_SHARDS entry of test/vitest.config.ts`);
  }
}

function workerProject({ name, isolate, files }: Shard) {
  return {
    // Each shard pre-bundles the dependencies on its own: shards start together and must not share a cache being written.
    cacheDir: `${root}/node_modules/.vite/${name}`,
    plugins: [
      cloudflareTest(({ inject }) => ({
        wrangler: { configPath: `${root}/wrangler.toml` },
        miniflare: {
          // wrangler.toml's batch timeouts (2 s and 5 s) are for production traffic; tests would spend
          // most of their time waiting for batches to fill. Everything else is as deployed.
          queueConsumers: {
            "comagic-lead-jobs": { maxBatchSize: 40, maxBatchTimeout: 0.5, maxRetries: 20, deadLetterQueue: "comagic-dead-letters" },
            "comagic-enrich-jobs": { maxBatchSize: 20, maxBatchTimeout: 0.5, maxRetries: 20, deadLetterQueue: "comagic-dead-letters" },
            "comagic-dead-letters": { maxBatchSize: 50, maxBatchTimeout: 0.5 },
          },
          bindings: {
            BITRIX_WEBHOOK_URL: inject<string>("bitrixWebhookUrl"),
            BITRIX_TIMEOUT_MS: "1500",
            COMAGIC_WEBHOOK_TOKEN: "test-token-old,test-token",
            COMAGIC_WEBHOOK_SECRET: "test-secret",
            ALLOWED_ORIGINS: "https://shop.example.ru, https://*.example.org",
            COMAGIC_DATA_API_URL: inject<string>("dataApiUrl"),
            COMAGIC_LOGIN: "sandbox",
            COMAGIC_PASSWORD: "sandbox-password",
            ENRICH_DELAY_SECONDS: "1",
            // No slots: a test's follow-ups come a second after its write, not at the next 10-minute boundary.
            ENRICH_SLOT_SECONDS: "0",
            // 32+ characters: the worker refuses a shorter admin token.
            ADMIN_TOKEN: "test-admin-token-0123456789abcdef0123",
            // The sandboxes listen on 127.0.0.1 over plain http: allowed only with this development setting.
            ALLOW_LOOPBACK_HTTP: "true",
            BITRIX_APP_CLIENT_ID: "local.sandbox-app",
            BITRIX_APP_CLIENT_SECRET: "sandbox-app-secret",
            BITRIX_OAUTH_URL: `${inject<string>("sandboxUrl")}/oauth/token/`,
            COMAGIC_CALL_API_URL: inject<string>("callApiUrl"),
            COMAGIC_VIRTUAL_NUMBER: "+7 499 372-06-92",
            COMAGIC_EMPLOYEES: '{"1": 25}',
            // The email-matching test needs it; test/security shows what it costs when on.
            COMAGIC_MATCH_BY_EMAIL: "true",
            TAB_TOKEN_SECRET: "test-tab-token-key-new-0123456789abcdef,test-tab-token-key-old-0123456789abcdef",
            SANDBOX_URL: inject<string>("sandboxUrl"),
            SANDBOX_PORTALS: JSON.stringify(inject("sandboxPortals")),
            // Seals stored portals' secrets (32 bytes, base64); the second key is an older one still opened (rotation).
            SETTINGS_KEY: "dGVzdC1zZXR0aW5ncy1rZXktMzItYnl0ZXMtbG9uZyE=,b2xkLXRlc3Qtc2V0dGluZ3Mta2V5LTMyLWJ5dGVzLSE=",
            // "full": the fuzz and enrichment-under-faults runs at soak size (`npm run soak`); else sized for proof.
            TEST_SIZE: process.env.TEST_SIZE === "full" ? "full" : "proof",
            // Titles and comments in English for the assertions; Russian (the default) has its own test.
            CRM_LANGUAGE: "en",
          },
        },
      })),
    ],
    test: {
      name,
      root,
      include: files,
      globalSetup: ["test/helpers/sandbox-global-setup.ts"],
      // One sandbox portal and one queue serve every file of a shard: its files run one after another.
      fileParallelism: false,
      isolate,
      // An isolated file's KV is new anyway; only files that share a Miniflare need the worker's caches cleared.
      setupFiles: isolate ? [] : ["test/worker/file-setup.ts"],
      // zod, hono and libphonenumber-js are many small modules; one file each loads much faster into each test file's isolate.
      deps: { optimizer: { ssr: { enabled: true, include: ["zod", "hono", "hono/tiny", "libphonenumber-js/core"] } } },
      testTimeout: process.env.TEST_SIZE === "full" ? 900_000 : 60_000,
      hookTimeout: 60_000,
    },
  };
}

export default defineConfig({
  test: {
    root,
    restoreMocks: true,
    silent: "passed-only",
    /*
     * An isolated file's Miniflare closes with the file, while the queues may still be delivering its calls'
     * follow-ups (telephony, enrichment retries): their log lines then find Vitest's channel closed. That is the
     * harness stopping background work, not a failure of a test; every other unhandled error still fails the run.
     */
    onUnhandledError: (error) => error.name !== "EnvironmentTeardownError",
    projects: [
      {
        test: {
          name: "unit",
          root,
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          setupFiles: ["test/helpers/no-network.ts"],
        },
      },
      {
        test: {
          name: "browser",
          root,
          include: ["test/browser/**/*.test.ts", "test/security/**/*.browser.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      ...WORKER_SHARDS.map(workerProject),
    ],
  },
});
