/**
 * 503: refused before any work (QUERY_LIMIT_EXCEEDED). 500: the work is done, then an error is returned.
 * timeout: the work is done, then the answer is held for `delayMs`. drop: the work is done, then the
 * connection is cut without an answer.
 */
export type FaultKind = "503" | "500" | "timeout" | "drop";

/** A fault aimed at the next requests that run a given method (in a `batch` too), after the work is done. */
export interface TargetedFault {
  method: string;
  kind: Exclude<FaultKind, "503">;
  times: number;
}

export interface FaultSettings {
  /** Share of REST requests that fail, 0..1. */
  rate: number;
  kinds: FaultKind[];
  /** How long a `timeout` fault holds the answer; set it past the client's timeout. */
  delayMs: number;
  seed: number;
  targeted: TargetedFault[];
}

export const NO_FAULTS: FaultSettings = { rate: 0, kinds: ["503", "500", "timeout"], delayMs: 30_000, seed: 1, targeted: [] };
const NONE_INJECTED = (): Record<FaultKind, number> => ({ "503": 0, "500": 0, timeout: 0, drop: 0 });

/** Deterministic faults (mulberry32), so a failing run can be repeated with the same seed. */
export class FaultInjector {
  private state: number;
  injected: Record<FaultKind, number> = NONE_INJECTED();

  constructor(public settings: FaultSettings = NO_FAULTS) {
    this.state = settings.seed;
  }

  resetCounts(): void {
    this.injected = NONE_INJECTED();
  }

  configure(settings: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...settings };
    this.state = this.settings.seed;
  }

  private random(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** The targeted fault for a request that ran these methods, if one is still armed. */
  targetedAt(methods: readonly string[]): FaultKind | null {
    const rule = this.settings.targeted.find((t) => t.times > 0 && methods.includes(t.method));
    if (!rule) return null;
    rule.times -= 1;
    this.injected[rule.kind] += 1;
    return rule.kind;
  }

  next(): FaultKind | null {
    const { rate, kinds } = this.settings;
    if (rate <= 0 || kinds.length === 0 || this.random() >= rate) return null;
    const kind = kinds[Math.floor(this.random() * kinds.length)] ?? null;
    if (kind) this.injected[kind] += 1;
    return kind;
  }
}
