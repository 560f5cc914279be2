import { describe, expect, it } from "vitest";
import { formatComagicDateTime, parseComagicDateTime } from "../../worker/domain/comagic-time";
import { EMPTY_UTM } from "../../worker/domain/lead-event";
import { buildJourney, summarizeJourney, type SessionTouch } from "../../worker/domain/touchpoints";

describe("CoMagic report times", () => {
  it.each([
    ["2026-11-24T09:30:05Z", "Europe/Moscow", "2026-11-24 12:30:05"],
    ["2026-07-01T00:00:00Z", "Europe/Berlin", "2026-07-01 02:00:00"],
    ["2026-01-01T00:00:00Z", "Asia/Yekaterinburg", "2026-01-01 05:00:00"],
  ])("%s is %s local time %s, and back", (iso, zone, local) => {
    expect(formatComagicDateTime(new Date(iso), zone)).toBe(local);
    expect(parseComagicDateTime(local, zone)?.toISOString()).toBe(new Date(iso).toISOString());
  });

  it("reads a time across a daylight-saving change", () => {
    expect(parseComagicDateTime("2026-03-29 03:30:00", "Europe/Berlin")?.toISOString()).toBe("2026-03-29T01:30:00.000Z");
  });

  it("refuses text that is not a CoMagic time", () => {
    expect(parseComagicDateTime("yesterday", "Europe/Moscow")).toBeNull();
  });
});

const session = (at: string, overrides: Partial<SessionTouch> = {}): SessionTouch => ({
  type: "session",
  at,
  sessionId: at,
  channel: null,
  source: null,
  utm: EMPTY_UTM,
  referrer: null,
  entrancePage: null,
  ...overrides,
});

describe("summarizeJourney", () => {
  it("counts sessions and names the first and last source: utm_source, else channel, else source name", () => {
    const journey = buildJourney("v", new Date(), [
      session("2026-11-03T00:00:00Z", { channel: "organic" }),
      { type: "call", at: "2026-11-04T00:00:00Z", id: "c1", sessionId: null },
      session("2026-11-01T00:00:00Z", { utm: { ...EMPTY_UTM, source: "yandex" }, channel: "paid" }),
      session("2026-11-05T00:00:00Z", { source: "Прямые заходы" }),
    ]);
    expect(journey.touchpoints.map((t) => t.at.slice(8, 10))).toEqual(["01", "03", "04", "05"]);
    expect(summarizeJourney(journey)).toEqual({ sessions: 3, firstSource: "yandex", lastSource: "Прямые заходы" });
  });

  it("has no sources for a visitor without sessions", () => {
    expect(summarizeJourney(buildJourney("v", new Date(), []))).toEqual({ sessions: 0, firstSource: null, lastSource: null });
  });
});
