/*
 * A D1 binding that counts its commits: D1 has one writer for every portal, and each commit (a `batch()`, or a
 * lone write's `run()`) costs it several ms (docs/performance.md), so how many a job makes is what the tests
 * count. It can also refuse a commit the way D1 does (all its statements or none), for a statement the test picks.
 */

export interface Commit {
  /** The SQL of each write statement in the commit, in order. */
  statements: string[];
  /** Every value bound to the commit's statements. */
  values: unknown[];
}

export interface D1Spy {
  db: D1Database;
  commits: Commit[];
  /** Commits that wrote to this table. */
  commitsTo(table: string): number;
  reset(): void;
}

type Seen = { real: D1PreparedStatement; sql: string; values: unknown[] };

const isWrite = (sql: string) => !/^\s*select\b/i.test(sql);

/**
 * Wraps `db`. `refuse(sql, values)` true for any statement of a commit fails that commit before D1 sees it,
 * with D1's own kind of error: nothing of it is written.
 */
export function spyOnD1(db: D1Database, refuse: (sql: string, values: unknown[]) => boolean = () => false): D1Spy {
  const commits: Commit[] = [];
  const seen = new WeakMap<D1PreparedStatement, Seen>();
  const commit = (statements: Seen[]) => {
    const writes = statements.filter((s) => isWrite(s.sql));
    if (writes.length === 0) return;
    if (statements.some((s) => refuse(s.sql, s.values))) throw new Error("D1_ERROR: refused by the test");
    commits.push({ statements: writes.map((s) => s.sql), values: writes.flatMap((s) => s.values) });
  };
  const wrap = (real: D1PreparedStatement, sql: string, values: unknown[]): D1PreparedStatement => {
    const statement = {
      bind: (...bound: unknown[]) => wrap(real.bind(...bound), sql, bound),
      first: (column?: string) => (column === undefined ? real.first() : real.first(column)),
      all: () => real.all(),
      raw: (options?: { columnNames?: boolean }) => real.raw(options as { columnNames: true }),
      run: async () => {
        commit([{ real, sql, values }]);
        return real.run();
      },
    } as unknown as D1PreparedStatement;
    seen.set(statement, { real, sql, values });
    return statement;
  };
  const spy = {
    prepare: (sql: string) => wrap(db.prepare(sql), sql, []),
    batch: async (statements: D1PreparedStatement[]) => {
      const unwrapped = statements.map((s) => seen.get(s) ?? { real: s, sql: "?", values: [] });
      commit(unwrapped);
      return db.batch(unwrapped.map((s) => s.real));
    },
    exec: async (sql: string) => {
      commit([{ real: db.prepare("SELECT 1"), sql, values: [] }]);
      return db.exec(sql);
    },
    dump: () => db.dump(),
    withSession: () => {
      throw new Error("the D1 spy has no sessions");
    },
  } as unknown as D1Database;
  return {
    db: spy,
    commits,
    commitsTo: (table) => commits.filter((c) => c.statements.some((sql) => new RegExp(`\\b${table}\\b`, "i").test(sql))).length,
    reset: () => {
      commits.length = 0;
    },
  };
}
