/**
 * The Cron Trigger and what it starts. The cron itself only purges what D1 keeps no longer (the deployment's) and
 * sends one `portal.tick` per portal (cloudflare/FACTS.md §6: a cron doing every portal's I/O would hit its 30 s
 * of CPU and 6 open connections by a few dozen portals); each tick runs on the enrichment queue: that portal's
 * CoMagic feed when due, then its report's sync, then a look at its health (jobs/portal-alerts.ts). A portal whose
 * settings do not parse gets no tick (its jobs wait for a fix), so the cron looks at that one's health itself.
 */
import { createCrmStore } from "../bitrix/crm-store";
import { deploymentSettings, feedOverlapMinutes, readConfig, type Config, type DeploymentSettings } from "../config";
import { DEFAULT_PORTAL } from "../domain/portal-key";
import type { Env } from "../env";
import { createLogger, errorMessage, type Logger } from "../log";
import { configFor, portalKeys } from "../portal-config";
import { agencyPortals } from "../portal-overview";
import { purgeExpired, type RetentionDays } from "../storage/retention";
import { bitrixClientFor, conversionSettingsOf, dataApiClientFor, dealChangesFor, ga4For, metricaFor, storesFor } from "../wiring";
import { type ConversionRunResult, recordQualifiedLeads, sendConversions, sendGa4Events } from "./conversions";
import { d1FeedState } from "../storage/feed-state";
import { activityOf } from "../storage/portal-activity";
import { type FeedDeps, type FeedReport, readFeed, runFeed } from "./feed";
import { alertOnChange } from "./portal-alerts";
import { syncReportData } from "./report-sync";
import { type DealLoopResult, sendDealChanges } from "./deal-loop";
import { sendFormsToComagic } from "./form-uploads";
import { portalTickJob } from "./schema";
import { sendInBatches } from "./send-in-batches";

/** The feed's adapters from Env; null when the Data API is not configured. */
export function feedDepsFor(env: Env, config: Config, log: Logger): FeedDeps | null {
  const dataApi = dataApiClientFor(config, env, "feed");
  if (!dataApi) return null;
  return {
    portal: config.portal,
    dataApi,
    store: createCrmStore(bitrixClientFor(config, env)),
    ledger: storesFor(env, config.portal).ledger,
    leadJobs: env.LEAD_JOBS,
    activity: activityOf(env, config.portal),
    log,
    now: () => new Date(),
    rules: {
      defaultRegion: config.DEFAULT_PHONE_REGION,
      minLostCallSeconds: config.MIN_LOST_CALL_SECONDS,
      timeZone: config.COMAGIC_TIMEZONE,
      includeTechRequests: config.COMAGIC_TECH_REQUESTS,
    },
  };
}

/** Reads one past span of the feed (`/admin/reconcile`, `npm run reconcile`), cursor untouched; null without the Data API. */
export async function reconcileWindow(window: { from: Date; to: Date }, env: Env, config: Config, log: Logger): Promise<FeedReport | null> {
  const deps = feedDepsFor(env, config, log);
  if (!deps) return null;
  const { openSince: _open, ...report } = await readFeed(window, deps);
  return report;
}

/** The feed read, when FEED_INTERVAL_MINUTES have passed since the portal's last one. */
async function readFeedIfDue(env: Env, config: Config, log: Logger, now: Date): Promise<void> {
  const deps = feedDepsFor(env, config, log);
  if (!deps || !env.DB) {
    log.info("feed.skipped", { reason: deps ? "no DB binding for the cursor" : "no CoMagic Data API credentials" });
    return;
  }
  await runFeed({
    ...deps,
    now: () => now,
    state: d1FeedState(env.DB, config.portal),
    feed: { intervalMinutes: config.FEED_INTERVAL_MINUTES, overlapMinutes: feedOverlapMinutes(config) },
  });
}

/** One portal's tick: its feed when due, then its report's sync, then its deal changes to CoMagic. Throws when the feed read failed. */
export async function runPortalTick(env: Env, config: Config, log: Logger, at: Date): Promise<void> {
  try {
    await readFeedIfDue(env, config, log, at);
  } finally {
    const { attribution } = storesFor(env, config.portal);
    if (attribution) {
      await syncReportData({
        dealChanges: dealChangesFor(env, config),
        bitrix: bitrixClientFor(config, env),
        // The cost import can wait for the next day's points.
        dataApi: dataApiClientFor(config, env, "deferrable"),
        store: attribution,
        siteIds: config.COMAGIC_SITE_IDS,
        timeZone: config.COMAGIC_TIMEZONE,
        now: () => at,
        log,
        maxPages: config.REPORT_SYNC_MAX_PAGES,
      });
    }
    // Forms first: a deal made from a form links to the offline message just sent.
    if (config.COMAGIC_FORMS) await runFormUploads(env, config, log, at);
    if (config.COMAGIC_DEALS) await runDealLoop(env, config, log, at);
    await runConversions(env, config, log, at);
  }
}

/** The portal's website forms whose leads are written, into CoMagic as offline messages (jobs/form-uploads.ts). Never throws. */
export async function runFormUploads(env: Env, config: Config, log: Logger, at: Date): Promise<void> {
  const { formUploads } = storesFor(env, config.portal);
  const dataApi = dataApiClientFor(config, env, "deferrable");
  if (!formUploads || !dataApi) return;
  await sendFormsToComagic({ dataApi, forms: formUploads, intervalMinutes: config.FEED_INTERVAL_MINUTES, now: () => at, log }).catch((error: unknown) =>
    log.warn("forms.comagic_failed", { error: errorMessage(error) }),
  );
}

