/*
 * `GET /agency`: the agency's page, every portal's health at a glance and one portal's details (`?portal=<key>`), in
 * Russian or English (`?lang=`, else Accept-Language). The page holds no data and no secret: it asks for the admin
 * token once, keeps it in sessionStorage (this tab only, gone when it closes; never in a URL, so never in a log or
 * the history), and renders GET /admin/agency (routes/agency.ts) with it, in the DOM by textContent only (portal
 * names and Bitrix24's or CoMagic's error words are not markup). A dead letter is replayed with the existing
 * POST /admin/dead-letters/<id>/replay. Strict CSP: nothing but its own nonce'd script and style runs, it talks only
 * to this worker, and no site may frame it. A portal with deals or conversions on (issue #25) shows what became of
 * them: a column of the list, present when some portal has them on, and lines of its details.
 */
import { Hono } from "hono/tiny";
import { html, raw } from "hono/html";
import type { AppEnv } from "./app-env";
import { type Language, LOCALES, messagesFor } from "../i18n";
import { agencyLanguage } from "./agency";

const STYLE = raw(`
:root { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; background: #f5f7fa; }
body { margin: 0; padding: 16px 24px 40px; }
header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; margin-bottom: 12px; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 16px; margin: 20px 0 8px; }
header .spacer { flex: 1; } header a, header button { font-size: 13px; }
button { font: inherit; padding: 4px 12px; border: 1px solid #9aa5b5; border-radius: 4px; background: #fff; cursor: pointer; }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 2px solid #2067b0; outline-offset: 1px; }
a { color: #1b5fa6; }
#signin { max-width: 460px; background: #fff; border: 1px solid #d5dbe3; border-radius: 6px; padding: 16px; }
#signin label { display: block; margin: 8px 0 4px; font-weight: 600; }
#signin input { width: 100%; box-sizing: border-box; padding: 6px 8px; font: inherit; border: 1px solid #9aa5b5; border-radius: 4px; }
#signin button { margin-top: 12px; }
.message { margin: 8px 0; color: #a01f1f; } .muted { color: #5b6678; font-size: 12px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #d5dbe3; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #e4e8ee; }
th { background: #eef1f5; font-weight: 600; font-size: 12px; }
td.num { white-space: nowrap; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; white-space: nowrap; }
.status.ok { background: #dff3e4; color: #1d6b34; } .status.degraded { background: #fff1cc; color: #7a5300; } .status.failing { background: #fbdada; color: #8f1d1d; }
ul.reasons { margin: 4px 0 0; padding-left: 18px; } ul.reasons li { margin: 2px 0; }
.error { min-width: 180px; max-width: 300px; overflow-wrap: anywhere; }
td.reasons-cell { min-width: 180px; } .nowrap { white-space: nowrap; }
/* Small type: with this column the Russian list is just as wide as a 1280-pixel screen. */
td.loop { font-size: 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid #d5dbe3; padding: 12px; margin: 0; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
`);

/** The deals and conversions in English, `{}` standing for the count (LOOP_WORDS). */
const LOOP_EN = {
  column: "Deals and conversions",
  /** The list's short words; the details (and a hover in the list) say why, in the words below. */
  brief: { sent: "{} sent", waiting: "{} waiting", linked: "{} linked", notLinked: "{} not linked", refused: "{} refused", notSent: "{} not sent" },
  deals: {
    title: "Deals to CoMagic",
    sent: "{} sent",
    waiting: "{} waiting",
    rejected: "{} refused by CoMagic (see the dead letters)",
    notLinked: "{} not linked: the call or request came over 30 days before",
  },
  metrica: {
    today: "Metrica today",
    week: "Metrica, 7 days",
    sent: "{} sent",
    linked: "{} linked",
    notLinked: "{} not linked",
    processing: "{} upload(s) processing",
    tooOld: "{} not sent: last visit over 21 days ago",
    noVisitor: "{} not sent: no Metrica visitor id",
    failed: "{} refused by Metrica (check the token and counter)",
  },
  ga4: {
    today: "GA4 today",
    week: "GA4, 7 days",
    sent: "{} sent",
    tooOld: "{} not sent: over 72 hours old",
    noVisitor: "{} not sent: no GA client id",
    failed: "{} refused by GA4",
  },
};

/**
 * The page's words for the deals and conversions (issue #25). They belong with its other words in i18n
 * (`agency.loop` of en.ts and ru.ts) and wait here until that catalogue takes them; each says why a conversion was
 * not sent or a deal not linked as the report's notes do (i18n `metricaDay`, `dealsToComagic`, `dealsNotLinked`).
 */
