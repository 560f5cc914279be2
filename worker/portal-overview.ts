/*
 * What the deployment knows about one portal's health, read from its stores: whether its settings parse, what
 * arrived (storage/portal-activity.ts), the CoMagic feed (storage/feed-state.ts), its dead letters waiting, CoMagic's
 * points (storage/comagic-budget.ts), when the report's deals were last synced (`deals.modified_since`), and the status
 * it was last alerted as; then judged by domain/portal-health.ts. The agency page (routes/agency.ts) shows it, the
 * cron's alerts (jobs/portal-alerts.ts) compare it. Seven D1 reads a portal, side by side (the settings are cached
 * 30 s per isolate). Error texts leave with the portal's own secrets and any phone number masked: they are
 * Bitrix24's and CoMagic's words, and a network error may quote what was sent.
 * The page also shows what became of the deals and conversions of issue #25 ("close the loop") for a portal that has
 * them on, and the health rule reads today's refused conversions from them. The page reads them for all its portals at
 * once (loopReader: three statements however many portals, and none when no portal has them on); a look at one portal
 * (its details, the alerts) reads that portal's.
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
import { dealSummaries, type DealSummary } from "./storage/deal-journal";
import { type DayOutcome, outcomesByPortal, type PortalOutcomes } from "./storage/conversions";
import { d1HealthStatus, type StoredHealth } from "./storage/health-status";
import { SealedSecretError } from "./storage/sealed-secrets";
import { type ActivitySummary, d1PortalActivity } from "./storage/portal-activity";
import { ga4For, metricaFor } from "./wiring";

/** Dead letters read per portal: the page lists these, and counts beyond them as "50+". */
export const LETTERS_SHOWN = 50;
/** FEED_INTERVAL_MINUTES's default, for a portal whose settings do not parse. */
const DEFAULT_FEED_INTERVAL_MINUTES = 10;
/** The loop's "this week", as the activity's: today and the six UTC days before it. */
const LOOP_WEEK_DAYS = 7;
const DAY_MS = 86_400_000;

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
  /** What became of the deals and conversions the portal has on, or null when it has none on or they were not read. */
  loop: LoopView | null;
}

/** Conversions settled in a span: sent, not sent and why, refused; and of Metrica's, what its uploads linked. */
export type ConversionFigures = Omit<DayOutcome, "day">;
/** GA4 answers 2xx to anything and says nothing of what it linked (FACTS-loop §4): only what was sent or not. */
export type Ga4Figures = Pick<ConversionFigures, "sent" | "tooOld" | "noVisitor" | "failed">;

export interface LoopView {
  /** Deals in CoMagic's end-to-end analytics by state (COMAGIC_DEALS), or null when off. */
  deals: DealSummary | null;
  /** Offline conversions to Yandex Metrica, today and this week (UTC days), or null when not set up. */
  metrica: { today: ConversionFigures; week: ConversionFigures } | null;
  ga4: { today: Ga4Figures; week: Ga4Figures } | null;
}

/** The loop's figures of every portal read (or of one), as storage/deal-journal.ts and storage/conversions.ts give them. */
export interface LoopFigures {
  deals: Map<string, DealSummary>;
  conversions: Map<string, PortalOutcomes>;
}

/**
 * The loop's figures, read when the first portal that has the loop on asks for them, and shared by every portal after:
 * one statement on the deal journal and a batch of two on the conversions and Metrica's uploads. Without `portal`, all
 * portals' (the page's list); with it, that one's (its details).
 */
export function loopReader(db: D1Database, now: Date, portal?: string): () => Promise<LoopFigures> {
  let read: Promise<LoopFigures> | undefined;
  const weekStart = new Date(now.getTime() - (LOOP_WEEK_DAYS - 1) * DAY_MS);
  const figures = async (): Promise<LoopFigures> => {
    const [deals, conversions] = await Promise.all([dealSummaries(db, portal), outcomesByPortal(db, weekStart, portal)]);
    return { deals, conversions };
  };
  return () => {
    read ??= figures();
    return read;
  };
}

const NO_DEALS: DealSummary = { waiting: 0, sent: 0, rejected: 0, gone: 0, notLinked: 0 };

/** Today's figures and the week's (every day `outcomesByPortal` gave is within it). */
function todayAndWeek(days: readonly DayOutcome[], today: string): { today: ConversionFigures; week: ConversionFigures } {
  const zero = (): ConversionFigures => ({ sent: 0, tooOld: 0, noVisitor: 0, failed: 0, linked: 0, notLinked: 0, processing: 0 });
  const sums = { today: zero(), week: zero() };
  for (const { day, ...figures } of days) {
    for (const span of day === today ? [sums.today, sums.week] : [sums.week]) {
      for (const key of Object.keys(figures) as (keyof ConversionFigures)[]) span[key] += figures[key];
    }
  }
  return sums;
}

const ga4Only = ({ sent, tooOld, noVisitor, failed }: ConversionFigures): Ga4Figures => ({ sent, tooOld, noVisitor, failed });

/** The portal's loop as the page shows it: only what its settings turn on, or null when they turn on nothing. */
function loopViewOf(config: Config, figures: LoopFigures, now: Date): LoopView | null {
  const today = now.toISOString().slice(0, 10);
  const outcomes = figures.conversions.get(config.portal) ?? {};
  const ga4 = ga4For(config) ? todayAndWeek(outcomes.ga4 ?? [], today) : null;
  const view: LoopView = {
    deals: config.COMAGIC_DEALS ? (figures.deals.get(config.portal) ?? NO_DEALS) : null,
    metrica: metricaFor(config) ? todayAndWeek(outcomes.metrica ?? [], today) : null,
    ga4: ga4 ? { today: ga4Only(ga4.today), week: ga4Only(ga4.week) } : null,
  };
  return view.deals || view.metrica || view.ga4 ? view : null;
}

const loopIsOn = (config: Config | null): config is Config => !!config && (config.COMAGIC_DEALS || metricaFor(config) !== null || ga4For(config) !== null);

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

/** One portal's overview; `loop`, a loopReader shared by the portals of one page, else the portal's own. */
export async function portalOverview(env: Env, portal: string, now: Date, loop?: () => Promise<LoopFigures>): Promise<PortalOverview> {
  const result = await settingsOf(env, portal);
  const config = result?.ok ? result.config : null;
  const secrets = secretsOf(config);
  const db = env.DB;
  const readLoop = loop ?? (db ? loopReader(db, now, portal) : undefined);
  const [activity, feedState, budget, letters, syncedAt, alerted, loopFigures] = db
    ? await Promise.all([
        d1PortalActivity(db, portal).summary(now),
        d1FeedState(db, portal).get(),
        d1BudgetStore(db, portal).get("Data API"),
        deadLetterStore(db).list({ limit: LETTERS_SHOWN + 1, pendingOnly: true, portal }),
        d1AttributionStore(db, portal).getState("deals.modified_since"),
        d1HealthStatus(db, portal).get(),
        // A portal without the loop on asks nothing; the first that has it on reads every portal's (loopReader).
        readLoop && loopIsOn(config) ? readLoop() : null,
      ])
    : [null, EMPTY_FEED_STATE, null, [], null, null, null];

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
  const loopView = loopFigures && config ? loopViewOf(config, loopFigures, now) : null;

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
      conversionsRefusedToday: { metrica: loopView?.metrica?.today.failed ?? 0, ga4: loopView?.ga4?.today.failed ?? 0 },
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
    loop: loopView,
  };
}
