/**
 * The Cassandra keyspace behind CassandraStore: tables, keys and why they are
 * shaped that way (see docs/architecture.md, "Cassandra store"). Every
 * statement is idempotent (IF NOT EXISTS), so open() can run it on every start.
 */
import { invalid } from "../errors";

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

export function schemaStatements(keyspace: string, replication: Replication): string[] {
	const ks = checkKeyspaceName(keyspace);
	return [
		`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${replicationLiteral(replication)} AND durable_writes = true`,

		// The deployment secret, written once with INSERT ... IF NOT EXISTS.
		`CREATE TABLE IF NOT EXISTS ${ks}.meta (key text PRIMARY KEY, value text)`,

		// last_seq and last_activity_at are written only by the append's logged batch, together with
		// the messages, so a reader never sees a seq whose message is not written. fence_seq and
		// fence_claim are written only by lightweight transactions (the single-writer fence); keeping
		// LWT and plain writes on different cells avoids mixing Paxos and client timestamps on one cell.
		`CREATE TABLE IF NOT EXISTS ${ks}.conversations (
			id text PRIMARY KEY,
			listing_id text,
			listing_title text,
			buyer_id text,
			seller_id text,
			created_at timestamp,
			last_seq bigint,
			last_activity_at timestamp,
			fence_seq bigint,
			fence_claim text
		)`,

		// One partition per conversation: the append reads it whole (two rows for a 1:1 chat).
		// last_activity_at names this member's current inbox row, so the next append can delete it.
		`CREATE TABLE IF NOT EXISTS ${ks}.members (
			conversation_id text,
			user_id text,
			role text,
			delivered_seq bigint,
			read_seq bigint,
			sent_count bigint,
			sent_upto_read bigint,
			last_activity_at timestamp,
			PRIMARY KEY ((conversation_id), user_id)
		)`,

		// A user's conversations, for sync (every append keeps last_seq here too) and for contacts
		// (exchanged: both sides have sent at least one message).
		`CREATE TABLE IF NOT EXISTS ${ks}.user_conversations (
			user_id text,
			conversation_id text,
			peer_id text,
			last_seq bigint,
			exchanged boolean,
			PRIMARY KEY ((user_id), conversation_id)
		)`,

		// The inbox, newest activity first, paged by (last_activity_at, conversation_id).
		`CREATE TABLE IF NOT EXISTS ${ks}.inbox (
			user_id text,
			last_activity_at timestamp,
			conversation_id text,
			PRIMARY KEY ((user_id), last_activity_at, conversation_id)
		) WITH CLUSTERING ORDER BY (last_activity_at DESC, conversation_id DESC)`,

		// Bounded partitions: history and sync are range reads inside one (conversation, bucket).
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
