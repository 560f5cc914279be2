/*
 * D1 holds what must survive and be queried, for every portal of the deployment: each per-portal table leads with
 * a `portal` column (the portal key, domain/portal-key.ts), in its primary key, so two portals' equal deal ids,
 * event keys and phones never meet. The schema is created on first use, and a database made before portals
 * (issue #23) is migrated then too, its rows becoming the default portal's: no migration step to forget.
 * docs/storage.md lists every table with an example row.
 */
import { DEFAULT_PORTAL } from "../domain/portal-key";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS dead_letters (
     id TEXT PRIMARY KEY, queue TEXT NOT NULL, job_type TEXT NOT NULL, job TEXT NOT NULL, reason TEXT NOT NULL,
     code TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at TEXT NOT NULL, replayed_at TEXT, replay_count INTEGER NOT NULL DEFAULT 0,
     portal TEXT NOT NULL DEFAULT '${DEFAULT_PORTAL}')`,
  `CREATE INDEX IF NOT EXISTS dead_letters_portal_failed_at ON dead_letters (portal, failed_at DESC)`,
  // The ledger: every event written to Bitrix24 and its ref: the entity it landed on (`12` a lead, `deal:7`) or a telephony call id.
  `CREATE TABLE IF NOT EXISTS applied_events (portal TEXT NOT NULL, key TEXT NOT NULL, ref TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (portal, key))`,
  // The deal loop asks which event made a lead (issue #25): by ref, without a scan of the portal's ledger.
  `CREATE INDEX IF NOT EXISTS applied_events_ref ON applied_events (portal, ref)`,
  // The entity (ledger ref) each contact key (`phone:+7…`, `email:…`) was last written to: a hint Bitrix24 confirms.
  `CREATE TABLE IF NOT EXISTS contact_keys (portal TEXT NOT NULL, contact_key TEXT NOT NULL, ref TEXT NOT NULL, written_at TEXT NOT NULL, PRIMARY KEY (portal, contact_key))`,
  `CREATE TABLE IF NOT EXISTS pending_creates (portal TEXT NOT NULL, contact_key TEXT NOT NULL, event_key TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (portal, contact_key))`,
  // Bitrix24 portals the app is installed on and their OAuth tokens (member_id is Bitrix24's own, global id).
  `CREATE TABLE IF NOT EXISTS app_installs (member_id TEXT PRIMARY KEY, record TEXT NOT NULL, refreshing_until TEXT)`,
  // The deployment's portals beyond the default one: settings, and secrets sealed with SETTINGS_KEY.
  `CREATE TABLE IF NOT EXISTS portal_settings (portal TEXT PRIMARY KEY, member_id TEXT, settings TEXT NOT NULL, secrets TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
  `CREATE UNIQUE INDEX IF NOT EXISTS portal_settings_member ON portal_settings (member_id) WHERE member_id IS NOT NULL`,
  // Click-to-call: each tab token's one call (nonces are random, so global), and calls a day per user and per portal.
  `CREATE TABLE IF NOT EXISTS call_tokens (nonce TEXT PRIMARY KEY, used_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS call_counts (portal TEXT NOT NULL, day TEXT NOT NULL, scope TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (portal, day, scope))`,
  // The attribution report: each conversion's visits with their shares per model, the deals they became, ad cost.
  `CREATE TABLE IF NOT EXISTS attribution_touches (
     portal TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, touch_no INTEGER NOT NULL, created_at TEXT NOT NULL, at TEXT NOT NULL,
     utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, source_medium TEXT, cm_campaign_id TEXT, cm_campaign_name TEXT, cm_channel TEXT, site_id TEXT,
     first_touch REAL NOT NULL, last_touch REAL NOT NULL, last_non_direct REAL NOT NULL, linear REAL NOT NULL, time_decay REAL NOT NULL, position_based REAL NOT NULL,
     PRIMARY KEY (portal, entity, entity_id, touch_no))`,
  `CREATE INDEX IF NOT EXISTS attribution_touches_portal_created ON attribution_touches (portal, entity, created_at)`,
  `CREATE TABLE IF NOT EXISTS crm_deals (
     portal TEXT NOT NULL, deal_id TEXT NOT NULL, source_entity TEXT NOT NULL, source_id TEXT NOT NULL, semantic TEXT NOT NULL, amount REAL NOT NULL, currency TEXT NOT NULL,
     created_at TEXT, modified_at TEXT, PRIMARY KEY (portal, deal_id))`,
  `CREATE INDEX IF NOT EXISTS crm_deals_portal_source ON crm_deals (portal, source_entity, source_id)`,
  `CREATE TABLE IF NOT EXISTS ad_costs (
     portal TEXT NOT NULL, day TEXT NOT NULL, site_id TEXT NOT NULL, campaign_id TEXT NOT NULL, campaign_name TEXT, currency TEXT NOT NULL, cost REAL NOT NULL,
     PRIMARY KEY (portal, day, site_id, campaign_id, currency))`,
  // Deals of portals without leads that came with a contact the worker made (the report's "contacts made").
  `CREATE TABLE IF NOT EXISTS made_contacts (portal TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, PRIMARY KEY (portal, entity, entity_id))`,
  `CREATE TABLE IF NOT EXISTS sync_state (portal TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (portal, name))`,
  // The visitor id the worker wrote to each lead or deal (ledger ref): the only one whose journey the tab shows.
  `CREATE TABLE IF NOT EXISTS crm_visitors (portal TEXT NOT NULL, ref TEXT NOT NULL, visitor_id TEXT NOT NULL, written_at TEXT NOT NULL, PRIMARY KEY (portal, ref))`,
  // What arrived per portal, UTC day and source (call, chat, request, form, notification): the agency page's counts.
  `CREATE TABLE IF NOT EXISTS portal_activity (portal TEXT NOT NULL, day TEXT NOT NULL, source TEXT NOT NULL, count INTEGER NOT NULL, last_at TEXT NOT NULL, PRIMARY KEY (portal, day, source))`,
  // Deals sent to CoMagic's end-to-end analytics (issue #25): what CoMagic holds of each, and whether a change waits.
  `CREATE TABLE IF NOT EXISTS deal_journal (
     portal TEXT NOT NULL, deal_id TEXT NOT NULL, source_entity TEXT NOT NULL, source_id TEXT NOT NULL, state TEXT NOT NULL, changed_at TEXT NOT NULL,
     journal TEXT, communication TEXT, flags TEXT, reason TEXT, sent_at TEXT, PRIMARY KEY (portal, deal_id))`,
  `CREATE INDEX IF NOT EXISTS deal_journal_waiting ON deal_journal (portal, state, changed_at)`,
  // Offline conversions (Metrica, GA4): each one once per destination, its DateTime fixed at the first try, and what became of it.
  `CREATE TABLE IF NOT EXISTS conversions (
     portal TEXT NOT NULL, destination TEXT NOT NULL, key TEXT NOT NULL, goal TEXT NOT NULL, visitor_ref TEXT NOT NULL, at TEXT NOT NULL, revenue REAL, currency TEXT,
     date_time INTEGER, state TEXT NOT NULL, reason TEXT, upload_id TEXT, day TEXT, recorded_at TEXT, PRIMARY KEY (portal, destination, key))`,
  `CREATE INDEX IF NOT EXISTS conversions_waiting ON conversions (portal, destination, state)`,
  `CREATE INDEX IF NOT EXISTS conversions_day ON conversions (portal, destination, day)`,
  // The CoMagic communication each lead or deal came from (ledger ref), as its call record named it: the deal loop links by it.
  `CREATE TABLE IF NOT EXISTS crm_communications (
     portal TEXT NOT NULL, ref TEXT NOT NULL, communication_id INTEGER NOT NULL, communication_type TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (portal, ref))`,
  // What the snippet said of a form's visitor to the ad platforms (_ym_uid, yclid, _ga), by the form's ledger key.
  `CREATE TABLE IF NOT EXISTS form_visitors (
     portal TEXT NOT NULL, key TEXT NOT NULL, ym_uid TEXT, yclid TEXT, ga_client_id TEXT, at TEXT NOT NULL, PRIMARY KEY (portal, key))`,
  // Website forms sent to CoMagic as offline messages (COMAGIC_FORMS, issue #25 §2): each once, by its ledger key.
  `CREATE TABLE IF NOT EXISTS form_uploads (
     portal TEXT NOT NULL, key TEXT NOT NULL, message TEXT NOT NULL, state TEXT NOT NULL, comagic_id INTEGER, reason TEXT, created_at TEXT NOT NULL,
     sent_at TEXT, PRIMARY KEY (portal, key))`,
  `CREATE TABLE IF NOT EXISTS metrica_uploads (
     portal TEXT NOT NULL, upload_id TEXT NOT NULL, day TEXT NOT NULL, rows INTEGER NOT NULL, status TEXT NOT NULL, linked INTEGER, not_linked INTEGER,
     created_at TEXT NOT NULL, checked_at TEXT, PRIMARY KEY (portal, upload_id))`,
];

