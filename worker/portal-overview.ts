/*
 * What the deployment knows about one portal's health, read from its stores: whether its settings parse, what
 * arrived (storage/portal-activity.ts), the CoMagic feed (storage/feed-state.ts), its dead letters waiting, CoMagic's
 * points (storage/comagic-budget.ts), when the report's deals were last synced (`deals.modified_since`), and the status
 * it was last alerted as; then judged by domain/portal-health.ts. The agency page (routes/agency.ts) shows it, the
 * cron's alerts (jobs/portal-alerts.ts) compare it. Seven D1 reads a portal, side by side (the settings are cached
 * 30 s per isolate). Error texts leave with the portal's own secrets and any phone number masked: they are
 * Bitrix24's and CoMagic's words, and a network error may quote what was sent.
 */
import { readConfig, type Config, type ConfigResult } from "./config";
import { AppError } from "./errors";
import { DEFAULT_PORTAL } from "./domain/portal-key";
import { maskPhone } from "./domain/phone";
import { type HealthReason, type HealthStatus, portalHealth } from "./domain/portal-health";
import type { Env } from "./env";
import { configFor, portalKeys } from "./portal-config";
import { d1AttributionStore } from "./storage/attribution";
import { d1BudgetStore } from "./storage/comagic-budget";
import { deadLetterStore } from "./storage/d1";
import { d1FeedState, EMPTY_FEED_STATE } from "./storage/feed-state";
import { d1HealthStatus, type StoredHealth } from "./storage/health-status";
import { SealedSecretError } from "./storage/sealed-secrets";
import { type ActivitySummary, d1PortalActivity } from "./storage/portal-activity";

/** Dead letters read per portal: the page lists these, and counts beyond them as "50+". */
export const LETTERS_SHOWN = 50;
/** FEED_INTERVAL_MINUTES's default, for a portal whose settings do not parse. */
const DEFAULT_FEED_INTERVAL_MINUTES = 10;

export interface LetterView {
  id: string;
  jobType: string;
  /** The event key the job is about (a CoMagic session id, `chat-…`, `form-…`): never a phone. */
  key: string | null;
  code: string;
  reason: string;
  attempts: number;
  failedAt: string;
}

export interface PortalOverview {
  portal: string;
  /** The Bitrix24 portal's host, or the key when the settings do not say. */
  name: string;
  status: HealthStatus;
  reasons: HealthReason[];
  activity: ActivitySummary | null;
  feed: { lastRunAt: string | null; lastSuccessAt: string | null; cursor: string | null; lagMinutes: number | null; lastError: string | null; lastRead: Record<string, unknown> | null } | null;
  lastErrors: { bitrix24: { text: string; at: string } | null; comagic: { text: string; at: string | null } | null };
  deadLetters: { waiting: number; more: boolean; newest: LetterView[] };
  /** The Data API's day as CoMagic's last answer left it; `remaining` null once its reset has passed. */
  points: { remaining: number | null; limit: number | null; resetAt: string } | null;
  report: { syncedAt: string | null };
  alerted: StoredHealth | null;
}

/**
 * Every portal the agency looks after: `portalKeys`, and the default one also when env means to configure it
 * (BITRIX_WEBHOOK_URL is set) but its settings do not parse, which is exactly when it needs looking at.
 */
export async function agencyPortals(env: Env): Promise<string[]> {
  const keys = await portalKeys(env);
  return env.BITRIX_WEBHOOK_URL && !keys.includes(DEFAULT_PORTAL) ? [DEFAULT_PORTAL, ...keys] : keys;
}

/** The values of a portal's settings that must never be shown: its webhook (and its code), tokens, passwords. */
function secretsOf(config: Config | null): string[] {
  if (!config) return [];
  const webhook = config.BITRIX_WEBHOOK_URL;
  const code = webhook ? /\/rest\/(?:api\/)?\d+\/([^/]+)\/?$/.exec(new URL(webhook).pathname)?.[1] : undefined;
  return [webhook, code, ...(config.COMAGIC_WEBHOOK_TOKEN ?? []), ...(config.COMAGIC_WEBHOOK_SECRET ?? []), config.COMAGIC_API_TOKEN, config.COMAGIC_PASSWORD]
    .filter((s): s is string => typeof s === "string" && s.length >= 4)
    .sort((a, b) => b.length - a.length);
}

/** Something that reads as a phone number: ten digits or more, spaced or not. */
const PHONE_LIKE = /\+?\d[\d\s().-]{8,}\d/g;

