import { html, raw } from "hono/html";
import { MODELS } from "../domain/attribution";
import type { CreditedEntity } from "../domain/attribution-credits";
import { COST_GROUPING, currencyOrder, GROUPINGS, PERIODS, type Money, type Report, type ReportFilters, type ReportRow } from "../domain/attribution-report";
import { LOCALES, type Language, type Messages } from "../i18n";

/*
 * The attribution report page and its CSV, rendered on the server (hono/html escapes every value, in the table
 * and in the SVG chart alike). The table and the CSV are built from the same cells, so the export is exactly
 * what the table shows. Group names come from visitors' UTM tags and campaign names: anyone can choose them,
 * so the CSV neutralises those that a spreadsheet would run as a formula.
 */

type Html = ReturnType<typeof raw>;

export type { ReportFilters };

export interface ReportPageProps {
  report: Report;
  filters: ReportFilters;
  token: string;
  language: Language;
  messages: Messages;
  timeZone: string;
  notes: string[];
  entities: CreditedEntity[];
  cspNonce: string;
}

export interface Cell {
  text: string;
  /** What a header click sorts by. */
  sort: number | string;
  /**
   * Money only: the rank of the cell's currency in currencyOrder (a cell without money ranks after all). A sort
   * orders by rank first, always ascending, and compares amounts only within one currency.
   */
  rank?: number;
  /** A figure the worker wrote itself, never text from a visit: the CSV leaves it as it is. */
  figure: boolean;
}

function formatters(language: Language) {
  const locale = LOCALES[language];
  // Two decimals: four linear shares of 0.25 read 0.25 each and a row adds up (one decimal showed 0.3).
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
  const money = (amount: number, currency: string) => {
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency, maximumFractionDigits: 0 }).format(amount);
    } catch {
      return `${count.format(Math.round(amount))} ${currency}`;
    }
  };
  return { count, percent, money };
}

const DASH = "—";

type Format = ReturnType<typeof formatters>;

/** Several currencies are shown side by side (in the report's currency order), never summed; sorted by the first. */
function moneyCell(value: Money | null, format: Format, currencies: readonly string[]): Cell {
  if (value === null) return { text: DASH, sort: -1, rank: currencies.length, figure: true };
  const rankOf = (currency: string) => currencies.indexOf(currency);
  const entries = Object.entries(value).sort((a, b) => rankOf(a[0]) - rankOf(b[0]));
  const [first] = entries;
  // Nothing won is 0 in any currency: it sorts with the first currency's amounts.
  if (!first) return { text: format.count.format(0), sort: 0, rank: 0, figure: true };
  return { text: entries.map(([currency, amount]) => format.money(amount, currency)).join(" · "), sort: first[1], rank: rankOf(first[0]), figure: true };
}

function soleMoney(amount: number | null, cost: Money | null, format: Format, currencies: readonly string[]): Cell {
  const currency = Object.keys(cost ?? {})[0];
  if (amount === null || !currency) return { text: DASH, sort: -1, rank: currencies.length, figure: true };
  return { text: format.money(amount, currency), sort: amount, rank: currencies.indexOf(currency), figure: true };
}

export function reportHeader(filters: ReportFilters, messages: Messages): string[] {
  const c = messages.columns;
  const head = filters.entity === "deal" ? [c.group, c.deal, c.contacts, c.deals, c.won] : [c.group, c.lead, c.deals, c.won];
  head.push(c.revenue, c.dealRate, c.wonRate);
  return filters.grouping === COST_GROUPING ? [...head, c.cost, c.costPerConversion, c.costPerWon, c.romi] : head;
}

function groupLabel(row: ReportRow, messages: Messages): string {
  if (row.key === null) return messages.notSet;
  return row.label && row.label !== row.key ? row.label : row.key;
}