/** Every table whose rows belong to one portal (a `portal` column in their key). */
export const PORTAL_TABLES = [
  "applied_events",
  "contact_keys",
  "pending_creates",
  "call_counts",
  "attribution_touches",
  "crm_deals",
  "ad_costs",
  "made_contacts",
  "sync_state",
  "crm_visitors",
  "portal_activity",
  "deal_journal",
  "conversions",
  "metrica_uploads",
  "form_uploads",
  "crm_communications",
  "form_visitors",
] as const;

/**
 * Tables made before portals, and how each one's rows become the default portal's: the old table is renamed,
 * the new one made, the rows copied with `portal = 'default'`, the old one dropped, in one batch (a D1 batch is a
 * transaction: a failure leaves the old table as it was, and the next use tries again).
 */
const BEFORE_PORTALS: { old: string; table: string; columns: string; from: string; added?: string }[] = [
  { old: "applied_events", table: "applied_events", columns: "portal, key, ref, applied_at", from: "key, lead_id, applied_at" },
  { old: "contact_leads", table: "contact_keys", columns: "portal, contact_key, ref, written_at", from: "contact, lead_id, written_at" },
  { old: "pending_creates", table: "pending_creates", columns: "portal, contact_key, event_key, since", from: "contact, event_key, since" },
  { old: "call_counts", table: "call_counts", columns: "portal, day, scope, count", from: "day, scope, count" },
  {
    old: "attribution_touches",
    table: "attribution_touches",
    columns:
      "portal, entity, entity_id, touch_no, created_at, at, utm_source, utm_medium, utm_campaign, source_medium, cm_campaign_id, cm_campaign_name, cm_channel, site_id, first_touch, last_touch, last_non_direct, linear, time_decay, position_based",
    from: "entity, entity_id, touch_no, created_at, at, utm_source, utm_medium, utm_campaign, source_medium, cm_campaign_id, cm_campaign_name, cm_channel, site_id, first_touch, last_touch, last_non_direct, linear, time_decay, position_based",
  },
  {
    old: "crm_deals",
    table: "crm_deals",
    columns: "portal, deal_id, source_entity, source_id, semantic, amount, currency, created_at, modified_at",
    from: "deal_id, source_entity, source_id, semantic, amount, currency, created_at, modified_at",
  },
  { old: "ad_costs", table: "ad_costs", columns: "portal, day, site_id, campaign_id, campaign_name, currency, cost", from: "day, site_id, campaign_id, campaign_name, currency, cost" },
  { old: "made_contacts", table: "made_contacts", columns: "portal, entity, entity_id", from: "entity, entity_id" },
  { old: "sync_state", table: "sync_state", columns: "portal, name, value", from: "name, value" },
  { old: "crm_visitors", table: "crm_visitors", columns: "portal, ref, visitor_id, written_at", from: "item, visitor_id, written_at" },
];

