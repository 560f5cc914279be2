/*
 * The `queue()` entry for every queue the worker consumes. A batch of a shared queue mixes portals and arrives at
 * least once in no order (cloudflare/FACTS.md §8), so the lead and enrichment queues' messages are grouped by the
 * portal their job names, and each group runs with that portal's settings and stores; a portal that is broken or
 * gone holds up only its own messages. Dead letters are the deployment's.
 */
import type { BitrixClient } from "../bitrix/client";
import { usersByEmployeeEmail } from "./employee-users";
import { crmModeOf } from "../bitrix/crm-mode";
import { createCrmStore } from "../bitrix/crm-store";
import { type AppInstall, appClientFor } from "../bitrix/app-client";
import { appSettings, deploymentSettings, type Config, type DeploymentSettings } from "../config";
import { portalNamedBy } from "../domain/portal-key";
import { configFor } from "../portal-config";
import { MISCONFIGURED_RETRY_SECONDS, retryDelaySeconds } from "../domain/retry-policy";
import { usersByEmployee } from "../domain/responsible";
import type { Env } from "../env";
import { createLogger, errorMessage, type Logger } from "../log";
import { kvTelephonyStatus } from "../storage/telephony-status";
import { deadLetterStore } from "../storage/d1";
import { bitrixClientFor, budgetFor, cacheFor, dataApiClientFor, installOf, portalLimiter, storesFor } from "../wiring";
import { handleLeadBatch } from "./consumer";
import { handleDeadLetters } from "./dead-letters";
import { handleCallRecordJobs } from "./call-record";
import { handleFetchJobs } from "./comagic-fetch";
import { handlePortalTicks } from "./portal-tick";
import { handleDealUploads } from "./deal-loop";
import { throughPortalGate } from "./portal-gate";
import { feedDepsFor } from "./scheduled";
import { handleTelephonyJobs } from "./call-telephony";
import { handleEnrichJobs } from "./enrich";
import { followUpSender } from "./follow-ups";
import type { DeadLetterSender } from "./schema";
import type { SettleDeps } from "./settle";

/** Which handler a queue feeds, by the names LEAD_QUEUE_NAME, ENRICH_QUEUE_NAME and DEAD_LETTER_QUEUE_NAME give. */
function kindOf(queue: string, config: DeploymentSettings): "dead-letters" | "enrich" | "leads" | null {
  if (queue === config.DEAD_LETTER_QUEUE_NAME) return "dead-letters";
  if (queue === config.ENRICH_QUEUE_NAME) return "enrich";
  if (queue === config.LEAD_QUEUE_NAME) return "leads";
  return null;
}

/** The webhook's user, who owns what the webhook writes; a portal reached through the app: the administrator who installed it. */
function ownerUserId(config: Config, install: AppInstall | null): string {
  const webhookUser = config.BITRIX_WEBHOOK_URL ? /\/rest\/(?:api\/)?(\d+)\//.exec(new URL(config.BITRIX_WEBHOOK_URL).pathname)?.[1] : undefined;
  return webhookUser ?? install?.installedByUserId ?? "1";
}

/** Telephony clients in the order FACTS.md §2.9 suggests: the installed app's token first, then the webhook (when the portal has one). */
function telephonyClients(env: Env, config: Config, install: AppInstall | null, bitrix: BitrixClient): { name: "app" | "webhook"; client: BitrixClient }[] {
  const app = appSettings(config);
  const { installs } = storesFor(env, config.portal);
  const clients: { name: "app" | "webhook"; client: BitrixClient }[] = [];
  if (app && install && installs)
    clients.push({ name: "app", client: appClientFor(install, { oauth: app, store: installs, now: Date.now, timeoutMs: config.BITRIX_TIMEOUT_MS, budget: budgetFor(env, config.portal) }) });
  if (config.BITRIX_WEBHOOK_URL) clients.push({ name: "webhook", client: bitrix });
  return clients;
}

/** With COMAGIC_MATCH_BY_EMAIL, employees not in COMAGIC_EMPLOYEES are matched to Bitrix24 users by email. */
function employeeUsersFor(env: Env, config: Config, bitrix: BitrixClient): ((ids: string[]) => Promise<Map<string, string>>) | null {
  // The responsible of a lead being made: lead work, so it may spend the points kept for the feed.
  const dataApi = config.COMAGIC_MATCH_BY_EMAIL ? dataApiClientFor(config, env, "feed") : null;
  return dataApi ? (ids) => usersByEmployeeEmail(ids, { dataApi, bitrix, kv: cacheFor(env, config.portal) }) : null;
}

