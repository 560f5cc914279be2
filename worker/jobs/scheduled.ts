import { createCrmStore } from "../bitrix/crm-store";
import { readConfig, type Config } from "../config";
import type { Env } from "../env";
import { createLogger, errorMessage, type Logger } from "../log";
import { purgeExpired } from "../storage/retention";
import { bitrixClientFor, dataApiClientFor, storesFor } from "../wiring";
import { reconcileCalls, type ReconcileReport } from "./reconcile";
import { syncReportData } from "./report-sync";

/** Reconciles one window with adapters from Env; null when the Data API is not configured. */
export async function reconcileWindow(window: { from: Date; to: Date }, env: Env, config: Config, log: Logger): Promise<ReconcileReport | null> {
  const dataApi = dataApiClientFor(config, env);
  if (!dataApi) return null;
  return reconcileCalls(window, {
    dataApi,
    store: createCrmStore(bitrixClientFor(config)),
    ledger: storesFor(env).ledger,
    leadJobs: env.LEAD_JOBS,
    log,
    now: () => new Date(),
    rules: { defaultRegion: config.DEFAULT_PHONE_REGION, minLostCallSeconds: config.MIN_LOST_CALL_SECONDS, timeZone: config.COMAGIC_TIMEZONE },
  });
}

/** The Cron Trigger: reconcile the last RECONCILE_WINDOW_HOURS, then purge what D1 keeps no longer. Never throws. */
export async function runScheduled(controller: ScheduledController, env: Env): Promise<void> {
  const log = createLogger({ cron: controller.cron });
  try {
    const result = readConfig(env);
    if (!result.ok) {
      log.error("reconcile.misconfigured", { problems: result.problems });
      return;
    }
    const to = new Date(controller.scheduledTime);
    const from = new Date(to.getTime() - result.config.RECONCILE_WINDOW_HOURS * 3_600_000);
    try {
      if ((await reconcileWindow({ from, to }, env, result.config, log)) === null) log.info("reconcile.skipped", { reason: "no CoMagic Data API credentials" });
    } finally {
      const { attribution } = storesFor(env);
      if (env.DB && attribution) {
        log.info("retention.purged", await purgeExpired(env.DB, to, result.config.DEAD_LETTER_RETENTION_DAYS));
        await syncReportData({
          bitrix: bitrixClientFor(result.config),
          dataApi: dataApiClientFor(result.config, env),
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
