/**
 * Splits items into rounds so that no two items in one round share a key, and an item never runs
 * in an earlier round than an item before it that shares a key. Each round can then be looked up and
 * written to Bitrix24 together without two events racing for the same lead.
 */
export function splitIntoRounds<T>(items: readonly T[], keysOf: (item: T) => readonly string[]): T[][] {
  const rounds: T[][] = [];
  const lastRoundOfKey = new Map<string, number>();
  for (const item of items) {
    const keys = keysOf(item);
    const round = Math.max(-1, ...keys.map((k) => lastRoundOfKey.get(k) ?? -1)) + 1;
    const members = rounds[round] ?? [];
    members.push(item);
    rounds[round] = members;
    for (const k of keys) lastRoundOfKey.set(k, round);
  }
  return rounds;
}