/** A CoMagic employee's Bitrix24 user: COMAGIC_EMPLOYEES first, then (when allowed) the same email. */
function employeeMapping(env: Env, config: Config, bitrix: BitrixClient): (employeeId: string) => Promise<string | null> {
  const mapped = usersByEmployee(config.COMAGIC_EMPLOYEES ?? {});
  const byEmail = employeeUsersFor(env, config, bitrix);
  return async (employeeId) => mapped[employeeId] ?? (byEmail ? ((await byEmail([employeeId])).get(employeeId) ?? null) : null);
}

/** A job CoMagic's points hold back goes back on the queue it came from as a new message (jobs/settle.ts). */
function resenderFor(queue: Queue | undefined): SettleDeps["resend"] {
  return queue ? async (body, delaySeconds) => void (await queue.send(body, { contentType: "json", delaySeconds })) : null;
}

function commonDeps(env: Env, log: Logger, ownQueue?: Queue) {
  return { deadLetters: env.DEAD_LETTERS as DeadLetterSender, log, now: () => new Date(), random: Math.random, resend: resenderFor(ownQueue) };
}

/** One portal's messages of a batch, as the handlers take a batch. */
type PortalBatch = Pick<MessageBatch<unknown>, "queue" | "messages" | "ackAll" | "retryAll">;

function portalBatch(queue: string, messages: readonly Message<unknown>[]): PortalBatch {
  return {
    queue,
    messages,
    ackAll: () => {
      for (const m of messages) m.ack();
    },
    retryAll: (options) => {
      for (const m of messages) m.retry(options);
    },
  };
}

async function consume(batch: PortalBatch, env: Env, config: Config, log: Logger, kind: "enrich" | "leads"): Promise<void> {
  const stores = storesFor(env, config.portal);
  const bitrix = bitrixClientFor(config, env);
  const { ledger } = stores;
  const followUps = followUpSender(env, config, log);
  const cache = cacheFor(env, config.portal);
  if (kind === "enrich") {
    const typeOf = (m: Message<unknown>) => (m.body as { type?: unknown } | null)?.type;
    const ticks = batch.messages.filter((m) => typeOf(m) === "portal.tick");
    if (ticks.length) await handlePortalTicks(ticks, { env, config, log });
    const dealUploads = batch.messages.filter((m) => typeOf(m) === "deal.upload");
    if (dealUploads.length) await handleDealUploads(dealUploads, stores.dealJournal, log);
    const telephony = batch.messages.filter((m) => typeOf(m) === "call.telephony");
    const rest = batch.messages.filter((m) => !["call.telephony", "portal.tick", "deal.upload"].includes(String(typeOf(m))));
    if (telephony.length) {
      const install = appSettings(config) ? await installOf(env, config).catch(() => null) : null;
      await handleTelephonyJobs(telephony, {
        ...commonDeps(env, log),
        clients: telephonyClients(env, config, install, bitrix),
        ledger,
        status: cache ? kvTelephonyStatus(cache) : null,
        fallbackUserId: config.DEFAULT_RESPONSIBLE_ID ?? ownerUserId(config, install),
        queue: batch.queue,
      });
    }
    if (rest.length === 0) return;
    // Call records complete leads (the feed's points); enrichment can wait for the next day's (domain/comagic-budget.ts).
    const recordApi = dataApiClientFor(config, env, "feed");
    const enrichApi = dataApiClientFor(config, env, "deferrable");
    if (!recordApi || !enrichApi) {
      log.warn("enrich.skipped", { reason: "no CoMagic Data API credentials", count: rest.length });
      for (const m of rest) m.ack();
      return;
    }
    const shared = { ...commonDeps(env, log, env.ENRICH_JOBS), bitrix, queue: batch.queue, timeZone: config.COMAGIC_TIMEZONE };
    const isCallRecord = (m: Message<unknown>) => typeOf(m) === "call.record";
    const isFetch = (m: Message<unknown>) => typeOf(m) === "comagic.fetch";
    const feed = feedDepsFor(env, config, log);
    if (feed) await handleFetchJobs(rest.filter(isFetch), { ...shared, ...feed, retrySeconds: Math.max(1, config.ENRICH_DELAY_SECONDS) });
    const userOfEmployee = employeeMapping(env, config, bitrix);
    await handleCallRecordJobs(rest.filter(isCallRecord), {
      ...shared,
      dataApi: recordApi,
      store: createCrmStore(bitrix),
      ledger,
      followUps,
      userOfEmployee,
      retrySeconds: Math.max(1, config.ENRICH_DELAY_SECONDS),
      communications: config.COMAGIC_DEALS ? stores.communications : null,
    });
    await handleEnrichJobs(
      rest.filter((m) => !isCallRecord(m) && !isFetch(m)),
      { ...shared, dataApi: enrichApi, store: createCrmStore(bitrix), journeys: stores.journeys, attribution: stores.attribution, visitors: stores.visitors },
    );
    log.info("queue.batch_done", { bitrixRequests: bitrix.requestCount, comagicLogins: recordApi.loginCount + enrichApi.loginCount });
    return;
  }
  await handleLeadBatch(batch, {
    ...commonDeps(env, log, env.LEAD_JOBS),
    store: createCrmStore(bitrix),
    crmMode: () => crmModeOf(bitrix, stores.crmModeCache),
    ledger,
    visitors: stores.visitors,
    followUps,
    formEnrichLimit: portalLimiter(env.FORM_ENRICH_LIMITER, config.portal),
    employeeUsers: employeeUsersFor(env, config, bitrix),
    queue: batch.queue,
    rules: {
      dedupDays: config.LEAD_DEDUP_DAYS,
      defaultRegion: config.DEFAULT_PHONE_REGION,
      requiredFieldDefaults: config.REQUIRED_FIELD_DEFAULTS ?? {},
      responsible: { userOfEmployee: usersByEmployee(config.COMAGIC_EMPLOYEES ?? {}), defaultUserId: config.DEFAULT_RESPONSIBLE_ID ?? null, lostCallUserId: config.LOST_CALL_RESPONSIBLE_ID ?? null },
      callBackMinutes: config.LOST_CALL_TODO_MINUTES,
      language: config.CRM_LANGUAGE,
      dealPipeline: config.DEAL_CATEGORY_ID === undefined && !config.DEAL_STAGE_ID ? null : { categoryId: config.DEAL_CATEGORY_ID ?? 0, stageId: config.DEAL_STAGE_ID ?? null },
    },
  });
  log.info("queue.batch_done", { bitrixRequests: bitrix.requestCount });
}

