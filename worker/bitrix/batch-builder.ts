import type * as z from "zod";
import type { BitrixClient, BitrixCommand, CommandOutcome } from "./client";

/** One command of a batch; its answer is read back through the handle, never through a key spelled twice. */
export interface BatchHandle<T> {
  readonly key: string;
  readonly schema: z.ZodType<T>;
}

export interface BatchAnswers {
  /** The command's outcome as Bitrix24 gave it (undefined: the batch had no answer for it). */
  outcome(handle: BatchHandle<unknown>): CommandOutcome | undefined;
  /** The command's result, parsed with its schema; null when it failed or did not match. */
  value<T>(handle: BatchHandle<T>): T | null;
}

/**
 * Collects commands for one `batch` request. `kind` names a command's key (`add0`, `contact1`…): readable in
 * Bitrix24's answer and in logs; the numbering keeps keys unique.
 */
export function batchBuilder() {
  const commands: Record<string, BitrixCommand> = {};
  let next = 0;
  return {
    add<T>(kind: string, command: BitrixCommand, schema: z.ZodType<T>): BatchHandle<T> {
      const key = `${kind}${next++}`;
      commands[key] = command;
      return { key, schema };
    },
    get size(): number {
      return next;
    },
    async send(client: BitrixClient, options: { readOnly: boolean }): Promise<BatchAnswers> {
      const answers = next > 0 ? await client.batch(commands, options) : {};
      return {
        outcome: (handle) => answers[handle.key],
        value: (handle) => {
          const answer = answers[handle.key];
          if (!answer?.ok) return null;
          const parsed = handle.schema.safeParse(answer.result);
          return parsed.success ? parsed.data : null;
        },
      };
    },
  };
}
