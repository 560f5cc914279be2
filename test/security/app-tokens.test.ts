import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signTabToken } from "../../worker/bitrix-app/tab-token";
import { call, callsMade, install, MEMBER, openTab, seedLead, storedPortal, TAB_KEYS } from "../worker/app-support";
import { sandbox, uniquePhone } from "../worker/support";

/*
 * FACTS.md §1.3–1.4 and FACTS-portals: every application installed on a portal gets tokens app.info accepts;
 * only app.info's CODE (a local app's client id) and the install's APPLICATION_TOKEN say which app a request
 * belongs to. The sandbox portal has a second application ("other") to attack with.
 */

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  expect((await install()).status).toBe(200);
});

describe("the app's token must be ours", () => {
  it("refuses an install with another application's admin token, and keeps the installed portal's record", async () => {
    const before = await storedPortal();
    const res = await install(1, {}, "other");
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("another Bitrix24 application than the CoMagic app");
    expect(await storedPortal()).toEqual(before);
  });

  it("refuses the tab with another application's user token, showing no data", async () => {
    const leadId = await seedLead({ TITLE: "Secret lead", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const res = await openTab(leadId, 2, {}, undefined, undefined, "other");
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(html).not.toContain("Secret lead");
    expect(html).not.toContain("data-token");
  });

  it("refuses a placement request whose APPLICATION_TOKEN is not the one kept from the install", async () => {
    expect((await storedPortal())?.applicationToken).toBeTruthy();
    const leadId = await seedLead({ TITLE: "Secret lead", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const res = await openTab(leadId, 2, { APPLICATION_TOKEN: "forged-application-token" });
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain("data-token");
  });
});

describe("the tab token is signed with TAB_TOKEN_SECRET, not the app's client secret", () => {
  async function claimsForCall() {
    const leadId = await seedLead({ TITLE: "Target", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const phone = (await (await openTab(leadId, 1)).text()).match(/data-phone="([^"]+)"/)?.[1] ?? null;
    return { memberId: MEMBER, userId: "1", leadId, phone, expiresAt: Math.floor(Date.now() / 1000) + 600, nonce: crypto.randomUUID() };
  }

  it("refuses a token an admin forged with the client secret every portal admin can read", async () => {
    const before = (await callsMade()).length;
    const res = await call(await signTabToken(await claimsForCall(), [env.BITRIX_APP_CLIENT_SECRET ?? ""]));
    expect(res.status).toBe(401);
    expect((await callsMade()).length).toBe(before);
  });

  it("refuses a genuinely signed token that would live longer than 15 minutes", async () => {
    const claims = { ...(await claimsForCall()), expiresAt: Math.floor(Date.now() / 1000) + 24 * 3600 };
    const before = (await callsMade()).length;
    const res = await call(await signTabToken(claims, TAB_KEYS));
    expect(res.status).toBe(401);
    expect((await callsMade()).length).toBe(before);
  });

  it("accepts a token signed with the previous key while a rotated one is configured", async () => {
    const oldKey = (env.TAB_TOKEN_SECRET ?? "").split(",")[1]?.trim() ?? "";
    const res = await call(await signTabToken(await claimsForCall(), [oldKey]));
    expect(res.status).toBe(200);
  });
});
