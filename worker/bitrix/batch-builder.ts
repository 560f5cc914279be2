import type * as z from "zod";
import type { BitrixClient, BitrixCommand, CommandOutcome } from "./client";
import { BitrixError } from "./errors";

/** One command of a batch; its answer is read back through the handle, never through a key spelled twice. */
export interface BatchHandle<T> {
  readonly key: string;
  readonly method: string;
  readonly schema: z.ZodType<T>;
}

export interface BatchAnswers {
  /** The command's outcome as Bitrix24 gave it (undefined: the batch had no answer for it). */
  outcome(handle: BatchHandle<unknown>): CommandOutcome | undefined;
  /** The command's result, parsed with its schema; null when it failed or did not match. */
  value<T>(handle: BatchHandle<T>): T | null;
  /** The command's result, for reads the round cannot go on without: a failure throws (Bitrix24's own error when it gave one). */
  required<T>(handle: BatchHandle<T>): T;
  /**
   * Why the command did not give a usable result: Bitrix24's own error, or (no answer, an answer of another
   * shape) a retryable one that, for writes, may have been applied. Null when `value` has its result.
   */
  failure(handle: BatchHandle<unknown>): BitrixError | null;
  /** Every error Bitrix24 gave in this batch, in command order. */
  errors(): BitrixError[];
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
      return { key, method: command.method, schema };
    },
    get size(): number {
      return next;
    },
    async send(client: BitrixClient, options: { readOnly: boolean }): Promise<BatchAnswers> {
      const answers = next > 0 ? await client.batch(commands, options) : {};
      const parsed = <T>(handle: BatchHandle<T>) => {
        const answer = answers[handle.key];
        return answer?.ok ? handle.schema.safeParse(answer.result) : null;
      };
      const failure = (handle: BatchHandle<unknown>): BitrixError | null => {
        const answer = answers[handle.key];
        if (answer && !answer.ok) return answer.error;
        if (parsed(handle)?.success) return null;
        const what = answer ? "unexpected answer" : "no answer";
        return new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 ${handle.method}: ${what}`, true, options.readOnly ? "no" : "unknown");
      };
      return {
        outcome: (handle) => answers[handle.key],
        value: (handle) => {
          const result = parsed(handle);
          return result?.success ? result.data : null;
        },
        required: (handle) => {
          const result = parsed(handle);
          if (result?.success) return result.data;
          throw failure(handle);
        },
        failure,
        errors: () => Object.values(answers).flatMap((answer) => (answer.ok ? [] : [answer.error])),
      };
    },
  };
}

/** A batch being built: what code that adds commands for a caller to send takes. */
export type BatchBuilder = ReturnType<typeof batchBuilder>;
