/*
 * Offline conversions (issue #25 §3), per portal and destination (`metrica`, `ga4`): each CRM moment once, keyed by
 * domain/offline-conversions.ts conversionKey, with the DateTime fixed at its first try (a retry re-sends the very
 * same row, which Metrica overwrites: FACTS-loop §3.5), and what became of it: `waiting`, `sent` (in an upload),
 * `too_old` / `no_visitor` / `goal_off` (not sent, counted), `failed` (Metrica refused the file for good). Metrica's
 * uploads and their status, polled until PROCESSED or LINKAGE_FAILURE, are `metrica_uploads`. docs/storage.md has
 * example rows.
 */
import { FINAL_STATUSES } from "../metrica/client";
import type { ConversionGoal } from "../domain/offline-conversions";
import { ensureSchema } from "./d1-schema";

export type Destination = "metrica" | "ga4";
export type ConversionState = "waiting" | "sent" | "too_old" | "no_visitor" | "goal_off" | "failed";

export interface ConversionMoment {
  key: string;
  goal: ConversionGoal;
  /** The ledger ref of the lead or deal whose visitor this is (a won deal's is its lead's). */
  visitorRef: string;
  at: Date;
  revenue: { amount: number; currency: string } | null;
}

export interface WaitingConversion extends ConversionMoment {
  /** The DateTime (Unix seconds) an earlier try fixed, or null. */
  dateTime: number | null;
  /** When the moment was seen (the sync or the look that found it): how long it has waited to go. */
  recordedAt: string;
}

export interface UploadRecord {
  uploadId: string;
  rows: number;
  status: string;
  linked: number | null;
  notLinked: number | null;
}

export interface DayOutcome {
  day: string;
  sent: number;
  tooOld: number;
  noVisitor: number;
  failed: number;
  /** From Metrica's processed uploads of that day: rows linked to a visit, and rows it could not link. */
  linked: number;
  notLinked: number;
  /** Uploads of that day Metrica has not finished yet. */
  processing: number;
}

export interface ConversionStore {
  /** New moments wait to be sent; a moment already known (by key) is left as it is: each goes out once. */
  add(destination: Destination, moments: readonly ConversionMoment[], recordedAt: Date): Promise<number>;
  waiting(destination: Destination, limit: number): Promise<WaitingConversion[]>;
  fix(destination: Destination, dateTimes: ReadonlyMap<string, number>): Promise<void>;
  settle(destination: Destination, keys: readonly string[], state: Exclude<ConversionState, "waiting">, at: Date, detail?: { uploadId?: string; reason?: string }): Promise<void>;
  recordUpload(upload: UploadRecord, at: Date): Promise<void>;
  unfinishedUploads(limit: number): Promise<string[]>;
  updateUpload(upload: UploadRecord, at: Date): Promise<void>;
  /** What became of the conversions, per UTC day, the last `days` days (newest first). */
  outcomes(destination: Destination, since: Date): Promise<DayOutcome[]>;
}

const utcDay = (at: Date) => at.toISOString().slice(0, 10);
/** Metrica's final statuses (§3.3) as SQL text, for the statements that tell a finished upload. */
const FINAL_SQL = FINAL_STATUSES.map((status) => `'${status}'`).join(", ");

type Row = { key: string; goal: ConversionGoal; visitor_ref: string; at: string; revenue: number | null; currency: string | null; date_time: number | null; recorded_at: string | null };

