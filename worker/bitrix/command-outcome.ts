import type * as z from "zod";
import type { CommandOutcome } from "./client";
import { BitrixError } from "./errors";

/** A batch command's result read with a schema, or the error Bitrix24 gave for it. */
export function outcome<T>(result: CommandOutcome | undefined, schema: z.ZodType<T>, what: string): T {
  if (!result) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `${what}: no answer`, true, "no");
  if (!result.ok) throw result.error;
  const parsed = schema.safeParse(result.result);
  if (!parsed.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `${what}: unexpected answer`, true, "no");
  return parsed.data;
}
