/**
 * CoMagic's sales funnels and `upload.deals_history` (Data API v2.0) as ../shared/reference/FACTS-loop.md §1 and §6
 * describe them, with every unkind part a sandbox must imitate: one invalid record fails the whole request and stores
 * nothing (§1.5, §6.1); a deal's stage times never go backwards, across requests and within one (§1.4, §6.2); a
 * communication more than 30 days older than the deal is silently not linked, and a link changes only when the stage
 * time advances (§1.5, §6.4); nothing works until the admin connects end-to-end analytics with «Другая CRM» (§1.1).
 * Points are charged by data-api.ts's dispatch like every other method (§1.5 "Все операции — 1", §6.6).
 * Error mnemonics for `upload.*` are undocumented (§1.4, §8.1): the sandbox uses the generic -32602 family and never
 * says which record was wrong (no index in `field`), so a client cannot lean on a kinder answer than CoMagic's.
 */
import { Hono } from "hono";
import { parseComagicDateTime } from "../../worker/domain/comagic-time";
import { matches } from "./report-filter";
import { RpcError } from "./rpc-error";

type Params = Record<string, unknown>;
type StageStatus = "in_process" | "success" | "failed";

interface Stage {
  ext_id: string;
  name: string;
  status: StageStatus;
  order: number;
}
interface Funnel {
  ext_id: string;
  name: string;
  stages: Stage[];
}
interface StageEntry {
  stage_ext_id: string;
  modified_stage_date_time: string;
  /** §1.5: a skipped intermediate stage is made up by CoMagic with is_generated = True. */
  is_generated: boolean;
}
export interface StoredDeal {
  ext_id: string;
  name: string;
  sales_funnel_ext_id: string;
  stage_ext_id: string;
  created_date_time: string;
  modified_stage_date_time: string;
  closed_date_time: string | null;
  revenue: number | null;
  employee_ext_id: string | null;
  comments: string | null;
  /** What the last accepted record asked to link to. */
  communication: { id: number; type: string } | null;
  /** What CoMagic actually linked (null: nothing; §1.5 the 30-day filter drops silently). */
  linked: { communication_id: number; communication_type: string } | null;
  /** Why `linked` is null although a communication was sent: the sandbox's view, never told to the client. */
  not_linked_reason: "older_than_30_days" | "communication_not_found" | null;
  history: StageEntry[];
  /** Records of this deal accepted so far (a re-send of the same stage is an update, §1.5). */
  records: number;
  uploaded_at: number;
}

export interface DealsSettings {
  /** §1.1: end-to-end analytics connected with «Другая CRM». Off: every funnel and deal method is refused. */
  endToEndAnalytics: boolean;
  /**
   * §1.1: which error a not-connected account answers is not documented: -32008 method_component_disabled (the
   * generic component error, comagic/FACTS.md §1.3) or -32602 tariff_restrictions (the create/update list).
   */
  refusedAs: "method_component_disabled" | "tariff_restrictions";
  /** §1.5, §6.5: uploaded deals stay "in processing" (absent from get.deals_history) this long. */
  processingMs: number;
}

const DEFAULTS: DealsSettings = { endToEndAnalytics: false, refusedAs: "method_component_disabled", processingMs: 0 };

const DATE_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
/** §1.4 "Лимит 1000 сделок". */
const MAX_DEALS = 1000;
/** §1.2 "Минимум 1, максимум 100 этапов в одной воронке"; order "максимальное значение 10000". */
const MAX_IN_PROCESS = 100;
const MAX_ORDER = 10_000;
/** §1.5 "время между обращением и созданием сущности более 30 дней". */
const LINK_WINDOW_MS = 30 * 86_400_000;
/** §1.4 communication_type values. */
const COMMUNICATION_TYPES = ["chat", "offline_message", "call", "goal", "email"];
/** §1.4: the fields a deal record may carry. */
const DEAL_FIELDS = [
  "ext_id",
  "name",
  "created_date_time",
  "modified_date_time",
  "modified_stage_date_time",
  "closed_date_time",
  "contact_ext_ids",
  "main_contact_ext_id",
  "employee_ext_id",
  "lead_ext_id",
  "company_ext_id",
  "revenue",
  "sales_funnel_ext_id",
  "stage_ext_id",
  "comments",
  "source",
  "communication_id",
  "communication_type",
  "user_fields",
  "tags",
  "child_customer_id",
];
const GET_PARAMS = ["access_token", "user_id", "limit", "offset", "filter", "fields", "sort"];
const DEAL_HISTORY_FIELDS = [
  "ext_id",
  "name",
  "created_date_time",
  "closed_date_time",
  "modified_stage_date_time",
  "main_contact_ext_id",
  "employee_ext_id",
  "revenue",
  "sales_funnel_ext_id",
  "stage_ext_id",
  "comments",
  "is_generated",
  "communication_id",
  "communication_type",
];

