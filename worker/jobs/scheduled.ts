import { createCrmStore } from "../bitrix/crm-store";
import { feedOverlapMinutes, readConfig, type Config } from "../config";
import type { Env } from "../env";
import { createLogger, errorMessage, type Logger } from "../log";
import { purgeExpired } from "../storage/retention";
import { bitrixClientFor, dataApiClientFor, storesFor } from "../wiring";
import { d1FeedState } from "../storage/feed-state";
import { type FeedDeps, type FeedReport, readFeed, runFeed } from "./feed";
import { syncReportData } from "./report-sync";

/** The feed's adapters from Env; null when the Data API is not configured. */
export function feedDepsFor(env: Env, config: Config, log: Logger): FeedDeps | null {
  const dataApi = dataApiClientFor(config, env, "feed");
  if (!dataApi) return null;
  return {
    dataApi,
    store: createCrmStore(bitrixClientFor(config)),
    ledger: storesFor(env).ledger,
    leadJobs: env.LEAD_JOBS,
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

/** The cron's feed read, when FEED_INTERVAL_MINUTES have passed since the last one. */
async function readFeedIfDue(env: Env, config: Config, log: Logger, now: Date): Promise<void> {
  const deps = feedDepsFor(env, config, log);
  if (!deps || !env.DB) {
    log.info("feed.skipped", { reason: deps ? "no DB binding for the cursor" : "no CoMagic Data API credentials" });
    return;
  }
  await runFeed({ ...deps, now: () => now, state: d1FeedState(env.DB), feed: { intervalMinutes: config.FEED_INTERVAL_MINUTES, overlapMinutes: feedOverlapMinutes(config) } });
}

/** The Cron Trigger: the CoMagic feed when due, then purge what D1 keeps no longer and sync the report. Never throws. */
export async function runScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const log = createLogger({ cron: controller.cron });
  try {
    const result = readConfig(env);
    if (!result.ok) {
      log.error("reconcile.misconfigured", { problems: result.problems });
      return;
    }
    const to = new Date(controller.scheduledTime);
    try {
      await readFeedIfDue(env, result.config, log, to);
    } finally {
      const { attribution } = storesFor(env);
      if (env.DB && attribution) {
        log.info("retention.purged", await purgeExpired(env.DB, to, result.config.DEAD_LETTER_RETENTION_DAYS));
        await syncReportData({
          bitrix: bitrixClientFor(result.config),
          // The cost import can wait for the next day's points.
          dataApi: dataApiClientFor(result.config, env, "deferrable"),
          store: attribution,
          siteIds: result.config.COMAGIC_SITE_IDS,
          timeZone: result.config.COMAGIC_TIMEZONE,
          now: () => to,
          log,
          maxPages: result.config.REPORT_SYNC_MAX_PAGES,
        });
      }
    }
  } catch (error) {
    log.error("scheduled.failed", { error: errorMessage(error) });
  }
}
