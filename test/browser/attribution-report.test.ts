import { readFileSync, rmSync } from "node:fs";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installSandboxApp, sandboxWorkerVars, startLocalWorker, type LocalWorker } from "../../sandbox/local-worker";
import { startSandbox, type RunningSandbox } from "../../sandbox/server";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { chromiumPath, launchChromium } from "../helpers/chromium";
import { waitFor } from "../helpers/wait-for";

/*
 * The attribution report as a marketer opens it from CRM Analytics: the sandbox portal posts the app page into
 * an iframe (FACTS-portals §10), the worker under wrangler dev renders it from D1. Seeded: three leads from
 * forms, one converted into a won deal of 120,000 ₽ and one into a won deal of US$200,000; CoMagic's ad cost for
 * yesterday.
 */

let sandbox: RunningSandbox;
let worker: LocalWorker;
let browser: Browser;
const stateDir = `.wrangler/browser-report-${process.pid}`;
const DAY = 86_400_000;
const at = (daysAgo: number) => formatComagicDateTime(new Date(Date.now() - daysAgo * DAY), "Europe/Moscow");
const yesterday = at(1).slice(0, 10);

async function post(path: string, body: unknown, base = sandbox.url, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
}

const session = (id: number, visitor: number, daysAgo: number, source: string, campaign: number) => ({
  id,
  date_time: at(daysAgo),
  visitor_id: visitor,
  channel: "Контекстная реклама",
  source_name: source,
  utm_source: source,
  utm_medium: "cpc",
  utm_campaign: `${source}_sofas`,
  referrer: null,
  entrance_page: "https://shop.example.ru/",
  campaign_id: campaign,
  campaign_name: `Диваны ${source}`,
  site_id: 77,
});

