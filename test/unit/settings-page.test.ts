import { describe, expect, it } from "vitest";
import { createGa4Sandbox, SANDBOX_GA4 } from "../../sandbox/ga4";
import { checkGa4, type Ga4Check, ga4CheckOf, pageHasSnippet, platformOf, secretHint, settingsOfChange } from "../../worker/bitrix-app/settings";
import { settingsMessages } from "../../worker/i18n/settings";
import { NOTIFICATION_BODY } from "../../worker/routes/bitrix-settings-page";
import template from "../../docs/comagic-call-notification.template?raw";

/*
 * The settings page's rules (issues #24, #25): what a change writes, how a secret is shown, whether a site has the tag,
 * and when and how a GA4 setting is tried on the validation server before it is saved (the sandbox's, sandbox/ga4.ts).
 */

const WORKER = "https://worker.example.workers.dev";
const m = settingsMessages("en");

describe("a change from the settings page", () => {
  it("keeps a stored secret when its field is left empty, and removes a plain setting that is emptied", () => {
    expect(settingsOfChange({ settings: { COMAGIC_PASSWORD: "", COMAGIC_API_TOKEN: "", ALLOWED_ORIGINS: "", COMAGIC_LOGIN: "api" } }, null)).toEqual({ ALLOWED_ORIGINS: null, COMAGIC_LOGIN: "api" });
  });

  it("keeps the Metrica token and the GA4 secret when their fields are left empty", () => {
    expect(settingsOfChange({ settings: { METRICA_TOKEN: "", GA4_API_SECRET: "", METRICA_COUNTER_ID: "2215573", COMAGIC_DEALS: "true" } }, null)).toEqual({
      METRICA_COUNTER_ID: "2215573",
      COMAGIC_DEALS: "true",
    });
  });

  it("sets both API addresses from the platform, and the local sandbox only when the deployment has one", () => {
    expect(settingsOfChange({ platform: "uis", settings: {} }, null)).toEqual({ COMAGIC_DATA_API_URL: "https://dataapi.uiscom.ru/v2.0", COMAGIC_CALL_API_URL: "https://callapi.uiscom.ru/v4.0" });
    expect(settingsOfChange({ platform: "local", settings: {} }, null)).toEqual({});
    expect(settingsOfChange({ platform: "local", settings: {} }, { data: "http://127.0.0.1:1/d", call: "http://127.0.0.1:1/c" })).toEqual({
      COMAGIC_DATA_API_URL: "http://127.0.0.1:1/d",
      COMAGIC_CALL_API_URL: "http://127.0.0.1:1/c",
    });
    expect(platformOf("https://dataapi.callgear.com/v2.0", null)).toBe("callgear");
    expect(platformOf("https://proxy.example/v2.0", null)).toBe("custom");
  });

  it("shows a secret by its last two characters only", () => {
    expect(secretHint("0123456789abcdef7f", m)).toBe("set, ends in …7f");
    expect(secretHint(undefined, m)).toBe("not set");
    // A short secret would be half given away by two characters.
    expect(secretHint("abc", m)).toBe("set, ends in …");
  });
});

describe("a page of the site", () => {
  it("has the snippet when a script loads this portal's /s/<key>.js from this worker", () => {
    expect(pageHasSnippet(`<script src="${WORKER}/s/shop-msk.js" async></script>`, WORKER, "shop-msk", false)).toBe(true);
    expect(pageHasSnippet(`<script async src='${WORKER}/s/shop-msk.js?v=2'></script>`, WORKER, "shop-msk", false)).toBe(true);
  });

  it("does not have it with another portal's tag, another worker's, or the tag in a comment's text only", () => {
    expect(pageHasSnippet(`<script src="${WORKER}/s/other.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="https://evil.example/s/shop-msk.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<p>${WORKER}/s/shop-msk.js</p>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="${WORKER}/snippet.js"></script>`, WORKER, "shop-msk", false)).toBe(false);
    expect(pageHasSnippet(`<script src="${WORKER}/snippet.js"></script>`, WORKER, "default", true)).toBe(true);
  });
});

describe("the notification body the page shows", () => {
  it("is the template the docs ship", () => {
    expect(NOTIFICATION_BODY).toBe(template);
  });
});