const LOOP_WORDS: Record<Language, typeof LOOP_EN> = {
  en: LOOP_EN,
  ru: {
    column: "Сделки и конверсии",
    brief: { sent: "отправлено: {}", waiting: "ждут: {}", linked: "привязано: {}", notLinked: "не привязано: {}", refused: "отклонено: {}", notSent: "не отправлено: {}" },
    deals: {
      title: "Сделки в CoMagic",
      sent: "отправлено: {}",
      waiting: "ждут: {}",
      rejected: "CoMagic отклонил: {} (см. невыполненные задания)",
      notLinked: "без связи со звонком или заявкой (они старше 30 дней): {}",
    },
    metrica: {
      today: "Метрика сегодня",
      week: "Метрика за 7 дней",
      sent: "отправлено: {}",
      linked: "привязано: {}",
      notLinked: "не привязано: {}",
      processing: "загрузок в обработке: {}",
      tooOld: "не отправлено, визит старше 21 дня: {}",
      noVisitor: "не отправлено, нет посетителя Метрики: {}",
      failed: "Метрика отклонила: {} (проверьте токен и счётчик)",
    },
    ga4: {
      today: "GA4 сегодня",
      week: "GA4 за 7 дней",
      sent: "отправлено: {}",
      tooOld: "не отправлено, старше 72 часов: {}",
      noVisitor: "не отправлено, нет client id GA: {}",
      failed: "GA4 отклонил: {}",
    },
  },
};

