import { env, exports } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import template from "../../docs/comagic-call-notification.template?raw";
import { buildDemo, seedDemo } from "../../sandbox/demo-seed";
import { install, openReport } from "./app-support";
import { ADMIN_TOKEN, SECRET, sandbox, TOKEN } from "./support";

/*
 * `npm start -- --demo` (sandbox/demo-seed.ts) in small: a shop's 90 days sent through the worker's own routes (the
 * reconciliation reading CoMagic's reports, signed notifications, the snippet's forms), deals closed in Bitrix24,
 * then the report's refresh. What a marketer opening the report must see: several channels, revenue in two
 * currencies, and CoMagic's ad cost.
 */

const SITE = "https://shop.example.ru";

/** The report's table as CSV (the page's Export), under some filters: rows of cells, the header first. */
async function reportCsv(token: string, filters: Record<string, string>): Promise<string[][]> {
  const res = await exports.default.fetch(
    new Request("http://worker.test/bitrix/report.csv", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, model: "last_non_direct", entity: "lead", ...filters }).toString(),
    }),
  );
  expect(res.status).toBe(200);
  const text = (await res.text()).replace(/^\uFEFF/, "").replace(/\u00a0/g, " ");
  return text.trim().split("\r\n").map(cells);
}

/** One CSV line's cells: a cell with a comma is quoted ("RUB 90,000"); no cell here holds a quote. */
function cells(line: string): string[] {
  const out = [""];
  let quoted = false;
  for (const char of line) {
    if (char === '"') quoted = !quoted;
    else if (char === "," && !quoted) out.push("");
    else out[out.length - 1] += char;
  }
  return out;
}

afterAll(async () => {
  // The shop's rows would be read by the next file's feed and reconciliation: leave the sandboxes empty.
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});

describe("the demo seed", () => {
  it("fills the report with several channels, revenue in roubles and dollars, and ad cost, all through the worker", async () => {
    await sandbox("/_sandbox/reset", {});
    await sandbox("/_sandbox/comagic/reset", {});
    expect((await install(1)).status).toBe(200);
    const plan = buildDemo({ now: new Date(), contacts: 30, seed: 7, siteOrigin: SITE, mediaBase: env.SANDBOX_URL });
    const result = await seedDemo(plan, {
      worker: (request) => exports.default.fetch(request),
      workerUrl: "http://worker.test",
      sandboxUrl: env.SANDBOX_URL,
      bitrixWebhookUrl: env.BITRIX_WEBHOOK_URL ?? "",
      adminToken: ADMIN_TOKEN,
      webhook: { token: TOKEN, secret: SECRET, template },
      siteOrigin: SITE,
      timeoutMs: 10_000,
    });
    expect(result.contacts.call + result.contacts.chat + result.contacts.request + result.contacts.form).toBe(30);

    const token = /name="token" value="([^"]+)"/.exec(await (await openReport(1, "en")).text())?.[1] ?? "";
    const [header, ...rows] = await reportCsv(token, { period: "90d", grouping: "source_medium" });
    const column = (name: string) => header?.indexOf(name) ?? -1;
    const groups = rows.filter((r) => r[0] !== "Total" && Number(r[column("Leads")]) > 0).map((r) => r[0]);
    expect(groups.length).toBeGreaterThanOrEqual(3);
    const revenue = rows.find((r) => r[0] === "Total")?.[column("Revenue (won)")] ?? "";
    expect(revenue).toMatch(/RUB [\d,]+/);
    expect(revenue).toMatch(/US\$[\d,]+/);

    // Cost is CoMagic's, per CoMagic campaign: the paid campaigns' last days, imported by the refresh.
    const [costHeader, ...campaigns] = await reportCsv(token, { period: "7d", grouping: "comagic_campaign" });
    const cost = costHeader?.indexOf("Ad cost") ?? -1;
    expect(cost).toBeGreaterThan(0);
    expect(campaigns.filter((r) => r[0] !== "Total" && /^RUB [\d,]+/.test(r[cost] ?? "")).map((r) => r[0])).toContain("Яндекс.Директ: диваны, поиск");
  }, 15_000);
});
