import { fetchCommunicationsBy, type ReadSession } from "../comagic/communications";
import { type FeedDeps, queueRows } from "./feed";
import { type ComagicFetchJob, comagicFetchJobSchema } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type SettleDeps } from "./settle";

/*
 * Chats and requests a CoMagic notification named, read at once rather than at the next feed read: one read per kind
 * and id field for a whole batch, then the feed's own path (jobs/feed.ts queueRows: names, messages, classes, the
 * ledger), with the same keys, so notification and feed make one lead. CoMagic's reports lag behind its events: a
 * row not there yet is asked for again every ENRICH_DELAY_SECONDS, FETCH_TRIES times; the feed finds it after that.
 */

export const FETCH_TRIES = 6;
/** How far before the notification a chat may have started (a chat's report time is its start; it may run for days). */
const LOOKBACK_MS = 7 * 86_400_000;

export interface FetchDeps extends FeedDeps, SettleDeps {
  queue: string;
  retrySeconds: number;
}

type Item = { message: Message<unknown>; job: ComagicFetchJob };

const matches = (job: ComagicFetchJob, row: ReadSession) => (job.field === "id" ? row.session.id === job.id : row.communicationId === job.id);

export async function handleFetchJobs(messages: readonly Message<unknown>[], deps: FetchDeps): Promise<void> {
  const items = readJobs(messages, comagicFetchJobSchema, deps.log);
  if (items.length === 0) return;
  const groups = new Map<string, Item[]>();
  for (const item of items) groups.set(`${item.job.kind}:${item.job.field}`, [...(groups.get(`${item.job.kind}:${item.job.field}`) ?? []), item]);

  const rows: { chats: ReadSession[]; requests: ReadSession[] } = { chats: [], requests: [] };
  const found = new Map<Item, ReadSession>();
  for (const group of groups.values()) {
    const { kind, field } = (group[0] as Item).job;
    const earliest = Math.min(...group.map((i) => Date.parse(i.job.notifiedAt)));
    try {
      const window = { from: new Date(earliest - LOOKBACK_MS), to: deps.now(), timeZone: deps.rules.timeZone };
      const read = await fetchCommunicationsBy(
        deps.dataApi,
        kind,
        window,
        field,
        group.map((i) => i.job.id),
      );
      (kind === "chat" ? rows.chats : rows.requests).push(...read);
      for (const item of group) {
        const row = read.find((r) => matches(item.job, r));
        if (row) found.set(item, row);
      }
    } catch (error) {
      for (const { message, job } of group) await retryOrDeadLetter(message, deps.queue, asFailure(error), { fetch: job.kind, id: job.id }, deps);
      groups.delete(`${kind}:${field}`);
    }
  }

  const asked = [...groups.values()].flat();
  try {
    await queueRows(rows, deps);
  } catch (error) {
    for (const { message, job } of asked) await retryOrDeadLetter(message, deps.queue, asFailure(error), { fetch: job.kind, id: job.id }, deps);
    return;
  }
  for (const item of asked) {
    const context = { fetch: item.job.kind, field: item.job.field, id: item.job.id, attempts: item.message.attempts };
    if (found.has(item)) {
      deps.log.info("fetch.read", context);
      item.message.ack();
    } else if (item.message.attempts < FETCH_TRIES) {
      deps.log.info("fetch.waiting_for_report", context);
      item.message.retry({ delaySeconds: deps.retrySeconds });
    } else {
      deps.log.warn("fetch.not_found", context);
      item.message.ack();
    }
  }
}
