/**
 * The Cassandra keyspace behind CassandraStore: tables, keys, why they are
 * shaped that way (docs/architecture.md, "Cassandra store"), and the schema
 * version. A node that finds the keyspace at the current version runs no DDL at
 * all; the first node (or `npm run migrate`) creates it under a lock.
 */
import type { Client } from "cassandra-driver";
import { invalid } from "../errors";

/** Bump with a new entry in MIGRATIONS whenever a table changes. */
export const SCHEMA_VERSION = 2;

/** Partitions of the search outbox's markers. */
export const SEARCH_SHARDS = 16;

/** The outbox shard of a conversation (FNV-1a, stable across processes). */
export function searchShardOf(conversationId: string): number {
	let hash = 0x811c9dc5;
	for (let i = 0; i < conversationId.length; i++) hash = Math.imul(hash ^ conversationId.charCodeAt(i), 0x01000193);
	return (hash >>> 0) % SEARCH_SHARDS;
}

/** A conversation's messages are split into partitions of this many seqs. */
export const MESSAGES_PER_BUCKET = 1000;

/** The bucket column is a CQL int: seqs beyond this bucket cannot exist (2^31 buckets of 1000). */
export const MAX_BUCKET = 2 ** 31 - 1;

/** seq 1..1000 -> bucket 0, 1001..2000 -> bucket 1, ... */
export const bucketOf = (seq: number): number => Math.floor((Math.max(seq, 1) - 1) / MESSAGES_PER_BUCKET);
export const firstSeqOf = (bucket: number): number => bucket * MESSAGES_PER_BUCKET + 1;
export const lastSeqOf = (bucket: number): number => (bucket + 1) * MESSAGES_PER_BUCKET;

/** The replication map of CREATE KEYSPACE, e.g. {class: "NetworkTopologyStrategy", dc1: 3}. */
export type Replication = Record<string, string | number>;

const IDENTIFIER = /^[a-z][a-z0-9_]{0,47}$/;
const REPLICATION_KEY = /^[A-Za-z0-9_.-]+$/;

/** Keyspace names are spliced into CQL text, so only plain lower-case identifiers are accepted. */
export function checkKeyspaceName(keyspace: string): string {
	if (!IDENTIFIER.test(keyspace)) throw invalid(`keyspace must match ${IDENTIFIER}`, { keyspace });
	return keyspace;
}

function replicationLiteral(replication: Replication): string {
	const entries = Object.entries(replication).map(([key, value]) => {
		if (!REPLICATION_KEY.test(key) || !REPLICATION_KEY.test(String(value))) {
			throw invalid("replication keys and values must be plain names or numbers", { key });
		}
		return `'${key}': '${value}'`;
	});
	return `{${entries.join(", ")}}`;
}

/** What must exist before the schema lock can be taken. */
function bootstrapStatements(ks: string, replication: Replication): string[] {
	return [
		`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${replicationLiteral(replication)} AND durable_writes = true`,
		// The deployment secret, the schema version and the schema lock.
		`CREATE TABLE IF NOT EXISTS ${ks}.meta (key text PRIMARY KEY, value text)`,
	];
}

/**
 * Version 1. Cells that only ever move forward (last_seq, sent counts, watermarks, activity)
 * are written with USING TIMESTAMP = the seq they describe, so Cassandra's last-write-wins
 * becomes max-wins: a late or re-driven write from a writer that lost a conversation can never
 * move them back (docs/architecture.md, "Forward-only cells").
 */
