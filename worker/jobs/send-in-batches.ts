/** Cloudflare Queues take at most 100 messages a sendBatch: larger lists go in slices. */
const SEND_BATCH_LIMIT = 100;

export async function sendInBatches<T>(queue: Pick<Queue<T>, "sendBatch">, messages: readonly MessageSendRequest<T>[]): Promise<void> {
  for (let i = 0; i < messages.length; i += SEND_BATCH_LIMIT) await queue.sendBatch(messages.slice(i, i + SEND_BATCH_LIMIT));
}