export function d1ConversionStore(db: D1Database, portal: string): ConversionStore {
  return {
    async add(destination, moments, recordedAt) {
      if (moments.length === 0) return 0;
      await ensureSchema(db);
      const results = await db.batch(
        moments.map((m) =>
          db
            .prepare("INSERT OR IGNORE INTO conversions (portal, destination, key, goal, visitor_ref, at, revenue, currency, state, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?)")
            .bind(portal, destination, m.key, m.goal, m.visitorRef, m.at.toISOString(), m.revenue?.amount ?? null, m.revenue?.currency ?? null, recordedAt.toISOString()),
        ),
      );
      return results.reduce((n, r) => n + (r.meta.changes ?? 0), 0);
    },
    async waiting(destination, limit) {
      await ensureSchema(db);
      const { results } = await db
        .prepare(
          "SELECT key, goal, visitor_ref, at, revenue, currency, date_time, recorded_at FROM conversions WHERE portal = ? AND destination = ? AND state = 'waiting' ORDER BY recorded_at, at LIMIT ?",
        )
        .bind(portal, destination, limit)
        .all<Row>();
      return results.map((r) => ({
        key: r.key,
        goal: r.goal,
        visitorRef: r.visitor_ref,
        at: new Date(r.at),
        revenue: r.revenue !== null && r.currency ? { amount: r.revenue, currency: r.currency } : null,
        dateTime: r.date_time,
        recordedAt: r.recorded_at ?? r.at,
      }));
    },
    async fix(destination, dateTimes) {
      if (dateTimes.size === 0) return;
      await ensureSchema(db);
      await db.batch(
        [...dateTimes].map(([key, dateTime]) =>
          db.prepare("UPDATE conversions SET date_time = ? WHERE portal = ? AND destination = ? AND key = ? AND date_time IS NULL").bind(dateTime, portal, destination, key),
        ),
      );
    },
    async settle(destination, keys, state, at, detail = {}) {
      if (keys.length === 0) return;
      await ensureSchema(db);
      await db.batch(
        keys.map((key) =>
          db
            .prepare("UPDATE conversions SET state = ?, day = ?, upload_id = ?, reason = ? WHERE portal = ? AND destination = ? AND key = ?")
            .bind(state, utcDay(at), detail.uploadId ?? null, detail.reason ?? null, portal, destination, key),
        ),
      );
    },
    async recordUpload(upload, at) {
      await ensureSchema(db);
      await db
        .prepare("INSERT OR REPLACE INTO metrica_uploads (portal, upload_id, day, rows, status, linked, not_linked, created_at, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(portal, upload.uploadId, utcDay(at), upload.rows, upload.status, upload.linked, upload.notLinked, at.toISOString(), at.toISOString())
        .run();
    },
    async unfinishedUploads(limit) {
      await ensureSchema(db);
      const { results } = await db
        .prepare(`SELECT upload_id FROM metrica_uploads WHERE portal = ? AND status NOT IN (${FINAL_SQL}) ORDER BY created_at LIMIT ?`)
        .bind(portal, limit)
        .all<{ upload_id: string }>();
      return results.map((r) => r.upload_id);
    },
    async updateUpload(upload, at) {
      await ensureSchema(db);
      await db
        .prepare("UPDATE metrica_uploads SET status = ?, linked = ?, not_linked = ?, checked_at = ? WHERE portal = ? AND upload_id = ?")
        .bind(upload.status, upload.linked, upload.notLinked, at.toISOString(), portal, upload.uploadId)
        .run();
    },
    async outcomes(destination, since) {
      return (await outcomesByPortal(db, since, portal)).get(portal)?.[destination] ?? [];
    },
  };
}

/** One portal's outcomes per destination, newest day first; a destination with nothing settled has no entry. */
export type PortalOutcomes = Partial<Record<Destination, DayOutcome[]>>;

/**
 * What became of every portal's conversions, or only `portal`'s, per destination and UTC day from `since`'s day on:
 * the figures `outcomes()` gives, for all portals in one batch of two statements (the agency page's read).
 */
export async function outcomesByPortal(db: D1Database, since: Date, portal?: string): Promise<Map<string, PortalOutcomes>> {
  await ensureSchema(db);
  const onePortal = portal === undefined ? "" : "AND portal = ?2";
  const bound = (sql: string) => (portal === undefined ? db.prepare(sql).bind(utcDay(since)) : db.prepare(sql).bind(utcDay(since), portal));
  type Row = { portal: string; destination?: string; day: string; state?: string; n?: number; linked?: number; not_linked?: number; processing?: number };
  const [states, uploads] = await db.batch<Row>([
    bound(`SELECT portal, destination, day, state, COUNT(*) AS n FROM conversions WHERE day >= ?1 ${onePortal} GROUP BY portal, destination, day, state`),
    bound(
      `SELECT portal, day, SUM(COALESCE(linked, 0)) AS linked, SUM(COALESCE(not_linked, 0)) AS not_linked,
         SUM(CASE WHEN status IN (${FINAL_SQL}) THEN 0 ELSE 1 END) AS processing
       FROM metrica_uploads WHERE day >= ?1 ${onePortal} GROUP BY portal, day`,
    ),
  ]);
  const byPortal = new Map<string, PortalOutcomes>();
  const of = (p: string, destination: Destination, day: string): DayOutcome => {
    const outcomes = byPortal.get(p) ?? {};
    byPortal.set(p, outcomes);
    const days = outcomes[destination] ?? [];
    outcomes[destination] = days;
    let outcome = days.find((o) => o.day === day);
    if (!outcome) {
      outcome = { day, sent: 0, tooOld: 0, noVisitor: 0, failed: 0, linked: 0, notLinked: 0, processing: 0 };
      days.push(outcome);
    }
    return outcome;
  };
  const column: Record<string, "sent" | "tooOld" | "noVisitor" | "failed"> = { sent: "sent", too_old: "tooOld", no_visitor: "noVisitor", failed: "failed" };
  for (const r of states?.results ?? []) {
    const name = column[r.state ?? ""];
    if (name && (r.destination === "metrica" || r.destination === "ga4")) of(r.portal, r.destination, r.day)[name] += r.n ?? 0;
  }
  // Only Metrica says what linked, as in outcomes().
  for (const r of uploads?.results ?? []) Object.assign(of(r.portal, "metrica", r.day), { linked: r.linked ?? 0, notLinked: r.not_linked ?? 0, processing: r.processing ?? 0 });
  for (const outcomes of byPortal.values()) for (const days of Object.values(outcomes)) days.sort((a, b) => b.day.localeCompare(a.day));
  return byPortal;
}