describe("a GA4 setting changed on the page", () => {
  const saved = { GA4_MEASUREMENT_ID: "G-SANDBOX000", GA4_API_SECRET: "sandbox-ga4-secret", GA4_EVENT_QUALIFIED: "crm_qualified", GA4_EVENT_WON: "crm_won" };
  const off = { GA4_MEASUREMENT_ID: undefined, GA4_API_SECRET: undefined, GA4_EVENT_QUALIFIED: "crm_qualified", GA4_EVENT_WON: "crm_won" };

  it("is checked as the save would leave it: GA4 turned on, or an id, a secret or an event name changed", () => {
    expect(ga4CheckOf({ GA4_MEASUREMENT_ID: "g-sandbox000", GA4_API_SECRET: "s3cret" }, off)).toEqual({
      measurementId: "G-SANDBOX000",
      apiSecret: "s3cret",
      names: { qualified: "crm_qualified", won: "crm_won" },
    });
    expect(ga4CheckOf({ GA4_EVENT_WON: "deal_won" }, saved)).toMatchObject({ apiSecret: "sandbox-ga4-secret", names: { qualified: "crm_qualified", won: "deal_won" } });
    // An emptied name falls back to its default, which needs no check: the sample carries the other one.
    expect(ga4CheckOf({ GA4_EVENT_QUALIFIED: null, GA4_EVENT_WON: "deal_won" }, saved)).toMatchObject({ names: { qualified: null, won: "deal_won" } });
  });

  it.each([
    ["nothing of GA4 changed", {}, saved],
    ["the page sent the saved values again", { GA4_MEASUREMENT_ID: "G-SANDBOX000", GA4_EVENT_QUALIFIED: "crm_qualified", GA4_EVENT_WON: "crm_won" }, saved],
    ["GA4 stays off (no secret)", { GA4_MEASUREMENT_ID: "G-SANDBOX000" }, off],
    ["GA4 is turned off (the id emptied)", { GA4_MEASUREMENT_ID: null }, saved],
    ["the id is no measurement ID (the settings' schema names it)", { GA4_MEASUREMENT_ID: "1234567" }, saved],
    ["an event name is reserved (the settings' schema names it)", { GA4_EVENT_WON: "session_start" }, saved],
    ["both names are emptied (their defaults are valid)", { GA4_EVENT_QUALIFIED: null, GA4_EVENT_WON: null }, saved],
  ])("is not sent to Google when %s", (_, change, current) => {
    expect(ga4CheckOf(change, current)).toBeNull();
  });
});

describe("GA4's validation server, asked before a save", () => {
  const NOW = Date.parse("2026-12-10T12:00:00Z");
  const check: Ga4Check = { measurementId: SANDBOX_GA4.measurementId, apiSecret: "any-secret", names: { qualified: "crm_qualified", won: "deal_won" } };
  /** The sandbox's GA4 as `fetch`; `change` alters each request's body on its way (to break it). */
  function ga4(change: (body: { events: { name: string }[] }) => void = () => {}) {
    const { app } = createGa4Sandbox({ now: () => NOW });
    const control = (path: string, body: unknown) => app.request(`/_sandbox/ga4${path}`, { method: "POST", body: JSON.stringify(body) });
    const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const body = JSON.parse(String(init?.body));
      change(body);
      return app.request(String(input), { ...init, body: JSON.stringify(body) });
    }) as typeof globalThis.fetch;
    return { fetch, control, deps: { baseUrl: "https://ga4.sandbox.test", now: NOW, fetch } };
  }

  it("lets a valid setting through, whatever its secret: the server does not check it", async () => {
    expect(await checkGa4(check, ga4().deps, m)).toEqual([]);
  });

  it("refuses with the server's words what it refuses (here a request broken on its way)", async () => {
    const broken = ga4((body) => {
      body.events[0] = { name: "1st_lead" };
    });
    expect(await checkGa4(check, broken.deps, m)).toEqual([
      {
        setting: "GA4",
        problem: "Google's validation server refused the sample event (NAME_INVALID): Event at index: [0] has invalid name [1st_lead]. Names must start with an alphabetic character.",
      },
    ]);
  });

  it("refuses a secret of a shape Google never makes, without its value, and says so when the server does not answer", async () => {
    const spaced = await checkGa4({ ...check, apiSecret: "two words" }, ga4().deps, m);
    expect(spaced).toEqual([{ setting: "GA4_API_SECRET", problem: "An API secret has no spaces" }]);
    const down = ga4();
    await down.control("/fail", { times: 1, status: 503 });
    expect(await checkGa4(check, down.deps, m)).toEqual([{ setting: "GA4", problem: "Google's validation server did not answer; nothing was saved, try again in a minute." }]);
    // The outage was one answer: the next check goes through.
    expect(await checkGa4(check, down.deps, m)).toEqual([]);
  });
});
