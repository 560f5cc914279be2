import { describe, expect, it } from "vitest";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { JOURNEY_WINDOW_DAYS, journeyWindow } from "../../worker/domain/report-window";

const DAY_MS = 86_400_000;

/** A CoMagic wall-clock string read as if it were UTC: differences then are wall-clock differences. */
const wallClock = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);

/** The same wall-clock time three calendar months earlier, the day clamped to the month's length (31 May → 28/29 Feb). */
function threeMonthsBefore(text: string): number {
  const [y, m, d] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  const month = m - 1 - 3;
  const lastDay = new Date(Date.UTC(y, month + 1, 0)).getUTCDate();
  return Date.UTC(y, month, Math.min(d, lastDay)) + (wallClock(text) % DAY_MS);
}

// FACTS-calls §2: "Max value of requested date interval is 3 months" vs "Максимальный период выгрузки отчёта 90 дней".
describe("the journey window CoMagic's reports accept under both readings of their limit", () => {
  const zones = ["Europe/Moscow", "Europe/Berlin", "America/New_York"];
  const times = ["00:00:30", "13:45:00", "23:59:59"];
  // 2024 and 2028 are leap years; every day of six years covers every month, month end and clock change.
  const days = Array.from({ length: 6 * 365 + 2 }, (_, i) => new Date(Date.UTC(2024, 0, 1) + i * DAY_MS));

  it.each(zones)(
    "is never longer than 3 calendar months nor 90 days, on any day of 2024–2029, in %s",
    (zone) => {
      const refused: string[] = [];
      for (const day of days) {
        for (const time of times) {
          const now = new Date(`${day.toISOString().slice(0, 10)}T${time}Z`);
          const window = journeyWindow(now, zone);
          const from = formatComagicDateTime(window.from, zone);
          const to = formatComagicDateTime(window.to, zone);
          const days = (wallClock(to) - wallClock(from)) / DAY_MS;
          if (days > 90 || wallClock(from) < threeMonthsBefore(to)) refused.push(`${from} → ${to}`);
        }
      }
      expect(refused).toEqual([]);
      // 6,500 windows formatted through Intl: about a second alone, longer on a machine busy with the other groups.
    },
    30_000,
  );

  it("still reaches back 89 days of the account's clock, so no visit inside CoMagic's window is missed", () => {
    const now = new Date("2026-05-01T09:00:00Z");
    const window = journeyWindow(now, "Europe/Moscow");
    expect(JOURNEY_WINDOW_DAYS).toBe(89);
    expect(formatComagicDateTime(window.from, "Europe/Moscow")).toBe("2026-02-01 12:00:00");
    expect(window.to).toEqual(now);
  });

  it("keeps 89 wall-clock days across a daylight-saving change (Berlin, spring forward on 29 March 2026)", () => {
    const now = new Date("2026-04-15T10:00:00Z");
    const window = journeyWindow(now, "Europe/Berlin");
    expect(formatComagicDateTime(window.from, "Europe/Berlin")).toBe("2026-01-16 12:00:00");
    expect(formatComagicDateTime(window.to, "Europe/Berlin")).toBe("2026-04-15 12:00:00");
  });
});