/** The page's logic: the texts come from the JSON block above it; every value goes into the DOM as text. */
const SCRIPT = raw(`
const T = JSON.parse(document.getElementById("texts").textContent);
const lang = document.documentElement.lang;
const KEY = "comagic-admin-token";
const main = document.getElementById("main");
const params = new URLSearchParams(location.search);
const detail = params.get("portal");
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) { if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v); }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const span = (minutes) => minutes < 60 ? minutes + " " + T.units.min : minutes < 2880 ? Math.floor(minutes / 60) + " " + T.units.h : Math.floor(minutes / 1440) + " " + T.units.d;
const ago = (iso) => { if (!iso) return T.never; const m = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 60000)); return m < 1 ? T.justNow : T.ago.replace("{}", span(m)); };
const when = (iso) => iso ? new Date(iso).toLocaleString(T.locale, { dateStyle: "short", timeStyle: "short" }) : T.never;
const SOURCES = ["call", "chat", "request", "form"];
// The list names the sources that had events; the details name every one. A line breaks only between sources.
function bySource(values, all) {
  if (!values) return ["—"];
  const shown = SOURCES.filter((s) => all || values[s] > 0);
  if (!shown.length) return ["0"];
  return shown.flatMap((s, i) => [...(i ? [" · "] : []), el("span", { class: "nowrap", text: T.sources[s] + " " + values[s] })]);
}
function lastEvent(last) {
  if (!last) return "—";
  const newest = SOURCES.filter((s) => last[s]).sort((a, b) => Date.parse(last[b]) - Date.parse(last[a]))[0];
  return newest ? T.sources[newest] + ", " + ago(last[newest]) : T.never;
}
const badge = (p) => el("span", { class: "status " + p.status, text: p.statusText });
const reasons = (p) => p.reasons.length ? el("ul", { class: "reasons" }, ...p.reasons.map((r) => el("li", { text: r.text }))) : null;
const token = () => sessionStorage.getItem(KEY);
const show = (...nodes) => main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
const here = (extra) => { const q = new URLSearchParams({ lang }); for (const [k, v] of Object.entries(extra)) q.set(k, v); return "/agency?" + q; };

async function call(path, init) {
  const res = await fetch(path, { ...init, headers: { ...(init?.headers ?? {}), authorization: "Bearer " + token() } });
  if (res.status === 401 || res.status === 403) { sessionStorage.removeItem(KEY); signIn(T.unauthorized); throw new Error("unauthorized"); }
  if (res.status === 429) { signIn(T.lockedOut); throw new Error("locked out"); }
  return res;
}

function signIn(message) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: "" });
  const form = el("form", { id: "signin" }, el("p", { text: T.tokenPrompt }), el("label", { for: "token", text: T.tokenLabel }), input, message ? el("p", { class: "message", role: "alert", text: message }) : null, el("button", { type: "submit", text: T.open }));
  form.addEventListener("submit", (event) => { event.preventDefault(); if (!input.value.trim()) return; sessionStorage.setItem(KEY, input.value.trim()); load(); });
  main.replaceChildren(form);
  input.focus();
}

// Bitrix24's and CoMagic's words, named by who said them; the list shows their start, the full text on hover and in the details.
function errorsCell(p, full) {
  const line = (label, error) => {
    const text = error.text.startsWith(label) || error.text.startsWith("Bitrix24") || error.text.startsWith("CoMagic") ? error.text : label + ": " + error.text;
    const short = !full && text.length > 140 ? text.slice(0, 139) + "…" : text;
    return el("div", { class: "error", title: text, text: short });
  };
  const lines = [];
  if (p.lastErrors.bitrix24) lines.push(line(T.bitrix24, p.lastErrors.bitrix24));
  if (p.lastErrors.comagic) lines.push(line(T.comagic, p.lastErrors.comagic));
  return lines.length ? lines : ["—"];
}
// Deals and conversions (issue #25), a line each as [label, every figure with why, the list's short parts]. The short
// parts name what was sent, and what went wrong summed; they leave out zeros but the first.
const LOOP = {
  deals: { figures: ["sent", "waiting", "rejected", "notLinked"], brief: (f) => [["sent", f.sent], ["waiting", f.waiting], ["refused", f.rejected], ["notLinked", f.notLinked]] },
  metrica: {
    figures: ["sent", "linked", "notLinked", "processing", "tooOld", "noVisitor", "failed"],
    brief: (f) => [["sent", f.sent], ["linked", f.linked], ["notLinked", f.notLinked], ["refused", f.failed], ["notSent", f.tooOld + f.noVisitor]],
  },
  ga4: { figures: ["sent", "tooOld", "noVisitor", "failed"], brief: (f) => [["sent", f.sent], ["refused", f.failed], ["notSent", f.tooOld + f.noVisitor]] },
};
function loopLines(p) {
  const L = T.loop;
  const count = (word, n) => word.replace("{}", String(n));
  const line = (label, to, f) => [label, LOOP[to].figures.map((k) => count(L[to][k], f[k])).join(" · "), LOOP[to].brief(f).filter(([, n], i) => i === 0 || n > 0).map(([k, n]) => count(L.brief[k], n))];
  const lines = [];
  if (p.loop?.deals) lines.push(line(L.deals.title, "deals", p.loop.deals));
  for (const to of ["metrica", "ga4"]) if (p.loop?.[to]) for (const span of ["today", "week"]) lines.push(line(L[to][span], to, p.loop[to][span]));
  return lines;
}
const points = (p) => !p.points ? "—" : p.points.remaining === null ? "— (" + T.resetAt + " " + when(p.points.resetAt) + ")" : p.points.remaining + (p.points.limit ? " / " + p.points.limit : "");
const letters = (p) => p.deadLettersWaiting + (p.deadLettersMore ? "+" : "");

function list(data) {
  if (!data.portals.length) return main.replaceChildren(el("p", { text: T.noPortals }));
  const C = T.columns;
  // The column is there when some portal has deals or conversions on.
  const withLoop = data.portals.some((p) => p.loop);
  const head = el("tr", {}, ...[C.portal, C.status, C.today, C.week, C.lastEvent, C.feedLag, C.errors, C.deadLetters, C.points, C.report, ...(withLoop ? [T.loop.column] : [])].map((h) => el("th", { scope: "col", text: h })));
  const rows = data.portals.map((p) => el("tr", { "data-portal": p.portal },
    el("td", {}, el("a", { href: here({ portal: p.portal }), text: p.portal }), p.name !== p.portal ? el("div", { class: "muted", text: p.name }) : null),
    el("td", { class: "reasons-cell" }, badge(p), reasons(p)),
    el("td", {}, ...bySource(p.today)),
    el("td", {}, ...bySource(p.week)),
    el("td", { class: "num", text: lastEvent(p.last) }),
    el("td", { class: "num", text: p.feedLagMinutes === null ? "—" : span(p.feedLagMinutes) }),
    el("td", {}, ...errorsCell(p)),
    el("td", { class: "num", text: letters(p) }),
    el("td", { class: "num", text: points(p) }),
    el("td", { class: "num", text: p.report.syncedAt ? ago(p.report.syncedAt) : T.never }),
    withLoop ? el("td", { class: "loop" }, ...(p.loop ? loopLines(p).map(([label, full, brief]) => el("div", { title: full, text: label + ": " + brief.join(" · ") })) : ["—"])) : null));
  main.replaceChildren(el("table", { id: "portals" }, el("thead", {}, head), el("tbody", {}, ...rows)), el("p", { class: "muted", text: T.updated + " " + when(data.at) }));
}

function details(p) {
  const facts = el("dl", {},
    el("dt", { text: T.columns.status }), el("dd", {}, badge(p), reasons(p)),
    el("dt", { text: T.lastNotification }), el("dd", { text: ago(p.lastNotificationAt) }),
    el("dt", { text: T.columns.today }), el("dd", {}, ...bySource(p.today, true)),
    el("dt", { text: T.columns.week }), el("dd", {}, ...bySource(p.week, true)),
    ...SOURCES.flatMap((s) => [el("dt", { text: T.sources[s] }), el("dd", { text: ago(p.last?.[s]) })]),
    el("dt", { text: T.feed }), el("dd", { text: p.feed ? T.feedLastSuccess + ": " + ago(p.feed.lastSuccessAt) + " · " + T.feedCursor + ": " + when(p.feed.cursor) : "—" }),
    el("dt", { text: T.columns.feedLag }), el("dd", { text: p.feedLagMinutes === null ? "—" : span(p.feedLagMinutes) }),
    el("dt", { text: T.columns.errors }), el("dd", {}, ...errorsCell(p, true)),
    el("dt", { text: T.columns.points }), el("dd", { text: points(p) }),
    el("dt", { text: T.columns.report }), el("dd", { text: p.report.syncedAt ? ago(p.report.syncedAt) : T.never }),
    ...loopLines(p).flatMap(([label, full]) => [el("dt", { text: label }), el("dd", { text: full })]));
  const L = T.letterColumns;
  const letterRows = p.deadLetters.map((l) => {
    const button = el("button", { type: "button", text: T.replay });
    const state = el("span", { class: "muted", "aria-live": "polite" });
    button.addEventListener("click", async () => {
      button.disabled = true; state.textContent = T.replaying;
      try {
        const res = await call(l.replay, { method: "POST" });
        if (!res.ok) throw new Error(String(res.status));
        state.textContent = T.replayed;
      } catch (e) { button.disabled = false; state.textContent = T.replayFailed; }
    });
    return el("tr", { "data-letter": l.id }, el("td", { class: "num", text: when(l.failedAt) }), el("td", { text: l.jobType + (l.key ? " · " + l.key : "") }), el("td", { text: l.code }), el("td", { class: "error", text: l.reason }), el("td", { class: "num", text: String(l.attempts) }), el("td", {}, button, " ", state));
  });
  const letterTable = letterRows.length
    ? el("table", { id: "letters" }, el("thead", {}, el("tr", {}, ...[L.failedAt, L.job, L.code, L.reason, L.attempts, ""].map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, ...letterRows))
    : el("p", { text: T.noDeadLetters });
  show(
    el("p", {}, el("a", { href: here({}), text: "← " + T.back })),
    el("h2", { text: p.name !== p.portal ? p.portal + " · " + p.name : p.portal }), facts,
    el("h2", { text: T.deadLettersTitle }), letterTable,
    p.deadLettersMore ? el("p", { class: "muted", text: T.moreLetters.replace("{}", String(p.deadLetters.length)) }) : null);
}

async function load() {
  if (!token()) return signIn();
  main.replaceChildren(el("p", { text: T.loading }));
  try {
    const res = await call(detail ? "/admin/agency/" + encodeURIComponent(detail) + "?lang=" + lang : "/admin/agency?lang=" + lang);
    if (!res.ok) throw new Error(String(res.status));
    const data = await res.json();
    if (detail) details(data); else list(data);
  } catch (e) {
    if (String(e?.message).match(/unauthorized|locked out/)) return;
    main.replaceChildren(el("p", { class: "message", role: "alert", text: T.failed }));
  }
}
document.getElementById("refresh").addEventListener("click", () => load());
document.getElementById("forget").addEventListener("click", () => { sessionStorage.removeItem(KEY); signIn(); });
load();
`);

