import { describe, expect, it } from "vitest";
import { sendDue } from "../../worker/domain/send-window";

/* Deals and forms wait to go to CoMagic together (a point an upload, FACTS-loop §1.5), but within their feed interval. */

const NOW = new Date("2026-12-07T12:00:00Z");
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();

describe("when what waits for CoMagic goes", () => {
  it("sends nothing when nothing waits", () => {
    expect(sendDue(undefined, 0, 40, NOW, 10)).toBe(false);
  });

  it("sends a full batch at once", () => {
    expect(sendDue(ago(0), 40, 40, NOW, 10)).toBe(true);
  });

  it("holds a few changes until the last tick that still lands the oldest within its feed interval", () => {
    // A 10-minute interval and a tick every 5 minutes: the oldest goes once it has waited 5 minutes.
    expect(sendDue(ago(4), 3, 40, NOW, 10)).toBe(false);
    expect(sendDue(ago(5), 3, 40, NOW, 10)).toBe(true);
    expect(sendDue(ago(54), 3, 40, NOW, 60)).toBe(false);
    expect(sendDue(ago(55), 3, 40, NOW, 60)).toBe(true);
  });

  it("holds nothing when the interval is no longer than a tick", () => {
    expect(sendDue(ago(0), 1, 40, NOW, 5)).toBe(true);
  });
});
