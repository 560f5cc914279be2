import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL("..", import.meta.url));

export default defineConfig({
  test: {
    root,
    restoreMocks: true,
    silent: "passed-only",
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
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
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
                ADMIN_TOKEN: "test-admin-token",
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
                // Titles and comments in English for the assertions; Russian (the default) has its own test.
                CRM_LANGUAGE: "en",
              },
            },
          })),
        ],
        test: {
          name: "worker",
          root,
          include: ["test/worker/**/*.test.ts", "test/security/**/*.test.ts"],
          globalSetup: ["test/helpers/sandbox-global-setup.ts"],
          // One sandbox portal and one queue serve every file: files run one after another.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