/** The portal's waiting deal changes, into CoMagic's end-to-end analytics (jobs/deal-loop.ts). Never throws. */
export async function runDealLoop(env: Env, config: Config, log: Logger, at: Date): Promise<DealLoopResult | null> {
  const { dealJournal, ledger, deadLetters, attribution, formUploads, communications } = storesFor(env, config.portal);
  // Deal uploads can wait for the next day's points: the feed's reads come first.
  const dataApi = dataApiClientFor(config, env, "deferrable");
  if (!dealJournal || !ledger || !attribution || !dataApi) return null;
  try {
    return await sendDealChanges({
      portal: config.portal,
      bitrix: bitrixClientFor(config, env),
      dataApi,
      journal: dealJournal,
      ledger,
      forms: config.COMAGIC_FORMS ? formUploads : null,
      communications,
      deadLetters,
      state: { get: (name) => attribution.getState(name), set: (name, value) => attribution.setState(name, value) },
      accountCurrency: config.COMAGIC_CURRENCY,
      timeZone: config.COMAGIC_TIMEZONE,
      intervalMinutes: config.FEED_INTERVAL_MINUTES,
      now: () => at,
      log,
    });
  } catch (error) {
    log.warn("deals.loop_failed", { error: errorMessage(error) });
    return null;
  }
}

/** The portal's offline conversions to Metrica and GA4, when set up (jobs/conversions.ts). Never throws. */
export async function runConversions(env: Env, config: Config, log: Logger, at: Date): Promise<ConversionRunResult | null> {
  const destinations = conversionSettingsOf(config);
  const { conversions, visitors, attribution, ledger, formVisitors } = storesFor(env, config.portal);
  const dataApi = dataApiClientFor(config, env, "deferrable");
  if (Object.keys(destinations).length === 0 || !conversions || !visitors || !attribution || !dataApi) return null;
  try {
    await recordQualifiedLeads({ bitrix: bitrixClientFor(config, env), attribution, conversions, destinations, now: at });
  } catch (error) {
    log.warn("conversions.leads_failed", { error: errorMessage(error) });
  }
  const shared = { dataApi, conversions, visitors, ledger, formVisitors, timeZone: config.COMAGIC_TIMEZONE, intervalMinutes: config.CONVERSIONS_INTERVAL_MINUTES, now: () => at, log };
  const ga4 = ga4For(config);
  if (ga4 && destinations.ga4) {
    await sendGa4Events({ ...shared, ga4, names: destinations.ga4.goals }).catch((error: unknown) => log.warn("ga4.failed", { error: errorMessage(error) }));
  }
  const metrica = metricaFor(config);
  if (!metrica || !destinations.metrica) return null;
  try {
    return await sendConversions({ ...shared, metrica: metrica.client, counterId: metrica.counterId, goals: destinations.metrica.goals });
  } catch (error) {
    log.warn("conversions.failed", { error: errorMessage(error) });
    return null;
  }
}

const retentionDays = (config: DeploymentSettings): RetentionDays => ({
  deadLetters: config.DEAD_LETTER_RETENTION_DAYS,
  ledger: config.LEDGER_RETENTION_DAYS,
  report: config.REPORT_RETENTION_DAYS,
});

/** The Cron Trigger: queues each portal's tick, then purges what D1 keeps no longer. Never throws. */
export async function runScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const log = createLogger({ cron: controller.cron });
  const at = new Date(controller.scheduledTime);
  try {
    const portals = await portalKeys(env);
    const queue = env.ENRICH_JOBS;
    if (!queue) {
      log.warn("scheduled.skipped", { reason: "no ENRICH_JOBS binding: the feed and the report's sync do not run", portals: portals.length });
    } else {
      await sendInBatches(
        queue,
        portals.map((portal) => ({ body: portalTickJob(portal, at), contentType: "json" as const })),
      );
      log.info("scheduled.fanned_out", { portals: portals.length });
    }
  } catch (error) {
    log.error("scheduled.failed", { error: errorMessage(error) });
  }
  // After the ticks, on its own: the daily prune's long deletes must neither delay nor cancel any portal's tick.
  if (env.DB) {
    try {
      log.info("retention.purged", await purgeExpired(env.DB, at, retentionDays(deploymentSettings(env))));
    } catch (error) {
      log.error("retention.failed", { error: errorMessage(error) });
    }
  }
  await alertBrokenPortals(env, at, log);
}

/** The health of each portal whose settings do not parse (a tick looks at every other one's). Never throws. */
async function alertBrokenPortals(env: Env, at: Date, log: Logger): Promise<void> {
  let portals: string[];
  try {
    portals = await agencyPortals(env);
  } catch (error) {
    log.warn("health.check_failed", { error: errorMessage(error) });
    return;
  }
  for (const portal of portals) {
    try {
      // A portal whose secrets cannot be opened is one whose settings do not parse, too.
      const result = portal === DEFAULT_PORTAL ? readConfig(env) : await configFor(env, portal).catch(() => ({ ok: false }) as const);
      if (result && !result.ok) await alertOnChange(env, portal, at, log.child({ portal }));
    } catch (error) {
      log.warn("health.check_failed", { portal, error: errorMessage(error) });
    }
  }
}
