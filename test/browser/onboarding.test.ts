import { mkdirSync, rmSync } from "node:fs";
import type { Browser, Frame, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, sandboxWorkerVars, startLocalWorker, type LocalWorker } from "../../sandbox/local-worker";
import { sampleCall } from "../../sandbox/sample-call";
import { startSandbox, type RunningSandbox, type SandboxPortal } from "../../sandbox/server";
import { chromiumPath, launchChromium } from "../helpers/chromium";
import { waitFor } from "../helpers/wait-for";

/*
 * Issue #24's acceptance, in Chromium under wrangler dev: a newcomer with `npm start`'s deployment installs the app
 * on a sandbox portal nothing has set up ("fresh", its own origin), opens it, and through its settings page alone
 * (no file edited, no env var set) connects a CoMagic account, copies the notification address that a sample call
 * is then sent to, and lets the demo shop's form in: a lead from the call and one from the form land on that portal.
 * On a 1280×720 screen, by keyboard where it types, in English and Russian. UPDATE_DOCS_IMAGES=1 saves the
 * screenshots to docs/img/ (checked by eye there); else to test-results/.
 */

let sandbox: RunningSandbox;
let fresh: SandboxPortal;
let worker: LocalWorker;
let browser: Browser;
const stateDir = `.wrangler/browser-onboarding-${process.pid}`;
const shots = process.env.UPDATE_DOCS_IMAGES === "1" ? "docs/img" : "test-results";

const leadsOfFresh = async () => (await (await fetch(`${fresh.url}/_sandbox/leads`)).json()) as Record<string, unknown>[];

/** The app's frame inside the sandbox portal's page, once it has loaded `text`. */
async function appFrame(page: Page, frameName: string, text: string): Promise<Frame> {
  return waitFor(async () => {
    const frame = page.frame({ name: frameName });
    // A frame still navigating cannot say its content yet: ask again.
    const content = frame ? await frame.content().catch(() => "") : "";
    return frame && content.includes(text) ? frame : null;
  }, `the app's frame showing "${text}"`);
}

