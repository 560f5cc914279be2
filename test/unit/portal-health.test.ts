import { describe, expect, it } from "vitest";
import { type HealthFacts, healthReasonText, portalHealth, worseFirst } from "../../worker/domain/portal-health";
import { messagesFor } from "../../worker/i18n";

/* The health rule of domain/portal-health.ts: each rule on its own from a healthy portal, one broken thing a test. */

const NOW = new Date("2026-12-04T12:00:00.000Z");
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();
const inMinutes = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000).toISOString();

/** A portal with nothing wrong: the feed read 5 minutes ago and found calls, a notification came an hour ago. */
function healthy(overrides: Partial<HealthFacts> = {}): HealthFacts {
  return {
    invalidSettings: null,
    feed: { lastSuccessAt: ago(5), lastError: null, callsSeenAt: ago(5), intervalMinutes: 10 },
    lastNotificationAt: ago(60),
    deadLettersWaiting: 0,
    points: { remaining: 600, resetAt: inMinutes(300) },
    reportSyncedAt: ago(10),
    conversionsRefusedToday: { metrica: 0, ga4: 0 },
    ...overrides,
  };
}

const codes = (facts: HealthFacts) => portalHealth(facts, NOW).reasons.map((r) => r.code);

describe("a portal's health", () => {
  it("is ok with nothing wrong", () => {
    expect(portalHealth(healthy(), NOW)).toEqual({ status: "ok", reasons: [] });
  });

  it("is ok for a new portal the deployment knows nothing about yet", () => {
    expect(
      portalHealth({ invalidSettings: null, feed: null, lastNotificationAt: null, deadLettersWaiting: 0, points: null, reportSyncedAt: null, conversionsRefusedToday: { metrica: 0, ga4: 0 } }, NOW)
        .status,
    ).toBe("ok");
  });

  it.each<[string, Partial<HealthFacts>, string]>([
    ["its settings do not parse", { invalidSettings: ["BITRIX_WEBHOOK_URL"] }, "settings_invalid"],
    [
      "the feed has failed for more than 3 intervals",
      { feed: { lastSuccessAt: ago(31), lastError: "CoMagic Data API: ip_not_whitelisted", callsSeenAt: ago(5), intervalMinutes: 10 } },
      "feed_failing",
    ],
    ["the feed has never read without error", { feed: { lastSuccessAt: null, lastError: "CoMagic Data API: auth_error", callsSeenAt: null, intervalMinutes: 10 } }, "feed_failing"],
    ["the day's points are out", { points: { remaining: 0, resetAt: inMinutes(90) } }, "points_out"],
  ])("is failing when %s", (_, overrides, code) => {
    const health = portalHealth(healthy(overrides), NOW);
    expect(health.status).toBe("failing");
    expect(health.reasons.map((r) => r.code)).toEqual([code]);
  });

  it.each<[string, Partial<HealthFacts>, string]>([
    ["dead letters wait", { deadLettersWaiting: 2 }, "dead_letters"],
    ["no notification came for a day while the feed found calls", { lastNotificationAt: ago(24 * 60 + 10) }, "notifications_stopped"],
    ["no notification ever came while the feed found calls", { lastNotificationAt: null }, "notifications_stopped"],
    ["the report's deals were last synced more than a day ago", { reportSyncedAt: ago(24 * 60 + 1) }, "report_stale"],
    ["Yandex Metrica refused conversions today", { conversionsRefusedToday: { metrica: 2, ga4: 0 } }, "conversions_refused"],
    ["GA4 refused conversions today", { conversionsRefusedToday: { metrica: 0, ga4: 1 } }, "conversions_refused"],
  ])("is degraded when %s", (_, overrides, code) => {
    const health = portalHealth(healthy(overrides), NOW);
    expect(health.status).toBe("degraded");
    expect(health.reasons.map((r) => r.code)).toEqual([code]);
  });

  it("takes one failed read, or failures within 3 intervals, as a passing fault", () => {
    expect(codes(healthy({ feed: { lastSuccessAt: ago(29), lastError: "timeout", callsSeenAt: ago(5), intervalMinutes: 10 } }))).toEqual([]);
    // The interval is the portal's own: 3 hourly reads missed take 3 hours.
    expect(codes(healthy({ feed: { lastSuccessAt: ago(150), lastError: "timeout", callsSeenAt: ago(5), intervalMinutes: 60 } }))).toEqual([]);
  });

  it("keeps notifications counted as stopped through quiet reads of the feed, until a notification comes after the calls", () => {
    // A read that finds no calls must not clear it: the alert would flap every read (issue #24 review).
    const quietRead = { lastSuccessAt: ago(1), lastError: null, callsSeenAt: ago(2 * 60), intervalMinutes: 10 };
    expect(codes(healthy({ lastNotificationAt: ago(3 * 24 * 60), feed: quietRead }))).toEqual(["notifications_stopped"]);
    expect(codes(healthy({ lastNotificationAt: ago(30), feed: quietRead }))).toEqual([]);
  });

  it("does not count notifications as stopped while CoMagic's reports show no calls", () => {
    expect(codes(healthy({ lastNotificationAt: null, feed: { lastSuccessAt: ago(5), lastError: null, callsSeenAt: null, intervalMinutes: 10 } }))).toEqual([]);
    expect(codes(healthy({ lastNotificationAt: ago(3 * 24 * 60), feed: null }))).toEqual([]);
  });

  it("does not count points as out once their reset has passed, nor a few points left", () => {
    expect(codes(healthy({ points: { remaining: 0, resetAt: ago(1) } }))).toEqual([]);
    expect(codes(healthy({ points: { remaining: 3, resetAt: inMinutes(90) } }))).toEqual([]);
  });

  it("is failing when a failing rule and a degrading one hold, and names the failing reason first", () => {
    const health = portalHealth(healthy({ deadLettersWaiting: 1, points: { remaining: 0, resetAt: inMinutes(30) } }), NOW);
    expect(health.status).toBe("failing");
    expect(health.reasons.map((r) => r.code)).toEqual(["points_out", "dead_letters"]);
  });

  it("sorts the worst first", () => {
    expect((["ok", "failing", "degraded", "ok"] as const).slice().sort(worseFirst)).toEqual(["failing", "degraded", "ok", "ok"]);
  });
});

