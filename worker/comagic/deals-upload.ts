/**
 * Bitrix24 deals into CoMagic's end-to-end analytics over the Data API client (FACTS-loop §1). One invalid record
 * fails a whole `upload.deals_history` request and CoMagic does not say which (§1.5, §6.1), so deals go in small
 * batches, and a batch refused for its data is split in halves and retried until the bad deal stands alone: it is
 * returned with CoMagic's reason, the others go through. Each deal's records stay together and in order, because
 * CoMagic refuses a stage time before the last one it holds (§1.4). A refusal that is not about the data (points,
 * token, network, analytics not connected) stops the upload: what was not sent is returned as pending.
 */
import type { DealHistoryRecord, SalesFunnel } from "../domain/deal-history";
import { DATA_REFUSALS, sendBisecting } from "./bisect-upload";
import { CoMagicError, type CoMagicRpcClient } from "./data-api";

/**
 * §7 suggests ≤ 50–100 though 1000 are allowed (§1.4): a bad deal among 40 costs about 2·log2(40) + 1 ≈ 12 calls to
 * isolate, one point each (§1.5).
 */
export const DEAL_BATCH_SIZE = 40;
/** §1.4 "Лимит 1000 сделок" (records per request). */
const MAX_RECORDS = 1000;

const RECORD_REFUSALS = DATA_REFUSALS;
/** §1.1: what the account answers until its admin connects end-to-end analytics («Другая CRM»). */
const NOT_CONNECTED = new Set(["method_component_disabled", "tariff_restrictions"]);

export interface DealUpload {
  dealId: string;
  /** This deal's new records, in time order (domain/deal-history.ts planDealSync). */
  records: DealHistoryRecord[];
}

export interface DealUploadResult {
  sent: string[];
  rejected: { dealId: string; mnemonic: string; reason: string }[];
  /** Not sent because the upload stopped on `error` (retry later). */
  pending: string[];
  error: CoMagicError | null;
  /** Requests made (each a point when it succeeded, §1.5). */
  requests: number;
}

/** Splits deals into batches of at most `size` deals and 1000 records, keeping each deal's records together. */
export function dealBatches(deals: DealUpload[], size = DEAL_BATCH_SIZE): DealUpload[][] {
  const batches: DealUpload[][] = [];
  let current: DealUpload[] = [];
  let records = 0;
  for (const deal of deals) {
    if (current.length > 0 && (current.length >= size || records + deal.records.length > MAX_RECORDS)) {
      batches.push(current);
      current = [];
      records = 0;
    }
    current.push(deal);
    records += deal.records.length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Uploads deals in batches; a batch refused for its data is bisected down to the bad deal (§1.5, §6.1). */
export async function uploadDeals(client: CoMagicRpcClient, deals: DealUpload[], size = DEAL_BATCH_SIZE): Promise<DealUploadResult> {
  const sent: string[] = [];
  const result = await sendBisecting(dealBatches(deals, size), {
    keyOf: (d) => d.dealId,
    dataRefusals: RECORD_REFUSALS,
    async send(group) {
      await client.call("upload.deals_history", { deals: group.flatMap((d) => d.records) });
      sent.push(...group.map((d) => d.dealId));
      return undefined;
    },
  });
  return { ...result, sent, rejected: result.rejected.map(({ key, ...why }) => ({ dealId: key, ...why })) };
}

export type FunnelOutcome =
  | { status: "created" | "updated"; addedStages: string[] }
  /** §1.1: the CoMagic admin must first connect end-to-end analytics with «Другая CRM». */
  | { status: "not_connected"; mnemonic: string };

const funnelRow = (value: unknown): { stages: { stage_ext_id: string }[] } | null => {
  if (!Array.isArray(value)) return null;
  const row = value[0] as { stages?: unknown } | undefined;
  return row && Array.isArray(row.stages) ? (row as { stages: { stage_ext_id: string }[] }) : null;
};

/**
 * Creates the funnel (§1.2); when it exists already (`duplicate_entity`), adds the in-process stages it lacks
 * (create.sales_funnel_stages), leaving the rest: a stage with deals cannot be deleted anyway (§1.2).
 */
export async function ensureSalesFunnel(client: CoMagicRpcClient, funnel: SalesFunnel): Promise<FunnelOutcome> {
  try {
    await client.call("create.sales_funnel", { ext_id: funnel.ext_id, name: funnel.name, stages: funnel.stages });
    return { status: "created", addedStages: [] };
  } catch (error) {
    if (error instanceof CoMagicError && NOT_CONNECTED.has(error.mnemonic)) return { status: "not_connected", mnemonic: error.mnemonic };
    if (!(error instanceof CoMagicError) || error.mnemonic !== "duplicate_entity") throw error;
  }
  const existing = funnelRow((await client.call("get.sales_funnel", { filter: { field: "ext_id", operator: "=", value: funnel.ext_id } })).data);
  const known = new Set(existing?.stages.map((s) => s.stage_ext_id) ?? []);
  const added: string[] = [];
  for (const stage of funnel.stages.in_process) {
    if (known.has(stage.ext_id)) continue;
    await client.call("create.sales_funnel_stages", { sales_funnel_ext_id: funnel.ext_id, ...stage });
    added.push(stage.ext_id);
  }
  return { status: "updated", addedStages: added };
}

/**
 * Makes the CoMagic employees deals will name (§1.3 `create.deal_employees`, one per call: a point each, once per
 * employee): §1.4's employee_ext_id is "from create.deal_employees". One CoMagic already has (`duplicate_entity`) is
 * as good as made. Returns the ids CoMagic has now; one it refused is left out, so its deals go without an employee.
 */
export async function ensureEmployees(client: CoMagicRpcClient, employees: readonly { extId: string; name: string }[]): Promise<{ made: string[]; refused: { extId: string; mnemonic: string }[] }> {
  const made: string[] = [];
  const refused: { extId: string; mnemonic: string }[] = [];
  for (const employee of employees) {
    try {
      await client.call("create.deal_employees", { ext_id: employee.extId, name: employee.name });
      made.push(employee.extId);
    } catch (error) {
      if (!(error instanceof CoMagicError)) throw error;
      if (error.mnemonic === "duplicate_entity") made.push(employee.extId);
      else if (RECORD_REFUSALS.has(error.mnemonic)) refused.push({ extId: employee.extId, mnemonic: error.mnemonic });
      else throw error;
    }
  }
  return { made, refused };
}
