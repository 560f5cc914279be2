import { readFileSync } from "node:fs";

/*
 * What each Data API report lets a client ask for: its fields, the defaults sent when `fields` is omitted, and
 * which fields may be filtered or sorted on. For the five classic reports this is read from `fields/*.tsv`,
 * verbatim copies of ../shared/reference/comagic/samples/fields_get_*_report.tsv (the vendor docs' tables; a
 * unit test keeps them equal), so the sandbox refuses exactly what the docs say CoMagic refuses.
 */

export interface ReportSpec {
  /** Top-level fields a row has and `fields` may name (an array's members are not fields of their own). */
  fields: string[];
  /** Fields returned when `fields` is omitted (FACTS.md §1.5: "only the default fields"). */
  defaults: string[];
  /** Fields a filter may name; any other known field is `filter_prohibited` (data_api.txt:318-322). */
  filterable: string[];
  /** Fields `sort` may name; any other known field is `sort_prohibited` (data_api.txt:529-534). Null: not checked. */
  sortable: string[] | null;
  /** Fields typed `array`: empty ones come as `[]`, not null (FACTS.md §1.1: "empty array [] … for collections"). */
  arrays: string[];
}

/*
 * The tables list an array's members right after it (e.g. `tags` then `tag_id`, `tag_name` …, FACTS.md §2.1:
 * `tags[{tag_id,tag_name…}]`, `employees[{employee_id…}]`, `scenario_operations[{id,name}]`): they are keys of
 * the array's objects, not fields a row has. These are the members the tables list after each array.
 */
const ARRAY_MEMBERS: Record<string, string[]> = {
  tags: ["tag_id", "tag_name", "tag_change_time", "tag_type", "tag_user_id", "tag_user_login", "tag_employee_id", "tag_employee_full_name"],
  employees: ["employee_id", "employee_full_name", "is_answered", "is_talked"],
  scenario_operations: ["id", "name"],
  visitor_custom_properties: ["property_name", "property_value"],
  segments: ["segment_id", "segment_name"],
  hits: ["hit_time", "hit_duration", "hit_url"],
  communications: ["communication_type", "communication_id", "communication_date_time"],
};

/** Reads one table: `field`, `type`, `filterable`, `sortable`, `default_in_response`, "да" meaning yes. */
export function parseFieldTable(tsv: string): ReportSpec {
  const lines = tsv.split(/\r?\n/).filter((line) => line.trim() !== "");
  const spec: ReportSpec = { fields: [], defaults: [], filterable: [], sortable: [], arrays: [] };
  let members: string[] = [];
  for (const line of lines.slice(1)) {
    const [name = "", type = "", filterable = "", sortable = "", inDefault = ""] = line.split("\t");
    if (members.includes(name)) continue;
    members = type === "array" ? (ARRAY_MEMBERS[name] ?? []) : [];
    spec.fields.push(name);
    /*
     * "?": fields_get_chats_report.tsv could not read `visitor_device`'s flags; the docs page's garbled row
     * (data_api__report__get_chats_report.txt:144-150) ends "да | да | | Устройство посетителя": filterable and
     * sortable, not a default.
     */
    if (filterable === "да" || filterable === "?") spec.filterable.push(name);
    if (sortable === "да" || sortable === "?") spec.sortable?.push(name);
    if (inDefault === "да") spec.defaults.push(name);
    if (type === "array") spec.arrays.push(name);
  }
  return spec;
}

function table(report: string): ReportSpec {
  return parseFieldTable(readFileSync(new URL(`./fields/fields_get_${report}_report.tsv`, import.meta.url), "utf8"));
}

/** The tables the sandbox serves, by method. */
export const TABLE_FILES: Record<string, string> = {
  "get.visitor_sessions_report": "visitor_sessions",
  "get.communications_report": "communications",
  "get.calls_report": "calls",
  "get.chats_report": "chats",
  "get.offline_messages_report": "offline_messages",
};

export function tableSpecs(): Record<string, ReportSpec> {
  return Object.fromEntries(Object.entries(TABLE_FILES).map(([method, report]) => [method, table(report)]));
}

/*
 * get.chat_messages_report has no table in samples/: this is its docs page's
 * (data_api__report__get_chat_messages_report.txt:37-79).
 */
export const CHAT_MESSAGES_SPEC: ReportSpec = {
  fields: ["id", "chat_id", "channel_id", "channel_type", "date_time", "is_group_chat", "visitor_id", "text", "source", "resource", "employee_id", "employee_full_name"],
  defaults: ["id", "chat_id", "date_time", "is_group_chat", "visitor_id", "text", "source", "resource", "employee_id", "employee_full_name"],
  filterable: ["id", "chat_id", "channel_id", "channel_type", "employee_id"],
  sortable: ["channel_type", "date_time", "employee_id"],
  arrays: [],
};

/*
 * ../shared/reference/comagic/docs/data_api__report__get_campaign_daily_stat.txt: `site_id` required, one row per
 * day, campaign, keyword and banner; `cost_sum` a string in the ad system's currency, `currency` per row
 * (FACTS-calls §5: values undocumented, so rows may say "RUB", "rub" or "RUR"). No UTM fields. Its table's
 * flags are not in samples/; sorting is not checked.
 */
export const CAMPAIGN_DAILY_STAT_SPEC: ReportSpec = {
  fields: [
    "date",
    "site_id",
    "site_domain_name",
    "campaign_id",
    "campaign_name",
    "campaign_ext_id",
    "campaign_ext_name",
    "engine",
    "keyword",
    "cost_sum",
    "currency",
    "shows_count",
    "clicks_count",
    "visits_count",
  ],
  defaults: ["date", "site_id", "site_domain_name", "campaign_id", "campaign_name", "campaign_ext_id", "campaign_ext_name", "engine", "cost_sum", "shows_count", "clicks_count"],
  filterable: ["date", "site_id", "site_domain_name", "campaign_id", "campaign_name", "campaign_ext_id", "campaign_ext_name"],
  sortable: null,
  arrays: [],
};