describe("a reason in words", () => {
  it("says what is wrong and for how long, in English and in Russian", () => {
    const [feed] = portalHealth(healthy({ feed: { lastSuccessAt: ago(125), lastError: "CoMagic Data API: ip_not_whitelisted", callsSeenAt: ago(5), intervalMinutes: 10 } }), NOW).reasons;
    if (!feed) throw new Error("no reason");
    expect(healthReasonText(feed, messagesFor("en").agency.reasons)).toBe("the CoMagic feed has not read for 2 h: CoMagic Data API: ip_not_whitelisted");
    expect(healthReasonText(feed, messagesFor("ru").agency.reasons)).toBe("лента CoMagic не читается уже 2 ч: CoMagic Data API: ip_not_whitelisted");
    const [stopped] = portalHealth(healthy({ lastNotificationAt: ago(3 * 24 * 60) }), NOW).reasons;
    if (!stopped) throw new Error("no reason");
    expect(healthReasonText(stopped, messagesFor("en").agency.reasons)).toContain("no CoMagic notification for 3 days while CoMagic's reports show calls (the last found 5 min ago)");
    const [letters] = portalHealth(healthy({ deadLettersWaiting: 1 }), NOW).reasons;
    if (!letters) throw new Error("no reason");
    expect(healthReasonText(letters, messagesFor("en").agency.reasons)).toBe("1 dead letter waits for a replay");
    const [refused] = portalHealth(healthy({ conversionsRefusedToday: { metrica: 2, ga4: 0 } }), NOW).reasons;
    if (!refused) throw new Error("no reason");
    expect(healthReasonText(refused, messagesFor("en").agency.reasons)).toBe("Yandex Metrica refused 2 conversion(s) today: check the token and counter");
    expect(healthReasonText(refused, messagesFor("ru").agency.reasons)).toBe("Яндекс Метрика сегодня отклонила конверсий: 2 (проверьте токен и счётчик)");
  });
});
