/**
 * A failed call to an ad platform's HTTP API (Yandex Metrica, GA4's Measurement Protocol): what it was (the
 * service's own error type, or `network` / `timeout` / `unexpected_answer`), the HTTP status, and whether the same
 * call may succeed later (`transient`: server errors, timeouts, quotas) or needs a person or other data. Each client
 * names its own subclass, so a catch site says which service refused.
 */
export class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status: number,
    readonly transient: boolean,
    readonly retryAfterSeconds = 0,
  ) {
    super(message);
  }
}