export const agencyPageRoute = new Hono<AppEnv>().get("/", (c) => {
  const language = agencyLanguage(c);
  const words = messagesFor(language).agency;
  const nonce = crypto.randomUUID().replaceAll("-", "");
  const other = language === "en" ? "ru" : "en";
  const portal = c.req.query("portal");
  const switchTo = `?${new URLSearchParams({ ...(portal ? { portal } : {}), lang: other })}`;
  // The texts as data (functions drop out of JSON); `<` escaped so no text can close the script element.
  const texts = JSON.stringify({ ...words, loop: LOOP_WORDS[language], locale: LOCALES[language] }).replaceAll("<", "\\u003c");
  c.header(
    "Content-Security-Policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`,
  );
  c.header("Cache-Control", "no-store");
  c.header("Referrer-Policy", "no-referrer");
  c.header("X-Content-Type-Options", "nosniff");
  return c.html(html`<!doctype html>
<html lang="${language}">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <link rel="icon" href="data:," />
    <title>${words.title}</title>
    <style nonce="${nonce}">${STYLE}</style>
  </head>
  <body>
    <header>
      <h1>${words.title}</h1>
      <span class="spacer"></span>
      <button type="button" id="refresh">${words.refresh}</button>
      <button type="button" id="forget">${words.forget}</button>
      <a href="${switchTo}" lang="${other}">${words.otherLanguage}</a>
    </header>
    <main id="main"></main>
    <script type="application/json" id="texts">${raw(texts)}</script>
    <script nonce="${nonce}">${SCRIPT}</script>
  </body>
</html>`);
});
