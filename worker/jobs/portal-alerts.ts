/*
 * Alerts: a look at a portal (its cron tick, jobs/portal-tick.ts; or the cron itself for a portal whose settings do
 * not parse, since its ticks never run) judges its health (portal-overview.ts, domain/portal-health.ts) and, when that
 * differs from the status last told (storage/health-status.ts), tells it once: a `portal.alert` log line with the
 * portal, status and reasons, and a POST of `{"text": …}` to ALERT_WEBHOOK_URL (the shape Slack's incoming webhooks
 * and Telegram-bridging bots take). A recovery is told the same way. The text holds the portal's key, its Bitrix24
 * host and the reasons in words, whose upstream error texts were redacted (portal-overview.ts): never a secret, a
 * token or a full phone. A failed POST keeps the old status, so the next look (5 minutes on) tries again; a portal
 * looked at for the first time compares with "ok", so one that starts out failing is told. Alerts are written in
 * env's CRM_LANGUAGE (Russian unless it is "en"): the deployment has no language of its own.
 */
import { alertWebhookUrl } from "../config";
import { healthReasonText, type HealthStatus } from "../domain/portal-health";
import type { Env } from "../env";
import { languageOf, messagesFor } from "../i18n";
import { errorMessage, type Logger } from "../log";
import { portalOverview } from "../portal-overview";
import { d1HealthStatus } from "../storage/health-status";

/** A chat hook answers in well under a second; a hung one must not hold the tick. */
const ALERT_TIMEOUT_MS = 5_000;

export interface AlertOutcome {
  status: HealthStatus;
  /** The status last told, "ok" for a portal never looked at. */
  was: HealthStatus;
  /** The alert's text when the status changed, else null. */
  text: string | null;
  /** Whether the change was recorded as told: posted, or only logged without ALERT_WEBHOOK_URL. */
  told: boolean;
}

/** Looks at one portal and tells a change of its health once. Throws only when D1 cannot be read. */
export async function alertOnChange(env: Env, portal: string, now: Date, log: Logger, send: typeof fetch = fetch): Promise<AlertOutcome> {
  const overview = await portalOverview(env, portal, now);
  const was = overview.alerted?.status ?? "ok";
  if (overview.status === was || !env.DB) return { status: overview.status, was, text: null, told: false };
  const words = messagesFor(languageOf(env.CRM_LANGUAGE)).agency;
  const label = overview.name === portal ? portal : `${portal} (${overview.name})`;
  const text =
    overview.status === "ok"
      ? words.alert.recovered(label, words.statuses[was])
      : words.alert.changed(
          label,
          words.statuses[overview.status],
          overview.reasons.map((r) => healthReasonText(r, words.reasons)),
        );
  const english = messagesFor("en").agency.reasons;
  log.warn("portal.alert", { portal, status: overview.status, was, reasons: overview.reasons.map((r) => healthReasonText(r, english)) });

  // Read on its own: another broken deployment setting (which makes every portal fail) must not silence the alert.
  const url = alertWebhookUrl({ ALERT_WEBHOOK_URL: env.ALERT_WEBHOOK_URL, ALLOW_LOOPBACK_HTTP: env.ALLOW_LOOPBACK_HTTP === "true" });
  if (env.ALERT_WEBHOOK_URL?.trim() && !url) {
    // A URL set but unusable: the change stays untold, so it is posted once the URL is fixed.
    log.warn("alert.failed", { portal, status: overview.status, error: "ALERT_WEBHOOK_URL is not an https URL (see /health)" });
    return { status: overview.status, was, text, told: false };
  }
  if (url) {
    try {
      const res = await send(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(ALERT_TIMEOUT_MS) });
      // The answer says nothing we keep: let its connection go.
      await res.body?.cancel();
      if (!res.ok) throw new Error(`the alert webhook answered HTTP ${res.status}`);
    } catch (error) {
      // The URL may hold a token (a Slack hook's path, a bot's): an error that quotes it is logged without it.
      log.warn("alert.failed", { portal, status: overview.status, error: errorMessage(error).split(url).join("…") });
      return { status: overview.status, was, text, told: false };
    }
  }
  await d1HealthStatus(env.DB, portal).put(overview.status, now);
  return { status: overview.status, was, text, told: true };
}