const createOf = (table: string) => {
  const sql = SCHEMA.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS ${table} (`));
  if (!sql) throw new Error(`d1-schema: no CREATE TABLE for ${table}`);
  return sql;
};

/** What a database made before portals needs, as statements; none for a new or migrated one. */
export async function portalMigration(db: D1Database): Promise<{ statements: D1PreparedStatement[]; tables: string[] }> {
  const { results } = await db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all<{ name: string; sql: string }>();
  const existing = new Map(results.map((r) => [r.name, r.sql]));
  const statements: D1PreparedStatement[] = [];
  const tables: string[] = [];
  for (const m of BEFORE_PORTALS) {
    const sql = existing.get(m.old);
    if (sql === undefined || /\bportal TEXT\b/.test(sql)) continue;
    const source = m.old === m.table ? `${m.old}__before_portals` : m.old;
    if (m.old === m.table) statements.push(db.prepare(`ALTER TABLE ${m.old} RENAME TO ${source}`));
    statements.push(db.prepare(createOf(m.table)), db.prepare(`INSERT INTO ${m.table} (${m.columns}) SELECT '${DEFAULT_PORTAL}', ${m.from} FROM ${source}`), db.prepare(`DROP TABLE ${source}`));
    tables.push(m.table);
  }
  const letters = existing.get("dead_letters");
  if (letters !== undefined && !/\bportal TEXT\b/.test(letters)) {
    statements.push(db.prepare(`ALTER TABLE dead_letters ADD COLUMN portal TEXT NOT NULL DEFAULT '${DEFAULT_PORTAL}'`), db.prepare("DROP INDEX IF EXISTS dead_letters_failed_at"));
    tables.push("dead_letters");
  }
  // The app's installs were a table named `portals`, a word that now means the deployment's portals.
  if (existing.has("portals") && !existing.has("app_installs")) {
    statements.push(db.prepare("ALTER TABLE portals RENAME TO app_installs"));
    tables.push("app_installs");
  }
  // The old tables' indexes went with them; SCHEMA makes the new ones after this.
  return { statements, tables };
}

/** Migrates a database made before portals (its rows become the default portal's), then makes what is missing. */
export async function migrateSchema(db: D1Database): Promise<{ migrated: string[] }> {
  const migration = await portalMigration(db);
  if (migration.statements.length) await db.batch(migration.statements);
  await db.batch(SCHEMA.map((sql) => db.prepare(sql)));
  return { migrated: migration.tables };
}

const ready = new WeakMap<D1Database, Promise<unknown>>();

export function ensureSchema(db: D1Database): Promise<unknown> {
  let pending = ready.get(db);
  if (!pending) {
    pending = migrateSchema(db);
    // A failure is not cached: the next use tries again.
    pending.catch(() => ready.delete(db));
    ready.set(db, pending);
  }
  return pending;
}
