import { html, raw } from "hono/html";
import { MODELS } from "../domain/attribution";
import type { CreditedEntity } from "../domain/attribution-credits";
import { COST_GROUPING, GROUPINGS, PERIODS, type Money, type Report, type ReportFilters, type ReportRow } from "../domain/attribution-report";
import { LOCALES, type Language, type Messages } from "../i18n";

/*
 * The attribution report page and its CSV, rendered on the server (hono/html escapes every value). The table
 * and the CSV are built from the same cells, so the export is exactly what the table shows.
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

interface Cell {
  text: string;
  sort: number | string;
}

function formatters(language: Language) {
  const locale = LOCALES[language];
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
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

/** Several currencies are shown side by side, never summed. */
function moneyCell(value: Money | null, format: ReturnType<typeof formatters>): Cell {
  if (value === null) return { text: DASH, sort: -1 };
  const entries = Object.entries(value);
  if (entries.length === 0) return { text: format.count.format(0), sort: 0 };
  return { text: entries.map(([currency, amount]) => format.money(amount, currency)).join(" · "), sort: entries[0]?.[1] ?? 0 };
}

function soleMoney(amount: number | null, cost: Money | null, format: ReturnType<typeof formatters>): Cell {
  const currency = Object.keys(cost ?? {})[0];
  return amount === null || !currency ? { text: DASH, sort: -1 } : { text: format.money(amount, currency), sort: amount };
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
  const ratio = (v: number | null): Cell => (v === null ? { text: DASH, sort: -1 } : { text: format.percent.format(v), sort: v });
  const line = (row: ReportRow, label: string): Cell[] => {
    const cells: Cell[] = [
      { text: label, sort: label.toLowerCase() },
      { text: format.count.format(row.conversions), sort: row.conversions },
      ...(filters.entity === "deal" ? [{ text: format.count.format(row.contacts), sort: row.contacts }] : []),
      { text: format.count.format(row.deals), sort: row.deals },
      { text: format.count.format(row.won), sort: row.won },
      moneyCell(row.revenue, format),
      ratio(row.dealRate),
      ratio(row.wonRate),
    ];
    if (filters.grouping !== COST_GROUPING) return cells;
    return [...cells, moneyCell(row.cost, format), soleMoney(row.costPerConversion, row.cost, format), soleMoney(row.costPerWon, row.cost, format), ratio(row.romi)];
  };
  return [...report.rows.map((row) => line(row, groupLabel(row, messages))), line(report.total, messages.total)];
}

