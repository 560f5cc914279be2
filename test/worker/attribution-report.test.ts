import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";
import { install, MEMBER, openReport, postForm } from "./app-support";
import { admin, bitrixCall, comagicTime, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, waitFor, workerWithEnv } from "./support";

/*
 * The marketer's report in workerd against both sandboxes: credits written at enrichment (D1), deals read
 * back from Bitrix24 (`>=DATE_MODIFY`, FACTS-portals §2), ad cost from get.campaign_daily_stat (site_id
 * required, cost_sum a string, currency per row: FACTS-calls §5), and who may see it (admins, REPORT_USER_IDS).
 */

const VISITOR = 7_300_000 + Math.floor(Math.random() * 90_000);
const SITE = 77;
const yesterday = formatComagicDateTime(new Date(Date.now() - 86_400_000), "Europe/Moscow").slice(0, 10);
let leadId = "";

const reportToken = (html: string) => /name="token" value="([^"]+)"/.exec(html)?.[1] ?? "";
/** The report page's filter form and CSV export post their fields, the report token among them. */
const post = (path: string, fields: Record<string, string>) =>
  workerWithEnv({})(new Request(`http://worker.test${path}`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() }));

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
  expect((await install(1)).status).toBe(200);
  // Two visits: Google (CoMagic campaign 501), then Yandex (campaign 502); then the call.
  const visit = (i: number, source: string, campaign: number) => ({
    id: VISITOR * 10 + i,
    date_time: comagicTime(new Date(Date.now() - (3 - i) * 86_400_000)),
    visitor_id: VISITOR,
    channel: "Контекстная реклама",
    source_name: source,
    utm_source: source,
    utm_medium: "cpc",
    utm_campaign: `${source}_sofas`,
    utm_content: null,
    utm_term: null,
    referrer: null,
    entrance_page: "https://shop.example.ru/",
    campaign_id: campaign,
    campaign_name: `Диваны ${source}`,
    site_id: SITE,
  });
  await sandbox("/_sandbox/comagic/data", {
    visitor_sessions: [visit(0, "google", 501), visit(1, "yandex", 502)],
    campaign_daily_stat: [
      { date: yesterday, site_id: SITE, campaign_id: 501, campaign_name: "Диваны google", keyword: "диван", cost_sum: "1000.50", currency: "rub" },
      { date: yesterday, site_id: SITE, campaign_id: 501, campaign_name: "Диваны google", keyword: "купить диван", cost_sum: "499.50", currency: "RUB" },
      { date: yesterday, site_id: SITE, campaign_id: 502, campaign_name: "Диваны yandex", keyword: "диван", cost_sum: "3000", currency: "RUB" },
      { date: yesterday, site_id: 78, campaign_id: 901, campaign_name: "Another site", cost_sum: "99999", currency: "RUB" },
    ],
  });
  const phone = uniquePhone();
  expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local, visitor_id: String(VISITOR) }))).status).toBe(202);
  const lead = await waitFor(async () => (await sandboxLeads()).find((l) => l.UF_CRM_CM_VISITOR_ID === String(VISITOR) && l.UF_CRM_CM_SESSIONS !== ""), "lead enriched", 60_000);
  leadId = String(lead.ID);
  await waitFor(
    async () => (await env.DB?.prepare("SELECT COUNT(*) AS n FROM attribution_touches WHERE entity = 'lead' AND entity_id = ?").bind(leadId).first<{ n: number }>())?.n === 2,
    "credits stored",
    30_000,
  );
  // A manager converts the lead and wins the deal.
  await sandbox("/_sandbox/deals", { fields: { TITLE: "Sofa", STAGE_ID: "NEW", OPPORTUNITY: "90000", CURRENCY_ID: "RUB" }, fromLead: leadId });
}, 120_000);

