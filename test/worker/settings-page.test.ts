import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { d1PortalSettings } from "../../worker/storage/portal-settings";
import { installFields, type PortalTokens, postForm } from "./app-support";
import { PORTALS } from "./portal-support";
import { admin, makeCallSession, uniquePhone, uniqueSessionId, waitFor } from "./support";

/*
 * The app's settings page (issue #24): an administrator opening the app's own page (PLACEMENT=DEFAULT) on a portal
 * the install opened sees the checklist, saves the CoMagic account through it, checks it, and sees the first
 * notification arrive; nobody else gets in, and no secret comes back to the browser. Its sixth step (issue #25) closes
 * the loop: deals into CoMagic, conversions into Yandex Metrica and GA4, a GA4 setting tried on the sandbox's
 * validation server before it is saved. gamma is the sandbox portal nothing set up (test/helpers/sandbox-global-setup.ts).
 */

const gamma = PORTALS.gamma;
const at = (path: string, body?: unknown) => fetch(`${gamma.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const tokensOn = async (userId: number): Promise<PortalTokens> => (await at("/_sandbox/bitrix/app/tokens", { userId })).json();
const query = (t: PortalTokens, lang = "en") => `?DOMAIN=${t.DOMAIN}&PROTOCOL=0&LANG=${lang}`;

/** The app's own page as Bitrix24 opens it from the left menu for `userId` (1: the administrator; 2: a manager). */
async function openApp(userId: number, lang = "en"): Promise<Response> {
  const t = await tokensOn(userId);
  return postForm("/bitrix/app", { ...installFields(t), PLACEMENT: "DEFAULT", PLACEMENT_OPTIONS: "{}" }, query(t, lang));
}

const tokenIn = (html: string) => /<input type="hidden" id="token" value="([^"]+)"/.exec(html)?.[1] ?? "";
const reportTokenIn = (html: string) => /<form id="open-report"[^>]*><input type="hidden" name="token" value="([^"]+)"/.exec(html)?.[1] ?? "";
const fieldIn = (html: string, id: string) => new RegExp(`id="${id}"[^>]*value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, "&") ?? "";

function action(path: string, body: Record<string, unknown>): Promise<Response> {
  return exports.default.fetch(
    new Request(`http://worker.test/bitrix/settings${path}?LANG=en`, {
      method: "POST",
      headers: { "content-type": "application/json", "cf-connecting-ip": "198.51.100.7" },
      body: JSON.stringify(body),
    }),
  );
}

let portal = "";
beforeAll(async () => {
  const t = await tokensOn(1);
  expect((await postForm("/bitrix/install", installFields(t), query(t))).status).toBe(200);
  portal = (await d1PortalSettings(env.DB as D1Database).byMember(gamma.memberId))?.portal ?? "";
  expect(portal).not.toBe("");
});

