/**
 * Where the worker may send secrets (webhook codes, API tokens, passwords, the app's client secret): https only.
 * Plain http goes only to this machine (127.0.0.1 or localhost), where the local sandboxes of `npm start`, the
 * tests and the benchmarks run, and only when ALLOW_LOOPBACK_HTTP="true" says this is such a setup: never by default.
 */

/** 127.0.0.1 or localhost: the sandboxes listen there. */
export function isLoopback(url: URL): boolean {
  return url.hostname === "127.0.0.1" || url.hostname === "localhost";
}

/** True when a secret may travel to `url`: over https, or over plain http to loopback where that is allowed. */
export function isSafeUpstream(url: URL, allowLoopbackHttp: boolean): boolean {
  return url.protocol === "https:" || (allowLoopbackHttp && url.protocol === "http:" && isLoopback(url));
}
