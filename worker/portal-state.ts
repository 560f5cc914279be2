/**
 * One Durable Object per portal (named by the portal): its serial point. It holds the portal's Bitrix24 request
 * budget, shared by every consumer of that portal, and the lease that keeps the portal's writes serial while the
 * consumers run side by side. Each method decides and records in one synchronous SQLite transaction and returns;
 * the caller makes the Bitrix24 request. The object never waits on I/O, so calls never interleave, and keeps
 * nothing in memory: it hibernates after seconds idle and restarts on every deploy (cloudflare/FACTS.md §1.3, §1.6).
 * The rules themselves are pure, in domain/request-budget.ts.
 */
import { DurableObject } from "cloudflare:workers";
import * as z from "zod";
import { type Admission, BITRIX_LIMITS, type BucketLimits, type BucketState, type Lease, acquireLease, admit, drain, fullBucket, refill, releaseLease, take } from "./domain/request-budget";
import type { Env } from "./env";

/*
 * Schema versions, applied in order once each; `_schema` records the applied ones (SQLite in a Durable Object has
 * no PRAGMA user_version, cloudflare/FACTS.md §1.2). Never edit an applied step: add one. `budget` and `lease` hold
 * one row each (id 1); the budget's counters sit in its row so that a permit costs one row written.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE budget (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     tokens REAL NOT NULL,
     updated_ms INTEGER NOT NULL,
     since_ms INTEGER NOT NULL,
     granted INTEGER NOT NULL DEFAULT 0,
     permits INTEGER NOT NULL DEFAULT 0,
     refused INTEGER NOT NULL DEFAULT 0,
     drained INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE lease (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, until_ms INTEGER NOT NULL);`,
  // The admission horizon (domain/request-budget.ts `admit`): until when the portal's budget is spoken for.
  `CREATE TABLE admission (id INTEGER PRIMARY KEY CHECK (id = 1), horizon_ms INTEGER NOT NULL, admitted INTEGER NOT NULL DEFAULT 0, refused INTEGER NOT NULL DEFAULT 0);`,
  // Refused work's return slots (domain/request-budget.ts `admit`), so a backlog comes back spread out.
  `ALTER TABLE admission ADD COLUMN return_ms INTEGER NOT NULL DEFAULT 0;`,
];

/** RPC arguments come from other deploys' code too: checked like any edge. */
const limitsSchema = z.object({ perSecond: z.number().positive().max(1_000), burst: z.number().int().min(1).max(10_000) });
const permitsSchema = z.number().int().min(1);
const ownerSchema = z.string().min(1).max(200);
const ttlSchema = z.number().int().min(1);

type BudgetRow = { tokens: number; updated_ms: number; since_ms: number; granted: number; permits: number; refused: number; drained: number };

export interface BudgetStats {
  /** When the counters started (the portal's first permit), or null before it. */
  sinceMs: number | null;
  /** Calls of `take` that were granted, and the permits they took (a call may take several). */
  granted: number;
  permits: number;
  /** Calls of `take` told to wait. */
  refused: number;
  /** Times Bitrix24 answered QUERY_LIMIT_EXCEEDED anyway (the goal is none). */
  drained: number;
  /** Permits available now under the default limits. */
  tokens: number;
  lease: Lease | null;
}