describe("the settings page", () => {
  it("shows an administrator the checklist: the portal's own notification address and script tag, and what waits", async () => {
    const response = await openApp(1);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-security-policy")).toContain(`frame-ancestors ${new URL(gamma.url).origin}`);
    const page = await response.text();
    expect(page).toContain("1. CoMagic account");
    expect(fieldIn(page, "notification-url")).toMatch(new RegExp(`^http://worker\\.test/webhooks/comagic/${portal}\\?token=[0-9a-f]{48}$`));
    expect(fieldIn(page, "script-tag")).toContain(`/s/${portal}.js`);
    expect(page).toContain("Waiting for the first call.");
    expect(page).toContain("This portal works with leads");
    expect(page).toContain("The CoMagic fields are on leads and deals (10).");
  });

  it("speaks Russian to a Russian-speaking administrator", async () => {
    const page = await (await openApp(1, "ru")).text();
    expect(page).toContain("1. Аккаунт CoMagic");
    expect(page).toContain("Ждём первого звонка.");
  });

  it("shows a manager who is not an administrator no settings", async () => {
    const response = await openApp(2);
    const page = await response.text();
    expect(page).not.toContain("1. CoMagic account");
    expect(page).not.toContain("/webhooks/comagic/");
  });

  it("saves a CoMagic account, checks it, and never sends the password back to the browser", async () => {
    const page = await (await openApp(1)).text();
    const token = tokenIn(page);
    const wrong = await (await action("/check-comagic", { token, platform: "local", settings: { COMAGIC_LOGIN: "sandbox", COMAGIC_PASSWORD: "not-the-password" } })).json();
    expect(wrong).toMatchObject({ ok: false });
    expect((wrong as { message: string }).message).toContain("auth_error");
    const right = await (await action("/check-comagic", { token, platform: "local", settings: { COMAGIC_LOGIN: "sandbox", COMAGIC_PASSWORD: "sandbox-password" } })).json();
    expect(right).toMatchObject({ ok: true });
    expect((right as { message: string }).message).toMatch(/^CoMagic answered: account «Sandbox shop \(sandbox\)», time zone Europe\/Moscow; Data API points left today: \d+\.$/);

    const saved = await action("/save", { token, platform: "local", settings: { COMAGIC_LOGIN: "sandbox", COMAGIC_PASSWORD: "sandbox-password", ALLOWED_ORIGINS: "https://gamma-shop.example" } });
    expect(saved.status).toBe(200);
    const stored = await d1PortalSettings(env.DB as D1Database).get(portal);
    expect(stored?.settings).toMatchObject({ COMAGIC_LOGIN: "sandbox", ALLOWED_ORIGINS: "https://gamma-shop.example", COMAGIC_DATA_API_URL: env.COMAGIC_DATA_API_URL });
    expect(JSON.stringify(stored)).not.toContain("sandbox-password");

    const again = await (await openApp(1)).text();
    expect(again).not.toContain("sandbox-password");
    expect(again).toContain("set, ends in …rd");
    expect(again).toMatch(/<section id="step-comagic"><h2>1\. CoMagic account <span class="state done">/);
  });

  it("lists CoMagic's employees with the Bitrix24 user of the same email chosen, and saves the administrator's choice as COMAGIC_EMPLOYEES", async () => {
    const page = await (await openApp(1)).text();
    // The sandbox's employees 25 (admin@…) and 26 (maria@…), and users 1 and 2 with those emails.
    expect(page).toMatch(/<select data-employee="25"[^>]*>.*<option value="1" selected>/s);
    expect(page).toMatch(/<select data-employee="26"[^>]*>.*<option value="2" selected>/s);
    expect(page).toContain('data-by="email"');
    const token = tokenIn(page);
    const twice = await action("/save", {
      token,
      employees: [
        { employeeId: "25", userId: "1" },
        { employeeId: "26", userId: "1" },
      ],
    });
    expect(twice.status).toBe(400);
    expect(JSON.stringify(await twice.json())).toContain("user 1 is chosen for two employees");
    const saved = await action("/save", {
      token,
      employees: [
        { employeeId: "25", userId: "2" },
        { employeeId: "26", userId: "1" },
      ],
      settings: { DEFAULT_RESPONSIBLE_ID: "1" },
    });
    expect(saved.status).toBe(200);
    expect((await d1PortalSettings(env.DB as D1Database).get(portal))?.settings).toMatchObject({ COMAGIC_EMPLOYEES: '{"1":26,"2":25}', DEFAULT_RESPONSIBLE_ID: "1" });
    // What was saved is what the page proposes next time.
    const again = await (await openApp(1)).text();
    expect(again).toMatch(/<select data-employee="25"[^>]*>.*<option value="2" selected>/s);
    expect(again).toContain('data-by="saved"');
  });

  it("makes CoMagic's sales funnels from the portal's pipelines once end-to-end analytics is connected, saying what to switch on before", async () => {
    // FACTS-loop §1.1: the account's admin connects end-to-end analytics («Другая CRM») first; §1.2: one funnel per pipeline.
    const deals = (body: unknown) => fetch(`${env.SANDBOX_URL}/_sandbox/comagic/deals/settings`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await deals({ endToEndAnalytics: false });
    const token = tokenIn(await (await openApp(1)).text());
    const off = (await (await action("/sales-funnels", { token })).json()) as { ok: boolean; message: string };
    expect(off.ok).toBe(false);
    expect(off.message).toContain("end-to-end analytics is not connected for this account");
    expect(off.message).toContain("«Другая CRM»");
    await deals({ endToEndAnalytics: true });
    try {
      const made = (await (await action("/sales-funnels", { token })).json()) as { ok: boolean; message: string };
      expect(made).toMatchObject({ ok: true });
      expect(made.message).toMatch(/«General»: funnel made\. «Wholesale»: funnel made\.|«General»: the funnel was there/);
      const again = (await (await action("/sales-funnels", { token })).json()) as { ok: boolean; message: string };
      expect(again.message).toBe("«General»: the funnel was there, nothing to add. «Wholesale»: the funnel was there, nothing to add.");
    } finally {
      await deals({ endToEndAnalytics: false });
    }
  });

  it("refuses a setting that does not validate, saying which and why, and keeps the old value", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const response = await action("/save", { token, settings: { COMAGIC_TIMEZONE: "Mars/Olympus" } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { problems: { setting: string; problem: string }[] };
    expect(body.problems).toContainEqual({ setting: "COMAGIC_TIMEZONE", problem: "is not an IANA time zone such as Europe/Moscow" });
    expect((await d1PortalSettings(env.DB as D1Database).get(portal))?.settings.COMAGIC_TIMEZONE).not.toBe("Mars/Olympus");
  });

  it("accepts no setting outside the page's own: not the portal's address, not a webhook", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const response = await action("/save", { token, settings: { BITRIX_PORTAL_URL: "https://evil.example", BITRIX_WEBHOOK_URL: "https://evil.example/rest/1/x/" } });
    expect(response.status).toBe(400);
    expect((await d1PortalSettings(env.DB as D1Database).get(portal))?.settings.BITRIX_PORTAL_URL).toBe(new URL(gamma.url).origin);
  });

  it("refuses a report token on the settings' actions, and a forged or missing token", async () => {
    const page = await (await openApp(1)).text();
    const report = reportTokenIn(page);
    expect(report.length).toBeGreaterThan(10);
    expect((await action("/save", { token: report, settings: { ALLOWED_ORIGINS: "https://x.example" } })).status).toBe(401);
    expect((await action("/save", { token: `${tokenIn(page)}x`, settings: {} })).status).toBe(401);
    expect((await action("/save", { settings: {} })).status).toBe(400);
  });

  it("checks a page only of a site the portal allows", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const response = await action("/check-page", { token, url: "http://169.254.169.254/latest/meta-data/" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ ok: false, message: "Only a page of a site listed above can be checked." });
  });

  it("shows when the first notification came to the portal's address", async () => {
    const url = fieldIn(await (await openApp(1)).text(), "notification-url");
    const phone = uniquePhone();
    const posted = await exports.default.fetch(
      new Request(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(makeCallSession({ id: uniqueSessionId(), visitor_phone_number: phone.local, file_link: null })),
      }),
    );
    expect(posted.status).toBe(202);
    const page = await waitFor(async () => {
      const html = await (await openApp(1)).text();
      return html.includes("Last notification received") ? html : null;
    }, "the last notification on the page");
    expect(page).toMatch(/<section id="step-notification"><h2>2\. [^<]+<span class="state done">/);
  });
});