/** An upstream's words with the portal's secrets cut out and phone numbers masked. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("…");
  return out.replace(PHONE_LIKE, (match) => {
    const digits = match.replace(/\D/g, "");
    return digits.length >= 10 ? maskPhone(digits) : match;
  });
}

const eventKeyOf = (job: unknown): string | null => {
  const key = (job as { event?: { key?: unknown }; sessionId?: unknown } | null)?.event?.key ?? (job as { sessionId?: unknown } | null)?.sessionId;
  return typeof key === "string" || typeof key === "number" ? String(key).slice(0, 80) : null;
};

/**
 * The portal's settings as its requests would see them. A stored portal whose secrets SETTINGS_KEY cannot open (the
 * key unset, broken, or rotated away) has settings that do not parse, and says so, instead of failing the whole page.
 */
async function settingsOf(env: Env, portal: string): Promise<ConfigResult | null> {
  if (portal === DEFAULT_PORTAL) return readConfig(env);
  try {
    return await configFor(env, portal);
  } catch (error) {
    if (!(error instanceof AppError || error instanceof SealedSecretError)) throw error;
    return { ok: false, problems: [{ setting: "SETTINGS_KEY", problem: "cannot open the portal's secrets" }], warnings: [] };
  }
}

export async function portalOverview(env: Env, portal: string, now: Date): Promise<PortalOverview> {
  const result = await settingsOf(env, portal);
  const config = result?.ok ? result.config : null;
  const secrets = secretsOf(config);
  const db = env.DB;
  const [activity, feedState, budget, letters, syncedAt, alerted] = db
    ? await Promise.all([
        d1PortalActivity(db, portal).summary(now),
        d1FeedState(db, portal).get(),
        d1BudgetStore(db, portal).get("Data API"),
        deadLetterStore(db).list({ limit: LETTERS_SHOWN + 1, pendingOnly: true, portal }),
        d1AttributionStore(db, portal).getState("deals.modified_since"),
        d1HealthStatus(db, portal).get(),
      ])
    : [null, EMPTY_FEED_STATE, null, [], null, null];

  const newest: LetterView[] = letters.slice(0, LETTERS_SHOWN).map((l) => ({
    id: l.id,
    jobType: l.jobType,
    key: eventKeyOf(l.job),
    code: l.code,
    reason: redact(l.reason, secrets),
    attempts: l.attempts,
    failedAt: l.failedAt,
  }));
  const lastError = feedState.lastError === null ? null : redact(feedState.lastError, secrets);
  const bitrixLetter = newest.find((l) => l.reason.startsWith("Bitrix24"));
  const comagicLetter = newest.find((l) => l.reason.startsWith("CoMagic"));
  const cursor = feedState.cursor ? Date.parse(feedState.cursor) : null;
  const day = budget?.windows.day;

  const health = portalHealth(
    {
      invalidSettings: result?.ok === false ? result.problems.map((p) => p.setting) : null,
      feed: feedState.lastRunAt
        ? {
            lastSuccessAt: feedState.lastSuccessAt,
            lastError,
            callsSeenAt: feedState.lastCallsSeenAt,
            intervalMinutes: config?.FEED_INTERVAL_MINUTES ?? DEFAULT_FEED_INTERVAL_MINUTES,
          }
        : null,
      lastNotificationAt: activity?.lastNotificationAt ?? null,
      deadLettersWaiting: newest.length,
      points: day ? { remaining: day.remaining, resetAt: new Date(day.resetAt).toISOString() } : null,
      reportSyncedAt: syncedAt || null,
    },
    now,
  );
  return {
    portal,
    name: config ? new URL(config.portalOrigin).host : portal,
    status: health.status,
    reasons: health.reasons,
    activity,
    feed: feedState.lastRunAt
      ? {
          lastRunAt: feedState.lastRunAt,
          lastSuccessAt: feedState.lastSuccessAt,
          cursor: feedState.cursor,
          lagMinutes: cursor === null ? null : Math.max(0, Math.round((now.getTime() - cursor) / 60_000)),
          lastError,
          lastRead: feedState.lastReport,
        }
      : null,
    lastErrors: {
      bitrix24: bitrixLetter ? { text: bitrixLetter.reason, at: bitrixLetter.failedAt } : null,
      comagic: lastError ? { text: lastError, at: feedState.lastRunAt } : comagicLetter ? { text: comagicLetter.reason, at: comagicLetter.failedAt } : null,
    },
    deadLetters: { waiting: newest.length, more: letters.length > LETTERS_SHOWN, newest },
    points: day ? { remaining: day.resetAt > now.getTime() ? day.remaining : null, limit: day.limit, resetAt: new Date(day.resetAt).toISOString() } : null,
    report: { syncedAt: syncedAt || null },
    alerted,
  };
}
