/*
 * Reads rows whose column is any of many values: D1 allows 100 bound parameters a statement, so the values go in
 * slices of 90, one statement each, leaving room for the portal and a few more. `sql` gets the slice's placeholders.
 */
const VALUES_PER_STATEMENT = 90;

export async function selectAnyOf<T>(db: D1Database, sql: (placeholders: string) => string, leading: readonly unknown[], values: readonly string[]): Promise<T[]> {
  const unique = [...new Set(values)];
  const rows: T[] = [];
  for (let i = 0; i < unique.length; i += VALUES_PER_STATEMENT) {
    const part = unique.slice(i, i + VALUES_PER_STATEMENT);
    const { results } = await db
      .prepare(sql(part.map(() => "?").join(",")))
      .bind(...leading, ...part)
      .all<T>();
    rows.push(...results);
  }
  return rows;
}
