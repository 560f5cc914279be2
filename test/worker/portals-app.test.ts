import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { signReportToken } from "../../worker/bitrix-app/report";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { claimsOf, postReport, tokenOf } from "../security/report-support";
import { call, installFields, installStore, type PortalTokens, postForm, TAB_KEYS, tokenIn } from "./app-support";
import { admin, sandbox, uniquePhone, waitFor } from "./support";
import { PORTALS, type PortalName, portalSettingsOf } from "./portal-support";

/*
 * The Bitrix24 app serving two portals of one deployment (issue #23): alpha and beta are stored portals, each its own
 * Bitrix24 portal on an origin of its own (as real portals are) and its own CoMagic account, with the app installed
 * on both. A card, a call, a report and their tokens stay with the portal they were opened on, whatever the other
 * portal has under the same ids; a request from one portal that names the other is refused.
 */

/** The two portals set up as stored portals with webhooks (gamma and delta are the app-installed ones' tests'). */
type Name = Exclude<PortalName, "gamma" | "delta">;
const db = () => env.DB as D1Database;
const hostOf = (name: Name) => new URL(PORTALS[name].url).host;

/** The sandbox portal's control API, as `sandbox()` is the root portal's. */
const at = (name: Name, path: string, body?: unknown) =>
  fetch(`${PORTALS[name].url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const tokensOn = async (name: Name, userId: number): Promise<PortalTokens> => (await at(name, "/_sandbox/bitrix/app/tokens", { userId })).json();
const callsMadeOn = async (name: Name | "root"): Promise<Record<string, unknown>[]> =>
  (await (name === "root" ? sandbox("/_sandbox/comagic/calls-made") : at(name, "/_sandbox/comagic/calls-made"))).json();
const leadOn = async (name: Name, id: string) =>
  ((await (await at(name, "/_sandbox/crm")).json()) as { leads: { ID: string; TIMELINE_COMMENTS: string[]; CALLS: { type: number; userId: number }[] }[] }).leads.find((l) => l.ID === id);
const permitsOf = async (portal: string) => (await env.PORTAL_STATE.getByName(portal).stats()).permits;

const settingsOf = (name: Name) =>
  portalSettingsOf(name, {
    COMAGIC_VIRTUAL_NUMBER: "+7 499 372-06-92",
    COMAGIC_EMPLOYEES: '{"1": 25, "2": 26}',
    // One click-to-call a day for all of alpha: its second call shows whose cap a call counts against.
    ...(name === "alpha" ? { CALL_DAILY_LIMIT: "1" } : {}),
  });

/** The app's install as the portal's administrator (user 1) posts it from `from`'s portal (its DOMAIN), with `overrides`. */
async function installFrom(from: Name, overrides: Record<string, string> = {}, domain?: string): Promise<Response> {
  const t = await tokensOn(from, 1);
  return postForm("/bitrix/install", installFields(t, overrides), `?DOMAIN=${domain ?? t.DOMAIN}&PROTOCOL=0&LANG=en`);
}

const htmlDecoded = (value: string) => value.replace(/&quot;/g, '"').replace(/&amp;/g, "&");

/**
 * What the browser posts into the app's frame from a page of `name`'s portal (a lead card, CRM Analytics): the
 * placement form the sandbox portal builds, its action's query (DOMAIN, LANG) and fields, with `overrides`.
 */
async function postPlacement(name: Name, page: string, overrides: Record<string, string> = {}, domain?: string): Promise<Response> {
  const html = await (await at(name, page)).text();
  const action = new URL(htmlDecoded(/<form id="placement" method="post" target="[^"]+" action="([^"]+)"/.exec(html)?.[1] ?? "http://no-form.test/"));
  if (domain) action.searchParams.set("DOMAIN", domain);
  const fields = Object.fromEntries([...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map(([, key, value]) => [key ?? "", htmlDecoded(value ?? "")]));
  return postForm(action.pathname, { ...fields, ...overrides }, action.search);
}

/** A lead card's CoMagic tab on `name`'s portal, as a sales manager (user 2) opens it. */
const openTabOn = (name: Name, leadId: string, overrides: Record<string, string> = {}, domain?: string) => postPlacement(name, `/_sandbox/lead-card/${leadId}?user=2&lang=en`, overrides, domain);

/** The report as CRM Analytics on `name`'s portal opens it for its administrator (user 1). */
const openReportOn = (name: Name) => postPlacement(name, "/_sandbox/app?user=1&lang=en");

/** A lead with the same id on both portals, each with a phone of its own. */
async function sameLeadOnBoth(): Promise<{ id: string; phones: Record<Name, string> }> {
  const phones = { alpha: uniquePhone().e164, beta: uniquePhone().e164 };
  const seed = async (name: Name) => {
    const res = await at(name, "/_sandbox/leads", { fields: { TITLE: `${name}'s client`, PHONE: [{ VALUE: phones[name] }] } });
    return String(((await res.json()) as { id: number }).id);
  };
  let ids = { alpha: await seed("alpha"), beta: await seed("beta") };
  // Each portal numbers its own leads: the one behind seeds again until both have a lead with the id.
  while (ids.alpha !== ids.beta) {
    const behind: Name = Number(ids.alpha) < Number(ids.beta) ? "alpha" : "beta";
    ids = { ...ids, [behind]: await seed(behind) };
  }
  return { id: ids.alpha, phones };
}