const missed = (field: string) => new RpcError(-32602, "required_parameter_missed", "The required parameter has been missed", { field });
const wrongType = (field: string) => new RpcError(-32602, "data_type_error", "Data supplied is of wrong type", { field });
const invalid = (field: string) => new RpcError(-32602, "invalid_parameter_value", "Invalid parameter value", { field });
const badTime = (field: string) => new RpcError(-32602, "invalid_date_time", "Invalid date time", { field });
const notFound = (field: string) => new RpcError(-32602, "entity_not_found", "Entity not found", { field });
const duplicate = (field: string) => new RpcError(-32602, "duplicate_entity", "Entity already exists", { field });

function checkParams(params: Params, allowed: string[]): void {
  const unexpected = Object.keys(params).find((name) => !allowed.includes(name));
  if (unexpected !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: unexpected });
}

function requiredString(params: Params, name: string, path = name): string {
  const value = params[name];
  if (value === undefined || value === null) throw missed(path);
  if (typeof value !== "string") throw wrongType(path);
  if (value === "") throw invalid(path);
  return value;
}

function dateTime(value: unknown, path: string): string {
  if (typeof value !== "string") throw wrongType(path);
  if (!DATE_TIME.test(value)) throw badTime(path);
  return value;
}

/** Account wall-clock times compare as text; as instants only against "now". */
const wallMs = (text: string) => Date.parse(`${text.replace(" ", "T")}Z`);

export interface DealsSandboxOptions {
  now: () => number;
  /** The account's time zone: deal times are its wall clock (§1.5 "Time zone"). */
  timeZone: string;
  /** The wall-clock time of a seeded communication, or null when the account has none with that id and type. */
  communicationTime: (id: number, type: string) => string | null;
}

