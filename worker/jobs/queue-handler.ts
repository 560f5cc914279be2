import { createBitrixClient } from "../bitrix/client";
import { createLeadStore } from "../bitrix/lead-store";
import { readConfig } from "../config";
import { retryDelaySeconds } from "../domain/backoff";
import type { Env } from "../env";
import { createLogger, errorMessage } from "../log";
import { handleLeadBatch } from "./consumer";

// Misconfiguration is fixed by a person: wait minutes, not seconds, and keep every message.
const MISCONFIGURED_RETRY_SECONDS = 300;

/** The `queue()` entry: wires adapters from Env, and never throws. */
export async function consumeLeadJobs(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue, batchSize: batch.messages.length });
  try {
    const configResult = readConfig(env);
    if (!configResult.ok) {
      log.error("queue.misconfigured", { problems: configResult.problems });
      batch.retryAll({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
      return;
    }
    const { config } = configResult;
    const client = createBitrixClient({ baseUrl: config.BITRIX_WEBHOOK_URL, timeoutMs: config.BITRIX_TIMEOUT_MS });
    await handleLeadBatch(batch, {
      store: createLeadStore(client),
      deadLetters: env.DEAD_LETTERS,
      log,
      now: () => new Date(),
      random: Math.random,
      rules: { dedupDays: config.LEAD_DEDUP_DAYS, defaultRegion: config.DEFAULT_PHONE_REGION },
    });
    log.info("queue.batch_done", { bitrixRequests: client.requestCount });
  } catch (error) {
    log.error("queue.batch_failed", { error: errorMessage(error) });
    const attempts = Math.max(...batch.messages.map((m) => m.attempts));
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts, Math.random()) });
  }
}
