import { env } from "cloudflare:workers";
import { createBitrixClient } from "../../worker/bitrix/client";
import { createCrmStore } from "../../worker/bitrix/crm-store";
import type { ConsumerDeps } from "../../worker/jobs/consumer";
import { createLogger } from "../../worker/log";

/** The lead consumer's adapters against the sandbox portal, quiet and without ledger or follow-ups unless given. */
export function consumerDeps(overrides: Partial<ConsumerDeps> = {}): ConsumerDeps {
  return {
    store: createCrmStore(createBitrixClient({ baseUrl: env.BITRIX_WEBHOOK_URL ?? "", timeoutMs: 1_500, sleep: async () => {} })),
    deadLetters: { send: async () => {} },
    log: createLogger({}, () => {}),
    now: () => new Date(),
    random: () => 0.5,
    rules: { dedupDays: 30, defaultRegion: "RU" },
    crmMode: async () => "classic",
    ledger: null,
    followUps: null,
    formEnrichLimit: null,
    queue: "comagic-lead-jobs",
    ...overrides,
  };
}
