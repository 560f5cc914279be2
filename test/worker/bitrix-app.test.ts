import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signTabToken } from "../../worker/bitrix-app/tab-token";
import { asWrittenByWorker, call, callsMade, install, MEMBER, openTab, portalHost, postForm as form, seedLead, storedPortal, TAB_KEYS, tokenIn, tokensFor } from "./app-support";
import { sandbox, uniquePhone, visitorSessions, waitFor, workerWithEnv } from "./support";

let host: string;

let visitor = 9_100_000 + Math.floor(Math.random() * 100_000);

beforeAll(async () => {
  host = portalHost();
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});

describe("installing the app", () => {
  it("stores the portal, creates the fields, binds the CoMagic tab to lead, deal and contact cards and the report to CRM Analytics, and finishes the install", async () => {
    const res = await install();
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("BX24.installFinish()");
    const state = (await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { placements: unknown[] };
    const tab = { handler: "http://worker.test/bitrix/tab", title: "CoMagic", titles: { ru: "CoMagic", en: "CoMagic" } };
    expect(state.placements).toEqual([
      { placement: "CRM_LEAD_DETAIL_TAB", ...tab },
      { placement: "CRM_DEAL_DETAIL_TAB", ...tab },
      { placement: "CRM_CONTACT_DETAIL_TAB", ...tab },
      // FACTS.md §1.3 (placement.bind: TITLE, LANG_ALL{lang:{TITLE}}): the report opens from CRM → Analytics, titled in
      // each interface language; TITLE follows CRM_LANGUAGE.
      { placement: "CRM_ANALYTICS_MENU", handler: "http://worker.test/bitrix/app", title: "CoMagic: attribution", titles: { ru: "CoMagic: атрибуция", en: "CoMagic: attribution" } },
    ]);
    // FACTS.md §2.6: crm.deal.userfield.add — a converted lead keeps the CoMagic values only in fields deals have too.
    const stats = (await (await sandbox("/_sandbox/stats")).json()) as { dealUserFields: string[] };
    expect(stats.dealUserFields.sort()).toEqual(["UF_CRM_CM_FIRST_SRC", "UF_CRM_CM_LAST_SRC", "UF_CRM_CM_SESSIONS", "UF_CRM_CM_VISITOR_ID", "UF_CRM_COMAGIC_ID"]);
    const portal = await storedPortal();
    expect(portal).toMatchObject({ memberId: MEMBER, installedByUserId: "1" });
  });

  it("is idempotent: installing again binds nothing twice", async () => {
    expect((await install()).status).toBe(200);
    const state = (await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { placements: unknown[] };
    expect(state.placements).toHaveLength(4);
  });

  it.each([
    ["by a user who is not an administrator", () => install(2), 403, "Only a Bitrix24 administrator"],
    ["with a token the portal does not know", () => install(1, { AUTH_ID: "forged-token" }), 401, "did not accept this request&#39;s token"],
    ["claiming another portal's domain", () => install(1, { DOMAIN: "evil.bitrix24.ru" }), 403, "serves another Bitrix24 portal"],
    ["without the tokens", () => form("/bitrix/install", { member_id: MEMBER }), 400, "lacks AUTH_ID"],
  ])("is refused %s, saying why", async (_name, attempt, status, reason) => {
    const res = await attempt();
    expect(res.status).toBe(status);
    expect(await res.text()).toContain(reason);
  });

  it("tells a Russian-speaking user who is not an administrator why, in Russian", async () => {
    const t = await tokensFor(2);
    const res = await form("/bitrix/install", { ...t, AUTH_EXPIRES: String(t.AUTH_EXPIRES), status: "L" }, `?DOMAIN=${portalHost()}&PROTOCOL=0&LANG=ru`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("только администратор Битрикс24");
  });
});

describe("the CoMagic tab", () => {
  it("shows a verified user the visitor's journey and the attribution table", async () => {
    visitor += 1;
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: visitorSessions(visitor, ["paid", "organic", "direct"]),
      communications: [{ id: 7001, communication_type: "call", date_time: visitorSessions(visitor, ["x"])[0]?.date_time, visitor_id: visitor, visitor_session_id: null }],
    });
    const leadId = await seedLead({ TITLE: "Journey lead", PHONE: [{ VALUE: uniquePhone().e164 }], UF_CRM_CM_VISITOR_ID: String(visitor) });
    await asWrittenByWorker("lead", leadId, visitor);
    const res = await openTab(leadId);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain(`frame-ancestors http://${host}`);
    const html = await res.text();
    expect(html.match(/<li class="session">/g)).toHaveLength(3);
    expect(html).toContain("google / cpc");
    expect(html).toContain('<table id="attribution">');
    expect(html).toContain("Position-based (40/20/40)");
    // Times in the user's date format (LANG=en: en-GB), in the account's time zone.
    expect(html).toMatch(/<div class="when">\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}<\/div>/);
    const ru = await (await openTab(leadId, 2, {}, `?DOMAIN=${host}&PROTOCOL=0&LANG=ru`)).text();
    expect(ru).toMatch(/<div class="when">\d{1,2} [а-я]{3}\.? \d{4} г\., \d{2}:\d{2}<\/div>/);
    expect(tokenIn(html)).not.toBe("");
  });

  it("makes a call from the card an outbound Bitrix24 call (TYPE 1) once CoMagic's report has it, for the manager who called", async () => {
    const phone = uniquePhone();
    const leadId = await seedLead({ TITLE: "Call back", PHONE: [{ VALUE: phone.e164 }] });
    expect((await call(tokenIn(await (await openTab(leadId, 2)).text()))).status).toBe(200);
    // The sandbox Call API puts the call into get.calls_report (25 s talk); ENRICH_DELAY_SECONDS is 1 here.
    const calls = await waitFor(async () => {
      const lead = ((await (await sandbox("/_sandbox/crm")).json()) as { leads: { ID: string; CALLS: { type: number; userId: number; duration: number }[] }[] }).leads.find((l) => l.ID === leadId);
      return lead?.CALLS.length ? lead.CALLS : null;
    }, "the outbound call on the lead");
    expect(calls).toEqual([expect.objectContaining({ type: 1, userId: 2, duration: 25 })]);
  });

  it("finds the visitor and the phone on a deal of a portal without leads (its own field, its contact) and on a contact (its latest deal)", async () => {
    visitor += 1;
    await sandbox("/_sandbox/comagic/data", { visitor_sessions: visitorSessions(visitor, ["paid", "direct"]) });
    const phone = uniquePhone();
    const { id: contactId } = (await (await sandbox("/_sandbox/contacts", { fields: { NAME: "Deal owner", PHONE: [{ VALUE: phone.e164 }] } })).json()) as { id: number };
    const { id: dealId } = (await (await sandbox("/_sandbox/deals", { fields: { TITLE: "Sofa", CONTACT_ID: contactId, UF_CRM_CM_VISITOR_ID: String(visitor) } })).json()) as { id: number };
    await asWrittenByWorker("deal", dealId, visitor);
    for (const [placement, id] of [
      ["CRM_DEAL_DETAIL_TAB", dealId],
      ["CRM_CONTACT_DETAIL_TAB", contactId],
    ] as const) {
      const res = await openTab(String(id), 2, { PLACEMENT: placement });
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html.match(/<li class="session">/g)).toHaveLength(2);
      expect(html).toContain(phone.e164);
    }
    // Call from the contact's card dials the contact's number and notes it on the contact's timeline.
    const token = tokenIn(await (await openTab(String(contactId), 2, { PLACEMENT: "CRM_CONTACT_DETAIL_TAB" })).text());
    expect((await call(token)).status).toBe(200);
    const contact = ((await (await sandbox("/_sandbox/crm")).json()) as { contacts: { ID: string; TIMELINE_COMMENTS: string[] }[] }).contacts.find((c) => c.ID === String(contactId));
    expect(contact?.TIMELINE_COMMENTS[0]).toContain(`calling ${phone.e164}`);
  });

  it("explains an empty journey: no visitor id, and how to get one", async () => {
    const leadId = await seedLead({ TITLE: "No visitor", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const html = await (await openTab(leadId)).text();
    expect(html).toContain("no CoMagic visitor id");
    expect(html).toContain("http://worker.test/snippet.js");
  });

  // FACTS-portals §10 / FACTS.md §1.3: every placement request carries the user's interface language in LANG.
  it("speaks the user's language: a Russian portal user reads the tab, the call refusals and the errors in Russian", async () => {
    const ru = `?DOMAIN=${portalHost()}&PROTOCOL=0&LANG=ru`;
    // +7 809 is Russia's premium-rate range (libphonenumber metadata): the tab says before any click why it is not called.
    const leadId = await seedLead({ TITLE: "Без визита", PHONE: [{ VALUE: "+7 809 555-12-34" }] });
    const html = await (await openTab(leadId, 2, {}, ru)).text();
    expect(html).toContain('<html lang="ru">');
    expect(html).toContain("У этого лида нет id посетителя CoMagic");
    expect(html).toContain("Путь клиента");
    expect(html).toContain("Позвонить +78095551234");
    expect(html).toContain("+78095551234 — номер типа premium-rate; из карточки звоним только на мобильные и городские номера.");
    expect(html).toContain('"confirmCall":"Подтвердите: позвонить "');
    expect(html).not.toContain("no CoMagic visitor id");
    // The button posts the page's language; a refused call says why in it (the code stays English for scripts).
    // A forged token is refused before the per-user call limit counts, so the tests after this one keep theirs.
    const forged = await call("x".repeat(20), undefined, "ru");
    expect(await forged.json()).toEqual({ error: "invalid_token", message: "Кнопка звонка устарела или не подлинная; откройте карточку заново" });
    const notInstalled = await openTab(leadId, 2, { member_id: "someone-else" }, ru);
    expect(await notInstalled.text()).toContain("Приложение CoMagic не установлено на этом портале");
  });

  it.each([
    ["a portal the app is not installed on", { member_id: "someone-else" }, undefined, 401],
    ["a forged token", { AUTH_ID: "forged-token" }, undefined, 401],
    ["a request that claims another portal's domain", {}, "?DOMAIN=evil.bitrix24.ru", 403],
    ["a placement that is not a CRM card", { PLACEMENT: "USER_PROFILE_MENU" }, undefined, 400],
  ])("refuses %s, showing no data", async (_name, overrides, query, status) => {
    const leadId = await seedLead({ TITLE: "Secret lead", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const res = await openTab(leadId, 2, overrides, query);
    expect(res.status).toBe(status);
    const html = await res.text();
    expect(html).not.toContain("Secret lead");
    expect(html).not.toContain("data-token");
  });

  // FACTS.md §4.1 (Rate): over the leaky bucket Bitrix24 answers HTTP 503 QUERY_LIMIT_EXCEEDED.
  it("says Bitrix24 is busy (503) rather than refusing the user when the portal cannot answer", async () => {
    const leadId = await seedLead({ TITLE: "Busy tab", PHONE: [{ VALUE: uniquePhone().e164 }] });
    await sandbox("/_sandbox/faults", { rate: 1, kinds: ["503"] });
    const busy = await openTab(leadId, 2).finally(() => sandbox("/_sandbox/faults", { rate: 0 }));
    expect(busy.status).toBe(503);
    const html = await busy.text();
    expect(html).toContain("Bitrix24 did not answer in time");
    expect(html).not.toContain("data-token");
    expect((await openTab(leadId, 2)).status).toBe(200);
  });

  it("refuses a token that has expired", async () => {
    const leadId = await seedLead({ TITLE: "Secret lead" });
    const t = await tokensFor(2);
    await sandbox("/_sandbox/bitrix/app/expire-tokens", {});
    const res = await form("/bitrix/tab", { AUTH_ID: t.AUTH_ID, member_id: MEMBER, PLACEMENT: "CRM_LEAD_DETAIL_TAB", PLACEMENT_OPTIONS: JSON.stringify({ ID: leadId }) });
    expect(res.status).toBe(401);
    expect(await res.text()).not.toContain("data-token");
  });
});

describe("click-to-call", () => {
  it("rings the manager's CoMagic employee, then the lead, once, and records it on the lead's timeline", async () => {
    const phone = uniquePhone();
    const leadId = await seedLead({ TITLE: "Call me", PHONE: [{ VALUE: phone.local }] });
    const token = tokenIn(await (await openTab(leadId, 2)).text());
    const before = (await callsMade()).length;
    const res = await call(token);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "started" });

    const made = (await callsMade()).slice(before);
    expect(made).toHaveLength(1);
    // Maria (user 2) is not in COMAGIC_EMPLOYEES: she is found by her email among CoMagic's employees.
    // FACTS-calls §4: start.employee_call's direction defaults to `in`; `out` keeps the call from coming back as a new client.
    expect(made[0]).toMatchObject({ first_call: "employee", direction: "out", virtual_phone_number: "74993720692", contact: phone.e164.slice(1), employee: { id: 26 } });
    expect(String(made[0]?.external_id)).toContain(`bitrix24-lead-${leadId}-`);
    const leads = (await (await sandbox("/_sandbox/leads")).json()) as { ID: string; TIMELINE_COMMENTS: string[] }[];
    expect(leads.find((l) => l.ID === leadId)?.TIMELINE_COMMENTS[0]).toContain("Click-to-call through CoMagic by Maria Sales");

    // The same button again (a double click): no second call.
    expect((await call(token)).status).toBe(409);
    expect((await callsMade()).length).toBe(before + 1);
  });

  it("uses the COMAGIC_EMPLOYEES map, and refreshes the app's Bitrix24 token when it has expired", async () => {
    const leadId = await seedLead({ TITLE: "Refresh", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const token = tokenIn(await (await openTab(leadId, 1)).text());
    await sandbox("/_sandbox/bitrix/app/expire-tokens", {});
    const stateBefore = (await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number };
    const res = await call(token);
    expect(res.status).toBe(200);
    expect((await callsMade()).at(-1)).toMatchObject({ employee: { id: 25 } });
    const stateAfter = (await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number };
    expect(stateAfter.refreshes).toBe(stateBefore.refreshes + 1);
  });

  it.each([
    ["a lead without a phone", { TITLE: "No phone" }, 2, 422, "no_phone"],
    ["a user linked to no CoMagic employee", { TITLE: "Oleg's", PHONE: [{ VALUE: "+79990001122" }] }, 3, 422, "user_not_mapped"],
  ])("explains %s and starts nothing", async (_name, fields, userId, status, code) => {
    const leadId = await seedLead(fields);
    const token = tokenIn(await (await openTab(leadId, userId)).text());
    const before = (await callsMade()).length;
    const res = await call(token);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: code });
    expect((await callsMade()).length).toBe(before);
  });

  it.each([
    ["no token", ""],
    ["a token with a changed lead", "tamper"],
    ["an expired token", "expired"],
    ["a token signed with another secret", "foreign"],
  ])("refuses %s with 401 and starts nothing", async (_name, kind) => {
    const leadId = await seedLead({ TITLE: "Target", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const claims = { memberId: MEMBER, userId: "2", leadId, phone: null, expiresAt: Math.floor(Date.now() / 1000) + 600, nonce: crypto.randomUUID() };
    let token = "";
    if (kind === "tamper") {
      const [kid, payload, signature] = (await signTabToken(claims, TAB_KEYS)).split(".");
      const changed = btoa(JSON.stringify({ ...JSON.parse(atob(String(payload).replace(/-/g, "+").replace(/_/g, "/"))), leadId: "1" })).replace(/=+$/, "");
      token = `${kid}.${changed}.${signature}`;
    } else if (kind === "expired") token = await signTabToken({ ...claims, expiresAt: Math.floor(Date.now() / 1000) - 1 }, TAB_KEYS);
    else if (kind === "foreign") token = await signTabToken(claims, ["another-secret-0123456789abcdef0123456789"]);
    const before = (await callsMade()).length;
    const res = await call(token);
    expect(res.status).toBe(401);
    expect((await callsMade()).length).toBe(before);
  });

  it("says Bitrix24 is busy (503, in words) when it cannot read the lead, and the same button works once it answers", async () => {
    const leadId = await seedLead({ TITLE: "Busy", PHONE: [{ VALUE: uniquePhone().e164 }] });
    const token = tokenIn(await (await openTab(leadId, 1)).text());
    const calls = workerWithEnv({ CALL_RATE_LIMITER: { limit: async () => ({ success: true }) } });
    await sandbox("/_sandbox/faults", { rate: 1, kinds: ["503"] });
    const busy = await call(token, calls);
    await sandbox("/_sandbox/faults", { rate: 0 });
    expect(busy.status).toBe(503);
    expect(await busy.json()).toMatchObject({ error: "bitrix_unavailable" });
    expect((await call(token, calls)).status).toBe(200);
  });

  it("limits each user to 5 calls a minute", async () => {
    // The limiter counts in fixed windows of a wall-clock minute (as miniflare's does): the burst starts in a
    // fresh window, so what it sees is the limit and not a window's end.
    const leftInMinute = 60_000 - (Date.now() % 60_000);
    if (leftInMinute < 10_000) await new Promise((r) => setTimeout(r, leftInMinute + 50));
    // A fresh Bitrix24 request budget (FACTS.md §4.1: 2 a second, bursts of 50): the tests above spent much of it.
    await sandbox("/_sandbox/rate-limit", {});
    // User 4 (Pavel) calls in no other test and is linked to no CoMagic employee: the limit is checked first,
    // so every try counts and none dials.
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const leadId = await seedLead({ TITLE: `Burst ${i}`, PHONE: [{ VALUE: uniquePhone().e164 }] });
      statuses.push((await call(tokenIn(await (await openTab(leadId, 4)).text()))).status);
    }
    expect(statuses).toEqual([422, 422, 422, 422, 422, 429]);
  });
});

describe("the app's own Bitrix24 tokens", () => {
  // FACTS-portals: server_endpoint is the OAuth server's REST base; tokens refresh at its /oauth/token/.
  it("are refreshed at the OAuth host the install named, not at a hard-coded one", async () => {
    // A fresh request budget (FACTS.md §4.1: 2 a second, bursts of 50): the tests above spent much of it.
    await sandbox("/_sandbox/rate-limit", {});
    expect((await install()).status).toBe(200);
    expect((await storedPortal())?.oauthTokenUrl).toBe(`${env.SANDBOX_URL}/oauth/token/`);
  });

  it("are refreshed once when five requests find them expired at the same time (a refresh token is spent by its use)", async () => {
    await sandbox("/_sandbox/rate-limit", {});
    expect((await install()).status).toBe(200);
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      const tab = await openTab(await seedLead({ TITLE: "Parallel", PHONE: [{ VALUE: uniquePhone().e164 }] }), 1);
      const html = await tab.text();
      expect(tab.status, html).toBe(200);
      tokens.push(tokenIn(html));
    }
    await sandbox("/_sandbox/bitrix/app/expire-tokens", {});
    const before = ((await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number }).refreshes;
    const calls = workerWithEnv({ CALL_RATE_LIMITER: { limit: async () => ({ success: true }) } });
    const answers = await Promise.all(tokens.map((t) => call(t, calls).then(async (r) => `${r.status} ${r.status === 200 ? "" : await r.text()}`)));
    expect(answers.map((a) => a.trim())).toEqual(["200", "200", "200", "200", "200"]);
    const after = ((await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number }).refreshes;
    expect(after - before).toBe(1);
  });
});
