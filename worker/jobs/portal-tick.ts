/**
 * A portal's tick from the Cron Trigger (jobs/scheduled.ts): its CoMagic feed when due, then its report's sync.
 * Ticks are acked whatever happens: the feed keeps its cursor and its error for /health when a read fails, and the
 * next cron run (5 minutes on) reads the same span again, so a retried tick would only read it twice. A batch may
 * hold a portal's tick twice (at-least-once delivery, or a run still queued when the next one came): one run serves all.
 * After its work, the tick looks at the portal's health and tells a change of it (jobs/portal-alerts.ts).
 */
import type { Config } from "../config";
import type { Env } from "../env";
import { errorMessage, type Logger } from "../log";
import { alertOnChange } from "./portal-alerts";
import { runPortalTick } from "./scheduled";
import { portalTickJobSchema } from "./schema";
import { readJobs } from "./settle";

export async function handlePortalTicks(messages: readonly Message<unknown>[], deps: { env: Env; config: Config; log: Logger }): Promise<void> {
  const jobs = readJobs(messages, portalTickJobSchema, deps.log);
  if (jobs.length === 0) return;
  const latest = jobs.reduce((a, b) => (a.job.scheduledAt >= b.job.scheduledAt ? a : b)).job;
  try {
    await runPortalTick(deps.env, deps.config, deps.log, new Date(latest.scheduledAt));
  } catch (error) {
    deps.log.warn("tick.failed", { error: errorMessage(error), scheduledAt: latest.scheduledAt });
  }
  try {
    await alertOnChange(deps.env, deps.config.portal, new Date(), deps.log);
  } catch (error) {
    deps.log.warn("health.check_failed", { error: errorMessage(error) });
  }
  for (const { message } of jobs) message.ack();
}