function versionOne(ks: string): string[] {
	return [
		// last_seq, last_activity_at and sent_counts (messages per member, for unread) are written
		// together in one statement, so a reader sees them as of one seq.
		`CREATE TABLE IF NOT EXISTS ${ks}.conversations (
			id text PRIMARY KEY,
			listing_id text,
			listing_title text,
			buyer_id text,
			seller_id text,
			created_at timestamp,
			last_seq bigint,
			last_activity_at timestamp,
			sent_counts map<text, bigint>
		)`,

		// One partition per conversation (two rows for a 1:1 chat): role and watermarks.
		`CREATE TABLE IF NOT EXISTS ${ks}.members (
			conversation_id text,
			user_id text,
			role text,
			delivered_seq bigint,
			read_seq bigint,
			sent_upto_read bigint,
			PRIMARY KEY ((conversation_id), user_id)
		)`,

		// A user's conversations: sync (last_seq), contacts (exchanged: both sides have sent) and
		// the inbox (last_activity_at, sorted when read). Every cell is overwritten in place, so
		// the partition holds no tombstones however busy the user is.
		`CREATE TABLE IF NOT EXISTS ${ks}.user_conversations (
			user_id text,
			conversation_id text,
			peer_id text,
			last_seq bigint,
			last_activity_at timestamp,
			exchanged boolean,
			PRIMARY KEY ((user_id), conversation_id)
		)`,

		// Bounded partitions: history and sync are range reads inside one (conversation, bucket).
		// A row is created only by a conditional INSERT ... IF NOT EXISTS: that claims its seq.
		`CREATE TABLE IF NOT EXISTS ${ks}.messages (
			conversation_id text,
			bucket int,
			seq bigint,
			id text,
			sender_id text,
			client_msg_id text,
			type text,
			text text,
			attachments text,
			created_at timestamp,
			PRIMARY KEY ((conversation_id, bucket), seq)
		) WITH CLUSTERING ORDER BY (seq ASC)`,

		// The search outbox, as one marker per conversation with unindexed messages (written in the
		// append's batch) plus how far each conversation is indexed. A row per message would make a
		// queue, which Cassandra serves badly (every confirmed entry leaves a tombstone to scan).
		// A marker that comes back after a short gc_grace only causes one more check, so 1 hour is safe.
		`CREATE TABLE IF NOT EXISTS ${ks}.search_pending (
			shard int,
			conversation_id text,
			marked_at timestamp,
			PRIMARY KEY ((shard), conversation_id)
		) WITH gc_grace_seconds = 3600`,
		`CREATE TABLE IF NOT EXISTS ${ks}.search_progress (conversation_id text PRIMARY KEY, indexed_seq bigint)`,

		// (sender, clientMsgId) -> where the message went: idempotency, kept forever.
		`CREATE TABLE IF NOT EXISTS ${ks}.message_ids (
			sender_id text,
			client_msg_id text,
			conversation_id text,
			seq bigint,
			PRIMARY KEY ((sender_id, client_msg_id))
		)`,
	];
}

/**
 * Version 2: edits and deletes, push devices, and each member's side of a conversation. A change is claimed like a message, by a conditional insert
 * into message_changes (a dense change sequence per conversation, bucketed like messages,
 * holding what the change was so another writer can finish it); the message row then carries
 * the text as it stands and the number of its latest change.
 */
function versionTwo(ks: string): string[] {
	return [
		// Push: each device's FCM token, and the device that holds each token (a token moves when
		// another user signs in on the same phone).
		`CREATE TABLE IF NOT EXISTS ${ks}.push_devices (
			user_id text,
			device_id text,
			fcm_token text,
			platform text,
			PRIMARY KEY ((user_id), device_id)
		)`,
		`CREATE TABLE IF NOT EXISTS ${ks}.push_tokens (fcm_token text PRIMARY KEY, user_id text, device_id text)`,
		`ALTER TABLE ${ks}.messages ADD (edited_at timestamp, deleted_at timestamp, change_seq bigint)`,
		`ALTER TABLE ${ks}.conversations ADD last_change_seq bigint`,
		// role: a seller's conversations stay hidden until their first message.
		`ALTER TABLE ${ks}.user_conversations ADD (role text, last_change_seq bigint)`,
		`ALTER TABLE ${ks}.search_progress ADD indexed_change_seq bigint`,
		`CREATE TABLE IF NOT EXISTS ${ks}.message_changes (
			conversation_id text,
			bucket int,
			change_seq bigint,
			seq bigint,
			text text,
			deleted boolean,
			changed_at timestamp,
			PRIMARY KEY ((conversation_id, bucket), change_seq)
		) WITH CLUSTERING ORDER BY (change_seq ASC)`,
	];
}

