/*
 * CoMagic fills a template by text substitution, which the vendor does not document (FACTS-calls §3.1,
 * samples/notifications_templates_collected.md §6). Real bodies therefore come out as broken JSON in known
 * ways; each is repaired only when the body does not parse as it is.
 */
const REPAIRS: [RegExp, string][] = [
  // A variable this event does not have, left unreplaced: "visitor_id": {{visitor_id}}
  [/(:\s*)\{\{\s*[\w.]+\s*\}\}/g, "$1null"],
  // A variable replaced by nothing: "employee_id": ,
  [/(:\s*)(?=[,}\]])/g, "$1null"],
  // A string substituted already quoted inside quotes: "employee_full_name": ""Иван""
  [/(:\s*)""([^"\n]*)""/g, '$1"$2"'],
];

/** The body as JSON, repaired where CoMagic's substitution broke it; undefined when it is not JSON at all. */
export function parseNotificationJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const repaired = REPAIRS.reduce((body, [pattern, replacement]) => body.replace(pattern, replacement), text);
    try {
      return JSON.parse(repaired);
    } catch {
      return undefined;
    }
  }
}
