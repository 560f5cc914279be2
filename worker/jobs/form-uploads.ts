/**
 * Our website forms into CoMagic (issue #25 §2, COMAGIC_FORMS): a form whose lead the worker wrote is sent as an
 * offline message (`upload.offline_messages`, ≤ 50 a request: comagic/offline-messages.ts), so CoMagic counts it as
 * the site's request and can attribute its deal. The forms route records the message when the form comes
 * (storage/form-uploads.ts); each portal tick sends those whose lead is in Bitrix24, together, within one feed
 * interval (domain/send-window.ts). CoMagic's refusal of a message is kept with its reason and logged; a refusal of
 * the request itself (points, component off, token) leaves them waiting for the next tick.
 */
import type { CoMagicRpcClient } from "../comagic/data-api";
import { OFFLINE_MESSAGE_BATCH_SIZE, uploadOfflineMessages } from "../comagic/offline-messages";
import { sendDue } from "../domain/send-window";
import { errorMessage, type Logger } from "../log";
import type { FormUploadStore } from "../storage/form-uploads";

/** Forms one tick sends at most: ten requests. */
const MAX_FORMS = 10 * OFFLINE_MESSAGE_BATCH_SIZE;

export interface FormUploadDeps {
  dataApi: CoMagicRpcClient;
  forms: FormUploadStore;
  intervalMinutes: number;
  now: () => Date;
  log: Logger;
}

export async function sendFormsToComagic(deps: FormUploadDeps): Promise<{ sent: number; rejected: number; waiting: number; requests: number }> {
  const landed = await deps.forms.landed(MAX_FORMS);
  const now = deps.now();
  if (!sendDue(landed[0]?.createdAt, landed.length, OFFLINE_MESSAGE_BATCH_SIZE, now, deps.intervalMinutes)) return { sent: 0, rejected: 0, waiting: landed.length, requests: 0 };
  const result = await uploadOfflineMessages(
    deps.dataApi,
    landed.map((f) => ({ key: f.key, message: f.message })),
  );
  await deps.forms.settle(
    [
      ...result.sent.map((s) => ({ key: s.key, state: "sent" as const, comagicId: s.id })),
      ...result.rejected.map((r) => ({ key: r.key, state: "rejected" as const, reason: `${r.mnemonic}: ${r.reason}` })),
    ],
    now,
  );
  for (const r of result.rejected) deps.log.warn("forms.comagic_refused", { key: r.key, mnemonic: r.mnemonic, reason: r.reason });
  if (result.error) deps.log.warn("forms.comagic_stopped", { error: errorMessage(result.error), waiting: result.pending.length });
  const outcome = { sent: result.sent.length, rejected: result.rejected.length, waiting: result.pending.length, requests: result.requests };
  deps.log.info("forms.sent_to_comagic", outcome);
  return outcome;
}