/** The table's cells: rows, then the totals row. */
export function reportCells(report: Report, filters: ReportFilters, language: Language, messages: Messages): Cell[][] {
  const format = formatters(language);
  const currencies = currencyOrder(report);
  const count = (v: number): Cell => ({ text: format.count.format(v), sort: v, figure: true });
  const ratio = (v: number | null): Cell => (v === null ? { text: DASH, sort: -1, figure: true } : { text: format.percent.format(v), sort: v, figure: true });
  const line = (row: ReportRow, label: string): Cell[] => {
    const cells: Cell[] = [
      // A group's name is a visitor's UTM tag or a campaign's name: text anyone can choose, never a figure.
      { text: label, sort: label.toLowerCase(), figure: false },
      count(row.conversions),
      ...(filters.entity === "deal" ? [count(row.contacts)] : []),
      count(row.deals),
      count(row.won),
      moneyCell(row.revenue, format, currencies),
      ratio(row.dealRate),
      ratio(row.wonRate),
    ];
    if (filters.grouping !== COST_GROUPING) return cells;
    return [
      ...cells,
      moneyCell(row.cost, format, currencies),
      soleMoney(row.costPerConversion, row.cost, format, currencies),
      soleMoney(row.costPerWon, row.cost, format, currencies),
      ratio(row.romi),
    ];
  };
  return [...report.rows.map((row) => line(row, groupLabel(row, messages))), line(report.total, messages.total)];
}

