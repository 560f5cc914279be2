import { describe, expect, it } from "vitest";
import { readConfig } from "../../worker/config";
import type { Env } from "../../worker/env";
import { createLogger } from "../../worker/log";

const queue = { send: async () => {}, sendBatch: async () => {} } as unknown as Env["LEAD_JOBS"];
const base: Env = {
  LEAD_JOBS: queue,
  DEAD_LETTERS: queue,
  BITRIX_WEBHOOK_URL: "https://portal.bitrix24.ru/rest/1/abc123secret",
  COMAGIC_WEBHOOK_TOKEN: "tok1, tok2",
  COMAGIC_WEBHOOK_SECRET: "sec",
  ALLOWED_ORIGINS: "https://shop.example.ru",
  FORM_RATE_LIMITER: { limit: async () => ({ success: true }) },
  COMAGIC_LOGIN: "user",
  COMAGIC_PASSWORD: "secret-password",
  ADMIN_TOKEN: "admin-token-0123456789abcdef0123456789",
  ADMIN_RATE_LIMITER: { limit: async () => ({ success: true }) },
  REPORT_RATE_LIMITER: { limit: async () => ({ success: true }) },
  ENRICH_JOBS: queue,
  COMAGIC_CACHE: {} as KVNamespace,
  DB: {} as D1Database,
  BITRIX_APP_CLIENT_ID: "local.app",
  BITRIX_APP_CLIENT_SECRET: "app-secret",
  COMAGIC_VIRTUAL_NUMBER: "+7 (499) 372-06-92",
  COMAGIC_EMPLOYEES: '{"1": 25, "7": "26"}',
  CALL_RATE_LIMITER: { limit: async () => ({ success: true }) },
  APP_RATE_LIMITER: { limit: async () => ({ success: true }) },
  TAB_TOKEN_SECRET: "tab-token-key-0123456789abcdef0123456789",
  SETTINGS_KEY: "dGVzdC1zZXR0aW5ncy1rZXktMzItYnl0ZXMtbG9uZyE=",
};

const PLAIN_HTTP = 'must be https:// (plain http only to 127.0.0.1 or localhost, and only with ALLOW_LOOPBACK_HTTP="true", for a local sandbox)';

