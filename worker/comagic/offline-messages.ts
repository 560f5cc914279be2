/**
 * Website forms into CoMagic as offline messages (`upload.offline_messages`, FACTS-loop §2; loop-docs/
 * data_api__communication__upload_offline_messages.txt, "l.N"), so CoMagic counts each as the site's request.
 * Whether one bad message fails the whole request is undocumented (§2, §8.1), so both readings are handled:
 * - the whole request refused (as upload.deals_history): the batch is split in halves and retried until the bad
 *   message stands alone, as deals-upload.ts does; it comes back rejected with CoMagic's reason.
 * - the bad ones left out silently: the answer then holds fewer ids than messages (l.79-93: `[{id}]`, nothing else).
 *   Ids are matched by position only when there are exactly as many as messages. With fewer, which message went in
 *   is unknowable from the answer, and sending any of them again could store it twice (duplicate ext_id handling is
 *   undocumented, §2). So nothing of such a batch is re-sent: a lone message without an id is rejected as `dropped`;
 *   in a larger batch every message is rejected as `unconfirmed` (some are in CoMagic: get.offline_messages_report
 *   finds them by ext_id, which is the key).
 * A refusal that is not about the data (points, token, network, the component not on) stops the upload: what was not
 * sent is returned as pending. A request that failed in transit may still have been stored: a retry of its pending
 * messages can then make a second request in CoMagic, as for any at-least-once delivery.
 */
import * as z from "zod";
import type { OfflineMessage } from "../domain/offline-message";
import { DATA_REFUSALS, sendBisecting } from "./bisect-upload";
import type { CoMagicError, CoMagicRpcClient } from "./data-api";

/** l.11 "Максимальное количество заявок в одном запросе 50 шт": a bad one among 50 costs ≈ 2·log2(50) + 1 ≈ 13 calls. */
export const OFFLINE_MESSAGE_BATCH_SIZE = 50;

/** Refusals about a message's data, which halve a batch: the uploads' own, and two of offline messages. */
const MESSAGE_REFUSALS: ReadonlySet<string> = new Set([
  ...DATA_REFUSALS,
  // A third reading of a duplicate ext_id (§2 [UNCERTAIN]): refused as the create/update list's duplicate_entity.
  "duplicate_entity",
  "campaign_is_inactive",
]);

export interface OfflineMessageUpload {
  /** Our ledger key; always sent as the message's ext_id. */
  key: string;
  message: OfflineMessage;
}

export interface OfflineMessageUploadResult {
  /** Stored, with the id CoMagic answered (the offline message's, not its communication_id: FACTS-loop §1.5). */
  sent: { key: string; id: number }[];
  /** CoMagic's mnemonic, or `dropped` / `unconfirmed` when its answer held too few ids (see above). */
  rejected: { key: string; mnemonic: string; reason: string }[];
  /** Not sent because the upload stopped on `error` (retry later). */
  pending: string[];
  error: CoMagicError | null;
  /** Requests made (each a point when it succeeded). */
  requests: number;
}

const answerIds = z.array(z.object({ id: z.number().int() }).loose());

/** Uploads messages ≤ 50 a request; a batch refused for its data is bisected down to the bad message. */
export async function uploadOfflineMessages(client: CoMagicRpcClient, messages: OfflineMessageUpload[], size = OFFLINE_MESSAGE_BATCH_SIZE): Promise<OfflineMessageUploadResult> {
  const batchSize = Math.max(1, Math.min(size, OFFLINE_MESSAGE_BATCH_SIZE));
  const batches: OfflineMessageUpload[][] = [];
  for (let i = 0; i < messages.length; i += batchSize) batches.push(messages.slice(i, i + batchSize));
  const sent: OfflineMessageUploadResult["sent"] = [];
  const result = await sendBisecting(batches, {
    keyOf: (m) => m.key,
    dataRefusals: MESSAGE_REFUSALS,
    async send(group) {
      // The key is the ext_id whatever the message says, so the report can always be searched by it.
      const { data } = await client.call("upload.offline_messages", { offline_messages: group.map((m) => ({ ...m.message, ext_id: m.key })) });
      const ids = answerIds.safeParse(data);
      if (ids.success && ids.data.length === group.length) {
        // Same count: the i-th id is the i-th message's (the answer's order is the request's; nothing else links them).
        sent.push(...group.map((m, i) => ({ key: m.key, id: (ids.data[i] as { id: number }).id })));
        return undefined;
      }
      const count = ids.success ? ids.data.length : "unreadable";
      const [only] = group;
      if (group.length === 1 && only && ids.success) {
        return [{ key: only.key, mnemonic: "dropped", reason: "CoMagic accepted the request but answered no id for this message: it was left out as invalid" }];
      }
      const reason = `CoMagic answered ${count} ids for ${group.length} messages: which of them it stored is unknown (look them up by ext_id)`;
      return group.map((m) => ({ key: m.key, mnemonic: "unconfirmed", reason }));
    },
  });
  return { ...result, sent };
}
