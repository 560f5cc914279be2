/*
 * The agency's view of every portal, as JSON (the /agency page renders it; a script may read it too).
 * `GET /admin/agency`: each portal of the deployment, worst first: its status and reasons in words, events today
 * and this week per source and the last one of each, the feed's lag, the last Bitrix24 and CoMagic errors, dead
 * letters waiting, CoMagic's points left and the report's freshness, the address of its details, and `loop`: for a
 * portal that has them on, the deals sent to CoMagic by state and the conversions to Yandex Metrica and GA4 settled
 * today and this week (portal-overview.ts LoopView; null when it has none on).
 * `GET /admin/agency/<key>`: one portal, with its feed and its newest dead letters (each replayed through
 * `POST /admin/dead-letters/<id>/replay`). Reasons are in `?lang=` (en, ru), else the Accept-Language's.
 * Mounted in app.ts under /admin after adminRoute, whose middleware (body limit, lockout of guessers, the
 * ADMIN_TOKEN bearer, no-store) every request here passes first. No secret and no full phone leaves here
 * (portal-overview.ts redacts upstream error texts; letters are shown without their jobs).
 */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import type { AppEnv } from "./app-env";
import { healthReasonText, worseFirst } from "../domain/portal-health";
import { portalKeySchema } from "../domain/portal-key";
import { AppError } from "../errors";
import { type Language, messagesFor } from "../i18n";
import { agencyPortals, loopReader, type PortalOverview, portalOverview } from "../portal-overview";

/** Portals read at once: each is seven D1 reads, and one request may keep only so many going. */
const PORTALS_AT_ONCE = 8;

/** The reader's language: `?lang=en|ru`, else the first of Accept-Language's that is English or Russian, else Russian. */
export function agencyLanguage(c: Context<AppEnv>): Language {
  const asked = c.req.query("lang")?.toLowerCase();
  if (asked === "en" || asked === "ru") return asked;
  for (const tag of (c.req.header("accept-language") ?? "").split(",")) {
    const primary = tag.trim().slice(0, 2).toLowerCase();
    if (primary === "en" || primary === "ru") return primary;
  }
  return "ru";
}

/** One portal as the list shows it. */
function summaryOf(o: PortalOverview, language: Language) {
  const words = messagesFor(language).agency;
  return {
    portal: o.portal,
    name: o.name,
    status: o.status,
    statusText: words.statuses[o.status],
    reasons: o.reasons.map((r) => ({ code: r.code, status: r.status, text: healthReasonText(r, words.reasons) })),
    today: o.activity?.today ?? null,
    week: o.activity?.week ?? null,
    last: o.activity?.last ?? null,
    lastNotificationAt: o.activity?.lastNotificationAt ?? null,
    feedLagMinutes: o.feed?.lagMinutes ?? null,
    lastErrors: o.lastErrors,
    deadLettersWaiting: o.deadLetters.waiting,
    deadLettersMore: o.deadLetters.more,
    points: o.points,
    report: o.report,
    loop: o.loop,
    details: `/admin/agency/${o.portal}`,
  };
}

async function inSteps<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(work))));
  return out;
}

export const agencyRoute = new Hono<AppEnv>();

agencyRoute.get("/", async (c) => {
  const now = new Date();
  const language = agencyLanguage(c);
  // Every portal's loop figures in one read, made when the first portal that has the loop on asks.
  const loop = c.env.DB ? loopReader(c.env.DB, now) : undefined;
  const overviews = await inSteps(await agencyPortals(c.env), PORTALS_AT_ONCE, (portal) => portalOverview(c.env, portal, now, loop));
  overviews.sort((a, b) => worseFirst(a.status, b.status) || a.portal.localeCompare(b.portal));
  return c.json({ at: now.toISOString(), language, portals: overviews.map((o) => summaryOf(o, language)) });
});

agencyRoute.get("/:portal", async (c) => {
  const portal = portalKeySchema.safeParse(c.req.param("portal"));
  if (!portal.success || !(await agencyPortals(c.env)).includes(portal.data)) throw new AppError(404, "unknown_portal", "No such portal");
  const now = new Date();
  const language = agencyLanguage(c);
  const overview = await portalOverview(c.env, portal.data, now);
  return c.json({
    at: now.toISOString(),
    language,
    ...summaryOf(overview, language),
    feed: overview.feed,
    deadLetters: overview.deadLetters.newest.map((l) => ({ ...l, replay: `/admin/dead-letters/${encodeURIComponent(l.id)}/replay` })),
    alerted: overview.alerted,
  });
});
