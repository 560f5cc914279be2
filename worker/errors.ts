import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error type handlers throw; `onError` turns it into a JSON response with a safe message. */
export class AppError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "AppError";
  }
}
