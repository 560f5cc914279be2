/**
 * What of a Bitrix24 deal CoMagic has not yet been told, as `upload.deals_history` records (FACTS-loop §1.4–§1.7).
 * CoMagic keeps a deal's stage history and refuses a stage time before the last one it holds, failing the whole
 * request (§1.4, §1.5, §6.2); Bitrix24's ONCRMDEALUPDATE carries only the id and arrives late, repeated and out of
 * order (§1.7, §6 "Bitrix24 side"). So nothing here trusts an event: the caller re-reads the deal and its
 * crm.stagehistory.list, and this compares that with a per-deal journal of what was sent, sending only what is new
 * and never a time before the last sent. The journal is stored only after CoMagic accepted the records.
 * Pure: time and the account's settings are arguments.
 */
import { formatComagicDateTime } from "./comagic-time";

/** One row of crm.stagehistory.list for a deal (loop-docs/api-reference__crm__crm-stage-history-list.txt). */
export interface StageHistoryItem {
  ID: number | string;
  /** 1 created, 2 intermediate stage, 3 final stage, 5 funnel change. */
  TYPE_ID: number | string;
  CREATED_TIME: string;
  CATEGORY_ID: number | string;
  STAGE_SEMANTIC_ID: "P" | "S" | "F" | string;
  STAGE_ID: string;
}

/** The fields of a re-read crm.deal.get this needs. */
export interface BitrixDeal {
  ID: string;
  TITLE: string;
  CATEGORY_ID: string;
  STAGE_ID: string;
  DATE_CREATE: string;
  OPPORTUNITY: string | number | null;
  CURRENCY_ID: string | null;
  ASSIGNED_BY_ID?: string | null;
}

export interface DealJournal {
  dealId: string;
  /** §1.5 "все этапы, которые прошла сделка": each stage change sent, in order (ms since epoch). */
  sent: { stageId: string; at: number }[];
  /** The revenue last sent (account currency), null when none was. */
  revenue: number | null;
}

/** A Bitrix24 deal pipeline (category) and its stages, as crm.status.list gives them. */
export interface Pipeline {
  categoryId: string;
  name: string;
  stages: { id: string; name: string; sort: number; semantics: "P" | "S" | "F" }[];
}

/** create.sales_funnel's params (§1.2) and how each Bitrix24 stage maps onto the funnel's stages. */
export interface SalesFunnel {
  ext_id: string;
  name: string;
  stages: { success: { ext_id: string; name: string }; failed: { ext_id: string; name: string }; in_process: { ext_id: string; name: string; order: number }[] };
  /** Bitrix24 STAGE_ID → CoMagic stage ext_id (every failure stage → the one failed stage). */
  stageMap: Record<string, string>;
}

/** §1.2: "Минимум 1, максимум 100 этапов в одной воронке". */
const MAX_IN_PROCESS = 100;
/** §1.2 vendor advice: number stages 10, 20, 30 … so a stage can be inserted later. */
const ORDER_STEP = 10;
/** §1.5: communications more than 30 days before the deal's creation are not linked. */
const LINK_WINDOW_MS = 30 * 86_400_000;

export class FunnelShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FunnelShapeError";
  }
}

export function salesFunnelExtId(categoryId: string): string {
  return `bitrix24-category-${categoryId}`;
}

/**
 * A CoMagic funnel from a Bitrix24 pipeline (§1.2): in-process stages in Bitrix24's sort order numbered 10, 20, …;
 * CoMagic has exactly one success and one failed stage, so every F stage folds into the failed one (named after the
 * first) and the S stage is the success one.
 */
