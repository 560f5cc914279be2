import { Hono, type Context } from "hono";

/*
 * A stand-in for the hosts call recordings live on (CoMagic's media.comagic.ru, FACTS-calls §2:
 * `full_record_file_link`), with the behaviours a recording link may have. Whether CoMagic's links need a cabinet
 * session, and which content type they carry, no source says (comagic/FACTS-calls.md §9.5, bitrix24/FACTS-portals
 * §13.4), so each reading has a path. The first path segment picks the behaviour, the rest is any name:
 *   /_sandbox/media/rec/…          audio/mpeg; HEAD and ranged GET (`Range: bytes=a-b`, 206) as file hosts answer
 *   /_sandbox/media/slow/<ms>/…    the same, but a GET's answer takes <ms> (HEAD at once): a slow download
 *   /_sandbox/media/no-head/…      HEAD refused with 405 (Allow: GET), as some servers do; GET serves the audio
 *   /_sandbox/media/login/…        302 to a sign-in page (200 text/html): a link that needs a session
 *   /_sandbox/media/flaky/<n>/…    the first <n> requests to the path answer 503, then the audio
 *   /_sandbox/media/gone/…         404
 * The sandbox has no internet, so links on media.comagic.ru (the notifications' and reports' samples) are served
 * from here as `rec` when the Bitrix24 sandbox downloads them. `GET /_sandbox/media-stats` counts requests per
 * method and path (a download is a GET without a Range header). Mounted under a portal's prefix (`/p/<name>`), its
 * links stay under that prefix.
 */

/** A few MPEG frames behind an ID3 tag: enough bytes to look like an MP3 to anyone who checks. */
const AUDIO = (() => {
  const bytes = new Uint8Array(4_096);
  bytes.set([0x49, 0x44, 0x33, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
  for (let i = 10; i + 1 < bytes.length; i += 418) bytes.set([0xff, 0xfb, 0x90, 0x64], i);
  return bytes;
})();

const MEDIA = "/_sandbox/media/";

const signInPage = (mountedAt: string) =>
  `<!doctype html><html><head><title>Вход в личный кабинет</title></head><body><form method="post" action="${mountedAt}${MEDIA}sign-in"><input name="login"><input name="password" type="password"><button>Войти</button></form></body></html>`;

/** The prefix the host is mounted under ("" or "/p/<name>"), and the path after `/_sandbox/media/`. */
function split(path: string): { mountedAt: string; rest: string } {
  const at = path.indexOf(MEDIA);
  return { mountedAt: path.slice(0, at), rest: path.slice(at + MEDIA.length) };
}

/** The host as a Hono app (mounted on the sandbox's port), and a way to reset and read its counts. */
export function createMediaHost() {
  const requests: Record<string, number> = {};
  const downloads: Record<string, number> = {};
  const flakyServed: Record<string, number> = {};

  const audio = (c: Context) => {
    const range = /^bytes=(\d*)-(\d*)$/.exec(c.req.header("range") ?? "");
    const headers: Record<string, string> = { "content-type": "audio/mpeg", "accept-ranges": "bytes" };
    if (!range) {
      return new Response(c.req.method === "HEAD" ? null : AUDIO.slice(), { status: 200, headers: { ...headers, "content-length": String(AUDIO.length) } });
    }
    const start = range[1] === "" ? Math.max(0, AUDIO.length - Number(range[2])) : Number(range[1]);
    const end = range[1] === "" || range[2] === "" ? AUDIO.length - 1 : Math.min(Number(range[2]), AUDIO.length - 1);
    if (start > end) return c.body(null, 416, { "content-range": `bytes */${AUDIO.length}` });
    const part = AUDIO.slice(start, end + 1);
    return new Response(c.req.method === "HEAD" ? null : part, {
      status: 206,
      headers: { ...headers, "content-range": `bytes ${start}-${end}/${AUDIO.length}`, "content-length": String(part.length) },
    });
  };

  const app = new Hono();
  app.get("/_sandbox/media-stats", (c) => c.json({ requests, downloads }));
  app.all("/_sandbox/media/sign-in", (c) => c.html(signInPage(split(c.req.path).mountedAt)));
  app.all("/_sandbox/media/*", async (c) => {
    const path = new URL(c.req.url).pathname;
    const method = c.req.method;
    requests[`${method} ${path}`] = (requests[`${method} ${path}`] ?? 0) + 1;
    if (method === "GET" && !c.req.header("range")) downloads[path] = (downloads[path] ?? 0) + 1;
    if (method !== "GET" && method !== "HEAD") return c.body(null, 405, { allow: "GET, HEAD" });
    const { mountedAt, rest } = split(path);
    const [kind, arg] = rest.split("/");
    switch (kind) {
      case "rec":
        return audio(c);
      case "slow":
        if (method === "GET") await new Promise((r) => setTimeout(r, Math.min(Number(arg) || 0, 120_000)));
        return audio(c);
      case "no-head":
        return method === "HEAD" ? c.body(null, 405, { allow: "GET" }) : audio(c);
      case "login":
        return c.redirect(`${mountedAt}${MEDIA}sign-in?back=${encodeURIComponent(path)}`, 302);
      case "flaky": {
        flakyServed[path] = (flakyServed[path] ?? 0) + 1;
        if (flakyServed[path] <= (Number(arg) || 0)) return c.text("Service Unavailable", 503);
        return audio(c);
      }
      default:
        return c.text("Not Found", 404);
    }
  });

  return {
    app,
    reset() {
      for (const counts of [requests, downloads, flakyServed]) for (const key of Object.keys(counts)) delete counts[key];
    },
  };
}

/** media.comagic.ru, which the sandbox serves itself (it has no internet). */
export const COMAGIC_MEDIA_HOST = "media.comagic.ru";
