import { mkdirSync, rmSync } from "node:fs";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxWorkerVars, startLocalWorker, type LocalWorker } from "../../sandbox/local-worker";
import { sampleCall } from "../../sandbox/sample-call";
import { startSandbox, type RunningSandbox } from "../../sandbox/server";
import { chromiumPath, launchChromium } from "../helpers/chromium";
import { waitFor } from "../helpers/wait-for";

/*
 * The agency's page as the deployment's operator opens it (issue #24), under wrangler dev: three portals, the
 * default one taking calls and a form (ok), shop-spb whose Bitrix24 refuses leads for a required field (a dead letter:
 * degraded), shop-kzn whose CoMagic account has spent the day's points (failing). The operator signs in with the admin
 * token once, sees the worst first, opens a portal, replays its dead letter, and switches to Russian.
 * UPDATE_DOCS_IMAGES=1 also saves the screenshots to docs/img/ (checked by eye there).
 */

let sandbox: RunningSandbox;
let worker: LocalWorker;
let browser: Browser;
const stateDir = `.wrangler/browser-agency-${process.pid}`;
const ADMIN = "browser-agency-admin-token-0123456789abcdef";
const shots = process.env.UPDATE_DOCS_IMAGES === "1" ? "docs/img" : "test-results";

const json = (body: unknown, headers: Record<string, string> = {}) => ({ method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
/** A sample call's notification, as CoMagic sends it, to a portal's webhook address (`path` with its token). */
const notify = (path: string) => fetch(`${worker.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: sampleCall().notification });
const asAdmin = (path: string, init: RequestInit = {}) => fetch(`${worker.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${ADMIN}` } });

describe.skipIf(!chromiumPath)("the agency's page, in Chromium", () => {
  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, portals: ["spb", "kzn"] });
    worker = await startLocalWorker({
      vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: "browser-test", ALLOWED_ORIGINS: "https://shop.example.ru", ADMIN_TOKEN: ADMIN, ENRICH_DELAY_SECONDS: "1" }),
      stateDir,
      output: "ignore",
    });
    for (const [key, name] of [
      ["shop-spb", "spb"],
      ["shop-kzn", "kzn"],
    ] as const) {
      const p = sandbox.portals[name];
      if (!p) throw new Error(`no sandbox portal ${name}`);
      const settings = {
        BITRIX_WEBHOOK_URL: p.bitrixWebhookUrl,
        COMAGIC_DATA_API_URL: p.dataApiUrl,
        COMAGIC_CALL_API_URL: p.callApiUrl,
        COMAGIC_LOGIN: p.comagic.login,
        COMAGIC_PASSWORD: p.comagic.password,
        COMAGIC_WEBHOOK_TOKEN: `${key}-webhook-token-0123456789`,
        ALLOWED_ORIGINS: `https://${key}.example`,
      };
      const res = await asAdmin(`/admin/portals/${key}`, { ...json({ settings }), method: "PUT" });
      expect(res.status, await res.clone().text()).toBe(201);
    }

    // The default portal: two calls and a form today.
    for (let i = 0; i < 2; i++) expect((await notify("/webhooks/comagic?token=browser-test")).status).toBe(202);
    expect((await fetch(`${worker.url}/forms`, json({ name: "Anna", phone: "+79161234567", form_name: "Callback" }, { origin: "https://shop.example.ru" }))).status).toBe(202);

    // shop-spb: its Bitrix24 requires a field the worker does not fill, so the call becomes a dead letter.
    const spb = sandbox.portals.spb?.url ?? "";
    await fetch(`${spb}/_sandbox/required-fields`, json({ fields: ["UF_CRM_REGION"], restCheck: true }));
    expect((await notify("/webhooks/comagic/shop-spb?token=shop-spb-webhook-token-0123456789")).status).toBe(202);
    await waitFor(async () => ((await (await asAdmin("/admin/dead-letters?portal=shop-spb&pending=1")).json()) as { deadLetters: unknown[] }).deadLetters.length > 0, "shop-spb's dead letter");

    // shop-kzn: the day's Data API points are spent; the next read tells the worker so.
    const kzn = sandbox.portals.kzn?.url ?? "";
    await fetch(`${kzn}/_sandbox/comagic/settings`, json({ dayLimit: 750, dayRemaining: 0, dayResetSeconds: 3 * 3600 }));
    await asAdmin("/admin/reconcile?portal=shop-kzn", json({ from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date().toISOString() }));
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await sandbox?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("asks for the token once, lists the worst first, replays a dead letter, and speaks Russian too", async () => {
    mkdirSync(shots, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    const urls: string[] = [];
    page.on("request", (r) => urls.push(r.url()));

    await page.goto(`${worker.url}/agency?lang=en`);
    await page.locator("#token").fill("a-wrong-token-of-enough-length-0123456789");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#signin [role=alert]").textContent()).toBe("The token was not accepted; enter it again.");
    await page.locator("#token").fill(ADMIN);
    await page.keyboard.press("Enter");
    await page.locator("#portals").waitFor({ timeout: 20_000 });

    const rows = page.locator("#portals tbody tr");
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-portal")))).toEqual(["shop-kzn", "shop-spb", "default"]);
    expect(await rows.nth(0).locator(".status").textContent()).toBe("Failing");
    expect(await rows.nth(0).textContent()).toContain("CoMagic's Data API points for today are spent");
    expect(await rows.nth(1).locator(".status").textContent()).toBe("Degraded");
    expect(await rows.nth(1).textContent()).toContain("1 dead letter waits for a replay");
    expect(await rows.nth(2).locator(".status").textContent()).toBe("OK");
    expect(await rows.nth(2).locator("td").nth(2).textContent()).toBe("Calls 2 · Forms 1");
    // It fits a 1280-pixel screen: nothing to scroll sideways.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
    await page.screenshot({ path: `${shots}/agency-page.png` });

    // The portal's details: its dead letter, replayed.
    await rows.nth(1).locator("a").click();
    await page.locator("#letters").waitFor({ timeout: 20_000 });
    expect(await page.locator("#letters tbody tr").count()).toBe(1);
    expect(await page.locator("#letters tbody").textContent()).toContain("required field is empty");
    await page.screenshot({ path: `${shots}/agency-portal.png`, fullPage: true });
    await page.locator("#letters button").click();
    await expect.poll(() => page.locator("#letters tbody [aria-live]").textContent()).toBe("Sent back to its queue");

    // Russian, in the same tab: the token is remembered, not asked again.
    await page.goto(`${worker.url}/agency?lang=ru`);
    await page.locator("#portals").waitFor({ timeout: 20_000 });
    expect(await page.locator("h1").textContent()).toBe("Порталы");
    expect(await page.locator("#portals tbody tr").first().locator(".status").textContent()).toBe("Сбой");

    // The token travels in a header only: never in an address the browser asked for.
    expect(urls.filter((u) => u.includes(ADMIN))).toEqual([]);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
    expect(problems.filter((p) => !/401|Unauthorized/.test(p))).toEqual([]);
  });
});