describe("the attribution report in Bitrix24", () => {
  it("binds the report to CRM Analytics' menu on install", async () => {
    const state = (await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { placements: { placement: string; handler: string }[] };
    expect(state.placements).toContainEqual(expect.objectContaining({ placement: "CRM_ANALYTICS_MENU", handler: "http://worker.test/bitrix/app" }));
  });

  it("tells someone who opens it outside Bitrix24 where it opens from, in their language", async () => {
    const query = (lang: string) => `?DOMAIN=${new URL(env.BITRIX_WEBHOOK_URL ?? "").host}&PROTOCOL=0&LANG=${lang}`;
    const english = await postForm("/bitrix/app", { member_id: MEMBER }, query("en"));
    expect(english.status).toBe(400);
    expect(await english.text()).toContain("CRM → Analytics → CoMagic: attribution");
    const russian = await postForm("/bitrix/app", { member_id: MEMBER }, query("ru"));
    expect(await russian.text()).toContain("CRM → Аналитика → CoMagic: атрибуция");
  });

  it("shows no figures to a user who is neither an administrator nor in REPORT_USER_IDS, and says who can grant access", async () => {
    const res = await openReport(2, "en");
    expect(res.status).toBe(403);
    const html = await res.text();
    expect(html).toContain("REPORT_USER_IDS");
    expect(html).toContain("your user id (2)");
    expect(html).not.toContain('name="token"');
    expect(html).not.toContain("google");
  });

  it("lets a user listed in REPORT_USER_IDS in, in Russian by default", async () => {
    const res = await openReport(3, "ru", workerWithEnv({ REPORT_USER_IDS: "3, 9" }));
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Атрибуция CoMagic");
  });

  it("credits the lead, its won deal and CoMagic's ad cost to campaigns after a refresh, and exports exactly the table", async () => {
    const res = await openReport(1, "en");
    expect(res.status).toBe(200);
    const token = reportToken(await res.text());
    expect(token).not.toBe("");
    await bitrixCall("crm.deal.update", { id: (await sandboxDealOf(leadId)) ?? 0, fields: { STAGE_ID: "WON" } });
    const refresh = await workerWithEnv({})(
      new Request("http://worker.test/bitrix/report/refresh", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) }),
    );
    expect(refresh.status).toBe(200);
    expect(await refresh.json()).toMatchObject({ deals: { kept: 1 }, costDays: expect.arrayContaining([yesterday]) });

    const fields = { token, period: "7d", model: "first_touch", grouping: "comagic_campaign", entity: "lead" };
    const page = await (await post("/bitrix/report", fields)).text();
    expect(page).toContain("Диваны google");
    // Intl writes "RUB 90,000" with a no-break space; compared here as a plain one.
    const csv = (await (await post("/bitrix/report.csv", fields)).text()).replace(/\u00a0/g, " ");
    const lines = csv
      .replace(/^\uFEFF/, "")
      .trim()
      .split("\r\n");
    expect(lines[0]).toBe("Group,Leads,Deals,Won,Revenue (won),Lead → deal,Deal → won,Ad cost,Cost per lead,Cost per won deal,ROMI");
    // First touch: everything to Google's campaign; its cost is its two keyword rows summed ("rub" and "RUB" are one currency).
    expect(lines.find((l) => l.startsWith("Диваны google"))).toBe('Диваны google,1,1,1,"RUB 90,000",100%,100%,"RUB 1,500","RUB 1,500","RUB 1,500","5,900%"');
    expect(lines.find((l) => l.startsWith("Диваны yandex"))).toBe('Диваны yandex,0,0,0,0,—,—,"RUB 3,000",—,—,-100%');
    expect(csv).not.toContain("Another site");

    // Linear: half each; the ad cost follows the campaign, not the model.
    const linear = (await (await post("/bitrix/report.csv", { ...fields, model: "linear" })).text()).replace(/\u00a0/g, " ");
    expect(linear).toContain('Диваны yandex,0.5,0.5,0.5,"RUB 45,000",100%,100%,"RUB 3,000","RUB 6,000","RUB 6,000","1,400%"');
  });

  it("says why cost is missing when grouped by UTM, and refuses a forged or missing token", async () => {
    const res = await openReport(1, "en");
    const token = reportToken(await res.text());
    const page = await (await post("/bitrix/report", { token, grouping: "utm_source" })).text();
    expect(page).toContain("per CoMagic campaign only");
    expect(page).not.toContain("<th>Ad cost</th>");
    const forged = `${token.slice(0, -4)}AAAA`;
    expect((await post("/bitrix/report.csv", { token: forged })).status).toBe(401);
    expect((await post("/bitrix/report", {})).status).toBe(401);
  });
});

describe("npm run backfill:attribution", () => {
  it("queues leads made before the report for enrichment, page by page, and resumes after the last one done", async () => {
    const visitor = VISITOR + 1;
    await sandbox("/_sandbox/comagic/data", {
      visitor_sessions: [
        {
          id: visitor * 10,
          date_time: comagicTime(new Date(Date.now() - 20 * 86_400_000)),
          visitor_id: visitor,
          channel: "organic",
          source_name: "google",
          utm_source: null,
          utm_medium: null,
          utm_campaign: null,
          utm_content: null,
          utm_term: null,
          referrer: "https://www.google.com/",
          entrance_page: "https://shop.example.ru/",
          campaign_id: null,
          campaign_name: null,
          site_id: SITE,
        },
      ],
    });
    const { id } = (await (
      await sandbox("/_sandbox/leads", { fields: { TITLE: "Old lead", UF_CRM_CM_VISITOR_ID: String(visitor) }, createdAt: new Date(Date.now() - 10 * 86_400_000).toISOString() })
    ).json()) as { id: number };
    const from = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10);
    const step = async () => (await admin("/attribution/backfill", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ from }) })).json();
    const first = (await step()) as { read: number; queued: number; done: boolean };
    expect(first).toMatchObject({ done: true });
    expect(first.queued).toBeGreaterThanOrEqual(2);
    await waitFor(
      async () => (await env.DB?.prepare("SELECT created_at FROM attribution_touches WHERE entity = 'lead' AND entity_id = ?").bind(String(id)).first<{ created_at: string }>())?.created_at,
      "old lead credited",
      30_000,
    );
    const row = await env.DB?.prepare("SELECT created_at, linear FROM attribution_touches WHERE entity_id = ?").bind(String(id)).first<{ created_at: string; linear: number }>();
    // Dated by the lead's own creation, not by the backfill.
    expect(Date.now() - Date.parse(row?.created_at ?? "")).toBeGreaterThan(9 * 86_400_000);
    expect(row?.linear).toBe(1);
    expect(await step()).toMatchObject({ read: 0, queued: 0, done: true });
    expect((await admin("/attribution/backfill", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ from: "last week" }) })).status).toBe(400);
  });
});

async function sandboxDealOf(lead: string): Promise<number | null> {
  const crm = (await (await sandbox("/_sandbox/crm")).json()) as { deals: { ID: number; LEAD_ID?: string | null }[] };
  return crm.deals.find((d) => String(d.LEAD_ID) === lead)?.ID ?? null;
}