/**
 * OWASP's rule against CSV injection: a cell that starts with one of these is run as a formula by Excel and
 * LibreOffice (`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`, `@SUM(…)`, and a tab or CR before any of them).
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/** Text becomes inert with a leading apostrophe; the worker's own figures (like "-100%") are left as they are. */
export function csvField(cell: { text: string; figure: boolean }): string {
  const text = !cell.figure && FORMULA_START.test(cell.text) ? `'${cell.text}` : cell.text;
  return /[",;\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Excel splits a CSV into columns by the list separator of the system's locale: a comma for English, a
 * semicolon for Russian (where the comma is the decimal mark, as in "0,25"). So the Russian page writes `;`.
 * No `sep=` line: with one, Excel ignores the byte-order mark and garbles Cyrillic.
 */
export const CSV_SEPARATOR: Record<Language, string> = { en: ",", ru: ";" };

/** UTF-8 with a byte-order mark, so Excel opens Cyrillic right. */
export function renderReportCsv(report: Report, filters: ReportFilters, language: Language, messages: Messages): string {
  const header = reportHeader(filters, messages).map((text) => ({ text, figure: false }));
  const lines = [header, ...reportCells(report, filters, language, messages)];
  return `\uFEFF${lines.map((line) => line.map(csvField).join(CSV_SEPARATOR[language])).join("\r\n")}\r\n`;
}

/** One chart per currency (amounts in two currencies share no scale), in the report's currency order. */
function charts(report: Report, messages: Messages, language: Language): Html {
  return raw(
    currencyOrder(report)
      .map((currency) => String(chart(report, currency, messages, language)))
      .join(""),
  );
}

/** Revenue and cost bars in one currency for the groups (top 12 by conversions) that have either in it. */
function chart(report: Report, currency: string, messages: Messages, language: Language): Html {
  const rows = report.rows.filter((r) => (r.revenue[currency] ?? 0) > 0 || (r.cost?.[currency] ?? 0) > 0).slice(0, 12);
  if (rows.length === 0) return raw("");
  const values = rows.map((r) => ({ label: groupLabel(r, messages), revenue: r.revenue[currency] ?? 0, cost: r.cost?.[currency] ?? 0 }));
  const max = Math.max(1, ...values.flatMap((v) => [v.revenue, v.cost]));
  const format = formatters(language);
  const rowHeight = 26;
  const width = 640;
  const labelWidth = 180;
  const barWidth = (v: number) => Math.max(0, Math.round(((width - labelWidth - 110) * v) / max));
  const bars = values.map((v, i) => {
    const y = 24 + i * rowHeight;
    return html`<g><text x="0" y="${y + 12}" class="label">${v.label.length > 26 ? `${v.label.slice(0, 25)}…` : v.label}</text>
<rect x="${labelWidth}" y="${y}" width="${barWidth(v.revenue)}" height="9" class="revenue"></rect><text x="${labelWidth + barWidth(v.revenue) + 4}" y="${y + 8}" class="value">${format.money(v.revenue, currency)}</text>
<rect x="${labelWidth}" y="${y + 11}" width="${barWidth(v.cost)}" height="9" class="cost"></rect>${v.cost ? html`<text x="${labelWidth + barWidth(v.cost) + 4}" y="${y + 19}" class="value">${format.money(v.cost, currency)}</text>` : ""}</g>`;
  });
  const height = 30 + rows.length * rowHeight;
  const title = `${messages.chartTitle}, ${currency}`;
  return raw(
    String(html`<h2>${title}</h2><svg class="chart" data-currency="${currency}" role="img" aria-label="${title}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect x="${labelWidth}" y="4" width="10" height="10" class="revenue"></rect><text x="${labelWidth + 14}" y="13" class="value">${messages.chartRevenue}</text>
<rect x="${labelWidth + 100}" y="4" width="10" height="10" class="cost"></rect><text x="${labelWidth + 114}" y="13" class="value">${messages.chartCost}</text>${raw(bars.map(String).join(""))}</svg>`),
  );
}

const STYLE = raw(`
body{font:13px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333;margin:0;padding:16px 20px;background:#fff}
h1{font-size:18px;margin:0 0 12px}h2{font-size:14px;margin:18px 0 8px}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;margin-bottom:10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#525c69;gap:3px}
select,input{font:13px Arial;padding:4px}
button,a.button{background:#3bc8f5;border:0;border-radius:2px;color:#fff;font:bold 13px Arial;padding:7px 14px;cursor:pointer;text-decoration:none}
a.button.secondary,button.secondary{background:#eef2f4;color:#333}
.note{background:#f5f7f8;border-left:3px solid #2fc6f6;padding:8px 12px;margin:8px 0}.note.warn{border-color:#ffa900}
.meta{color:#80868e;font-size:12px}
table{border-collapse:collapse;width:100%;margin-top:8px}th,td{border-bottom:1px solid #eef2f4;padding:5px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}th{color:#525c69;font-weight:normal;font-size:12px;cursor:pointer;user-select:none}
tfoot td{font-weight:bold;border-top:2px solid #dfe3e6}
svg text.label{font-size:12px;fill:#333}svg text.value{font-size:11px;fill:#525c69}svg rect.revenue{fill:#9dcf00}svg rect.cost{fill:#ff5752}`);

/**
 * Sorting by a header click, the refresh button and the CSV export: the only script the page has. The report
 * token travels in POST bodies only (never in a URL, so never in logs or history); a response may carry a
 * renewed one (access re-checked with Bitrix24) in X-Report-Token, which later requests send instead.
 */
const SCRIPT = raw(`
const form = document.getElementById("filters");
const token = form.elements.namedItem("token");
const keep = (res) => { const renewed = res.headers.get("x-report-token"); if (renewed) token.value = renewed; };
const table = document.getElementById("report");
table?.querySelectorAll("thead th").forEach((th, column) => th.addEventListener("click", () => {
  const body = table.tBodies[0], rows = [...body.rows];
  const down = th.dataset.dir !== "desc"; th.dataset.dir = down ? "desc" : "asc";
  // Money sorts within its currency: the currency's rank first (always ascending), then the amount.
  const key = (row) => { const cell = row.cells[column]; const raw = cell.dataset.sort; const n = Number(raw); return { rank: Number(cell.dataset.rank ?? 0), value: raw !== "" && !Number.isNaN(n) ? n : raw }; };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x.rank !== y.rank) return x.rank - y.rank;
    const c = typeof x.value === "number" && typeof y.value === "number" ? x.value - y.value : String(x.value).localeCompare(String(y.value));
    return down ? -c : c;
  });
  body.append(...rows);
}));
// Picking a day means a custom period.
document.querySelectorAll('input[type="date"]').forEach((input) => input.addEventListener("change", () => { const period = document.getElementById("period"); if (period) period.value = "custom"; }));
document.getElementById("refresh")?.addEventListener("click", async (event) => {
  const button = event.currentTarget; button.disabled = true; button.textContent = button.dataset.busy;
  try {
    const res = await fetch(button.dataset.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: token.value }) });
    keep(res);
    if (!res.ok) throw new Error(String(res.status));
    if (res.status === 202) { button.disabled = false; button.textContent = button.dataset.running; return; }
    form.submit();
  } catch (e) { button.disabled = false; button.textContent = button.dataset.failed; }
});
// The CSV is fetched with the token in the body and saved from a Blob: a link would put the token in a URL.
document.getElementById("export")?.addEventListener("click", async (event) => {
  const button = event.currentTarget, label = button.dataset.label; button.disabled = true;
  try {
    const body = new URLSearchParams(button.dataset.filters); body.set("token", token.value);
    const res = await fetch(button.dataset.url, { method: "POST", body });
    keep(res);
    if (!res.ok) throw new Error(String(res.status));
    const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? "comagic-attribution.csv";
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await res.blob()); link.download = name;
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    button.textContent = label;
  } catch (e) { button.textContent = button.dataset.failed; }
  button.disabled = false;
});`);

function options<T extends string>(values: readonly T[], selected: T, labels: Record<T, string>): Html {
  return raw(values.map((v) => String(html`<option value="${v}"${v === selected ? raw(" selected") : ""}>${labels[v]}</option>`)).join(""));
}

/** The filters the page shows, as the CSV export posts them (with the token added by the script). */
export function appliedFilters(filters: ReportFilters): string {
  const query = new URLSearchParams({ period: filters.period, model: filters.model, grouping: filters.grouping, entity: filters.entity });
  if (filters.period === "custom") {
    query.set("from", filters.days.from);
    query.set("to", filters.days.to);
  }
  return query.toString();
}

function formatDay(day: string, language: Language): string {
  return new Intl.DateTimeFormat(LOCALES[language], { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }).format(new Date(`${day}T00:00:00Z`));
}

export function renderReportPage(props: ReportPageProps): Html {
  const { report, filters, messages: m, language, token, cspNonce } = props;
  const header = reportHeader(filters, m);
  const cells = reportCells(report, filters, language, m);
  const body = cells.slice(0, -1);
  const totals = cells[cells.length - 1] ?? [];
  const td = (c: Cell) => (c.rank === undefined ? html`<td data-sort="${c.sort}">${c.text}</td>` : html`<td data-sort="${c.sort}" data-rank="${c.rank}">${c.text}</td>`);
  const lang = `?LANG=${language}`;
  const join = (parts: readonly unknown[]) => raw(parts.map(String).join(""));
  const table = report.rows.length
    ? html`<table id="report"><thead><tr>${join(header.map((h) => html`<th>${h}</th>`))}</tr></thead>
<tbody>${join(body.map((row) => html`<tr>${join(row.map(td))}</tr>`))}</tbody><tfoot><tr>${join(totals.map(td))}</tr></tfoot></table>`
    : "";
  const page = html`<!doctype html><html lang="${language}"><head><meta charset="utf-8"><title>${m.reportTitle}</title><style nonce="${cspNonce}">${STYLE}</style></head><body>
<h1>${m.reportTitle}</h1>
<form class="filters" id="filters" method="post" action="/bitrix/report${lang}"><input type="hidden" name="token" value="${token}">
<label>${m.period}<select name="period" id="period">${options(PERIODS, filters.period, m.periods)}</select></label>
<label>${m.from}<input type="date" name="from" value="${filters.days.from}"></label><label>${m.to}<input type="date" name="to" value="${filters.days.to}"></label>
<label>${m.model}<select name="model" id="model">${options(MODELS, filters.model, m.models)}</select></label>
<label>${m.grouping}<select name="grouping" id="grouping">${options(GROUPINGS, filters.grouping, m.groupings)}</select></label>
${props.entities.length > 1 ? html`<label>${m.entity}<select name="entity" id="entity">${options(props.entities, filters.entity, m.entities)}</select></label>` : html`<input type="hidden" name="entity" value="${filters.entity}">`}
<button type="submit" id="apply">${m.apply}</button>
<button type="button" class="secondary" id="export" data-url="/bitrix/report.csv${lang}" data-filters="${appliedFilters(filters)}" data-label="${m.exportCsv}" data-failed="${m.exportFailed}">${m.exportCsv}</button>
<button type="button" class="secondary" id="refresh" data-url="/bitrix/report/refresh${lang}" data-busy="${m.refreshing}" data-failed="${m.refreshFailed}" data-running="${m.refreshRunning}">${m.refresh}</button></form>
<p class="meta" id="period-shown">${m.periodShown(formatDay(filters.days.from, language), formatDay(filters.days.to, language), props.timeZone)}</p>
${join(props.notes.map((note) => html`<div class="note" data-note>${note}</div>`))}
${charts(report, m, language)}
${table}
<script nonce="${cspNonce}">${SCRIPT}</script></body></html>`;
  return raw(String(page));
}