export function salesFunnelFromPipeline(pipeline: Pipeline): SalesFunnel {
  const sorted = [...pipeline.stages].sort((a, b) => a.sort - b.sort);
  const inProcess = sorted.filter((s) => s.semantics === "P");
  const success = sorted.find((s) => s.semantics === "S");
  const failures = sorted.filter((s) => s.semantics === "F");
  const failed = failures[0];
  if (!success || !failed) throw new FunnelShapeError(`pipeline ${pipeline.categoryId} needs a success and a failure stage`);
  if (inProcess.length < 1 || inProcess.length > MAX_IN_PROCESS)
    throw new FunnelShapeError(`pipeline ${pipeline.categoryId} has ${inProcess.length} in-process stages; CoMagic takes 1 to ${MAX_IN_PROCESS}`);
  const stageMap: Record<string, string> = Object.fromEntries(sorted.map((s) => [s.id, s.semantics === "F" ? failed.id : s.id]));
  return {
    ext_id: salesFunnelExtId(pipeline.categoryId),
    name: pipeline.name,
    stages: {
      success: { ext_id: success.id, name: success.name },
      failed: { ext_id: failed.id, name: failed.name },
      in_process: inProcess.map((s, i) => ({ ext_id: s.id, name: s.name, order: (i + 1) * ORDER_STEP })),
    },
    stageMap,
  };
}

/**
 * Bitrix24 currency settings (crm.currency.list): how much of the base currency one unit of each is worth. A deal's
 * OPPORTUNITY is in its CURRENCY_ID, CoMagic's `revenue` has no currency (§1.4, §1.7): convert to the account's.
 */
export type CurrencyRates = Record<string, number>;

export type Revenue = { revenue: number | null; flag: "currency_not_convertible" | null };

