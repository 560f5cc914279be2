import { rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { freePort, startLocalWorker, type LocalWorker } from "../../sandbox/local-worker";
import { startSandbox, type RunningSandbox } from "../../sandbox/server";
import { createBitrixClient } from "../../worker/bitrix/client";
import { ensureCrmUserFields } from "../../worker/bitrix/user-fields";
import { launchChromium } from "./chromium";

/*
 * The snippet's stage in real Chromium: a stand-in website (its own origin) whose pages load the snippet from
 * the worker running under `wrangler dev`, with the Bitrix24 sandbox behind the worker. useSnippetSite() sets
 * it up for the calling describe block (which skips without Chromium) and fails any test that leaves an error
 * in the page: the snippet must never break its host.
 */

export interface SnippetSite {
  /** The site's origin. */
  readonly url: string;
  /** The page the last open() opened. */
  readonly page: Page;
  /** What the site's own backend received, by form post. */
  readonly received: Record<string, string>[];
  /** Beacons the snippet sent when pointed at the site (data-endpoint), as JSON. */
  readonly beacons: Record<string, unknown>[];
  /** Serves `body` at /<name>, with the snippet's script tag (`snippet`: its attributes) in the head; returns the URL. */
  addPage(name: string, body: string, options?: { head?: string; snippet?: string }): string;
  /** Opens the URL in a new browser context and waits for the snippet to load. */
  open(url: string): Promise<Page>;
  /** The sandbox's leads that carry this email. */
  leadsWithEmail(email: string): Promise<Record<string, unknown>[]>;
}

export function useSnippetSite(): SnippetSite {
  let sandbox: RunningSandbox;
  let worker: LocalWorker;
  let browser: Browser;
  let server: Server;
  let page: Page | undefined;
  let pageErrors: string[] = [];
  const pages = new Map<string, string>();
  // Files of the browser project may run side by side: each worker keeps its own state.
  const stateDir = `.wrangler/browser-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const site = {
    url: "",
    received: [] as Record<string, string>[],
    beacons: [] as Record<string, unknown>[],
    get page(): Page {
      if (!page) throw new Error("open() a page first");
      return page;
    },
    addPage(name: string, body: string, { head = "", snippet = 'data-forms="form"' } = {}): string {
      pages.set(`/${name}`, `<!doctype html><html><head><meta charset="utf-8">${head}<script src="${worker.url}/snippet.js" ${snippet} async></script></head><body>${body}</body></html>`);
      return `${site.url}/${name}`;
    },
    async open(url: string): Promise<Page> {
      const context = await browser.newContext();
      page = await context.newPage();
      pageErrors = [];
      page.on("pageerror", (error) => pageErrors.push(String(error)));
      page.on("console", (message) => {
        if (message.type() === "error") pageErrors.push(message.text());
      });
      await page.goto(url);
      await snippetReady(page);
      return page;
    },
    async leadsWithEmail(email: string): Promise<Record<string, unknown>[]> {
      const leads = (await (await fetch(`${sandbox.url}/_sandbox/leads`)).json()) as { EMAIL?: { VALUE: string }[] }[];
      return leads.filter((l) => l.EMAIL?.some((e) => e.VALUE === email));
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.method === "POST") {
        let body = "";
        req.on("data", (chunk) => (body += chunk));
        req.on("end", () => {
          if (req.url === "/forms") site.beacons.push(JSON.parse(body) as Record<string, unknown>);
          else site.received.push(Object.fromEntries(new URLSearchParams(body)));
          res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><p>thanks</p>");
        });
        return;
      }
      const html = pages.get((req.url ?? "/").split("?")[0] ?? "/");
      if (html) res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
      else res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end();
    });
    const sitePort = await freePort();
    await new Promise<void>((resolve) => server.listen(sitePort, "127.0.0.1", resolve));
    site.url = `http://127.0.0.1:${sitePort}`;
    sandbox = await startSandbox({ port: 0 });
    await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 5_000 }));
    worker = await startLocalWorker({
      vars: { BITRIX_WEBHOOK_URL: sandbox.bitrixWebhookUrl, COMAGIC_WEBHOOK_TOKEN: "browser-test", ALLOWED_ORIGINS: site.url, CRM_LANGUAGE: "en" },
      stateDir,
      output: "ignore",
    });
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await sandbox?.close();
    await new Promise((r) => server?.close(r));
    rmSync(stateDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    expect(pageErrors).toEqual([]);
    await page?.context().close();
    page = undefined;
  });

  return site;
}

/** Waits for the snippet to load (it defines window.ComagicLeads). */
export async function snippetReady(page: Page): Promise<void> {
  await page.waitForFunction(() => "ComagicLeads" in window, null, { timeout: 10_000 });
}

export async function waitUntil<T>(probe: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
