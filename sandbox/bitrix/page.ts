export const escapeHtml = (value: unknown) => String(value ?? "").replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch);

function multi(value: unknown): string {
  return Array.isArray(value) ? value.map((m: { VALUE?: string }) => escapeHtml(m.VALUE)).join("<br>") : "";
}

/** A plain page of the sandbox portal's leads, newest first, refreshed every few seconds. */
export function renderLeadsPage(leads: Record<string, unknown>[], basePath = ""): string {
  const rows = [...leads]
    .reverse()
    .map(
      (l) => `<tr><td>${escapeHtml(l.ID)}</td><td>${escapeHtml(l.TITLE)}</td><td>${escapeHtml(l.STATUS_ID)}</td><td>${multi(l.PHONE)}</td><td>${multi(l.EMAIL)}</td>
<td>${escapeHtml([l.UTM_SOURCE, l.UTM_MEDIUM, l.UTM_CAMPAIGN].filter(Boolean).join(" / "))}</td><td>${escapeHtml(l.UF_CRM_CM_VISITOR_ID)}</td><td>${escapeHtml(l.UF_CRM_COMAGIC_ID)}</td>
<td><pre>${escapeHtml(l.COMMENTS)}</pre>${(l.TIMELINE_COMMENTS as string[]).map((c) => `<pre class="t">${escapeHtml(c)}</pre>`).join("")}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>Bitrix24 sandbox: leads</title><meta http-equiv="refresh" content="3">
<style>body{font:14px system-ui;margin:1.5rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}pre{margin:0;font-size:12px;white-space:pre-wrap}pre.t{margin-top:.4rem;border-top:1px dashed #aaa;color:#555}</style></head>
<body><h1>Bitrix24 sandbox: ${leads.length} lead(s)</h1><p>JSON: <a href="${basePath}/_sandbox/leads">${basePath}/_sandbox/leads</a> · stats: <a href="${basePath}/_sandbox/stats">${basePath}/_sandbox/stats</a></p>
<table><tr><th>ID</th><th>Title</th><th>Status</th><th>Phone</th><th>Email</th><th>UTM</th><th>Visitor</th><th>CoMagic ID</th><th>Comments (timeline below)</th></tr>${rows}</table></body></html>`;
}