export function convertRevenue(amount: number, from: string | null, to: string, rates: CurrencyRates): Revenue {
  if (!Number.isFinite(amount)) return { revenue: null, flag: null };
  const source = from || to;
  if (source === to) return { revenue: round2(amount), flag: null };
  const fromRate = rates[source];
  const toRate = rates[to];
  if (!fromRate || !toRate || fromRate <= 0 || toRate <= 0) return { revenue: null, flag: "currency_not_convertible" };
  return { revenue: round2((amount * fromRate) / toRate), flag: null };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The communication a deal came from (its CoMagic communication_id, FACTS-loop §1.5 "Which id"). */
export interface DealCommunication {
  id: number;
  type: "call" | "chat" | "offline_message" | "goal" | "email";
  /** When it happened (ms). */
  at: number;
}

/** §1.5: CoMagic drops a communication more than 30 days before the deal's creation, silently; we say so. */
export function isLinkable(communication: DealCommunication, dealCreatedAt: number): boolean {
  return dealCreatedAt - communication.at <= LINK_WINDOW_MS;
}

/** One `upload.deals_history` record (§1.4). */
export interface DealHistoryRecord {
  ext_id: string;
  name: string;
  created_date_time: string;
  modified_stage_date_time: string;
  closed_date_time?: string;
  sales_funnel_ext_id: string;
  stage_ext_id: string;
  revenue?: number;
  employee_ext_id?: string;
  comments?: string;
  communication_id?: number;
  communication_type?: string;
}

export type DealFlag = "currency_not_convertible" | "communication_older_than_30_days" | "unknown_stage";

export interface DealSyncInput {
  deal: BitrixDeal;
  history: StageHistoryItem[];
  journal: DealJournal | null;
  funnel: Pick<SalesFunnel, "ext_id" | "stageMap" | "stages">;
  communication: DealCommunication | null;
  accountCurrency: string;
  rates: CurrencyRates;
  /** The CoMagic account's time zone (§1.5 "Time zone": times carry no offset). */
  timeZone: string;
  now: number;
}

export interface DealSyncPlan {
  records: DealHistoryRecord[];
  /** The journal to store once CoMagic accepted `records` (unchanged when there is nothing to send). */
  journal: DealJournal;
  flags: DealFlag[];
  /** Stage changes not sent: before the last sent (late), or the same stage again (repeated). */
  skipped: { late: number; repeated: number };
}

const instant = (text: string) => Date.parse(text);

/**
 * The records to upload for a re-read deal. Stage changes come from the history in time order (ties by ID), then
 * the deal's current stage when the history has not caught up; a change before the last sent is dropped (§1.4
 * monotonic rule), the same stage twice is one; times are clamped to `now` and never before the deal's creation
 * (§1.4 "created_date_time … не может быть в будущем"). A revenue change alone re-sends the last stage at its own
 * time (≥ is allowed, §1.4) so CoMagic updates the amount (§1.5 upsert).
 */
export function planDealSync(input: DealSyncInput): DealSyncPlan {
  const { deal, funnel, now } = input;
  const flags: DealFlag[] = [];
  const created = Math.min(instant(deal.DATE_CREATE), now);
  const journal: DealJournal = input.journal ?? { dealId: deal.ID, sent: [], revenue: null };
  const last = journal.sent.at(-1);

  const changes = input.history
    .filter((h) => String(h.CATEGORY_ID) === String(deal.CATEGORY_ID))
    .map((h) => ({ stageId: h.STAGE_ID, at: instant(h.CREATED_TIME), id: Number(h.ID) }))
    .filter((c) => Number.isFinite(c.at))
    .sort((a, b) => a.at - b.at || a.id - b.id);
  const currentAt = Math.max(changes.at(-1)?.at ?? created, last?.at ?? created);
  if (changes.at(-1)?.stageId !== deal.STAGE_ID) changes.push({ stageId: deal.STAGE_ID, at: currentAt, id: Number.POSITIVE_INFINITY });

  const fresh: { stageId: string; at: number }[] = [];
  const skipped = { late: 0, repeated: 0 };
  let previous = last;
  const sentBefore = new Set(journal.sent.map((s) => `${s.stageId}@${s.at}`));
  for (const change of changes) {
    const at = Math.max(Math.min(change.at, now), created);
    if (sentBefore.has(`${change.stageId}@${at}`) || (previous && previous.stageId === change.stageId)) {
      skipped.repeated += 1;
      continue;
    }
    if (previous && at < previous.at) {
      skipped.late += 1;
      continue;
    }
    if (!(change.stageId in funnel.stageMap)) {
      if (!flags.includes("unknown_stage")) flags.push("unknown_stage");
      continue;
    }
    previous = { stageId: change.stageId, at };
    fresh.push(previous);
  }

  const amount = Number(deal.OPPORTUNITY ?? 0);
  const money = convertRevenue(amount, deal.CURRENCY_ID, input.accountCurrency, input.rates);
  if (money.flag) flags.push(money.flag);
  const linkable = input.communication && isLinkable(input.communication, created) ? input.communication : null;
  if (input.communication && !linkable) flags.push("communication_older_than_30_days");

  // A revenue change with no new stage: the last stage again, at its own time.
  const toSend = fresh.length === 0 && last && money.revenue !== null && money.revenue !== journal.revenue ? [last] : fresh;
  const at = (ms: number) => formatComagicDateTime(new Date(ms), input.timeZone);
  const records = toSend.map((change): DealHistoryRecord => {
    const stage = funnel.stageMap[change.stageId] as string;
    const folded = stage !== change.stageId;
    const final = stage === funnel.stages.success.ext_id || stage === funnel.stages.failed.ext_id;
    return {
      ext_id: deal.ID,
      name: deal.TITLE,
      created_date_time: at(created),
      modified_stage_date_time: at(change.at),
      ...(final ? { closed_date_time: at(change.at) } : {}),
      sales_funnel_ext_id: funnel.ext_id,
      stage_ext_id: stage,
      ...(money.revenue !== null ? { revenue: money.revenue } : {}),
      ...(deal.ASSIGNED_BY_ID ? { employee_ext_id: String(deal.ASSIGNED_BY_ID) } : {}),
      // §1.2: the failure reason survives the fold into CoMagic's one failed stage.
      ...(folded ? { comments: `Bitrix24 stage ${change.stageId}` } : {}),
      ...(linkable ? { communication_id: linkable.id, communication_type: linkable.type } : {}),
    };
  });
  return {
    records,
    journal: records.length === 0 ? journal : { dealId: deal.ID, sent: [...journal.sent, ...fresh], revenue: money.revenue ?? journal.revenue },
    flags,
    skipped,
  };
}