/** One portal's group: its settings, then its work; a failure retries this group only. */
async function consumePortal(batch: PortalBatch, env: Env, portal: string, kind: "enrich" | "leads", log: Logger): Promise<void> {
  try {
    const result = await configFor(env, portal);
    if (!result) {
      // The portal was removed (uninstalled): its data is gone, and so is the work about it.
      log.warn("queue.portal_unknown", { count: batch.messages.length });
      batch.ackAll();
      return;
    }
    if (!result.ok) {
      log.error("queue.misconfigured", { problems: result.problems });
      batch.retryAll({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
      return;
    }
    const queue = kind === "leads" ? env.LEAD_JOBS : env.ENRICH_JOBS;
    if (!queue) return await consume(batch, env, result.config, log, kind);
    await throughPortalGate(env, portal, batch, queue, { lease: kind === "leads" }, log, () => consume(batch, env, result.config, log, kind));
  } catch (error) {
    log.error("queue.batch_failed", { error: errorMessage(error) });
    const attempts = Math.max(...batch.messages.map((m) => m.attempts));
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts, Math.random()) });
  }
}

/** The `queue()` entry for every queue the worker consumes. Never throws. */
export async function consumeQueue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const log = createLogger({ queue: batch.queue, batchSize: batch.messages.length });
  try {
    const kind = kindOf(batch.queue, deploymentSettings(env));
    if (kind === null) {
      // A queue wired to the worker under a name no setting gives: keep every message until a person fixes it.
      log.error("queue.misconfigured", { problems: [{ setting: "LEAD_QUEUE_NAME", problem: `no *_QUEUE_NAME setting names the queue ${batch.queue}` }] });
      batch.retryAll({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
      return;
    }
    if (kind === "dead-letters") {
      const store = env.DB ? deadLetterStore(env.DB) : null;
      if (!store) {
        log.error("dead_letter.unrecorded", { reason: "no DB binding", count: batch.messages.length });
        batch.retryAll({ delaySeconds: MISCONFIGURED_RETRY_SECONDS });
        return;
      }
      await handleDeadLetters(batch, { store, log });
      return;
    }
    const groups = new Map<string, Message<unknown>[]>();
    for (const m of batch.messages) {
      const portal = portalNamedBy(m.body);
      groups.set(portal, [...(groups.get(portal) ?? []), m]);
    }
    // Portals side by side: each has its own Bitrix24 budget and CoMagic points, so a busy portal's waits for permits
    // do not hold up a quiet portal's messages in the same batch; within a portal, its group runs as one.
    await Promise.all([...groups].map(([portal, messages]) => consumePortal(portalBatch(batch.queue, messages), env, portal, kind, log.child({ portal }))));
  } catch (error) {
    log.error("queue.batch_failed", { error: errorMessage(error) });
    const attempts = Math.max(...batch.messages.map((m) => m.attempts));
    batch.retryAll({ delaySeconds: retryDelaySeconds(attempts, Math.random()) });
  }
}