describe("the settings page's sixth step: closing the loop", () => {
  const stored = async () => (await d1PortalSettings(env.DB as D1Database).get(portal)) ?? null;
  const ga4Sandbox = (path: string, body: unknown = {}) =>
    fetch(`${env.SANDBOX_URL}/_sandbox/ga4${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  beforeAll(async () => {
    // The operator's part (not the page's): the portal's GA4 validation server is the sandbox's.
    const put = await admin(`/portals/${portal}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ settings: { GA4_API_URL: env.SANDBOX_URL } }) });
    expect(put.status).toBe(200);
  });

  it("shows the step in English and in Russian, with what each moment is and what the GA4 check cannot see", async () => {
    const english = await (await openApp(1)).text();
    expect(english).toMatch(/<section id="step-loop"><h2>6\. Close the loop <span class="state todo">To do<\/span>/);
    expect(english).toContain("connects end-to-end analytics with the «Другая CRM» (Other CRM) integration");
    expect(english).toContain('id="make-funnels"');
    expect(english).toContain("«Qualified»: the lead moved to the status chosen below, or a deal made from it.");
    expect(english).toContain("«Won»: the deal won, with its amount as revenue.");
    expect(english).toContain("That server does not check the API secret");
    expect(english).toMatch(/<input type="checkbox" data-setting name="COMAGIC_DEALS" id="COMAGIC_DEALS">/);
    const russian = await (await openApp(1, "ru")).text();
    expect(russian).toMatch(/<section id="step-loop"><h2>6\. Продажи — обратно в аналитику <span class="state todo">Нужно сделать<\/span>/);
    expect(russian).toContain("«Другая CRM»");
    expect(russian).toContain("«Выиграна»: сделка выиграна, её сумма — доход.");
    expect(russian).toContain("Секрет API этот сервер не проверяет");
  });

  it("saves deals on, the currency and Metrica's counter, token, goals and lead status, and shows the token only by how it ends", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const loop = {
      COMAGIC_DEALS: "true",
      COMAGIC_CURRENCY: "USD",
      METRICA_COUNTER_ID: "2215573",
      METRICA_TOKEN: "sandbox-metrica-token",
      METRICA_GOAL_QUALIFIED: "lead_qualified",
      METRICA_GOAL_WON: "deal_won",
      QUALIFIED_LEAD_STATUS: "IN_PROCESS",
    };
    const saved = await action("/save", { token, settings: loop });
    expect(saved.status).toBe(200);
    const { METRICA_TOKEN: _token, ...plain } = loop;
    expect((await stored())?.settings).toMatchObject(plain);
    // The token is sealed at rest, and never comes back to the browser.
    expect(JSON.stringify(await stored())).not.toContain("sandbox-metrica-token");
    const page = await (await openApp(1)).text();
    expect(page).not.toContain("sandbox-metrica-token");
    expect(page).toMatch(/id="METRICA_TOKEN-hint">\(set, ends in …en\)/);
    expect(page).toMatch(/<section id="step-loop"><h2>6\. Close the loop <span class="state done">Done<\/span>/);
    expect(page).toContain('id="COMAGIC_DEALS" checked');
    expect(fieldIn(page, "METRICA_GOAL_WON")).toBe("deal_won");
    expect(fieldIn(page, "QUALIFIED_LEAD_STATUS")).toBe("IN_PROCESS");
    expect(page).toContain("Deals sent: 0, waiting: 0, refused by CoMagic: 0.");
    // Off again: the other tests' calls send no deal to CoMagic.
    expect((await action("/save", { token, settings: { COMAGIC_DEALS: "false", METRICA_COUNTER_ID: "" } })).status).toBe(200);
  });

  it("refuses a Metrica goal given as the goal's number, saying why, and keeps the old one", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const response = await action("/save", { token, settings: { METRICA_GOAL_WON: "312874562" } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { problems: { setting: string; problem: string }[] };
    expect(body.problems).toContainEqual({ setting: "METRICA_GOAL_WON", problem: "This looks like the goal's number: give the JavaScript-event goal's identifier (e.g. crm_won)" });
    expect((await stored())?.settings.METRICA_GOAL_WON).toBe("deal_won");
  });

  it("saves a GA4 setting the validation server accepts, its secret sealed and shown only by how it ends", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    const saved = await action("/save", { token, settings: { GA4_MEASUREMENT_ID: "g-sandbox000", GA4_API_SECRET: "sandbox-ga4-secret", GA4_EVENT_WON: "deal_won" } });
    expect(saved.status).toBe(200);
    expect((await stored())?.settings).toMatchObject({ GA4_MEASUREMENT_ID: "g-sandbox000", GA4_EVENT_WON: "deal_won" });
    expect(JSON.stringify(await stored())).not.toContain("sandbox-ga4-secret");
    const page = await (await openApp(1)).text();
    expect(page).not.toContain("sandbox-ga4-secret");
    expect(page).toMatch(/id="GA4_API_SECRET-hint">\(set, ends in …et\)/);
  });

  it("refuses a GA4 setting the validation server refuses, in its words, and saves nothing", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    // The sandbox refuses what GA4 refuses, and the settings' own schema refuses it all before: the request is broken on its way.
    const realFetch = globalThis.fetch;
    const validated: string[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.includes("/debug/mp/collect")) return realFetch(input, init);
      validated.push(url);
      const body = JSON.parse(String(init?.body)) as { events: { name: string }[] };
      body.events[0] = { name: "1st_lead" };
      return realFetch(url, { ...init, body: JSON.stringify(body) });
    });
    let response: Response;
    try {
      response = await action("/save", { token, settings: { GA4_EVENT_QUALIFIED: "lead_ok" } });
    } finally {
      spy.mockRestore();
    }
    // Once, at the portal's GA4_API_URL.
    expect(validated).toEqual([expect.stringMatching(new RegExp(`^${env.SANDBOX_URL}/debug/mp/collect\\?measurement_id=G-SANDBOX000&`))]);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      ok: false,
      problems: [
        {
          setting: "GA4",
          problem: "Google's validation server refused the sample event (NAME_INVALID): Event at index: [0] has invalid name [1st_lead]. Names must start with an alphabetic character.",
        },
      ],
    });
    expect((await stored())?.settings.GA4_EVENT_QUALIFIED).toBeUndefined();
  });

  it("refuses a GA4 setting while the validation server does not answer, saying to try again", async () => {
    const token = tokenIn(await (await openApp(1)).text());
    await ga4Sandbox("/fail", { times: 1, status: 503 });
    try {
      const response = await action("/save", { token, settings: { GA4_EVENT_QUALIFIED: "lead_ok" } });
      expect(response.status).toBe(400);
      expect(JSON.stringify(await response.json())).toContain("Google's validation server did not answer; nothing was saved, try again in a minute.");
      expect((await stored())?.settings.GA4_EVENT_QUALIFIED).toBeUndefined();
    } finally {
      await ga4Sandbox("/reset");
    }
  });
});

