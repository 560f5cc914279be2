/**
 * How our CoMagic uploads meet a refusal (deals, offline messages: issue #25). One invalid record fails a whole
 * `upload.*` request and CoMagic does not say which (FACTS-loop §1.5, §6.1), so a batch refused for its data is
 * split in halves and sent again until the bad item stands alone: it is rejected with CoMagic's reason, the others
 * go through. A refusal that is not about the data (points, token, network, a component switched off) stops the
 * upload: what was not sent is pending, for the next tick.
 */
import { CoMagicError } from "./data-api";

/**
 * Refusals about an item's data, which halve a batch (the generic -32602 family: CoMagic documents no error list for
 * `upload.*`, FACTS-loop §1.4 [UNCERTAIN]); `error` is its catch-all. Anything else stops the upload.
 */
export const DATA_REFUSALS: ReadonlySet<string> = new Set([
  "invalid_date_time",
  "entity_not_found",
  "required_parameter_missed",
  "invalid_parameter_value",
  "data_type_error",
  "unexpected_parameters",
  "invalid_parameters_combination",
  "data_limit_exceeded",
  "error",
]);

export interface Rejection {
  key: string;
  mnemonic: string;
  reason: string;
}

export interface BisectResult {
  rejected: Rejection[];
  /** Not sent because the upload stopped on `error` (retry later). */
  pending: string[];
  error: CoMagicError | null;
  /** Requests made (each a point when it succeeded, FACTS-loop §1.5). */
  requests: number;
}

/**
 * Sends each batch with `send`, which records what went and may reject items itself (an answer that confirms
 * fewer than were sent); a `dataRefusals` mnemonic from it halves the batch.
 */
export async function sendBisecting<T>(
  batches: readonly T[][],
  options: { keyOf: (item: T) => string; dataRefusals: ReadonlySet<string>; send: (group: T[]) => Promise<Rejection[] | undefined> },
): Promise<BisectResult> {
  const result: BisectResult = { rejected: [], pending: [], error: null, requests: 0 };

  async function send(group: T[]): Promise<void> {
    if (result.error) {
      result.pending.push(...group.map(options.keyOf));
      return;
    }
    result.requests += 1;
    try {
      result.rejected.push(...((await options.send(group)) ?? []));
    } catch (error) {
      if (!(error instanceof CoMagicError) || !options.dataRefusals.has(error.mnemonic)) {
        result.error = error instanceof CoMagicError ? error : new CoMagicError("unexpected_error", String(error), true);
        result.pending.push(...group.map(options.keyOf));
        return;
      }
      const [only] = group;
      if (group.length === 1 && only !== undefined) {
        result.rejected.push({ key: options.keyOf(only), mnemonic: error.mnemonic, reason: error.message });
        return;
      }
      const half = Math.ceil(group.length / 2);
      await send(group.slice(0, half));
      await send(group.slice(half));
    }
  }

  for (const batch of batches) await send(batch);
  return result;
}
