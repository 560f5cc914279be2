import { beforeAll, describe, expect, it, vi } from "vitest";
import { call, callsMade, install, openTab, seedLead, tokenIn } from "../worker/app-support";
import { bitrixCall, sandbox, uniquePhone, workerWithEnv } from "../worker/support";

/*
 * Toll fraud: a number reaches a lead from an anonymous form, and Call dials it at the company's cost.
 * Each test performs one attack and shows CoMagic was never asked to call.
 */

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  expect((await install()).status).toBe(200);
});

/**
 * The worker with some settings changed, as a deploy with other vars would run. The per-user minute limit
 * (CALL_RATE_LIMITER) is let through here so that each test meets only the guard it is about.
 */
function workerWith(vars: Record<string, string>) {
  return workerWithEnv({ CALL_RATE_LIMITER: { limit: async () => ({ success: true }) }, ...vars });
}

async function attemptCall(phone: string, userId = 1, fetcher?: (r: Request) => Promise<Response>) {
  const leadId = await seedLead({ TITLE: "From a form", PHONE: [{ VALUE: phone }] });
  const html = await (await openTab(leadId, userId, {}, undefined, fetcher)).text();
  const before = (await callsMade()).length;
  const res = await call(tokenIn(html), fetcher);
  return { html, res, started: (await callsMade()).length - before };
}

describe("click-to-call refuses toll fraud", () => {
  // libphonenumber metadata: +7 809 is Russia's premium-rate range.
  it("never dials a premium-rate number, and says why in the tab before anyone clicks", async () => {
    const { html, res, started } = await attemptCall("+78095551234");
    expect(html).toMatch(/premium-rate number; click-to-call dials only mobile and landline numbers/);
    expect(html).toMatch(/<button id="call"[^>]* disabled>/);
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: "number_not_allowed" });
    expect(started).toBe(0);
  });

  it("never dials a number in a country outside CALL_COUNTRIES (default: DEFAULT_PHONE_REGION)", async () => {
    const { res, started } = await attemptCall("+4915123456789");
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toContain("Calls to DE are not allowed");
    expect(started).toBe(0);
  });

  it("never dials a satellite number, which belongs to no country", async () => {
    const { res, started } = await attemptCall("+881612345678");
    expect(res.status).toBe(422);
    expect(started).toBe(0);
  });

  it("starts one call for 20 parallel requests with one token", async () => {
    const leadId = await seedLead({ TITLE: "Race", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const token = tokenIn(await (await openTab(leadId, 1)).text());
    const before = (await callsMade()).length;
    const statuses = await Promise.all(Array.from({ length: 20 }, () => call(token, workerWith({})).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    expect((await callsMade()).length - before).toBe(1);
  });

  it("stops a user at CALL_DAILY_LIMIT_PER_USER calls a day, in words, and logs call.refused", async () => {
    // Oleg (user 3) is mapped only in this deploy, so his count starts at zero.
    const worker = workerWith({ CALL_DAILY_LIMIT_PER_USER: "2", COMAGIC_EMPLOYEES: '{"1": 25, "3": 26}' });
    const log = vi.spyOn(console, "log");
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await attemptCall(uniquePhone().e164, 3, worker));
    expect(results.map((r) => r.res.status)).toEqual([200, 200, 429]);
    expect(((await results[2]?.res.json()) as { message?: string } | undefined)?.message).toContain("as many calls today as the daily limit allows");
    expect(results[2]?.started).toBe(0);
    expect(log.mock.calls.map((c) => String(c[0])).some((line) => line.includes('"event":"call.refused"') && line.includes('"reason":"daily_limit"'))).toBe(true);
  });

  it("stops the whole portal at CALL_DAILY_LIMIT calls a day", async () => {
    expect((await attemptCall(uniquePhone().e164, 1, workerWith({}))).res.status).toBe(200);
    const { res, started } = await attemptCall(uniquePhone().e164, 1, workerWith({ CALL_DAILY_LIMIT: "1" }));
    expect(res.status).toBe(429);
    expect(((await res.json()) as { message: string }).message).toContain("This portal has made");
    expect(started).toBe(0);
  });

  it("dials only the number the tab showed: a number put on the lead after the card opened is not called", async () => {
    const leadId = await seedLead({ TITLE: "Switched", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const token = tokenIn(await (await openTab(leadId, 1)).text());
    const lead = (await bitrixCall("crm.lead.get", { id: Number(leadId) })) as { PHONE: { ID: string }[] };
    await bitrixCall("crm.lead.update", { id: Number(leadId), fields: { PHONE: [{ ID: lead.PHONE[0]?.ID, VALUE: "+79990001234" }] } });
    const before = (await callsMade()).length;
    const res = await call(token, workerWith({}));
    expect(res.status).toBe(409);
    expect((await callsMade()).length).toBe(before);
  });

  it("matches users by email only where COMAGIC_MATCH_BY_EMAIL is true: a user who sets a colleague's email cannot call as them", async () => {
    // Maria (user 2) is in no map; her Bitrix24 email matches CoMagic employee 26, as an edited email would.
    const { res, started } = await attemptCall(uniquePhone().e164, 2, workerWith({ COMAGIC_MATCH_BY_EMAIL: "false" }));
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: "user_not_mapped" });
    expect(started).toBe(0);
  });
});