describe("the settings page of the default portal", () => {
  it("shows its env settings and saves nothing", async () => {
    const t = (await (
      await fetch(`${env.SANDBOX_URL}/_sandbox/bitrix/app/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: 1 }) })
    ).json()) as PortalTokens;
    expect((await postForm("/bitrix/install", installFields(t), query(t))).status).toBe(200);
    const page = await (await postForm("/bitrix/app", { ...installFields(t), PLACEMENT: "DEFAULT" }, query(t))).text();
    expect(page).toContain('id="env-portal"');
    // Its password is an env secret: the page says only how it ends.
    expect(page).not.toContain(env.COMAGIC_PASSWORD ?? "unset");
    expect(page).toContain("set, ends in …rd");
    // The loop's settings are shown, not changed.
    expect(page).toMatch(/<input type="checkbox" data-setting name="COMAGIC_DEALS" id="COMAGIC_DEALS" disabled>/);
    expect(page).toMatch(/id="METRICA_TOKEN-hint">\(not set\)/);
    expect(fieldIn(page, "notification-url")).toMatch(/^http:\/\/worker\.test\/webhooks\/comagic\?token=/);
    const response = await action("/save", { token: tokenIn(page), settings: { ALLOWED_ORIGINS: "https://x.example" } });
    expect(response.status).toBe(409);
  });
});

describe("the settings page of a portal without leads", () => {
  const delta = PORTALS.delta;
  const onDelta = (path: string, body?: unknown) =>
    fetch(`${delta.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  it("offers the portal's deal funnels and their stages, and a call then makes a deal in the funnel and stage chosen", async () => {
    // FACTS-portals §2: funnel 1's stages are C1:…; the sandbox has the general funnel and "Wholesale".
    await onDelta("/_sandbox/portal", { mode: 2 });
    const t = (await (await onDelta("/_sandbox/bitrix/app/tokens", { userId: 1 })).json()) as PortalTokens;
    expect((await postForm("/bitrix/install", installFields(t), query(t))).status).toBe(200);
    const page = await (await postForm("/bitrix/app", { ...installFields(t), PLACEMENT: "DEFAULT" }, query(t))).text();
    expect(page).toContain("This portal works without leads");
    expect(page).toMatch(/<select data-setting name="DEAL_CATEGORY_ID"[^>]*>.*<option value="1"[^>]*>Wholesale<\/option>/s);
    expect(page).toContain('<option value="C1:PREPARATION" data-funnel="1" hidden>');
    // Won and lost stages are no place for a new deal to start.
    expect(page).not.toContain('value="C1:WON"');
    // Without leads, a deal made is the "qualified" moment: no lead status to choose.
    expect(page).toContain("«Qualified»: a deal made (this portal works without leads).");
    expect(page).not.toContain('id="QUALIFIED_LEAD_STATUS"');
    const token = tokenIn(page);
    expect((await action("/save", { token, settings: { DEAL_CATEGORY_ID: "1", DEAL_STAGE_ID: "PREPARATION" } })).status).toBe(400);
    expect((await action("/save", { token, settings: { DEAL_CATEGORY_ID: "1", DEAL_STAGE_ID: "C1:PREPARATION" } })).status).toBe(200);

    const deltaPortal = (await d1PortalSettings(env.DB as D1Database).byMember(delta.memberId))?.portal ?? "";
    const url = fieldIn(page, "notification-url");
    expect(url).toContain(`/webhooks/comagic/${deltaPortal}?token=`);
    const phone = uniquePhone();
    const sessionId = uniqueSessionId();
    const posted = await exports.default.fetch(
      new Request(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(makeCallSession({ id: sessionId, visitor_phone_number: phone.local, file_link: null })),
      }),
    );
    expect(posted.status).toBe(202);
    const deal = await waitFor(async () => {
      const crm = (await (await onDelta("/_sandbox/crm")).json()) as { deals: Record<string, unknown>[] };
      return crm.deals.find((d) => d.UF_CRM_COMAGIC_ID === String(sessionId));
    }, "the deal on delta");
    expect(deal).toMatchObject({ CATEGORY_ID: "1", STAGE_ID: "C1:PREPARATION" });
  });
});
