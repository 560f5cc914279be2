import type { ReportSpec } from "./report-fields";
import { RpcError } from "./rpc-error";

/*
 * The Data API's `filter` and `sort` for get methods (docs/data_api.txt:303-553; FACTS.md §1.5): a simple filter
 * `{field, operator, value}` or a tree `{filters: [...], condition: "and" | "or"}`, nestable. The sandbox checks a
 * filter whole before reading any row, as the server refuses a request rather than part of it.
 */

type Row = Record<string, unknown>;
type Filter = { field?: unknown; operator?: unknown; value?: unknown; filters?: unknown; condition?: unknown };

/** `in` and `not_in` are "Доступно не для всех методов" (data_api.txt:513-514): which methods, no page says. */
export interface InRefusal {
  /** Methods that refuse `in`/`not_in`. */
  methods: string[];
  /** The error they answer: the docs name none, and both fit (data_api.txt:248 and 250). */
  as: "invalid_parameter_value" | "filter_prohibited";
}

const EVALUATED = new Set(["=", "!=", "<", ">", "<=", ">=", "is_null", "is_not_null"]);

const invalid = (field: string, value?: unknown) =>
  new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field, ...(value === undefined ? {} : { value: typeof value === "string" ? value : JSON.stringify(value) }) });

/** Refuses a filter CoMagic would refuse: unknown fields, fields not filterable in this report, malformed trees. */
export function checkFilter(filter: unknown, spec: ReportSpec, method: string, inRefusal: InRefusal): void {
  if (filter === undefined) return;
  if (filter === null || typeof filter !== "object" || Array.isArray(filter)) throw new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field: "filter" });
  const f = filter as Filter;
  if (f.filters !== undefined) {
    if (!Array.isArray(f.filters)) throw new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field: "filter.filters" });
    if (f.condition !== undefined && f.condition !== "and" && f.condition !== "or") throw invalid("filter.condition", f.condition);
    for (const child of f.filters) checkFilter(child, spec, method, inRefusal);
    return;
  }
  if (typeof f.field !== "string") throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: "filter.field" });
  if (typeof f.operator !== "string") throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: "filter.operator" });
  // data_api.txt:240,323: a field that does not exist is unexpected_parameters; one that exists but may not be filtered, filter_prohibited (l.322).
  if (!spec.fields.includes(f.field)) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: "filter.field", value: f.field });
  if (!spec.filterable.includes(f.field)) throw new RpcError(-32602, "filter_prohibited", "Filter by parameter is prohibited", { field: `filter.${f.field}` });
  const operator = f.operator;
  if (operator === "in" || operator === "not_in") {
    if (inRefusal.methods.includes(method)) {
      if (inRefusal.as === "filter_prohibited") throw new RpcError(-32602, "filter_prohibited", "Filter by parameter is prohibited", { field: `filter.${f.field}` });
      throw invalid("filter.operator", operator);
    }
    if (!Array.isArray(f.value)) throw invalid("filter.value", f.value);
    return;
  }
  /*
   * The sandbox does not evaluate `like`, `ilike`, `regexp`, `jsquery`, `overlap` … (data_api.txt:507-518): it
   * refuses them as CoMagic refuses a filter "не соответствующих документации" (l.248), so a client using one
   * finds out in its tests rather than in production.
   */
  if (!EVALUATED.has(operator)) throw invalid("filter.operator", operator);
}

/** A missing field reads as null: "Фильтрация null и not null будет =null, !=null" (data_api.txt:497). */
function same(actual: unknown, value: unknown): boolean {
  if (value === null || actual === null || actual === undefined) return (actual ?? null) === value;
  return String(actual) === String(value);
}

/** Whether a row passes a filter already checked by checkFilter. */
export function matches(row: Row, filter: unknown): boolean {
  if (filter === undefined || filter === null) return true;
  const f = filter as Filter;
  if (Array.isArray(f.filters)) {
    const results = f.filters.map((child) => matches(row, child));
    return f.condition === "or" ? results.some(Boolean) : results.every(Boolean);
  }
  const actual = row[String(f.field)];
  switch (f.operator) {
    case "=":
      return same(actual, f.value);
    case "!=":
      return !same(actual, f.value);
    case "in":
      return (f.value as unknown[]).some((v) => same(actual, v));
    case "not_in":
      return !(f.value as unknown[]).some((v) => same(actual, v));
    case "is_null":
      return actual === null || actual === undefined;
    case "is_not_null":
      return actual !== null && actual !== undefined;
    default: {
      if (actual === null || actual === undefined) return false;
      const numeric = typeof actual === "number" && typeof f.value === "number";
      const a = numeric ? (actual as number) : String(actual);
      const b = numeric ? (f.value as number) : String(f.value);
      if (f.operator === "<") return a < b;
      if (f.operator === ">") return a > b;
      if (f.operator === "<=") return a <= b;
      return a >= b;
    }
  }
}

/** `sort`: `[{field, order: "asc" | "desc"}]`, only fields marked sortable (data_api.txt:520-553). */
export function checkSort(sort: unknown, spec: ReportSpec): { field: string; order: "asc" | "desc" }[] {
  if (sort === undefined) return [];
  if (!Array.isArray(sort)) throw new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field: "sort" });
  return sort.map((item) => {
    const { field, order = "asc" } = (item ?? {}) as { field?: unknown; order?: unknown };
    if (typeof field !== "string") throw new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field: "sort.field" });
    if (!spec.fields.includes(field)) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: "sort.field", value: field });
    if (spec.sortable && !spec.sortable.includes(field)) throw new RpcError(-32602, "sort_prohibited", "Sort by parameter is prohibited", { field: `sort.${field}` });
    if (order !== "asc" && order !== "desc") throw invalid("sort.order", order);
    return { field, order };
  });
}

/** Orders rows by the sort keys in turn (a stable sort keeps the report's own order among equals). */
export function applySort(rows: Row[], keys: { field: string; order: "asc" | "desc" }[]): Row[] {
  if (keys.length === 0) return rows;
  const compare = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" ? a - b : String(a ?? "").localeCompare(String(b ?? "")));
  return [...rows].sort((x, y) => {
    for (const { field, order } of keys) {
      const c = compare(x[field], y[field]);
      if (c !== 0) return order === "asc" ? c : -c;
    }
    return 0;
  });
}
