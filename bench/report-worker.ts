import { MODELS, type Model } from "../worker/domain/attribution";
import { buildReport, GROUPINGS, type Grouping } from "../worker/domain/attribution-report";
import { d1AttributionStore } from "../worker/storage/attribution";

/*
 * A bench-only worker: seeds D1 with the report's tables (inside workerd, as the enrichment would) and times the
 * report's server work — the three D1 queries and the aggregation — where it runs in production.
 */

interface BenchEnv {
  DB: D1Database;
}

const DAY = 86_400_000;
const SOURCES = ["google", "yandex", "vk", "mytarget", null];

async function seed(db: D1Database, leads: number, deals: number, now: number): Promise<void> {
  const store = d1AttributionStore(db, "default");
  await store.hasCredits("lead");
  let state = 7;
  const rand = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const touch = db.prepare(
    `INSERT INTO attribution_touches (portal, entity, entity_id, touch_no, created_at, at, utm_source, utm_medium, utm_campaign, source_medium, cm_campaign_id, cm_campaign_name, cm_channel, site_id, first_touch, last_touch, last_non_direct, linear, time_decay, position_based)
     VALUES ('default', 'lead', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '77', ?, ?, ?, ?, ?, ?)`,
  );
  const statements: D1PreparedStatement[] = [];
  for (let id = 1; id <= leads; id++) {
    const created = new Date(now - Math.floor(rand() * 90) * DAY).toISOString();
    const n = 1 + Math.floor(rand() * 4);
    for (let t = 0; t < n; t++) {
      const source = SOURCES[Math.floor(rand() * SOURCES.length)] ?? null;
      const campaign = source ? String(100 + Math.floor(rand() * 40)) : null;
      const share = 1 / n;
      statements.push(
        touch.bind(
          String(id),
          t,
          created,
          created,
          source,
          source ? "cpc" : null,
          source ? `${source}_${campaign}` : null,
          source ? `${source} / cpc` : "direct",
          campaign,
          campaign ? `Campaign ${campaign}` : null,
          source ? "paid" : "direct",
          t === 0 ? 1 : 0,
          t === n - 1 ? 1 : 0,
          t === n - 1 ? 1 : 0,
          share,
          share,
          share,
        ),
      );
    }
  }
  for (let id = 1; id <= deals; id++) {
    statements.push(
      db
        .prepare("INSERT INTO crm_deals (portal, deal_id, source_entity, source_id, semantic, amount, currency, created_at, modified_at) VALUES ('default', ?, 'lead', ?, ?, ?, ?, NULL, NULL)")
        .bind(String(id), String(1 + Math.floor(rand() * leads)), rand() < 0.4 ? "S" : rand() < 0.5 ? "F" : "P", Math.round(rand() * 200_000), rand() < 0.95 ? "RUB" : "USD"),
    );
  }
  for (let d = 0; d < 90; d++) {
    for (let c = 100; c < 140; c++)
      statements.push(
        db
          .prepare("INSERT INTO ad_costs (portal, day, site_id, campaign_id, campaign_name, currency, cost) VALUES ('default', ?, '77', ?, ?, 'RUB', ?)")
          .bind(new Date(now - d * DAY).toISOString().slice(0, 10), String(c), `Campaign ${c}`, Math.round(rand() * 5000)),
      );
  }
  for (let i = 0; i < statements.length; i += 500) await db.batch(statements.slice(i, i + 500));
}

export default {
  async fetch(request: Request, env: BenchEnv): Promise<Response> {
    const url = new URL(request.url);
    const now = Date.parse(url.searchParams.get("now") ?? "2026-12-01T00:00:00Z");
    if (url.pathname === "/seed") {
      await seed(env.DB, Number(url.searchParams.get("leads")), Number(url.searchParams.get("deals")), now);
      return Response.json({ ok: true });
    }
    const model = (url.searchParams.get("model") ?? "linear") as Model;
    const grouping = (url.searchParams.get("grouping") ?? "source_medium") as Grouping;
    if (!MODELS.includes(model) || !GROUPINGS.includes(grouping)) return new Response("bad model or grouping", { status: 400 });
    const store = d1AttributionStore(env.DB, "default");
    const range = { from: new Date(now - 90 * DAY), to: new Date(now + DAY) };
    const started = performance.now();
    const [credits, deals, costs] = await Promise.all([store.credits("lead", range, model, grouping), store.dealsOf("lead", range), store.costs({ from: "2026-09-01", to: "2026-12-01" })]);
    const report = buildReport(credits, deals, grouping === "comagic_campaign" ? costs : null);
    return Response.json({ ms: performance.now() - started, groups: report.rows.length, conversions: report.total.conversions, deals: report.total.deals });
  },
};
