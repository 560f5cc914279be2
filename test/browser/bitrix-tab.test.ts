import { mkdirSync, rmSync } from "node:fs";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installSandboxApp, sandboxWorkerVars, startLocalWorker, type LocalWorker } from "../../sandbox/local-worker";
import { startSandbox, type RunningSandbox } from "../../sandbox/server";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { chromiumPath, launchChromium } from "../helpers/chromium";

/*
 * The CoMagic tab as a sales manager sees it: the sandbox's lead card posts the placement form into an
 * iframe (as Bitrix24 does), the worker under wrangler dev verifies it and renders the tab.
 */

let sandbox: RunningSandbox;
let worker: LocalWorker;
let browser: Browser;
const stateDir = `.wrangler/browser-tab-${process.pid}`;
const VISITOR = 4_242_000;

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${sandbox.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** The id of the lead the worker wrote and enriched with this visitor (its sessions filled). */
async function waitForEnrichedLead(visitorId: number): Promise<number> {
  for (const started = Date.now(); Date.now() - started < 30_000; await new Promise((r) => setTimeout(r, 250))) {
    const leads = (await (await fetch(`${sandbox.url}/_sandbox/leads`)).json()) as { ID: number; UF_CRM_CM_VISITOR_ID?: string; UF_CRM_CM_SESSIONS?: string }[];
    const lead = leads.find((l) => l.UF_CRM_CM_VISITOR_ID === String(visitorId) && l.UF_CRM_CM_SESSIONS);
    if (lead) return lead.ID;
  }
  throw new Error(`no enriched lead of visitor ${visitorId}`);
}

describe.skipIf(!chromiumPath)("the CoMagic tab in a lead card, in Chromium", () => {
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    worker = await startLocalWorker({ vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: "browser-test", ENRICH_DELAY_SECONDS: "1" }), stateDir, output: "ignore" });
    await installSandboxApp(sandbox, worker.url);
    const day = 86_400_000;
    const at = (daysAgo: number) => formatComagicDateTime(new Date(Date.now() - daysAgo * day), "Europe/Moscow");
    await post("/_sandbox/comagic/data", {
      visitor_sessions: [
        {
          id: 1,
          date_time: at(9),
          visitor_id: VISITOR,
          channel: "paid",
          utm_source: "yandex",
          utm_medium: "cpc",
          utm_campaign: "sofas",
          referrer: "https://yandex.ru/",
          entrance_page: "https://shop.example.ru/sofas",
        },
        { id: 2, date_time: at(4), visitor_id: VISITOR, channel: "organic", referrer: "https://www.google.com/", entrance_page: "https://shop.example.ru/" },
        { id: 3, date_time: at(1), visitor_id: VISITOR, channel: "direct", entrance_page: "https://shop.example.ru/sofas/green" },
      ],
      communications: [{ id: 9001, communication_type: "call", date_time: at(1), visitor_id: VISITOR, visitor_session_id: 3 }],
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await sandbox?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("shows the journey and the attribution table, and Call starts exactly one CoMagic call", async () => {
    // The lead comes from a CoMagic call, as in production: the tab shows only a visitor the worker itself wrote.
    const notification = { event_type: "call_session_completed", call_session: { id: 5_550_001, visitor_phone_number: "8 (912) 555-44-33", visitor_id: String(VISITOR) } };
    const sent = await fetch(`${worker.url}/webhooks/comagic?token=browser-test`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(notification) });
    expect(sent.status).toBe(202);
    const id = await waitForEnrichedLead(VISITOR);
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

    await page.goto(`${sandbox.url}/_sandbox/lead-card/${id}?user=2`);
    const tab = page.frameLocator("#tab");
    await tab.locator("#attribution").waitFor({ timeout: 20_000 });
    expect(await tab.locator("ol.journey li.session").count()).toBe(3);
    expect(await tab.locator("ol.journey li.contact").count()).toBe(1);
    const rows = await tab.locator("#attribution tbody tr").allInnerTexts();
    expect(rows.map((r) => r.split("\t")[0])).toEqual(["yandex / cpc", "organic", "direct"]);
    // First touch credits the ad, last non-direct the organic visit.
    expect(rows[0]?.split("\t").slice(1, 4)).toEqual(["100%", "0%", "0%"]);
    expect(rows[1]?.split("\t")[3]).toBe("100%");

    // The button shows the exact number; the first click asks, the second calls. The sandbox card sends
    // LANG=ru, as a Russian portal does (FACTS-portals §10), so the manager reads Russian.
    expect(await tab.locator("#call").textContent()).toBe("Позвонить +79125554433");
    await tab.locator("#call").click();
    expect(await tab.locator("#call").textContent()).toBe("Подтвердите: позвонить +79125554433");
    expect(await tab.locator("#call-result").textContent()).toBe("Нажмите ещё раз, чтобы позвонить на этот номер.");
    expect(await (await fetch(`${sandbox.url}/_sandbox/comagic/calls-made`)).json()).toEqual([]);
    await tab.locator("#call").click();
    await tab.locator("#call-result.ok").waitFor({ timeout: 10_000 });
    expect(await tab.locator("#call-result").textContent()).toBe("Ваш телефон звонит; клиенту позвоним, когда вы ответите.");
    const calls = (await (await fetch(`${sandbox.url}/_sandbox/comagic/calls-made`)).json()) as Record<string, unknown>[];
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "start.employee_call", first_call: "employee", virtual_phone_number: "74993720692", contact: "79125554433", employee: { id: 26 } });
    expect(await tab.locator("#call").isDisabled()).toBe(true);

    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/bitrix-tab.png" });
    expect(errors).toEqual([]);
  });

  it("explains a lead without a visitor id instead of showing an empty tab, in English for an English-speaking user", async () => {
    const created = await post("/_sandbox/leads", { fields: { TITLE: "Walk-in", PHONE: [{ VALUE: "+79125550000" }] } });
    const { id } = (await created.json()) as { id: number };
    const page = await browser.newPage();
    await page.goto(`${sandbox.url}/_sandbox/lead-card/${id}?user=2&lang=en`);
    const empty = page.frameLocator("#tab").locator("#empty");
    await empty.waitFor({ timeout: 20_000 });
    expect(await empty.textContent()).toContain("no CoMagic visitor id");
  });
});
