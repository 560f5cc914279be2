/*
 * The deal journal (issue #25 §1): per portal and deal, what CoMagic's end-to-end analytics holds of it (the stage
 * changes sent, the revenue, the communication it is linked to) and whether a change waits to be sent. The report's
 * deal sync marks a credited deal `waiting` when Bitrix24 says it changed; the deal loop (jobs/deal-loop.ts) sends
 * what is new and marks it `sent`, `rejected` (CoMagic refused its data: a dead letter says why) or `gone` (deleted in
 * Bitrix24). One D1 table, `deal_journal`; docs/storage.md has an example row.
 */
import * as z from "zod";
import type { CreditedEntity } from "../domain/attribution-credits";
import type { DealCommunication, DealFlag, DealJournal } from "../domain/deal-history";
import { ensureSchema } from "./d1-schema";

export type DealState = "waiting" | "sent" | "rejected" | "gone";

export interface ChangedDeal {
  dealId: string;
  sourceEntity: CreditedEntity;
  sourceId: string;
}

export interface JournalEntry extends ChangedDeal {
  state: DealState;
  changedAt: string;
  journal: DealJournal | null;
  /** The communication the deal is linked to; null until found. */
  communication: DealCommunication | null;
}

export interface DealOutcome {
  dealId: string;
  /** The `changed_at` the loop read: a change marked since then keeps the deal waiting. */
  changedAt: string;
  state: Exclude<DealState, "waiting">;
  journal?: DealJournal;
  communication?: DealCommunication | null;
  flags?: readonly DealFlag[];
  reason?: string;
}

export interface DealJournalStore {
  /** Deals Bitrix24 says changed: each waits to be sent (its journal is kept). */
  markChanged(deals: readonly ChangedDeal[], at: Date): Promise<void>;
  /** A deal to send again (a replayed dead letter): waiting, with the source it already has. */
  markWaiting(dealId: string, at: Date): Promise<boolean>;
  /** The deals waiting, the longest-waiting first. */
  waiting(limit: number): Promise<JournalEntry[]>;
  record(outcomes: readonly DealOutcome[], at: Date): Promise<void>;
  /** Deals by state, and those sent whose communication was too old to link (the report's notes). */
  summary(): Promise<Record<DealState, number> & { notLinked: number }>;
}

const journalSchema = z.object({ dealId: z.string(), sent: z.array(z.object({ stageId: z.string(), at: z.number() })), revenue: z.number().nullable() });
const communicationSchema = z.object({ id: z.number(), type: z.enum(["call", "chat", "offline_message", "goal", "email"]), at: z.number() });

/** A stored JSON column, or null when it is absent or does not read (a row written by a later version is sent again). */
function parsed<T>(schema: z.ZodType<T>, text: string | null): T | null {
  if (!text) return null;
  try {
    return schema.safeParse(JSON.parse(text)).data ?? null;
  } catch {
    return null;
  }
}

type Row = { deal_id: string; source_entity: string; source_id: string; state: string; changed_at: string; journal: string | null; communication: string | null };

export function d1DealJournal(db: D1Database, portal: string): DealJournalStore {
  return {
    async markChanged(deals, at) {
      if (deals.length === 0) return;
      await ensureSchema(db);
      const when = at.toISOString();
      await db.batch(
        deals.map((d) =>
          db
            .prepare(
              `INSERT INTO deal_journal (portal, deal_id, source_entity, source_id, state, changed_at) VALUES (?, ?, ?, ?, 'waiting', ?)
               ON CONFLICT (portal, deal_id) DO UPDATE SET state = 'waiting', changed_at = excluded.changed_at, source_entity = excluded.source_entity, source_id = excluded.source_id`,
            )
            .bind(portal, d.dealId, d.sourceEntity, d.sourceId, when),
        ),
      );
    },
    async markWaiting(dealId, at) {
      await ensureSchema(db);
      const result = await db.prepare("UPDATE deal_journal SET state = 'waiting', changed_at = ? WHERE portal = ? AND deal_id = ?").bind(at.toISOString(), portal, dealId).run();
      return result.meta.changes > 0;
    },
    async waiting(limit) {
      await ensureSchema(db);
      const { results } = await db
        .prepare("SELECT deal_id, source_entity, source_id, state, changed_at, journal, communication FROM deal_journal WHERE portal = ? AND state = 'waiting' ORDER BY changed_at LIMIT ?")
        .bind(portal, limit)
        .all<Row>();
      return results.map((r) => ({
        dealId: r.deal_id,
        sourceEntity: r.source_entity === "deal" ? "deal" : "lead",
        sourceId: r.source_id,
        state: "waiting",
        changedAt: r.changed_at,
        journal: parsed(journalSchema, r.journal),
        communication: parsed(communicationSchema, r.communication),
      }));
    },
    async record(outcomes, at) {
      if (outcomes.length === 0) return;
      await ensureSchema(db);
      const when = at.toISOString();
      // Only the change that was read is settled: one marked meanwhile (a later sync) leaves the deal waiting.
      await db.batch(
        outcomes.map((o) =>
          db
            .prepare(
              `UPDATE deal_journal SET state = CASE WHEN changed_at = ? THEN ? ELSE 'waiting' END, journal = COALESCE(?, journal),
                 communication = COALESCE(?, communication), flags = ?, reason = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END
               WHERE portal = ? AND deal_id = ?`,
            )
            .bind(
              o.changedAt,
              o.state,
              o.journal ? JSON.stringify(o.journal) : null,
              o.communication ? JSON.stringify(o.communication) : null,
              o.flags?.length ? o.flags.join(",") : null,
              o.reason ?? null,
              o.state,
              when,
              portal,
              o.dealId,
            ),
        ),
      );
    },
    async summary() {
      return (await dealSummaries(db, portal)).get(portal) ?? { waiting: 0, sent: 0, rejected: 0, gone: 0, notLinked: 0 };
    },
  };
}

/** A portal's deals by state, and those sent whose communication was too old to link: what `summary()` answers. */
export type DealSummary = Record<DealState, number> & { notLinked: number };

const NOT_LINKED: DealFlag = "communication_older_than_30_days";

/**
 * Every portal's deal summary, or only `portal`'s, in one statement: the agency page reads all its portals' at once
 * instead of a `summary()` each. A portal with no deal in the journal has no entry.
 */
export async function dealSummaries(db: D1Database, portal?: string): Promise<Map<string, DealSummary>> {
  await ensureSchema(db);
  const statement = db.prepare(
    `SELECT portal, state, COUNT(*) AS n, SUM(CASE WHEN flags LIKE '%' || ?1 || '%' THEN 1 ELSE 0 END) AS old
     FROM deal_journal ${portal === undefined ? "" : "WHERE portal = ?2"} GROUP BY portal, state`,
  );
  const { results } = await (portal === undefined ? statement.bind(NOT_LINKED) : statement.bind(NOT_LINKED, portal)).all<{
    portal: string;
    state: string;
    n: number;
    old: number | null;
  }>();
  const summaries = new Map<string, DealSummary>();
  for (const r of results) {
    let counts = summaries.get(r.portal);
    if (!counts) {
      counts = { waiting: 0, sent: 0, rejected: 0, gone: 0, notLinked: 0 };
      summaries.set(r.portal, counts);
    }
    if (r.state === "waiting" || r.state === "sent" || r.state === "rejected" || r.state === "gone") counts[r.state] = r.n;
    counts.notLinked += r.old ?? 0;
  }
  return summaries;
}
