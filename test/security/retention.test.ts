import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { deadLetterStore } from "../../worker/storage/d1";
import { purgeExpired } from "../../worker/storage/retention";

/* Dead letters hold names, phones and emails: the cron removes them after DEAD_LETTER_RETENTION_DAYS (30). */

const letter = (id: string, daysAgo: number) => ({
  id,
  queue: "comagic-lead-jobs",
  jobType: "lead.ingest",
  portal: "default",
  letter: {
    queue: "comagic-lead-jobs",
    job: { event: { phone: "+79123456789", name: "Anna" } },
    reason: "x",
    code: "ERROR",
    attempts: 20,
    failedAt: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
  },
});

describe("retention", () => {
  it("purges dead letters older than DEAD_LETTER_RETENTION_DAYS, replayed or not, and keeps recent ones", async () => {
    const db = env.DB as D1Database;
    const store = deadLetterStore(db);
    const tag = crypto.randomUUID();
    await store.record([letter(`${tag}-old`, 31), letter(`${tag}-replayed`, 40), letter(`${tag}-recent`, 2)]);
    await store.markReplayed(`${tag}-replayed`, new Date(Date.now() - 39 * 86_400_000));
    await worker.scheduled?.(createScheduledController({ scheduledTime: Date.now(), cron: "*/10 * * * *" }), env);
    expect(await store.get(`${tag}-old`)).toBeNull();
    expect(await store.get(`${tag}-replayed`)).toBeNull();
    expect(await store.get(`${tag}-recent`)).not.toBeNull();
  });

  it("prunes each portal's ledger after LEDGER_RETENTION_DAYS and its report history after REPORT_RETENTION_DAYS, in the first run of the UTC day only", async () => {
    // Nothing else removes these rows: 1.6 KB a call fill D1's 10 GB in months for a busy agency (docs/performance.md).
    const db = env.DB as D1Database;
    const portal = `retention-${crypto.randomUUID().slice(0, 8)}`;
    const midnight = new Date(`${new Date().toISOString().slice(0, 10)}T00:02:00.000Z`);
    const ago = (days: number) => new Date(midnight.getTime() - days * 86_400_000).toISOString();
    const rows = async (table: string) => (await db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE portal = ?`).bind(portal).first<{ n: number }>())?.n;
    const touch = (id: string, createdAt: string) =>
      db
        .prepare(
          "INSERT INTO attribution_touches (portal, entity, entity_id, touch_no, created_at, at, first_touch, last_touch, last_non_direct, linear, time_decay, position_based) VALUES (?, 'lead', ?, 0, ?, ?, 1, 1, 1, 1, 1, 1)",
        )
        .bind(portal, id, createdAt, createdAt);
    await purgeExpired(db, midnight, { deadLetters: 30, ledger: 90, report: 400 });
    await db.batch([
      db.prepare("INSERT INTO applied_events (portal, key, ref, applied_at) VALUES (?, 'old', 'lead:1', ?), (?, 'new', 'lead:2', ?)").bind(portal, ago(91), portal, ago(89)),
      db.prepare("INSERT INTO contact_keys (portal, contact_key, ref, written_at) VALUES (?, 'tel:old', 'lead:1', ?), (?, 'tel:new', 'lead:2', ?)").bind(portal, ago(91), portal, ago(89)),
      db.prepare("INSERT INTO crm_visitors (portal, ref, visitor_id, written_at) VALUES (?, 'lead:1', '1', ?), (?, 'lead:2', '2', ?)").bind(portal, ago(401), portal, ago(91)),
      touch("1", ago(401)),
      touch("2", ago(91)),
      db
        .prepare("INSERT INTO ad_costs (portal, day, site_id, campaign_id, currency, cost) VALUES (?, ?, 's', 'c', 'RUB', 1), (?, ?, 's', 'c', 'RUB', 2)")
        .bind(portal, ago(401).slice(0, 10), portal, ago(91).slice(0, 10)),
      db
        .prepare("INSERT INTO deal_journal (portal, deal_id, source_entity, source_id, state, changed_at) VALUES (?, '1', 'lead', '1', 'sent', ?), (?, '2', 'lead', '2', 'sent', ?)")
        .bind(portal, ago(401), portal, ago(91)),
      db
        .prepare(
          "INSERT INTO conversions (portal, destination, key, goal, visitor_ref, at, state) VALUES (?, 'metrica', 'deal:1:won', 'won', '1', ?, 'sent'), (?, 'metrica', 'deal:2:won', 'won', '2', ?, 'sent')",
        )
        .bind(portal, ago(401), portal, ago(91)),
      db
        .prepare("INSERT INTO metrica_uploads (portal, upload_id, day, rows, status, created_at) VALUES (?, '1', 'd', 1, 'PROCESSED', ?), (?, '2', 'd', 1, 'PROCESSED', ?)")
        .bind(portal, ago(401), portal, ago(91)),
      db.prepare("INSERT INTO form_uploads (portal, key, message, state, created_at) VALUES (?, 'form-1', '{}', 'sent', ?), (?, 'form-2', '{}', 'sent', ?)").bind(portal, ago(91), portal, ago(89)),
      db.prepare("INSERT INTO crm_communications (portal, ref, communication_id, communication_type, at) VALUES (?, '1', 1, 'call', ?), (?, '2', 2, 'call', ?)").bind(portal, ago(91), portal, ago(89)),
      db.prepare("INSERT INTO form_visitors (portal, key, ym_uid, at) VALUES (?, 'form-1', '1', ?), (?, 'form-2', '2', ?)").bind(portal, ago(91), portal, ago(89)),
    ]);
    const tables = [
      "applied_events",
      "contact_keys",
      "crm_visitors",
      "attribution_touches",
      "ad_costs",
      "deal_journal",
      "conversions",
      "metrica_uploads",
      "form_uploads",
      "crm_communications",
      "form_visitors",
    ];
    // A run later in the day leaves the history alone.
    await purgeExpired(db, new Date(midnight.getTime() + 10 * 60_000), { deadLetters: 30, ledger: 90, report: 400 });
    for (const table of tables) expect({ table, rows: await rows(table) }).toEqual({ table, rows: 2 });
    const purged = await purgeExpired(db, midnight, { deadLetters: 30, ledger: 90, report: 400 });
    for (const table of tables) expect({ table, rows: await rows(table) }).toEqual({ table, rows: 1 });
    expect(await db.prepare("SELECT key FROM applied_events WHERE portal = ?").bind(portal).first("key")).toBe("new");
    expect(await db.prepare("SELECT entity_id FROM attribution_touches WHERE portal = ?").bind(portal).first("entity_id")).toBe("2");
    for (const table of tables) expect(purged[table]).toBeGreaterThanOrEqual(1);
  });
});
