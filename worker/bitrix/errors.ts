import { CREDENTIAL_RETRY_SECONDS, OPERATION_LIMIT_RETRY_SECONDS } from "../domain/retry-policy";

/**
 * A failed Bitrix24 call. `applied` says whether the portal may have carried the call out anyway
 * (a timeout after sending), which decides if it is safe to repeat without looking again first.
 */
export class BitrixError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly transient: boolean,
    readonly applied: "no" | "unknown",
    readonly retryAfterSeconds = 0,
  ) {
    super(message);
    this.name = "BitrixError";
  }
}

// Credentials and scope problems are fixed by an admin, not by the code: wait and retry so nothing is lost.
const CREDENTIAL_CODES = new Set(["NO_AUTH_FOUND", "INVALID_CREDENTIALS", "expired_token", "invalid_token", "insufficient_scope", "authorization_error", "user_access_error"]);

/** A refused token or missing right, as opposed to a busy or failing portal. */
export const isCredentialError = (error: BitrixError): boolean => CREDENTIAL_CODES.has(error.code);

const USER_NOT_ACTIVE = /user is not found or is not active/i;

/** Maps an error envelope to transient or permanent. Decide on `error`, not on the HTTP status: they disagree. */
export function classifyBitrixError(code: string, description: string, httpStatus: number): BitrixError {
  const message = `Bitrix24 ${code || `HTTP ${httpStatus}`}: ${description || "no description"}`;
  if (code === "QUERY_LIMIT_EXCEEDED") return new BitrixError(code, message, true, "no", 1);
  if (code === "OPERATION_TIME_LIMIT") return new BitrixError(code, message, true, "no", OPERATION_LIMIT_RETRY_SECONDS);
  if (code === "OVERLOAD_LIMIT") return new BitrixError(code, message, true, "no", CREDENTIAL_RETRY_SECONDS);
  if (CREDENTIAL_CODES.has(code)) return new BitrixError(code, message, true, "no", CREDENTIAL_RETRY_SECONDS);
  if (code === "INTERNAL_SERVER_ERROR" || code === "ERROR_UNEXPECTED_ANSWER" || httpStatus >= 500) {
    return new BitrixError(code || `HTTP_${httpStatus}`, message, true, "unknown");
  }
  // FACTS-portals §5: with required-field checks on for applications, an add fails with an empty code and
  // "The required field '…' is missing." lines (newer methods: CRM_FIELD_ERROR_REQUIRED). Say what fixes it.
  if (code === "CRM_FIELD_ERROR_REQUIRED" || (code === "" && /required|is missing|обязательн|не заполнен/i.test(description))) {
    return new BitrixError(
      "REQUIRED_FIELD_MISSING",
      `Bitrix24 refused the write: a required field is empty (${description.replace(/<br\s*\/?>/gi, " ").trim()}). Fix it in one of two ways, then replay this dead letter: turn off required-field checks for applications (CRM → Settings → Other → Other settings → Applications), or give each such field a value in REQUIRED_FIELD_DEFAULTS (JSON: field → value).`,
      false,
      "no",
    );
  }
  // FACTS.md §2.9: telephony register/finish answer ERROR_CORE "User is not found or is not active" for a
  // dismissed (or unknown) USER_ID; the PHP SDK matches the text with empty codes too (§3.3). No retry brings
  // the user back: a person maps another one. Checked before "not found", which would make it transient.
  if (USER_NOT_ACTIVE.test(description)) {
    return new BitrixError(
      "USER_NOT_ACTIVE",
      `${message}. Bitrix24 refuses a dismissed or unknown user: map another, active user (COMAGIC_EMPLOYEES for the CoMagic employee, DEFAULT_RESPONSIBLE_ID, LOST_CALL_RESPONSIBLE_ID), or bring this one back.`,
      false,
      "no",
    );
  }
  // A lead that vanished between lookup and write: looking again decides anew, so retry.
  if (/not found/i.test(description) && code !== "ERROR_METHOD_NOT_FOUND") {
    return new BitrixError(code || "NOT_FOUND", message, true, "no");
  }
  return new BitrixError(code || "ERROR", message, false, "no");
}

/** A portal's Bitrix24 request budget (bitrix/request-budget.ts), as the client uses it. Here, apart from its Durable Object adapter, so the client needs no Workers types. */
export interface RequestBudget {
  /** Resolves when `n` HTTP requests (default 1; a `batch` is one) may be sent; rejects with RequestBudgetError. */
  acquire(n?: number): Promise<void>;
  /** Bitrix24 answered QUERY_LIMIT_EXCEEDED all the same. */
  refused(): Promise<void>;
}

/**
 * No permit within the wait cap. Its code is Bitrix24's own (the portal is busy, retry later) so that consumers treat
 * it like the real refusal; it is a class of its own so that the client does not repeat it in place.
 */
export class RequestBudgetError extends BitrixError {
  constructor(portal: string, waitedMs: number, retryAfterSeconds: number) {
    super("QUERY_LIMIT_EXCEEDED", `Bitrix24 request budget of portal ${portal}: no permit after ${waitedMs} ms of waiting`, true, "no", retryAfterSeconds);
    this.name = "RequestBudgetError";
  }
}
