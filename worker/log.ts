import { maskPhone } from "./domain/phone";

type Level = "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

// A second line of defence: call sites pass masked values, but a slip must not leak a secret or a number.
const SECRET_KEY = /token|secret|password|authorization|auth_id|refresh/i;
const PHONE_KEY = /phone/i;

function scrub(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (SECRET_KEY.test(key)) out[key] = "[redacted]";
    else if (PHONE_KEY.test(key) && typeof value === "string") out[key] = maskPhone(value);
    else out[key] = value;
  }
  return out;
}

/** Structured JSON logs: one object a line, `event` in `noun.verb` form. */
export function createLogger(base: LogFields = {}, sink: (line: string) => void = console.log): Logger {
  const write = (level: Level, event: string, fields: LogFields = {}) => sink(JSON.stringify({ level, event, ...scrub(base), ...scrub(fields) }));
  return {
    info: (event, fields) => write("info", event, fields),
    warn: (event, fields) => write("warn", event, fields),
    error: (event, fields) => write("error", event, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
