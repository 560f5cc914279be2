/*
 * The D1 and KV types, for the sandbox's type-check of worker code its tests import (worker/comagic/data-api.ts reaches
 * storage that names D1Database): the sandbox project has Node's types, not the Workers runtime's, whose globals
 * clash with Node's; these few come from the same package as modules.
 */
type D1Database = import("@cloudflare/workers-types").D1Database;
type D1PreparedStatement = import("@cloudflare/workers-types").D1PreparedStatement;
type D1Result<T = unknown> = import("@cloudflare/workers-types").D1Result<T>;
type KVNamespace = import("@cloudflare/workers-types").KVNamespace;
type KVNamespacePutOptions = import("@cloudflare/workers-types").KVNamespacePutOptions;
