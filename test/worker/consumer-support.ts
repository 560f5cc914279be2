import { env } from "cloudflare:workers";
import { createBitrixClient } from "../../worker/bitrix/client";
import { createCrmStore } from "../../worker/bitrix/crm-store";
import { createCoMagicRpcClient } from "../../worker/comagic/data-api";
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

/** The sandbox portal's REST client over its webhook, failing fast and never sleeping between tries. */
export const sandboxBitrix = () => createBitrixClient({ baseUrl: env.BITRIX_WEBHOOK_URL ?? "", timeoutMs: 1_500, sleep: async () => {} });

/** The sandbox's CoMagic Data API as the env's account, with no token shared between clients. */
export const sandboxDataApi = () =>
  createCoMagicRpcClient({
    url: env.COMAGIC_DATA_API_URL ?? "",
    auth: { kind: "login" as const, login: "sandbox", password: "sandbox-password" },
    tokens: { get: async () => null, put: async () => {}, delete: async () => {} },
    api: "Data API",
  });
