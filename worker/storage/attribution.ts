import type { CreditRow, CreditedEntity } from "../domain/attribution-credits";
import type { Model } from "../domain/attribution";
import type { CampaignCost, DealOutcome, GroupCredit, Grouping } from "../domain/attribution-report";
import type { AttributionStore, ConversionCredits, CostRecord, DealRecord, Range } from "./attribution-store";
import { ensureSchema } from "./d1-schema";

/** The attribution store in D1: strongly consistent, queried with SQL. */

/** The column each grouping reads, and the one that names it. Whitelisted: never built from a request. */
const GROUP_COLUMNS: Record<Grouping, { key: string; label: string }> = {
  utm_source: { key: "utm_source", label: "utm_source" },
  utm_medium: { key: "utm_medium", label: "utm_medium" },
  source_medium: { key: "NULLIF(source_medium, '')", label: "NULLIF(source_medium, '')" },
  utm_campaign: { key: "utm_campaign", label: "utm_campaign" },
  comagic_campaign: { key: "cm_campaign_id", label: "cm_campaign_name" },
  comagic_channel: { key: "cm_channel", label: "cm_channel" },
};
const MODEL_COLUMNS: Record<Model, string> = {
  first_touch: "first_touch",
  last_touch: "last_touch",
  last_non_direct: "last_non_direct",
  linear: "linear",
  time_decay: "time_decay",
  position_based: "position_based",
};
/** The sync_state row that holds the report sync's lease. */
const SYNC_LEASE = "report_sync.lease";
/** D1 binds at most 100 parameters a statement. */
const IDS_PER_STATEMENT = 90;
const TOUCH_COLUMNS = [
  "portal",
  "entity",
  "entity_id",
  "touch_no",
  "created_at",
  "at",
  "utm_source",
  "utm_medium",
  "utm_campaign",
  "source_medium",
  "cm_campaign_id",
  "cm_campaign_name",
  "cm_channel",
  "site_id",
  "first_touch",
  "last_touch",
  "last_non_direct",
  "linear",
  "time_decay",
  "position_based",
];
const TOUCH_PLACEHOLDERS = `(${TOUCH_COLUMNS.map(() => "?").join(", ")})`;
/** Rows a multi-row INSERT carries inside D1's 100 bound parameters: ⌊100 / 20 columns⌋ = 5. */
const TOUCHES_PER_INSERT = Math.floor(100 / TOUCH_COLUMNS.length);

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** One portal's attribution rows. */
export function d1AttributionStore(db: D1Database, portal: string): AttributionStore {
  const run = async <T>(work: () => Promise<T>) => {
    await ensureSchema(db);
    return work();
  };
  /*
   * Each conversion's old rows go before its new ones, in statement order inside one transaction: a redelivered
   * batch, or the same lead twice in one, leaves one set of rows, never a primary-key clash or a half-written lead.
   */
  const putCreditsMany = (conversions: readonly ConversionCredits[]) =>
    run(async () => {
      if (conversions.length === 0) return;
      await db.batch(
        conversions.flatMap(({ entity, entityId, createdAt, rows, madeContact }) => [
          db.prepare("DELETE FROM attribution_touches WHERE portal = ? AND entity = ? AND entity_id = ?").bind(portal, entity, entityId),
          ...chunks(rows, TOUCHES_PER_INSERT).map((some) =>
            db
              .prepare(`INSERT INTO attribution_touches (${TOUCH_COLUMNS.join(", ")}) VALUES ${some.map(() => TOUCH_PLACEHOLDERS).join(", ")}`)
              .bind(
                ...some.flatMap((r) => [
                  portal,
                  entity,
                  entityId,
                  r.touchNo,
                  createdAt.toISOString(),
                  r.at,
                  r.utmSource,
                  r.utmMedium,
                  r.utmCampaign,
                  r.sourceMedium,
                  r.cmCampaignId,
                  r.cmCampaignName,
                  r.cmChannel,
                  r.siteId,
                  r.shares.first_touch,
                  r.shares.last_touch,
                  r.shares.last_non_direct,
                  r.shares.linear,
                  r.shares.time_decay,
                  r.shares.position_based,
                ]),
              ),
          ),
          ...(madeContact ? [db.prepare("INSERT OR IGNORE INTO made_contacts (portal, entity, entity_id) VALUES (?, ?, ?)").bind(portal, entity, entityId)] : []),
        ]),
      );
    });
  return {
    putCredits: (entity: CreditedEntity, entityId: string, createdAt: Date, rows: readonly CreditRow[], madeContact = false) => putCreditsMany([{ entity, entityId, createdAt, rows, madeContact }]),
    putCreditsMany,

    credits: (entity: CreditedEntity, range: Range, model: Model, grouping: Grouping) =>
      run(async () => {
        const g = GROUP_COLUMNS[grouping];
        const share = MODEL_COLUMNS[model];
        const { results } = await db
          .prepare(
            `SELECT t.entity_id, ${g.key} AS group_key, MAX(${g.label}) AS group_label, SUM(${share}) AS share, m.entity_id IS NOT NULL AS made_contact
             FROM attribution_touches t LEFT JOIN made_contacts m ON m.portal = t.portal AND m.entity = t.entity AND m.entity_id = t.entity_id
             WHERE t.portal = ? AND t.entity = ? AND created_at >= ? AND created_at < ? AND ${share} > 0 GROUP BY t.entity_id, group_key`,
          )
          .bind(portal, entity, range.from.toISOString(), range.to.toISOString())
          .all<{ entity_id: string; group_key: string | null; group_label: string | null; share: number; made_contact: number }>();
        return results.map(
          (r): GroupCredit => ({ entityId: r.entity_id, key: r.group_key === null ? null : String(r.group_key), label: r.group_label, share: r.share, madeContact: r.made_contact === 1 }),
        );
      }),

    dealsOf: (entity: CreditedEntity, range: Range) =>
      run(async () => {
        const { results } = await db
          .prepare(
            `SELECT d.source_id, d.deal_id, d.semantic, d.amount, d.currency FROM crm_deals d
             WHERE d.portal = ?1 AND d.source_entity = ?2
               AND d.source_id IN (SELECT DISTINCT entity_id FROM attribution_touches WHERE portal = ?1 AND entity = ?2 AND created_at >= ?3 AND created_at < ?4)`,
          )
          .bind(portal, entity, range.from.toISOString(), range.to.toISOString())
          .all<{ source_id: string; deal_id: string; semantic: string; amount: number; currency: string }>();
        return results.map(
          (r): DealOutcome => ({ entityId: r.source_id, dealId: r.deal_id, semantic: r.semantic === "S" ? "S" : r.semantic === "F" ? "F" : "P", amount: r.amount, currency: r.currency }),
        );
      }),

    costs: (days: { from: string; to: string }) =>
      run(async () => {
        const { results } = await db
          .prepare("SELECT campaign_id, MAX(campaign_name) AS campaign_name, currency, SUM(cost) AS cost FROM ad_costs WHERE portal = ? AND day >= ? AND day <= ? GROUP BY campaign_id, currency")
          .bind(portal, days.from, days.to)
          .all<{ campaign_id: string; campaign_name: string | null; currency: string; cost: number }>();
        return results.map((r): CampaignCost => ({ key: r.campaign_id, label: r.campaign_name, currency: r.currency, cost: r.cost }));
      }),

    credited: (entity: CreditedEntity, ids: readonly string[]) =>
      run(async () => {
        const found = new Set<string>();
        for (const part of chunks([...new Set(ids)], IDS_PER_STATEMENT)) {
          const { results } = await db
            .prepare(`SELECT DISTINCT entity_id FROM attribution_touches WHERE portal = ? AND entity = ? AND entity_id IN (${part.map(() => "?").join(",")})`)
            .bind(portal, entity, ...part)
            .all<{ entity_id: string }>();
          for (const r of results) found.add(r.entity_id);
        }
        return found;
      }),

    putDeals: (deals: readonly DealRecord[]) =>
      run(async () => {
        if (deals.length === 0) return;
        const upsert = db.prepare(
          `INSERT INTO crm_deals (portal, deal_id, source_entity, source_id, semantic, amount, currency, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (portal, deal_id) DO UPDATE SET source_entity = excluded.source_entity, source_id = excluded.source_id, semantic = excluded.semantic, amount = excluded.amount, currency = excluded.currency, modified_at = excluded.modified_at`,
        );
        await db.batch(deals.map((d) => upsert.bind(portal, d.dealId, d.sourceEntity, d.sourceId, d.semantic, d.amount, d.currency, d.createdAt, d.modifiedAt)));
      }),

    putCosts: (day: string, siteIds: readonly string[], rows: readonly CostRecord[]) =>
      run(async () => {
        const insert = db.prepare("INSERT INTO ad_costs (portal, day, site_id, campaign_id, campaign_name, currency, cost) VALUES (?, ?, ?, ?, ?, ?, ?)");
        await db.batch([
          ...siteIds.map((site) => db.prepare("DELETE FROM ad_costs WHERE portal = ? AND day = ? AND site_id = ?").bind(portal, day, site)),
          ...rows.map((r) => insert.bind(portal, r.day, r.siteId, r.campaignId, r.campaignName, r.currency, r.cost)),
        ]);
      }),

    siteIds: () =>
      run(async () =>
        (await db.prepare("SELECT DISTINCT site_id FROM attribution_touches WHERE portal = ? AND site_id IS NOT NULL").bind(portal).all<{ site_id: string }>()).results.map((r) => r.site_id),
      ),

    hasCredits: (entity: CreditedEntity) =>
      run(async () => (await db.prepare("SELECT 1 AS one FROM attribution_touches WHERE portal = ? AND entity = ? LIMIT 1").bind(portal, entity).first()) !== null),

    getState: (name: string) => run(async () => (await db.prepare("SELECT value FROM sync_state WHERE portal = ? AND name = ?").bind(portal, name).first<{ value: string }>())?.value ?? null),
    setState: (name: string, value: string) =>
      run(
        async () =>
          void (await db.prepare("INSERT INTO sync_state (portal, name, value) VALUES (?, ?, ?) ON CONFLICT (portal, name) DO UPDATE SET value = excluded.value").bind(portal, name, value).run()),
      ),

    // The lease is a sync_state row "<until ISO>|<id>": ISO times of one length compare as text, and an empty
    // value (released) is older than any time. One statement, so D1 decides between two claimers.
    claimSync: (now: Date, until: Date) =>
      run(async () => {
        const lease = `${until.toISOString()}|${crypto.randomUUID()}`;
        const { meta } = await db
          .prepare("INSERT INTO sync_state (portal, name, value) VALUES (?4, ?1, ?2) ON CONFLICT (portal, name) DO UPDATE SET value = excluded.value WHERE sync_state.value < ?3")
          .bind(SYNC_LEASE, lease, now.toISOString(), portal)
          .run();
        return meta.changes > 0 ? lease : null;
      }),
    releaseSync: (lease: string) => run(async () => void (await db.prepare("UPDATE sync_state SET value = '' WHERE portal = ? AND name = ? AND value = ?").bind(portal, SYNC_LEASE, lease).run())),
    syncRunning: (now: Date) =>
      run(async () => ((await db.prepare("SELECT value FROM sync_state WHERE portal = ? AND name = ?").bind(portal, SYNC_LEASE).first<{ value: string }>())?.value ?? "") > now.toISOString()),
  };
}