describe.skipIf(!chromiumPath)("the attribution report in CRM Analytics, in Chromium", () => {
  let wonLeadId = "";
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    worker = await startLocalWorker({
      vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: "browser-test", ALLOWED_ORIGINS: "https://shop.example.ru", ENRICH_DELAY_SECONDS: "1" }),
      stateDir,
      output: "ignore",
    });
    await installSandboxApp(sandbox, worker.url);
    await post("/_sandbox/comagic/data", {
      visitor_sessions: [session(11, 5_100_001, 6, "google", 501), session(12, 5_100_001, 2, "yandex", 502), session(21, 5_100_002, 3, "yandex", 502), session(31, 5_100_003, 4, "bing", 503)],
      campaign_daily_stat: [
        { date: yesterday, site_id: 77, campaign_id: 501, campaign_name: "Диваны google", cost_sum: "2000", currency: "RUB" },
        { date: yesterday, site_id: 77, campaign_id: 502, campaign_name: "Диваны yandex", cost_sum: "6000", currency: "RUB" },
      ],
    });
    for (const [visitor, phone] of [
      [5_100_001, "+79125550001"],
      [5_100_002, "+79125550002"],
      [5_100_003, "+79125550003"],
    ] as const) {
      const res = await post("/forms", { name: "Client", phone, comagic_visitor_id: String(visitor), form_name: "Sofa", page_url: "https://shop.example.ru/" }, worker.url, {
        origin: "https://shop.example.ru",
      });
      expect(res.status).toBe(202);
    }
    const leads = await waitFor(async () => {
      const all = (await (await fetch(`${sandbox.url}/_sandbox/leads`)).json()) as { ID: number; UF_CRM_CM_VISITOR_ID: string; UF_CRM_CM_SESSIONS: string }[];
      const enriched = all.filter((l) => l.UF_CRM_CM_SESSIONS !== "" && l.UF_CRM_CM_SESSIONS !== undefined && l.UF_CRM_CM_SESSIONS !== null);
      return enriched.length === 3 ? all : null;
    }, "three enriched leads");
    wonLeadId = String(leads.find((l) => l.UF_CRM_CM_VISITOR_ID === "5100001")?.ID);
    await post("/_sandbox/deals", { fields: { TITLE: "Sofa", STAGE_ID: "WON", OPPORTUNITY: "120000", CURRENCY_ID: "RUB" }, fromLead: wonLeadId });
    const dollarLeadId = String(leads.find((l) => l.UF_CRM_CM_VISITOR_ID === "5100003")?.ID);
    await post("/_sandbox/deals", { fields: { TITLE: "Sofa export", STAGE_ID: "WON", OPPORTUNITY: "200000", CURRENCY_ID: "USD" }, fromLead: dollarLeadId });
    // Credits are written right after the lead's fields; give the last batch a moment.
    await new Promise((r) => setTimeout(r, 1500));
    browser = await launchChromium();
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await sandbox?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("refreshes, switches model and period, sorts by revenue within a currency, and exports the table as CSV", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 }, acceptDownloads: true });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Every address the page asks for: none may carry the report token (logs, history).
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));
    await page.goto(`${sandbox.url}/_sandbox/app?user=1&lang=en`);
    const app = page.frameLocator("#app");
    /** Clicks what reloads the report's frame, and waits for the new page. */
    const reloadBy = async (selector: string) => {
      await Promise.all([page.waitForEvent("framenavigated", { predicate: (f) => f.name() === "app", timeout: 20_000 }), app.locator(selector).click()]);
      await app.locator("#apply").waitFor();
    };
    await app.locator("#refresh").waitFor({ timeout: 20_000 });
    await reloadBy("#refresh");

    await app.locator("#grouping").selectOption("comagic_campaign");
    await app.locator("#model").selectOption("first_touch");
    await app.locator("#period").selectOption("7d");
    await reloadBy("#apply");
    const rows = async () => app.locator("#report tbody tr").evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td"), (td) => (td.textContent ?? "").replace(/\u00a0/g, " "))));
    const firstTouch = await rows();
    // First touch: lead 1 to Google's campaign (its won deal too), lead 2 to Yandex's.
    expect(firstTouch.find((r) => r[0] === "Диваны google")?.slice(0, 5)).toEqual(["Диваны google", "1", "1", "1", "RUB 120,000"]);
    expect(firstTouch.find((r) => r[0] === "Диваны yandex")?.slice(0, 5)).toEqual(["Диваны yandex", "1", "0", "0", "0"]);
    expect(firstTouch.find((r) => r[0] === "Диваны google")?.[7]).toBe("RUB 2,000");
    expect(firstTouch.find((r) => r[0] === "Диваны bing")?.slice(0, 5)).toEqual(["Диваны bing", "1", "1", "1", "US$200,000"]);
    // Each currency has a chart of its own: the dollars are not drawn as "RUB 0".
    expect(await app.locator('svg.chart[data-currency="USD"] text.label').allTextContents()).toEqual(["Диваны bing"]);

    // Sorting by revenue compares amounts within a currency: roubles (most first), then dollars, whatever the amounts.
    const revenueHeader = app.locator("#report thead th").nth(4);
    await revenueHeader.click();
    expect((await rows()).map((r) => r[0])).toEqual(["Диваны google", "Диваны yandex", "Диваны bing"]);
    await revenueHeader.click();
    expect((await rows()).map((r) => r[0])).toEqual(["Диваны yandex", "Диваны google", "Диваны bing"]);

    await app.locator("#model").selectOption("linear");
    await reloadBy("#apply");
    const linear = await rows();
    expect(linear.find((r) => r[0] === "Диваны yandex")?.slice(0, 5)).toEqual(["Диваны yandex", "1.5", "0.5", "0.5", "RUB 60,000"]);
    await page.screenshot({ path: `${stateDir}/../report-linear.png`, fullPage: true });

    const [download] = await Promise.all([page.waitForEvent("download"), app.locator("#export").click()]);
    // Fetched by the page's script with the token in the body, and saved from a Blob.
    expect(download.url()).toMatch(/^blob:/);
    expect(download.suggestedFilename()).toMatch(/^comagic-attribution-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = readFileSync(await download.path(), "utf8");
    expect(csv.charCodeAt(0)).toBe(0xfeff);
    const csvRows = csv
      .slice(1)
      .trim()
      .split("\r\n")
      .slice(1, -1)
      .map((line) => line.replace(/\u00a0/g, " "));
    expect(csvRows.find((l) => l.startsWith("Диваны yandex"))).toBe('Диваны yandex,1.5,0.5,0.5,"RUB 60,000",33.3%,100%,"RUB 6,000","RUB 4,000","RUB 12,000",900%');

    // Last month holds none of these leads.
    await app.locator("#period").selectOption("last_month");
    await reloadBy("#apply");
    expect(await app.locator("#report").count()).toBe(0);
    const token = await app.locator('input[name="token"]').inputValue();
    expect(token.length).toBeGreaterThan(20);
    expect(urls.filter((u) => u.includes("token"))).toEqual([]);
    expect(errors).toEqual([]);
  });
});
