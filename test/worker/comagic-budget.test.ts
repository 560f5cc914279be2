import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { admin, comagicStats, comagicTime, leadOf, leadsWithPhone, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, visitorSessions, waitFor } from "./support";

/*
 * The Data API's points on a small account. CoMagic reports what is left in every answer (`metadata.limits`,
 * comagic/docs/data_api.txt:127-144, 579-605); the sandbox is set to a 750-point day (the vendor fixture,
 * comagic/FACTS.md §1.4) with 50 points left, under the 10% the worker keeps for the feed, and the day resetting
 * soon so that the test sees the waiting work come back.
 */

// Long enough for the call, its lead and the deferral to happen first, even on a loaded machine.
const DAY_RESET_SECONDS = 15;

type LogLine = { event?: string; code?: string; visitorId?: string; entityId?: string; delaySeconds?: number; resent?: boolean };

/** The worker's JSON log lines, as an operator would read them. */
function captureLogs(): LogLine[] {
  const lines: LogLine[] = [];
  const original = console.log;
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].startsWith("{")) {
      try {
        lines.push(JSON.parse(args[0]) as LogLine);
      } catch {
        // not a log line of the worker
      }
    }
    original(...args);
  });
  return lines;
}

async function reconcileLastHour(): Promise<void> {
  const res = await admin("/reconcile", { method: "POST", body: JSON.stringify({ from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date().toISOString() }) });
  expect(res.status).toBe(200);
}

async function storedDayBudget(): Promise<{ limit: number | null; remaining: number } | undefined> {
  const row = await env.DB?.prepare("SELECT value FROM sync_state WHERE portal = 'default' AND name = ?").bind("comagic_budget:data_api").first<{ value: string }>();
  return row ? (JSON.parse(row.value) as { windows: { day?: { limit: number | null; remaining: number } } }).windows.day : undefined;
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});
afterAll(async () => {
  await sandbox("/_sandbox/comagic/reset", {});
});

describe("a Data API day near its end", () => {
  it("defers enrichment without a Data API read or a dead letter while the feed's reads still go, and enriches after the reset", async () => {
    const logs = captureLogs();
    await sandbox("/_sandbox/comagic/settings", { dayLimit: 750, dayRemaining: 50, dayResetSeconds: DAY_RESET_SECONDS });

    // The feed's reads (calls, chats, requests) go although only 50 of 750 points are left, and the worker keeps
    // what the last answer said.
    await reconcileLastHour();
    expect((await comagicStats()).methods["get.calls_report"]).toBe(1);
    expect(await storedDayBudget()).toMatchObject({ limit: 750, remaining: 47 });

    // A call from a visitor CoMagic knows: the lead is made at once, its enrichment waits.
    const visitor = 8_900_000 + Math.floor(Math.random() * 90_000);
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local, visitor_id: String(visitor) });
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitorSessions(visitor, ["paid", "organic"]),
      calls: [{ id: body.call_session.id, start_time: comagicTime(new Date(Date.now() - 120_000)), direction: "in", visitor_id: visitor, contact_phone_number: phone.e164.slice(1) }],
    });
    expect((await postWebhook(body)).status).toBe(202);
    const lead = await leadOf(phone.e164);

    const deferred = await waitFor(async () => logs.find((l) => l.event === "comagic.deferred" && l.entityId === lead.ID), "the enrichment deferred", 20_000);
    expect(deferred).toMatchObject({ code: "budget_day_reserve", resent: true });
    expect(deferred.delaySeconds).toBeLessThanOrEqual(DAY_RESET_SECONDS + 1);
    const held = await comagicStats();
    expect(held.methods["get.visitor_sessions_report"] ?? 0).toBe(0);
    expect(held.methods["get.communications_report"] ?? 0).toBe(0);
    expect((await leadOf(phone.e164)).UF_CRM_CM_SESSIONS ?? "").toBe("");

    // The feed still reads while enrichment waits.
    await reconcileLastHour();
    expect((await comagicStats()).methods["get.calls_report"]).toBeGreaterThan(held.methods["get.calls_report"] ?? 0);

    // After the day's reset the same job comes back and fills the lead; it never became a dead letter.
    const enriched = await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164).find((l) => l.UF_CRM_CM_SESSIONS === "2"), "the lead enriched after the reset", 60_000);
    expect(enriched).toMatchObject({ UF_CRM_CM_VISITOR_ID: String(visitor), UF_CRM_CM_FIRST_SRC: "google" });
    const { deadLetters } = (await (await admin("/dead-letters?pending=1")).json()) as { deadLetters: { job: { visitorId?: string } }[] };
    expect(deadLetters.filter((l) => l.job.visitorId === String(visitor))).toEqual([]);
    expect(logs.filter((l) => l.event === "job.dead_lettered" || l.event === "job.retry").filter((l) => l.entityId === lead.ID)).toEqual([]);
  }, 90_000);
});