/** MIGRATIONS[v - 1] takes a keyspace from version v - 1 to v. Append only. */
export const MIGRATIONS: ((ks: string) => string[])[] = [versionOne, versionTwo];

/** A migration cut short is run again: DDL that already took effect is not an error then. */
const ALREADY_DONE = /already exist|conflicts with an existing column|duplicate column/i;

async function runDdl(client: Client, ddl: string): Promise<void> {
	try {
		await client.execute(ddl);
	} catch (err) {
		if (!ALREADY_DONE.test((err as Error).message)) throw err;
	}
}

export class SchemaVersionError extends Error {
	override readonly name = "SchemaVersionError";
}

const LOCK_TTL_SECONDS = 120;
const WAIT_FOR_OTHER_MS = 120_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function readVersion(client: Client, ks: string): Promise<number | null> {
	try {
		const rs = await client.execute(`SELECT value FROM ${ks}.meta WHERE key = 'schema_version'`, [], { prepare: false });
		const value = rs.first()?.get("value") as string | undefined;
		return value === undefined ? null : Number(value);
	} catch {
		return null; // no keyspace or no meta table yet
	}
}

async function columnsOf(client: Client, ks: string, table: string): Promise<Set<string>> {
	const rs = await client.execute(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`, [ks, table], { prepare: true });
	return new Set(rs.rows.map((r) => String(r.get("column_name"))));
}

/**
 * Brings the keyspace to SCHEMA_VERSION. At the current version this is one read. Otherwise one
 * node takes a lock (an LWT on meta with a TTL, so a crashed migrator frees it) and runs the
 * missing migrations; the others wait for the version to appear, so no two nodes run DDL at once.
 * Returns the version found before, for `npm run migrate` to report.
 */
export async function ensureSchema(client: Client, keyspace: string, replication: Replication, owner: string): Promise<{ from: number | null; to: number }> {
	const ks = checkKeyspaceName(keyspace);
	const found = await readVersion(client, ks);
	if (found === SCHEMA_VERSION) return { from: found, to: found };
	if (found !== null && found > SCHEMA_VERSION) {
		throw new SchemaVersionError(`keyspace ${ks} has schema version ${found}, newer than this build's ${SCHEMA_VERSION}: upgrade Parley`);
	}
	for (const ddl of bootstrapStatements(ks, replication)) await client.execute(ddl);
	const deadline = Date.now() + WAIT_FOR_OTHER_MS;
	for (;;) {
		const lock = await client.execute(`INSERT INTO ${ks}.meta (key, value) VALUES ('schema_lock', ?) IF NOT EXISTS USING TTL ${LOCK_TTL_SECONDS}`, [owner], { prepare: true });
		if (lock.wasApplied()) break;
		if ((await readVersion(client, ks)) === SCHEMA_VERSION) return { from: found, to: SCHEMA_VERSION };
		if (Date.now() > deadline) throw new SchemaVersionError(`keyspace ${ks}: another process holds the schema lock (${lock.first()?.get("value")}) and has not finished`);
		await sleep(500);
	}
	try {
		const from = (await readVersion(client, ks)) ?? 0;
		// A conversations table of another shape without a version row was made by a pre-release build
		// (a migration cut short leaves tables of this shape: running it again completes it).
		const columns = from === 0 ? await columnsOf(client, ks, "conversations") : new Set<string>();
		if (columns.size > 0 && !columns.has("sent_counts")) {
			throw new SchemaVersionError(`keyspace ${ks} holds tables from a pre-release Parley without a schema version: drop it or use another keyspace`);
		}
		for (let version = from; version < SCHEMA_VERSION; version++) {
			for (const ddl of MIGRATIONS[version]!(ks)) await runDdl(client, ddl);
			await client.execute(`INSERT INTO ${ks}.meta (key, value) VALUES ('schema_version', ?)`, [String(version + 1)], { prepare: true });
		}
		return { from: found, to: SCHEMA_VERSION };
	} finally {
		await client.execute(`DELETE FROM ${ks}.meta WHERE key = 'schema_lock' IF value = ?`, [owner], { prepare: true }).catch(() => undefined);
	}
}