export function createDealsSandbox(options: DealsSandboxOptions) {
  let settings: DealsSettings = { ...DEFAULTS };
  const funnels = new Map<string, Funnel>();
  /** §1.3, §1.4: employees made with create.deal_employees; a deal's employee_ext_id names one of them. */
  const employees = new Map<string, string>();
  const deals = new Map<string, StoredDeal>();
  const stats = { uploads: 0, records: 0, rejectedUploads: 0, lastRejection: null as null | { mnemonic: string; field: unknown } };

  function refuseUntilConnected(): void {
    if (settings.endToEndAnalytics) return;
    if (settings.refusedAs === "tariff_restrictions") throw new RpcError(-32602, "tariff_restrictions", "Tariff restrictions");
    throw new RpcError(-32008, "method_component_disabled", "You need at least on of the following components to access this method: Сквозная аналитика", {
      params: { components: ["Сквозная аналитика"] },
    });
  }

  function stageOf(funnel: Funnel, extId: string): Stage | undefined {
    return funnel.stages.find((s) => s.ext_id === extId);
  }

  function checkStageInput(value: unknown, path: string): { ext_id: string; name: string } {
    if (value === undefined || value === null) throw missed(path);
    if (typeof value !== "object" || Array.isArray(value)) throw wrongType(path);
    const v = value as Params;
    return { ext_id: requiredString(v, "ext_id", `${path}.ext_id`), name: requiredString(v, "name", `${path}.name`) };
  }

  function checkOrder(value: unknown, path: string): number {
    if (value === undefined) throw missed(path);
    if (typeof value !== "number") throw wrongType(path);
    if (!Number.isInteger(value) || value < 0 || value > MAX_ORDER) throw invalid(path);
    return value;
  }

  /** create.sales_funnel (§1.2, §6.7): exactly one success and one failed stage, 1–100 in_process stages. */
  function createFunnel(params: Params) {
    checkParams(params, ["access_token", "user_id", "ext_id", "name", "stages"]);
    const extId = requiredString(params, "ext_id");
    const name = requiredString(params, "name");
    const stages = params.stages;
    if (stages === undefined) throw missed("stages");
    if (typeof stages !== "object" || stages === null || Array.isArray(stages)) throw wrongType("stages");
    const s = stages as Params;
    checkParams(s, ["success", "failed", "in_process"]);
    const success = checkStageInput(s.success, "stages.success");
    const failed = checkStageInput(s.failed, "stages.failed");
    if (s.in_process === undefined) throw missed("stages.in_process");
    if (!Array.isArray(s.in_process)) throw wrongType("stages.in_process");
    if (s.in_process.length < 1 || s.in_process.length > MAX_IN_PROCESS) throw new RpcError(-32602, "data_limit_exceeded", "Data limit exceeded", { field: "stages.in_process" });
    const inProcess = s.in_process.map((stage, i) => ({ ...checkStageInput(stage, `stages.in_process`), order: checkOrder((stage as Params).order, `stages.in_process.order`), i }));
    if (funnels.has(extId)) throw duplicate("ext_id");
    const all: Stage[] = [
      ...inProcess.map((p) => ({ ext_id: p.ext_id, name: p.name, status: "in_process" as const, order: p.order })),
      // §1.2: the vendor's example shows success and failed given stage_order 10010 and 10020.
      { ...success, status: "success", order: 10_010 },
      { ...failed, status: "failed", order: 10_020 },
    ];
    if (new Set(all.map((st) => st.ext_id)).size !== all.length) throw duplicate("stages.ext_id");
    funnels.set(extId, { ext_id: extId, name, stages: all });
    return { data: { ext_id: extId }, metadata: {} };
  }

  /** create.sales_funnel_stages (§1.2): an in_process stage; "Не более 100 этапов в одной воронке". */
  function createStage(params: Params) {
    checkParams(params, ["access_token", "user_id", "sales_funnel_ext_id", "ext_id", "name", "order"]);
    const funnelId = requiredString(params, "sales_funnel_ext_id");
    const extId = requiredString(params, "ext_id");
    const name = requiredString(params, "name");
    const order = checkOrder(params.order, "order");
    const funnel = funnels.get(funnelId);
    if (!funnel) throw notFound("sales_funnel_ext_id");
    if (stageOf(funnel, extId)) throw duplicate("ext_id");
    if (funnel.stages.filter((st) => st.status === "in_process").length >= MAX_IN_PROCESS) throw new RpcError(-32602, "data_limit_exceeded", "Data limit exceeded", { field: "order" });
    funnel.stages.push({ ext_id: extId, name, status: "in_process", order });
    return { data: { ext_id: extId }, metadata: {} };
  }

  /** get.sales_funnel (§1.2): funnels with their stages in stage order; ext_id and name filterable. */
  function getFunnels(params: Params) {
    checkParams(params, GET_PARAMS);
    const rows = [...funnels.values()].filter((f) => matches({ ext_id: f.ext_id, name: f.name }, params.filter));
    const offset = Number(params.offset ?? 0);
    const limit = Number(params.limit ?? 1000);
    const data = rows.slice(offset, offset + limit).map((f) => ({
      ext_id: f.ext_id,
      name: f.name,
      stages: [...f.stages].sort((a, b) => a.order - b.order).map((st) => ({ stage_ext_id: st.ext_id, stage_name: st.name, stage_status: st.status, stage_order: st.order })),
    }));
    return { data, metadata: { total_items: rows.length } };
  }

  interface Checked {
    ext_id: string;
    record: Params;
    funnel: Funnel;
    stage: Stage;
    created: string;
    stageTime: string;
    closed: string | null;
    communication: { id: number; type: string } | null;
  }

  /** One record's own rules (§1.4 table, §6.2). Paths carry no index: CoMagic's own answer names no record. */
  function checkRecord(value: unknown): Checked {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw wrongType("deals");
    const r = value as Params;
    const unexpected = Object.keys(r).find((k) => !DEAL_FIELDS.includes(k));
    if (unexpected !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: `deals.${unexpected}` });
    const extId = requiredString(r, "ext_id", "deals.ext_id");
    requiredString(r, "name", "deals.name");
    const funnelId = requiredString(r, "sales_funnel_ext_id", "deals.sales_funnel_ext_id");
    const stageId = requiredString(r, "stage_ext_id", "deals.stage_ext_id");
    if (r.created_date_time === undefined) throw missed("deals.created_date_time");
    if (r.modified_stage_date_time === undefined) throw missed("deals.modified_stage_date_time");
    const created = dateTime(r.created_date_time, "deals.created_date_time");
    const stageTime = dateTime(r.modified_stage_date_time, "deals.modified_stage_date_time");
    if (r.modified_date_time !== undefined) dateTime(r.modified_date_time, "deals.modified_date_time");
    const closed = r.closed_date_time === undefined || r.closed_date_time === null ? null : dateTime(r.closed_date_time, "deals.closed_date_time");
    // §1.4 "Дата и время не может быть в будущем"; §6.2 invalid_date_time.
    const createdAt = parseComagicDateTime(created, options.timeZone)?.getTime() ?? Number.NaN;
    if (!(createdAt <= options.now())) throw badTime("deals.created_date_time");
    // §1.4 "Больше creation_date": the vendor's own example sends both equal, so equal passes.
    if (stageTime < created) throw badTime("deals.modified_stage_date_time");
    // §1.4 closed_date_time "Не может быть меньше даты создания сделки".
    if (closed !== null && closed < created) throw badTime("deals.closed_date_time");
    if (r.revenue !== undefined && r.revenue !== null && (typeof r.revenue !== "number" || !Number.isFinite(r.revenue))) throw wrongType("deals.revenue");
    for (const name of ["employee_ext_id", "lead_ext_id", "company_ext_id", "comments", "source", "main_contact_ext_id"]) {
      if (r[name] !== undefined && r[name] !== null && typeof r[name] !== "string") throw wrongType(`deals.${name}`);
    }
    // §1.4 employee_ext_id "from create.deal_employees": whether CoMagic refuses an unknown one is not written
    // (§1.4 [UNCERTAIN] on mnemonics); the sandbox does, as for an unknown funnel or stage (§6.2).
    if (typeof r.employee_ext_id === "string" && !employees.has(r.employee_ext_id)) throw notFound("deals.employee_ext_id");
    // §1.4, §6.2: contact_ext_ids and main_contact_ext_id need each other; the main one is one of the list.
    if (r.contact_ext_ids !== undefined && !Array.isArray(r.contact_ext_ids)) throw wrongType("deals.contact_ext_ids");
    if (r.contact_ext_ids !== undefined && r.main_contact_ext_id === undefined) throw missed("deals.main_contact_ext_id");
    if (r.main_contact_ext_id !== undefined && r.contact_ext_ids === undefined) throw missed("deals.contact_ext_ids");
    if (r.main_contact_ext_id !== undefined && !(r.contact_ext_ids as unknown[]).includes(r.main_contact_ext_id)) throw invalid("deals.main_contact_ext_id");
    // §1.4, §6.2: communication_id and communication_type need each other.
    if (r.communication_id !== undefined && r.communication_type === undefined) throw missed("deals.communication_type");
    if (r.communication_type !== undefined && r.communication_id === undefined) throw missed("deals.communication_id");
    let communication: Checked["communication"] = null;
    if (r.communication_id !== undefined) {
      if (typeof r.communication_id !== "number" || !Number.isInteger(r.communication_id)) throw wrongType("deals.communication_id");
      if (typeof r.communication_type !== "string") throw wrongType("deals.communication_type");
      if (!COMMUNICATION_TYPES.includes(r.communication_type)) throw invalid("deals.communication_type");
      communication = { id: r.communication_id, type: r.communication_type };
    }
    // §6.2: unknown funnel or stage; mnemonic [UNCERTAIN], entity_not_found as suggested.
    const funnel = funnels.get(funnelId);
    if (!funnel) throw notFound("deals.sales_funnel_ext_id");
    const stage = stageOf(funnel, stageId);
    if (!stage) throw notFound("deals.stage_ext_id");
    return { ext_id: extId, record: r, funnel, stage, created, stageTime, closed, communication };
  }

  /** §1.5: communications more than 30 days before the deal's creation are dropped, silently. */
  function link(communication: { id: number; type: string }, created: string): Pick<StoredDeal, "linked" | "not_linked_reason"> {
    const at = options.communicationTime(communication.id, communication.type);
    if (at === null) return { linked: null, not_linked_reason: "communication_not_found" };
    if (wallMs(created) - wallMs(at) > LINK_WINDOW_MS) return { linked: null, not_linked_reason: "older_than_30_days" };
    return { linked: { communication_id: communication.id, communication_type: communication.type }, not_linked_reason: null };
  }

  /** §1.5 is_generated: in_process stages a deal skipped; a won deal passed them all, a lost one need not have. */
  function generated(funnel: Funnel, history: StageEntry[], next: Stage, at: string): StageEntry[] {
    const last = history.at(-1);
    const lastOrder = last ? (stageOf(funnel, last.stage_ext_id)?.order ?? -1) : -1;
    const seen = new Set(history.map((h) => h.stage_ext_id));
    const until = next.status === "in_process" ? next.order : next.status === "success" ? MAX_ORDER + 1 : -1;
    return funnel.stages
      .filter((st) => st.status === "in_process" && st.order > lastOrder && st.order < until && !seen.has(st.ext_id))
      .sort((a, b) => a.order - b.order)
      .map((st) => ({ stage_ext_id: st.ext_id, modified_stage_date_time: at, is_generated: true }));
  }

  /** upload.deals_history (§1.4, §1.5, §6.1–6.4): all records checked first; any failure stores nothing. */
  function upload(params: Params) {
    checkParams(params, ["access_token", "user_id", "deals"]);
    if (params.deals === undefined) throw missed("deals");
    if (!Array.isArray(params.deals)) throw wrongType("deals");
    if (params.deals.length === 0) throw invalid("deals");
    if (params.deals.length > MAX_DEALS) throw new RpcError(-32602, "data_limit_exceeded", "Data limit exceeded", { field: "deals" });
    const checked = params.deals.map(checkRecord);
    // §1.4 "modified_stage_date_time загружаемого этапа должен быть больше или равен … последнего загруженного этапа",
    // across calls and between records of the same deal within this one (§6.2).
    const lastTime = new Map<string, string>();
    for (const c of checked) {
      const last = lastTime.get(c.ext_id) ?? deals.get(c.ext_id)?.modified_stage_date_time;
      if (last !== undefined && c.stageTime < last) throw badTime("deals.modified_stage_date_time");
      lastTime.set(c.ext_id, c.stageTime);
    }
    const t = options.now();
    for (const c of checked) apply(c, t);
    stats.uploads += 1;
    stats.records += checked.length;
    // §1.4: "result.data" is `{}`: nothing per deal.
    return { data: {}, metadata: {} };
  }

  function apply(c: Checked, t: number): void {
    const r = c.record;
    const before = deals.get(c.ext_id);
    const optional = <T>(name: string, previous: T | null): T | null => (r[name] === undefined ? previous : (r[name] as T | null));
    const deal: StoredDeal = before ?? {
      ext_id: c.ext_id,
      name: "",
      sales_funnel_ext_id: c.funnel.ext_id,
      stage_ext_id: c.stage.ext_id,
      created_date_time: c.created,
      modified_stage_date_time: c.stageTime,
      closed_date_time: null,
      revenue: null,
      employee_ext_id: null,
      comments: null,
      communication: null,
      linked: null,
      not_linked_reason: null,
      history: [],
      records: 0,
      uploaded_at: t,
    };
    const advanced = before === undefined || c.stageTime > before.modified_stage_date_time;
    const sameStage = before !== undefined && before.stage_ext_id === c.stage.ext_id && before.sales_funnel_ext_id === c.funnel.ext_id;
    // §1.5 upsert by ext_id: the same stage again is an update, not another step of the history.
    if (!sameStage) {
      deal.history.push(...generated(c.funnel, deal.history, c.stage, c.stageTime), { stage_ext_id: c.stage.ext_id, modified_stage_date_time: c.stageTime, is_generated: false });
    }
    // §1.5: the communication (or contacts) on a deal change "только со сдвигом даты модификации этапа".
    if (c.communication && (before === undefined || (advanced && JSON.stringify(c.communication) !== JSON.stringify(before.communication)))) {
      Object.assign(deal, { communication: c.communication }, link(c.communication, c.created));
    }
    Object.assign(deal, {
      name: String(r.name),
      sales_funnel_ext_id: c.funnel.ext_id,
      stage_ext_id: c.stage.ext_id,
      created_date_time: c.created,
      modified_stage_date_time: c.stageTime,
      // §1.4: counted only when the stage is success or failed.
      closed_date_time: c.stage.status === "in_process" ? null : (c.closed ?? deal.closed_date_time),
      revenue: optional<number>("revenue", deal.revenue),
      employee_ext_id: optional<string>("employee_ext_id", deal.employee_ext_id),
      comments: optional<string>("comments", deal.comments),
      records: deal.records + 1,
      uploaded_at: t,
    });
    deals.set(c.ext_id, deal);
  }

  /** §1.5 read back; §6.5 a deal still "in processing" is not there yet. */
  function processing(deal: StoredDeal): boolean {
    return options.now() - deal.uploaded_at < settings.processingMs;
  }

  function getHistory(params: Params) {
    checkParams(params, GET_PARAMS);
    const fields = params.fields === undefined ? DEAL_HISTORY_FIELDS : params.fields;
    if (!Array.isArray(fields)) throw wrongType("fields");
    const unknown = fields.find((f) => !DEAL_HISTORY_FIELDS.includes(String(f)));
    if (unknown !== undefined) throw new RpcError(-32602, "unexpected_parameters", "Unexpected method parameter(s)", { field: `fields.${String(unknown)}` });
    const rows = [...deals.values()]
      .filter((d) => !processing(d))
      .map((d) => ({ ...d, is_generated: false, communication_id: d.linked?.communication_id ?? null, communication_type: d.linked?.communication_type ?? null }))
      .filter((row) => matches(row as unknown as Record<string, unknown>, params.filter));
    const offset = Number(params.offset ?? 0);
    const limit = Number(params.limit ?? 1000);
    const data = rows.slice(offset, offset + limit).map((row) => Object.fromEntries(fields.map((f) => [String(f), (row as unknown as Params)[String(f)] ?? null])));
    return { data, metadata: { total_items: rows.length } };
  }

  /** §1.3 `create.deal_employees {ext_id*, name*}` → `{ext_id}`, one per call; made twice is duplicate_entity (as funnels, §6.7). */
  function createEmployee(params: Params) {
    checkParams(params, ["access_token", "user_id", "ext_id", "name"]);
    const extId = requiredString(params, "ext_id");
    const name = requiredString(params, "name");
    if (employees.has(extId)) throw duplicate("ext_id");
    employees.set(extId, name);
    return { data: { ext_id: extId }, metadata: {} };
  }

  const METHODS: Record<string, (params: Params) => { data: unknown; metadata: Record<string, unknown> }> = {
    "create.deal_employees": createEmployee,
    "create.sales_funnel": createFunnel,
    "create.sales_funnel_stages": createStage,
    "get.sales_funnel": getFunnels,
    "upload.deals_history": upload,
    "get.deals_history": getHistory,
    // §1.5 [CONFLICT]: the index says get.deals_processing, the page body get.deals_in_processing: both answer.
    "get.deals_in_processing": (params) => {
      checkParams(params, ["access_token", "user_id"]);
      return { data: { count: [...deals.values()].filter(processing).length }, metadata: {} };
    },
    "get.deals_processing": (params) => METHODS["get.deals_in_processing"]?.(params) ?? { data: {}, metadata: {} },
  };

  const control = new Hono();
  /** What was uploaded, as CoMagic holds it (with the sandbox-only `not_linked_reason`). */
  control.get("/_sandbox/comagic/deals", (c) => c.json({ deals: [...deals.values()], funnels: [...funnels.values()], employees: Object.fromEntries(employees), stats, settings }));
  control.get("/_sandbox/comagic/deals/:extId", (c) => {
    const deal = deals.get(c.req.param("extId"));
    return deal ? c.json(deal) : c.json({ error: "no such deal" }, 404);
  });
  /** {"endToEndAnalytics": true} — the admin connected end-to-end analytics (§1.1); also refusedAs, processingMs. */
  control.post("/_sandbox/comagic/deals/settings", async (c) => {
    settings = { ...settings, ...((await c.req.json()) as Partial<DealsSettings>) };
    return c.json({ ok: true, settings });
  });

  return {
    handles: (method: string) => method in METHODS,
    /** Runs a funnel or deal method; RpcError for a refusal. Points are the caller's (data-api.ts). */
    call(method: string, params: Params) {
      refuseUntilConnected();
      const run = METHODS[method];
      if (!run) throw new RpcError(-32601, "method_not_found", "The method does not exist");
      try {
        return run(params);
      } catch (error) {
        if (method === "upload.deals_history" && error instanceof RpcError) {
          stats.rejectedUploads += 1;
          stats.lastRejection = { mnemonic: error.mnemonic, field: error.extra.field };
        }
        throw error;
      }
    },
    control,
    setSettings(input: Partial<DealsSettings>) {
      settings = { ...settings, ...input };
    },
    reset() {
      settings = { ...DEFAULTS };
      funnels.clear();
      deals.clear();
      employees.clear();
      Object.assign(stats, { uploads: 0, records: 0, rejectedUploads: 0, lastRejection: null });
    },
  };
}