export class PortalState extends DurableObject<Env> {
  /** False after `erase()`: the next call creates the tables again. */
  private migrated = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Migrations only: nothing else may block the object (cloudflare/FACTS.md §1.3).
    void ctx.blockConcurrencyWhile(async () => this.migrate());
  }

  /** Permits for `n` Bitrix24 HTTP requests (a `batch` is one), all or none; refused: ask again after `waitMs`. */
  take(n: number, limits?: BucketLimits): { granted: boolean; waitMs: number } {
    const permits = permitsSchema.parse(n);
    const bucketLimits = limits === undefined ? BITRIX_LIMITS : limitsSchema.parse(limits);
    return this.transaction(() => {
      const now = Date.now();
      const row = this.budgetRow();
      const outcome = take(row ? bucketOf(row) : fullBucket(now, bucketLimits), permits, now, bucketLimits);
      this.saveBudget(outcome.state, now, outcome.granted ? { granted: 1, permits, refused: 0, drained: 0 } : { granted: 0, permits: 0, refused: 1, drained: 0 });
      return { granted: outcome.granted, waitMs: outcome.waitMs };
    });
  }

  /**
   * Admits a round of work costing about `cost` permits while the portal's budget is spoken for at most `maxWaitMs`
   * ahead; else refuses, booking nothing, and says how long until it would be admitted.
   */
  admit(cost: number, maxWaitMs: number, limits?: BucketLimits): { admitted: boolean; waitMs: number; mark: number } {
    const permits = permitsSchema.parse(cost);
    const ahead = z.number().int().min(0).max(600_000).parse(maxWaitMs);
    const bucketLimits = limits === undefined ? BITRIX_LIMITS : limitsSchema.parse(limits);
    return this.transaction(() => {
      const now = Date.now();
      const outcome = admit(this.admissionRow() ?? { horizonMs: 0, returnMs: 0 }, permits, now, ahead, bucketLimits);
      this.ctx.storage.sql.exec(
        `INSERT INTO admission (id, horizon_ms, return_ms, admitted, refused) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET horizon_ms = excluded.horizon_ms, return_ms = excluded.return_ms,
           admitted = admitted + excluded.admitted, refused = refused + excluded.refused`,
        Math.round(outcome.admission.horizonMs),
        Math.round(outcome.admission.returnMs),
        outcome.admitted ? 1 : 0,
        outcome.admitted ? 0 : 1,
      );
      // The permits granted so far: `settle` gives back what the round booked and did not take.
      return { admitted: outcome.admitted, waitMs: Math.round(outcome.waitMs), mark: this.budgetRow()?.permits ?? 0 };
    });
  }

  /**
   * An admitted round is over: the permits it booked but nobody took since `mark` (the round used fewer Bitrix24
   * requests than booked) come off the horizon, so rounds that barely call Bitrix24 never make the portal look busy.
   */
  settle(mark: number, booked: number, limits?: BucketLimits): void {
    const from = z.number().int().min(0).parse(mark);
    const cost = permitsSchema.parse(booked);
    const bucketLimits = limits === undefined ? BITRIX_LIMITS : limitsSchema.parse(limits);
    this.transaction(() => {
      const now = Date.now();
      const unused = Math.max(0, cost - ((this.budgetRow()?.permits ?? 0) - from));
      if (unused === 0) return;
      const row = this.admissionRow();
      if (!row) return;
      this.ctx.storage.sql.exec("UPDATE admission SET horizon_ms = ? WHERE id = 1", Math.max(now, Math.round(row.horizonMs - (unused * 1000) / bucketLimits.perSecond)));
    });
  }

  /** Bitrix24 refused with QUERY_LIMIT_EXCEEDED all the same: no permits until the bucket refills from now. */
  drain(): void {
    this.transaction(() => {
      const now = Date.now();
      const row = this.budgetRow();
      this.saveBudget(drain(row ? bucketOf(row) : { tokens: 0, updatedMs: now }, now), now, { granted: 0, permits: 0, refused: 0, drained: 1 });
    });
  }

  /** The portal's serial lease for `owner` for `ttlMs` (renewed if already theirs); else how long the holder keeps it. */
  lease(owner: string, ttlMs: number): { held: boolean; waitMs: number } {
    const who = ownerSchema.parse(owner);
    const ttl = ttlSchema.parse(ttlMs);
    return this.transaction(() => {
      const outcome = acquireLease(this.leaseRow(), who, ttl, Date.now());
      if (outcome.held) {
        this.ctx.storage.sql.exec(
          "INSERT INTO lease (id, owner, until_ms) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms",
          outcome.lease.owner,
          outcome.lease.untilMs,
        );
      }
      return { held: outcome.held, waitMs: outcome.waitMs };
    });
  }

  /** Ends `owner`'s lease; a release by anyone else changes nothing. */
  release(owner: string): void {
    const who = ownerSchema.parse(owner);
    this.transaction(() => {
      if (releaseLease(this.leaseRow(), who) === null) this.ctx.storage.sql.exec("DELETE FROM lease");
    });
  }

  /** The budget's counters and the lease, for the bench, read from the rows: memory does not survive idling. */
  stats(): BudgetStats {
    return this.transaction(() => {
      const row = this.budgetRow();
      const now = Date.now();
      const tokens = row ? refill(bucketOf(row), now, BITRIX_LIMITS).tokens : BITRIX_LIMITS.burst;
      const lease = this.leaseRow();
      return {
        sinceMs: row?.since_ms ?? null,
        granted: row?.granted ?? 0,
        permits: row?.permits ?? 0,
        refused: row?.refused ?? 0,
        drained: row?.drained ?? 0,
        tokens,
        lease: lease && lease.untilMs > now ? lease : null,
      };
    });
  }

  /** Deletes everything the object stores (the portal is uninstalled) and names the tables that went. */
  async erase(): Promise<{ deleted: string[] }> {
    this.ensureSchema();
    const deleted = this.ctx.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")
      .toArray()
      .map((row) => row.name);
    // Atomic for SQLite-backed objects, alarm included (cloudflare/FACTS.md §1.3).
    await this.ctx.storage.deleteAll();
    this.migrated = false;
    return { deleted };
  }

  private transaction<T>(work: () => T): T {
    this.ensureSchema();
    return this.ctx.storage.transactionSync(work);
  }

  private ensureSchema(): void {
    if (!this.migrated) this.migrate();
  }

  private migrate(): void {
    const { sql } = this.ctx.storage;
    this.ctx.storage.transactionSync(() => {
      sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)");
      const applied = sql.exec<{ version: number | null }>("SELECT MAX(version) AS version FROM _schema").one().version ?? 0;
      for (let version = applied + 1; version <= MIGRATIONS.length; version++) {
        sql.exec(MIGRATIONS[version - 1] ?? "");
        sql.exec("INSERT INTO _schema (version, applied_ms) VALUES (?, ?)", version, Date.now());
      }
    });
    this.migrated = true;
  }

  private budgetRow(): BudgetRow | null {
    return this.ctx.storage.sql.exec<BudgetRow>("SELECT tokens, updated_ms, since_ms, granted, permits, refused, drained FROM budget WHERE id = 1").toArray()[0] ?? null;
  }

  private admissionRow(): Admission | null {
    const row = this.ctx.storage.sql.exec<{ horizon_ms: number; return_ms: number }>("SELECT horizon_ms, return_ms FROM admission WHERE id = 1").toArray()[0];
    return row ? { horizonMs: row.horizon_ms, returnMs: row.return_ms } : null;
  }

  private leaseRow(): Lease | null {
    const row = this.ctx.storage.sql.exec<{ owner: string; until_ms: number }>("SELECT owner, until_ms FROM lease WHERE id = 1").toArray()[0];
    return row ? { owner: row.owner, untilMs: row.until_ms } : null;
  }

  private saveBudget(state: BucketState, now: number, add: { granted: number; permits: number; refused: number; drained: number }): void {
    this.ctx.storage.sql.exec(
      `INSERT INTO budget (id, tokens, updated_ms, since_ms, granted, permits, refused, drained) VALUES (1, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms, granted = granted + excluded.granted,
         permits = permits + excluded.permits, refused = refused + excluded.refused, drained = drained + excluded.drained`,
      state.tokens,
      state.updatedMs,
      now,
      add.granted,
      add.permits,
      add.refused,
      add.drained,
    );
  }
}

function bucketOf(row: BudgetRow): BucketState {
  return { tokens: row.tokens, updatedMs: row.updated_ms };
}