const csvField = (text: string) => (/[",;\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

/** UTF-8 with a byte-order mark, so Excel opens Cyrillic right. */
export function renderReportCsv(report: Report, filters: ReportFilters, language: Language, messages: Messages): string {
  const lines = [reportHeader(filters, messages), ...reportCells(report, filters, language, messages).map((row) => row.map((c) => c.text))];
  return `\uFEFF${lines.map((line) => line.map(csvField).join(",")).join("\r\n")}\r\n`;
}

/** Revenue and cost bars per group (top 12), in the currency most of the revenue is in. */
function chart(report: Report, messages: Messages, language: Language): Html {
  const rows = report.rows.slice(0, 12);
  const totals = new Map<string, number>();
  for (const row of rows) for (const [c, v] of Object.entries(row.revenue)) totals.set(c, (totals.get(c) ?? 0) + v);
  for (const row of rows) for (const [c, v] of Object.entries(row.cost ?? {})) if (!totals.size) totals.set(c, v);
  const currency = [...totals.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (!currency || rows.length === 0) return raw("");
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
  return raw(
    String(html`<h2>${messages.chartTitle}</h2><svg id="chart" role="img" aria-label="${messages.chartTitle}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
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

/** Sorting by a header click, and the refresh button: the only script the page has. */
const SCRIPT = raw(`
const table = document.getElementById("report");
table?.querySelectorAll("thead th").forEach((th, column) => th.addEventListener("click", () => {
  const body = table.tBodies[0], rows = [...body.rows];
  const down = th.dataset.dir !== "desc"; th.dataset.dir = down ? "desc" : "asc";
  const value = (row) => { const raw = row.cells[column].dataset.sort; const n = Number(raw); return raw !== "" && !Number.isNaN(n) ? n : raw; };
  rows.sort((a, b) => { const x = value(a), y = value(b); const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y)); return down ? -c : c; });
  body.append(...rows);
}));
// Picking a day means a custom period.
document.querySelectorAll('input[type="date"]').forEach((input) => input.addEventListener("change", () => { const period = document.getElementById("period"); if (period) period.value = "custom"; }));
document.getElementById("refresh")?.addEventListener("click", async (event) => {
  const button = event.currentTarget; button.disabled = true; button.textContent = button.dataset.busy;
  try {
    const res = await fetch(button.dataset.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: button.dataset.token }) });
    if (!res.ok) throw new Error(String(res.status));
    location.reload();
  } catch (e) { button.disabled = false; button.textContent = button.dataset.failed; }
});`);

function options<T extends string>(values: readonly T[], selected: T, labels: Record<T, string>): Html {
  return raw(values.map((v) => String(html`<option value="${v}"${v === selected ? raw(" selected") : ""}>${labels[v]}</option>`)).join(""));
}

export function reportQuery(filters: ReportFilters, token: string): string {
  const query = new URLSearchParams({ token, period: filters.period, model: filters.model, grouping: filters.grouping, entity: filters.entity });
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
  const td = (c: Cell) => html`<td data-sort="${c.sort}">${c.text}</td>`;
  const join = (parts: readonly unknown[]) => raw(parts.map(String).join(""));
  const table = report.rows.length
    ? html`<table id="report"><thead><tr>${join(header.map((h) => html`<th>${h}</th>`))}</tr></thead>
<tbody>${join(body.map((row) => html`<tr>${join(row.map(td))}</tr>`))}</tbody><tfoot><tr>${join(totals.map(td))}</tr></tfoot></table>`
    : "";
  const page = html`<!doctype html><html lang="${language}"><head><meta charset="utf-8"><title>${m.reportTitle}</title><style nonce="${cspNonce}">${STYLE}</style></head><body>
<h1>${m.reportTitle}</h1>
<form class="filters" method="get" action="/bitrix/report"><input type="hidden" name="token" value="${token}">
<label>${m.period}<select name="period" id="period">${options(PERIODS, filters.period, m.periods)}</select></label>
<label>${m.from}<input type="date" name="from" value="${filters.days.from}"></label><label>${m.to}<input type="date" name="to" value="${filters.days.to}"></label>
<label>${m.model}<select name="model" id="model">${options(MODELS, filters.model, m.models)}</select></label>
<label>${m.grouping}<select name="grouping" id="grouping">${options(GROUPINGS, filters.grouping, m.groupings)}</select></label>
${props.entities.length > 1 ? html`<label>${m.entity}<select name="entity" id="entity">${options(props.entities, filters.entity, m.entities)}</select></label>` : html`<input type="hidden" name="entity" value="${filters.entity}">`}
<button type="submit" id="apply">${m.apply}</button>
<a class="button secondary" id="export" href="/bitrix/report.csv?${reportQuery(filters, token)}" download>${m.exportCsv}</a>
<button type="button" class="secondary" id="refresh" data-url="/bitrix/report/refresh" data-token="${token}" data-busy="${m.refreshing}" data-failed="${m.refreshFailed}">${m.refresh}</button></form>
<p class="meta" id="period-shown">${m.periodShown(formatDay(filters.days.from, language), formatDay(filters.days.to, language), props.timeZone)}</p>
${join(props.notes.map((note) => html`<div class="note" data-note>${note}</div>`))}
${chart(report, m, language)}
${table}
<script nonce="${cspNonce}">${SCRIPT}</script></body></html>`;
  return raw(String(page));
}