describe("readConfig", () => {
  it("applies defaults and splits rotated secrets", () => {
    const result = readConfig(base);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      BITRIX_WEBHOOK_URL: "https://portal.bitrix24.ru/rest/1/abc123secret/",
      COMAGIC_WEBHOOK_TOKEN: ["tok1", "tok2"],
      DEFAULT_PHONE_REGION: "RU",
      LEAD_DEDUP_DAYS: 30,
      MIN_LOST_CALL_SECONDS: 10,
    });
    expect(result.warnings).toEqual([]);
  });

  it.each([
    ["BITRIX_WEBHOOK_URL", { BITRIX_WEBHOOK_URL: undefined }, "is not set, and the portal is not reached through the app (install the app on it, or set a webhook URL)"],
    // A portal address without the app install (member_id) that proves it is not enough to reach a portal.
    [
      "BITRIX_WEBHOOK_URL",
      { BITRIX_WEBHOOK_URL: undefined, BITRIX_PORTAL_URL: "https://shop.bitrix24.ru" },
      "is not set, and the portal is not reached through the app (install the app on it, or set a webhook URL)",
    ],
    ["BITRIX_PORTAL_URL", { BITRIX_PORTAL_URL: "http://shop.bitrix24.ru" }, PLAIN_HTTP],
    // A webhook of another portal than the install's would send this portal's leads there.
    ["BITRIX_WEBHOOK_URL", { BITRIX_PORTAL_URL: "https://other.bitrix24.ru" }, "is on another Bitrix24 portal than the one the app was installed on (BITRIX_PORTAL_URL)"],
    // FACTS-portals §2: funnel 1's stages are C1:…; a stage of another funnel would be dropped by Bitrix24.
    ["DEAL_STAGE_ID", { DEAL_CATEGORY_ID: "1", DEAL_STAGE_ID: "PREPARATION" }, "is a stage of another funnel than DEAL_CATEGORY_ID (1)"],
    ["DEAL_STAGE_ID", { DEAL_STAGE_ID: "C2:NEW" }, "is a stage of another funnel than DEAL_CATEGORY_ID (0)"],
    ["BITRIX_WEBHOOK_URL", { BITRIX_WEBHOOK_URL: "https://portal.bitrix24.ru/crm/" }, "must end with /rest/<user id>/<webhook code>/"],
    ["BITRIX_WEBHOOK_URL", { BITRIX_WEBHOOK_URL: "ftp://x/rest/1/a/" }, "is not an http(s) URL"],
    // Security: the webhook code, tokens and passwords never travel in the clear, except to a local sandbox.
    ["BITRIX_WEBHOOK_URL", { BITRIX_WEBHOOK_URL: "http://portal.bitrix24.ru/rest/1/abc123secret/" }, PLAIN_HTTP],
    ["COMAGIC_DATA_API_URL", { COMAGIC_DATA_API_URL: "http://dataapi.comagic.ru/v2.0" }, PLAIN_HTTP],
    ["COMAGIC_CALL_API_URL", { COMAGIC_CALL_API_URL: "http://callapi.comagic.ru/v4.0" }, PLAIN_HTTP],
    ["BITRIX_OAUTH_URL", { BITRIX_OAUTH_URL: "http://oauth.bitrix.info/oauth/token/" }, PLAIN_HTTP],
    ["COMAGIC_WEBHOOK_TOKEN", { COMAGIC_WEBHOOK_TOKEN: "", COMAGIC_WEBHOOK_SECRET: "  " }, "neither COMAGIC_WEBHOOK_TOKEN nor COMAGIC_WEBHOOK_SECRET is set, so every webhook is refused"],
    ["COMAGIC_WEBHOOK_TOKEN", { COMAGIC_WEBHOOK_TOKEN: " , ," }, "has no non-empty value"],
    ["DEFAULT_PHONE_REGION", { DEFAULT_PHONE_REGION: "XX" }, "is not an ISO 3166 region code known to libphonenumber"],
    ["LEAD_DEDUP_DAYS", { LEAD_DEDUP_DAYS: "-1" }, "Too small: expected number to be >0"],
    ["LEAD_JOBS", { LEAD_JOBS: undefined }, "queue binding is missing"],
    // Plain http to this machine only where ALLOW_LOOPBACK_HTTP says it is a local sandbox, never by default.
    ["BITRIX_WEBHOOK_URL", { BITRIX_WEBHOOK_URL: "http://127.0.0.1:8790/rest/1/abc123secret/" }, PLAIN_HTTP],
    ["BITRIX_OAUTH_URL", { BITRIX_OAUTH_URL: "http://localhost:8790/oauth/token/" }, PLAIN_HTTP],
    ["BITRIX_OAUTH_URL", { BITRIX_OAUTH_URL: "http://oauth.bitrix.info/oauth/token/", ALLOW_LOOPBACK_HTTP: "true" }, PLAIN_HTTP],
  ])("names %s when it is wrong, never its value", (setting, overrides, problem) => {
    const result = readConfig({ ...base, ...overrides } as Env);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toContainEqual({ setting, problem });
    expect(JSON.stringify(result)).not.toContain("abc123secret");
  });

  it("warns, without failing, when the website-form settings are missing or wrong", () => {
    for (const [overrides, setting] of [
      [{ ALLOWED_ORIGINS: undefined }, "ALLOWED_ORIGINS"],
      [{ ALLOWED_ORIGINS: "shop.example.ru" }, "ALLOWED_ORIGINS"],
      [{ FORM_RATE_LIMITER: undefined }, "FORM_RATE_LIMITER"],
    ] as const) {
      const result = readConfig({ ...base, ...overrides });
      expect(result.ok).toBe(true);
      expect(result.warnings.map((w) => w.setting)).toEqual([setting]);
    }
  });

  it.each([
    [{ COMAGIC_LOGIN: undefined, COMAGIC_PASSWORD: undefined }, "COMAGIC_API_TOKEN", "neither COMAGIC_API_TOKEN nor COMAGIC_LOGIN/COMAGIC_PASSWORD is set"],
    [{ COMAGIC_LOGIN: undefined, COMAGIC_PASSWORD: undefined }, "COMAGIC_API_TOKEN", "attribution is limited to what the notification template sends"],
    [{ COMAGIC_PASSWORD: undefined }, "COMAGIC_API_TOKEN", "COMAGIC_PASSWORD is not set"],
    [{ ADMIN_TOKEN: undefined }, "ADMIN_TOKEN", "is not set: the /admin routes are off"],
    [{ ADMIN_TOKEN: "admin-token-0123456789abcdef0123456789,short" }, "ADMIN_TOKEN", "has a value shorter than 32 characters"],
    [{ ADMIN_RATE_LIMITER: undefined }, "ADMIN_RATE_LIMITER", "nothing stops a stranger guessing ADMIN_TOKEN"],
    [{ DB: undefined }, "DB", "binding is missing: dead letters and the applied-events ledger off"],
    [{ BITRIX_APP_CLIENT_SECRET: undefined }, "BITRIX_APP_CLIENT_SECRET", "the Bitrix24 app (CoMagic tab, click-to-call) is off"],
    [{ COMAGIC_VIRTUAL_NUMBER: undefined }, "COMAGIC_VIRTUAL_NUMBER", "the tab's Call button is off"],
    [{ COMAGIC_EMPLOYEES: "[1,2]" }, "COMAGIC_EMPLOYEES", "users are matched by email instead"],
    [{ CALL_RATE_LIMITER: undefined }, "CALL_RATE_LIMITER", "binding is missing"],
    [{ SETTINGS_KEY: undefined }, "SETTINGS_KEY", "the app's OAuth tokens are stored in the clear"],
    [{ SETTINGS_KEY: "c2hvcnQ=" }, "SETTINGS_KEY", "openssl rand -base64 32"],
  ])("warns, without failing, about optional CoMagic and admin settings (%o)", (overrides, setting, problem) => {
    const result = readConfig({ ...base, ...overrides } as Env);
    expect(result.ok).toBe(true);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]?.setting).toBe(setting);
    expect(result.warnings[0]?.problem).toContain(problem);
    expect(JSON.stringify(result.warnings)).not.toContain("secret-password");
  });

  it("accepts the local sandboxes' plain-http URLs with ALLOW_LOOPBACK_HTTP", () => {
    const result = readConfig({ ...base, BITRIX_WEBHOOK_URL: "http://127.0.0.1:8790/rest/1/abc/", BITRIX_OAUTH_URL: "http://localhost:8790/oauth/token/", ALLOW_LOOPBACK_HTTP: "true" });
    expect(result.ok).toBe(true);
  });

  it("reads the virtual number as E.164 digits and the employee map as numbers", () => {
    const result = readConfig(base);
    expect(result.ok && result.config.COMAGIC_VIRTUAL_NUMBER).toBe("74993720692");
    expect(result.ok && result.config.COMAGIC_EMPLOYEES).toEqual({ "1": 25, "7": 26 });
  });

  it("refuses a time zone it does not know", () => {
    const result = readConfig({ ...base, COMAGIC_TIMEZONE: "Moscow" });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toContainEqual({ setting: "COMAGIC_TIMEZONE", problem: "is not an IANA time zone such as Europe/Moscow" });
  });

  it("turns a conversion goal off with `off`, keeps the default when unset, and refuses a goal's number", () => {
    // Issue #25 §3: a goal's JavaScript-event identifier (FACTS-loop §3.2), never its number; empty is unset.
    const off = readConfig({ ...base, METRICA_GOAL_WON: "off", GA4_EVENT_QUALIFIED: "OFF" } as Env);
    expect(off.ok && [off.config.METRICA_GOAL_WON, off.config.METRICA_GOAL_QUALIFIED, off.config.GA4_EVENT_QUALIFIED]).toEqual([null, "crm_qualified", null]);
    const number = readConfig({ ...base, METRICA_GOAL_WON: "318492" } as Env);
    expect(!number.ok && number.problems.map((p) => p.setting)).toEqual(["METRICA_GOAL_WON"]);
  });

  it("warns when only one of the two webhook checks is configured", () => {
    const result = readConfig({ ...base, COMAGIC_WEBHOOK_SECRET: undefined });
    expect(result.ok).toBe(true);
    expect(result.warnings.map((w) => w.setting)).toEqual(["COMAGIC_WEBHOOK_SECRET"]);
  });
});

describe("createLogger", () => {
  it("writes one JSON object a line, masking phones and hiding secrets", () => {
    const lines: string[] = [];
    const log = createLogger({ requestId: "r1" }, (line) => lines.push(line)).child({ phone: "+79123456789" });
    log.info("lead.created", { leadId: 5, accessToken: "abc", webhookSecret: "s" });
    expect(JSON.parse(lines[0] ?? "")).toEqual({ level: "info", event: "lead.created", requestId: "r1", phone: "+7912*****89", leadId: 5, accessToken: "[redacted]", webhookSecret: "[redacted]" });
  });
});
