/**
 * Bitrix24's request limit: a counter that rises by one per HTTP request and drains at a fixed rate;
 * a request that finds it full is refused with 503 QUERY_LIMIT_EXCEEDED (FACTS.md §4.1).
 */
export class LeakyBucket {
  private level = 0;
  private updatedAt: number;

  constructor(
    public drainPerSecond: number,
    public burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.updatedAt = now();
  }

  tryTake(): boolean {
    const t = this.now();
    this.level = Math.max(0, this.level - ((t - this.updatedAt) / 1000) * this.drainPerSecond);
    this.updatedAt = t;
    if (this.level + 1 > this.burst) return false;
    this.level += 1;
    return true;
  }

  reset(): void {
    this.level = 0;
    this.updatedAt = this.now();
  }
}