/** A lead credited to one source (the report's rows), for `portal`. */
const credit = (portal: Name, leadId: string, sourceMedium: string) =>
  d1AttributionStore(db(), portal).putCredits("lead", leadId, new Date(), [
    {
      touchNo: 0,
      at: new Date().toISOString(),
      utmSource: sourceMedium.split(" / ")[0] ?? null,
      utmMedium: sourceMedium.split(" / ")[1] ?? null,
      utmCampaign: null,
      sourceMedium,
      cmCampaignId: null,
      cmCampaignName: null,
      cmChannel: null,
      siteId: null,
      shares: { first_touch: 1, last_touch: 1, last_non_direct: 1, linear: 1, time_decay: 1, position_based: 1 },
    },
  ]);
const SOURCES: Record<Name, string> = { alpha: "alpha-ads / cpc", beta: "beta-social / social" };

/** `token` with its payload's member_id changed, its signature kept. */
function withMemberId(token: string, memberId: string): string {
  const [kid, , signature] = token.split(".");
  const payload = btoa(JSON.stringify({ ...claimsOf(token), memberId }))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  return `${kid}.${payload}.${signature}`;
}

beforeAll(async () => {
  for (const name of ["alpha", "beta"] as const) {
    expect((await at(name, "/_sandbox/reset", {})).status).toBe(200);
    const res = await admin(`/portals/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ settings: settingsOf(name), memberId: PORTALS[name].memberId }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const installed = await installFrom(name);
    expect(installed.status, await installed.clone().text()).toBe(200);
  }
  // The report's rows: the same lead id credited on both portals, to different sources.
  await credit("alpha", "4242", SOURCES.alpha);
  await credit("beta", "4242", SOURCES.beta);
});

describe("the app installed on two portals of one deployment", () => {
  it("keeps each portal's install at that portal's own origin and binds the tab on each portal", async () => {
    for (const name of ["alpha", "beta"] as const) {
      expect(await installStore().get(PORTALS[name].memberId)).toMatchObject({ memberId: PORTALS[name].memberId, origin: new URL(PORTALS[name].url).origin });
      const state = (await (await at(name, "/_sandbox/bitrix/app/state")).json()) as { placements: { placement: string; handler: string }[] };
      expect(state.placements).toContainEqual(expect.objectContaining({ placement: "CRM_LEAD_DETAIL_TAB", handler: "http://worker.test/bitrix/tab" }));
    }
    // The root sandbox portal (the deployment's default) got nothing from either install.
    expect(await installStore().get("sandbox-member-0001")).toBeNull();
  });

  it("spends the Bitrix24 request permits of the portal a tab was opened on, and no other portal's", async () => {
    const { id } = await sameLeadOnBoth();
    const before = { alpha: await permitsOf("alpha"), beta: await permitsOf("beta"), default: await permitsOf("default") };
    expect((await openTabOn("alpha", id)).status).toBe(200);
    expect(await permitsOf("alpha")).toBeGreaterThan(before.alpha);
    expect(await permitsOf("beta")).toBe(before.beta);
    expect(await permitsOf("default")).toBe(before.default);
  });

  it("shows a tab opened on alpha alpha's card, though beta has a card with the same id, and lets only alpha frame it", async () => {
    const { id, phones } = await sameLeadOnBoth();
    const alpha = await openTabOn("alpha", id);
    expect(alpha.status).toBe(200);
    expect(alpha.headers.get("content-security-policy")).toContain(`frame-ancestors ${new URL(PORTALS.alpha.url).origin}`);
    const html = await alpha.text();
    expect(html).toContain(`Call ${phones.alpha}`);
    expect(html).not.toContain(phones.beta);
    const beta = await (await openTabOn("beta", id)).text();
    expect(beta).toContain(`Call ${phones.beta}`);
    expect(beta).not.toContain(phones.alpha);
  });

  it.each([
    ["with beta's DOMAIN, which is not alpha's host", "beta", 403],
    ["with alpha's DOMAIN, which alpha's portal answers by refusing beta's token", "alpha", 401],
  ] as const)("refuses a tab posted from beta's portal in the name of alpha's member_id %s, showing no card", async (_how, domain, status) => {
    const { id, phones } = await sameLeadOnBoth();
    const res = await openTabOn("beta", id, { member_id: PORTALS.alpha.memberId }, hostOf(domain));
    expect(res.status).toBe(status);
    const html = await res.text();
    expect(html).not.toContain(phones.alpha);
    expect(html).not.toContain(phones.beta);
    expect(html).not.toContain("data-token");
  });

  it("starts a call from alpha's card through alpha's CoMagic account, counts it against alpha's daily cap only, and records it on alpha's lead", async () => {
    const { id, phones } = await sameLeadOnBoth();
    const before = { alpha: (await callsMadeOn("alpha")).length, beta: (await callsMadeOn("beta")).length, root: (await callsMadeOn("root")).length };
    const res = await call(tokenIn(await (await openTabOn("alpha", id)).text()));
    expect(res.status, await res.clone().text()).toBe(200);
    const made = (await callsMadeOn("alpha")).slice(before.alpha);
    expect(made).toEqual([expect.objectContaining({ contact: phones.alpha.slice(1), employee: { id: 26 } })]);
    expect((await callsMadeOn("beta")).length).toBe(before.beta);
    expect((await callsMadeOn("root")).length).toBe(before.root);
    expect((await leadOn("alpha", id))?.TIMELINE_COMMENTS[0]).toContain("Click-to-call through CoMagic by Maria Sales");
    expect((await leadOn("beta", id))?.TIMELINE_COMMENTS).toEqual([]);

    // Alpha's cap is one call a day: its next is refused, while beta (its own cap) still calls.
    const again = await call(tokenIn(await (await openTabOn("alpha", id)).text()));
    expect(again.status).toBe(429);
    expect(await again.json()).toMatchObject({ error: "daily_limit" });
    expect((await call(tokenIn(await (await openTabOn("beta", id)).text()))).status).toBe(200);
    expect((await callsMadeOn("beta")).slice(before.beta)).toEqual([expect.objectContaining({ contact: phones.beta.slice(1) })]);
    const counts = await db().prepare("SELECT portal, scope, count FROM call_counts WHERE scope LIKE 'portal:%' ORDER BY portal").all<{ portal: string; scope: string; count: number }>();
    expect(counts.results).toEqual([
      { portal: "alpha", scope: `portal:${PORTALS.alpha.memberId}`, count: 1 },
      { portal: "beta", scope: `portal:${PORTALS.beta.memberId}`, count: 1 },
    ]);

    // Once alpha's CoMagic report has the call, it becomes an outbound call on alpha's lead (alpha's app install).
    const calls = await waitFor(async () => {
      const lead = await leadOn("alpha", id);
      return lead?.CALLS.length ? lead.CALLS : null;
    }, "the outbound call on alpha's lead");
    expect(calls).toEqual([expect.objectContaining({ type: 1, userId: 2 })]);
  });

  it("shows each portal's report only that portal's rows, for the same lead id", async () => {
    for (const [name, other] of [
      ["alpha", "beta"],
      ["beta", "alpha"],
    ] as const) {
      const res = await openReportOn(name);
      const html = await res.text();
      expect(res.status, html).toBe(200);
      expect(html).toContain(SOURCES[name]);
      expect(html).not.toContain(SOURCES[other]);
    }
  });

  it("opens alpha's report from alpha's report token, beta's from a token for beta, and refuses a token whose member_id was changed", async () => {
    const token = tokenOf(await (await openReportOn("alpha")).text());
    expect(claimsOf(token)).toMatchObject({ memberId: PORTALS.alpha.memberId });
    const alpha = await postReport("/bitrix/report", { token, grouping: "source_medium" });
    const alphaHtml = await alpha.text();
    expect(alpha.status, alphaHtml).toBe(200);
    expect(alphaHtml).toContain(SOURCES.alpha);
    expect(alphaHtml).not.toContain(SOURCES.beta);

    const forBeta = await signReportToken({ memberId: PORTALS.beta.memberId, userId: "1", lang: "en", sid: crypto.randomUUID() }, TAB_KEYS, new Date());
    const beta = await (await postReport("/bitrix/report", { token: forBeta.token })).text();
    expect(beta).toContain(SOURCES.beta);
    expect(beta).not.toContain(SOURCES.alpha);

    const tampered = await postReport("/bitrix/report", { token: withMemberId(token, PORTALS.beta.memberId) });
    expect(tampered.status).toBe(401);
    const refused = await tampered.text();
    expect(refused).not.toContain(SOURCES.alpha);
    expect(refused).not.toContain(SOURCES.beta);
  });

  it("refuses an install from beta's portal that claims alpha's member_id, and keeps alpha's install", async () => {
    const kept = await installStore().get(PORTALS.alpha.memberId);
    // Alpha's portal does not know beta's token.
    const claimingAlpha = await installFrom("beta", { member_id: PORTALS.alpha.memberId }, hostOf("alpha"));
    expect(claimingAlpha.status).toBe(401);
    expect(await claimingAlpha.text()).toContain("did not accept this request&#39;s token");
    // Sent with beta's own DOMAIN, it names a portal this deployment serves at another host.
    const fromBeta = await installFrom("beta", { member_id: PORTALS.alpha.memberId });
    expect(fromBeta.status).toBe(403);
    expect(await fromBeta.text()).toContain("serves another Bitrix24 portal");
    expect(await installStore().get(PORTALS.alpha.memberId)).toEqual(kept);
  });
});
