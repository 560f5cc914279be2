/*
 * A portal's Bitrix24 request budget and its serial lease, as pure rules over stored state. Bitrix24 counts every
 * HTTP request to a portal (a `batch` is one) in a leaky bucket that drains 2 a second and refuses with 503
 * QUERY_LIMIT_EXCEEDED above 50 (Enterprise: 5 a second, 250; bitrix24/FACTS.md §4.1). Its mirror here is a token
 * bucket refilled lazily from `{ tokens, updatedMs }`, so nothing runs between requests and nothing lives in memory:
 * the portal's Durable Object (worker/portal-state.ts) stores the state, passes the time in, and grants permits;
 * the caller makes the HTTP request itself. Times are epoch milliseconds.
 */

export interface BucketLimits {
  /** Permits added a second: Bitrix24's drain rate. */
  perSecond: number;
  /** Most permits granted at once after a quiet spell. */
  burst: number;
}

export interface BucketState {
  tokens: number;
  updatedMs: number;
}

/*
 * Bitrix24's real numbers are 2/s and 50. The rate is kept at 2/s (the issue's bench checks ≤ 2/s per portal, and a
 * slower drain would only add latency), while the burst keeps 10 of the 50 in reserve: Bitrix24 also counts other
 * applications on the same portal from the same address, a permit's request reaches Bitrix24 a little after the grant
 * (so several granted a moment apart may land together), and its counter drains on its own clock, not ours.
 */
export const BITRIX_LIMITS: BucketLimits = { perSecond: 2, burst: 40 };
/** Enterprise plans: 5/s and 250, with the same one-fifth of the burst in reserve. */
export const BITRIX_ENTERPRISE_LIMITS: BucketLimits = { perSecond: 5, burst: 200 };

/** Floating-point refills (0.1 + 0.2 …) must not refuse a permit that has in fact accrued. */
const EPSILON = 1e-9;

/** A portal seen for the first time: Bitrix24's counter for it is assumed empty. */
export function fullBucket(nowMs: number, limits: BucketLimits): BucketState {
  return { tokens: limits.burst, updatedMs: nowMs };
}

/** The bucket at `nowMs`: permits accrued since the last update, never above the burst; a clock going back adds none. */
export function refill(state: BucketState, nowMs: number, limits: BucketLimits): BucketState {
  const elapsedMs = Math.max(0, nowMs - state.updatedMs);
  return { tokens: Math.min(limits.burst, state.tokens + (elapsedMs * limits.perSecond) / 1000), updatedMs: Math.max(state.updatedMs, nowMs) };
}

export interface TakeOutcome {
  state: BucketState;
  granted: boolean;
  /** 0 when granted; else how long until `n` permits will have accrued (asking sooner is refused again). */
  waitMs: number;
}

/**
 * Permits for `n` HTTP requests, all or none. A refusal reserves nothing: the caller waits `waitMs` and asks again,
 * so a caller that gives up wastes no permit. More than the burst can never be granted and is refused as a bug.
 */
export function take(state: BucketState, n: number, nowMs: number, limits: BucketLimits): TakeOutcome {
  assertLimits(limits);
  if (!Number.isInteger(n) || n < 1 || n > limits.burst) throw new RangeError(`permits must be an integer from 1 to ${limits.burst}, got ${n}`);
  const current = refill(state, nowMs, limits);
  if (current.tokens + EPSILON >= n) return { state: { ...current, tokens: Math.max(0, current.tokens - n) }, granted: true, waitMs: 0 };
  return { state: current, granted: false, waitMs: Math.max(1, Math.ceil(((n - current.tokens) * 1000) / limits.perSecond)) };
}

/**
 * Bitrix24 answered QUERY_LIMIT_EXCEEDED anyway (another application, or its clock ahead of ours): its counter is full,
 * so ours is emptied too and refills from now, as the official SDK does (bitrix24/FACTS.md §4.2: tokens := 0).
 */
export function drain(state: BucketState, nowMs: number): BucketState {
  return { tokens: 0, updatedMs: Math.max(state.updatedMs, nowMs) };
}

export function assertLimits(limits: BucketLimits): void {
  const { perSecond, burst } = limits;
  if (!(Number.isFinite(perSecond) && perSecond > 0) || !(Number.isInteger(burst) && burst >= 1)) {
    throw new RangeError(`limits need perSecond > 0 and an integer burst ≥ 1, got ${perSecond}/s and ${burst}`);
  }
}

/**
 * The serial lease: one owner at a time (a consumer working on the portal) until `untilMs`. A holder that dies
 * without releasing blocks the others only until its lease ends.
 */
export interface Lease {
  owner: string;
  untilMs: number;
}

/**
 * A queue consumer runs for at most 15 minutes of wall time (cloudflare/FACTS.md §2, §6): no holder can need longer,
 * and a longer lease would outlive its holder.
 */
export const MAX_LEASE_MS = 15 * 60_000;

export type LeaseOutcome = { lease: Lease; held: true; waitMs: 0 } | { lease: Lease; held: false; waitMs: number };

/** Free, expired, or already ours (then renewed to `nowMs + ttlMs`): ours. Else: wait until the holder's lease ends. */
export function acquireLease(current: Lease | null, owner: string, ttlMs: number, nowMs: number): LeaseOutcome {
  if (owner.length === 0) throw new RangeError("a lease needs an owner");
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LEASE_MS) throw new RangeError(`a lease lasts 1 to ${MAX_LEASE_MS} ms, got ${ttlMs}`);
  if (current === null || current.untilMs <= nowMs || current.owner === owner) return { lease: { owner, untilMs: nowMs + ttlMs }, held: true, waitMs: 0 };
  return { lease: current, held: false, waitMs: current.untilMs - nowMs };
}

/** Only the holder releases; anyone else's release changes nothing (it may come after the lease passed on). */
export function releaseLease(current: Lease | null, owner: string): Lease | null {
  return current !== null && current.owner === owner ? null : current;
}

/**
 * Admission of work to a portal (a consumer's group of messages), apart from the per-request permits above: each
 * admitted round books `cost` permits' worth of time on a horizon (GCRA: the time the portal's budget is spoken for
 * until). Work is admitted while the horizon is at most `maxWaitMs` ahead, so a consumer never sits long in a
 * portal's waits; further work is refused, without booking, with the wait until it would be admitted, and goes
 * back to the queue. A portal draining a backlog thus takes its turns at its own pace, while other portals' messages
 * in the same consumer are written at once.
 */
export interface Admission {
  /** Until when the portal's budget is spoken for by admitted work. */
  horizonMs: number;
  /** The last return slot given to refused work: each refusal gets the next, so a backlog comes back spread out. */
  returnMs: number;
}
export type AdmitOutcome = { admitted: boolean; admission: Admission; waitMs: number };

export function admit(current: Admission, cost: number, nowMs: number, maxWaitMs: number, limits: BucketLimits): AdmitOutcome {
  if (!Number.isFinite(cost) || cost <= 0) throw new RangeError(`an admission costs more than 0 permits, got ${cost}`);
  const step = (cost * 1000) / limits.perSecond;
  const start = Math.max(current.horizonMs, nowMs);
  const ahead = start - nowMs;
  if (ahead <= maxWaitMs) return { admitted: true, admission: { ...current, horizonMs: start + step }, waitMs: ahead };
  // Not the same wait for every refused share (they would all come back at once, and most go round again): a slot
  // after the last one given, a round's time apart, as fast as the portal can write them.
  const slot = Math.max(current.returnMs, start - maxWaitMs);
  return { admitted: false, admission: { ...current, returnMs: slot + step }, waitMs: slot - nowMs };
}