describe.skipIf(!chromiumPath)("a newcomer setting up a portal through the app's settings page, in Chromium", () => {
  beforeAll(async () => {
    const port = await freePort();
    const workerUrl = `http://127.0.0.1:${port}`;
    sandbox = await startSandbox({ port: 0, portals: ["fresh"], ownPorts: true, demoWorkerUrl: workerUrl });
    const named = sandbox.portals.fresh;
    if (!named) throw new Error("no sandbox portal fresh");
    fresh = named;
    // `npm start`'s deployment: the default portal in env, the app's keys and SETTINGS_KEY; nothing about "fresh".
    worker = await startLocalWorker({ port, vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: "onboarding-default", ENRICH_DELAY_SECONDS: "1" }), stateDir, output: "ignore" });
    browser = await launchChromium();
    mkdirSync(shots, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await sandbox?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("installs, connects CoMagic, and gets a lead from a sample call and one from the demo form", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    // 1. Install from the (sandbox) Market: the install path opens in a frame with the administrator's tokens.
    await page.goto(`${fresh.url}/_sandbox/market/install?worker=${encodeURIComponent(worker.url)}&user=1&lang=en`);
    await appFrame(page, "install", "CoMagic is installed");

    // 2. Open the app: the administrator gets the settings checklist.
    await page.goto(`${fresh.url}/_sandbox/app/open?user=1&lang=en`);
    let app = await appFrame(page, "app", "1. CoMagic account");
    expect(await app.locator("#step-notification").textContent()).toContain("Waiting for the first call.");
    await page.screenshot({ path: `${shots}/settings-page-en.png`, fullPage: true });

    // The CoMagic account: the deployment's local sandbox, a login and a password, typed; Check answers in words.
    await app.selectOption("#platform", "local");
    await app.click("#COMAGIC_LOGIN");
    await page.keyboard.type(sandbox.comagic.login);
    await page.keyboard.press("Tab");
    await page.keyboard.type("wrong-password");
    await app.click("#check-comagic");
    await waitFor(async () => (await app.locator("#comagic-answer.bad").count()) > 0, "the refusal");
    expect(await app.locator("#comagic-answer").textContent()).toContain("auth_error");
    await app.fill("#COMAGIC_PASSWORD", sandbox.comagic.password);
    await app.click("#check-comagic");
    await waitFor(async () => (await app.locator("#comagic-answer.ok").count()) > 0, "CoMagic's answer");
    expect(await app.locator("#comagic-answer").textContent()).toMatch(/CoMagic answered: account «Sandbox shop/);
    // The account's time zone comes with the answer: nothing to type.
    await app.fill("#COMAGIC_TIMEZONE", "");
    await app.click("#check-comagic");
    await waitFor(async () => (await app.inputValue("#COMAGIC_TIMEZONE")) === "Europe/Moscow", "the account's time zone in its field");
    // The website: the demo shop's origin may send forms.
    await app.fill("#ALLOWED_ORIGINS", sandbox.url);
    await app.focus("#save");
    await page.keyboard.press("Enter");
    app = await appFrame(page, "app", "set, ends in …");
    expect(await app.locator("#step-comagic .state").textContent()).toBe("Done");
    expect(await app.content()).not.toContain(sandbox.comagic.password);

    // 3. The notification address, copied from the page, gets CoMagic's sample call.
    const address = await app.inputValue("#notification-url");
    expect(address).toMatch(/\/webhooks\/comagic\/[a-z0-9-]+\?token=[0-9a-f]{48}$/);
    const call = sampleCall(sandbox.url);
    const posted = await fetch(address, { method: "POST", headers: { "content-type": "application/json" }, body: call.notification });
    expect(posted.status).toBe(202);
    const callLead = await waitFor(async () => (await leadsOfFresh()).find((l) => l.UF_CRM_COMAGIC_ID === String(call.id)), "the call's lead on the fresh portal");
    expect(callLead.TITLE).toBeTruthy();

    // 4. The demo shop with the portal's own script tag: its form becomes a lead too.
    const tag = await app.inputValue("#script-tag");
    const portal = /\/s\/([a-z0-9-]+)\.js/.exec(tag)?.[1] ?? "";
    expect(portal).not.toBe("");
    const shop = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await shop.goto(`${sandbox.url}/demo?portal=${portal}&utm_source=onboarding&utm_medium=cpc`);
    await shop.waitForTimeout(1_000);
    await shop.fill('input[name="name"]', "Onboarding Client");
    await shop.fill('input[name="phone"]', "+7 912 555-01-02");
    await shop.click("form button");
    const formLead = await waitFor(
      async () => (await leadsOfFresh()).find((l) => String(l.TITLE ?? "").includes("Website form") || l.NAME === "Onboarding Client"),
      "the form's lead on the fresh portal",
    );
    expect(formLead).toBeTruthy();

    // The page now says when the first notification and the first form came.
    await waitFor(async () => {
      await page.goto(`${fresh.url}/_sandbox/app/open?user=1&lang=en`);
      app = await appFrame(page, "app", "1. CoMagic account");
      const content = await app.content();
      return content.includes("Last notification received") && content.includes("Last form received");
    }, "the last notification and form on the page");
    await page.screenshot({ path: `${shots}/settings-page.png`, fullPage: true });

    // In Russian, for a Russian-speaking administrator.
    await page.goto(`${fresh.url}/_sandbox/app/open?user=1&lang=ru`);
    const russian = await appFrame(page, "app", "1. Аккаунт CoMagic");
    await russian.click("#check-comagic");
    await waitFor(async () => (await russian.locator("#comagic-answer.ok").count()) > 0, "CoMagic's answer in Russian");
    expect(await russian.locator("#comagic-answer").textContent()).toMatch(/^CoMagic ответил: аккаунт «/);
    await page.screenshot({ path: `${shots}/settings-page-ru.png`, fullPage: true });
  });
});
