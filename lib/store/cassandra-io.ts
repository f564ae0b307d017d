/**
 * What every part of the Cassandra store shares: settings, the prepared
 * statements, row decoding, which failures are worth retrying, and the I/O
 * wrapper that gives each query the consistency and idempotence it needs.
 */
import { Client, errors as driverErrors, types, type QueryOptions } from "cassandra-driver";
import type { Message } from "../../contract";
import { ParleyError } from "../errors";
import { checkKeyspaceName, type Replication } from "./cassandra-schema";
import type { ConversationRecord, MemberRecord } from "./chat-store";

export interface CassandraStoreOptions {
	/** "host:port" strings. */
	contactPoints: string[];
	localDataCenter: string;
	keyspace: string;
	/** Used only when the keyspace does not exist yet. Production: {class: "NetworkTopologyStrategy", <dc>: 3}. */
	replication?: Replication;
	/** Reads and writes; LOCAL_QUORUM by default. */
	consistency?: types.consistencies;
	/** Lightweight transactions; LOCAL_SERIAL by default. */
	serialConsistency?: types.consistencies;
	/** Client-side timeout per request, above Cassandra's own read/write timeouts. */
	readTimeoutMs?: number;
	/** How long one append keeps retrying through an outage before it is rejected as unavailable. */
	appendRetryMs?: number;
	/** Most messages in one group commit. */
	maxGroupItems?: number;
	/** Estimated size cap of one batch; Cassandra rejects batches over batch_size_fail_threshold (50 KiB). */
	maxBatchBytes?: number;
	/** Conversations whose sequencer stays in memory while idle. */
	maxIdleSequencers?: number;
	/** Recovery events (another writer, unfinished groups completed); console.warn by default. */
	warn?: (message: string) => void;
	/** Keep a search outbox (`searchFeed`) for an index that must be fed, in the same batch as each append. */
	feedSearch?: boolean;
	/** The outbox forgets a caught-up conversation only once its marker is this old (a batch may still be landing). */
	searchSettleMs?: number;
	/** Names this process in the schema lock. */
	owner?: string;
	/**
	 * Fault injection for tests: runs after a group has claimed its seqs and before the rest of
	 * its writes, as if the process stalled there.
	 */
	afterClaim?: (conversationId: string, seqs: number[]) => Promise<void>;
}

export type Settings = Required<Omit<CassandraStoreOptions, "afterClaim">> & Pick<CassandraStoreOptions, "afterClaim">;

export const DEFAULTS = {
	replication: { class: "SimpleStrategy", replication_factor: 1 },
	consistency: types.consistencies.localQuorum,
	serialConsistency: types.consistencies.localSerial,
	readTimeoutMs: 10_000,
	appendRetryMs: 10_000,
	maxGroupItems: 64,
	maxBatchBytes: 40 * 1024,
	maxIdleSequencers: 10_000,
	feedSearch: false,
	searchSettleMs: 5_000,
	owner: `pid-${process.pid}`,
	warn: (message: string) => console.warn(`[cassandra-store] ${message}`),
} satisfies Partial<CassandraStoreOptions>;

// ------------------------------------------------------------------ rows

export type Row = types.Row;

export function text(row: Row, column: string): string {
	const value: unknown = row.get(column);
	if (typeof value !== "string") throw new Error(`column ${column} is not text`);
	return value;
}

export function optionalText(row: Row, column: string): string | null {
	const value: unknown = row.get(column);
	return typeof value === "string" ? value : null;
}

/** bigint (Long) and int columns as numbers; an unset counter is 0. */
export function int(row: Row, column: string): number {
	return toNumber(row.get(column), column);
}

function toNumber(value: unknown, what: string): number {
	if (value === null || value === undefined) return 0;
	if (value instanceof types.Long) return value.toNumber();
	if (typeof value === "number") return value;
	throw new Error(`${what} is not an integer`);
}

export function millis(row: Row, column: string): number | null {
	const value: unknown = row.get(column);
	return value instanceof Date ? value.getTime() : null;
}

export interface ConversationRow {
	record: ConversationRecord;
	/** Messages each member has sent, as of record.lastSeq. */
	sentCounts: Map<string, number>;
}

export function toConversationRow(row: Row): ConversationRow {
	const createdAt = millis(row, "created_at") ?? 0;
	const counts = (row.get("sent_counts") ?? {}) as Record<string, unknown>;
	return {
		record: {
			id: text(row, "id"),
			listingId: text(row, "listing_id"),
			listingTitle: optionalText(row, "listing_title"),
			buyerId: text(row, "buyer_id"),
			sellerId: text(row, "seller_id"),
			createdAt,
			lastSeq: int(row, "last_seq"),
			// Unset until the first message: the conversation's activity starts at its creation.
			lastActivityAt: millis(row, "last_activity_at") ?? createdAt,
			lastChangeSeq: int(row, "last_change_seq"),
		},
		sentCounts: new Map(Object.entries(counts).map(([userId, n]) => [userId, toNumber(n, "sent_counts")])),
	};
}

/** A member row; its sent count lives with the conversation (written with last_seq). */
export function toMemberRecord(row: Row, sentCounts: Map<string, number>): MemberRecord {
	const userId = text(row, "user_id");
	return {
		conversationId: text(row, "conversation_id"),
		userId,
		role: text(row, "role") === "seller" ? "seller" : "buyer",
		delivered: int(row, "delivered_seq"),
		read: int(row, "read_seq"),
		sentCount: sentCounts.get(userId) ?? 0,
		sentUpToRead: int(row, "sent_upto_read"),
	};
}

export function toMessage(row: Row): Message {
	const deletedAt = millis(row, "deleted_at");
	const editedAt = millis(row, "edited_at");
	const changeSeq = int(row, "change_seq");
	const message: Message = {
		id: text(row, "id"),
		conversationId: text(row, "conversation_id"),
		seq: int(row, "seq"),
		senderId: text(row, "sender_id"),
		clientMsgId: text(row, "client_msg_id"),
		type: text(row, "type") as Message["type"],
		// A delete wins over an edit that lands after it.
		text: deletedAt === null ? text(row, "text") : "",
		attachments: deletedAt === null ? (JSON.parse(optionalText(row, "attachments") ?? "[]") as unknown[]) : [],
		createdAt: new Date(millis(row, "created_at") ?? 0).toISOString(),
	};
	if (editedAt !== null) message.editedAt = new Date(editedAt).toISOString();
	if (deletedAt !== null) message.deletedAt = new Date(deletedAt).toISOString();
	if (changeSeq > 0) message.changeSeq = changeSeq;
	return message;
}

export const byRole = (a: MemberRecord, b: MemberRecord) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0);

// ------------------------------------------------------------------ statements

/** What a message is created with; it is read with its change columns too. */
const MESSAGE_COLUMNS = "conversation_id, bucket, seq, id, sender_id, client_msg_id, type, text, attachments, created_at";
const MESSAGE_READ = `${MESSAGE_COLUMNS}, edited_at, deleted_at, change_seq`;

/**
 * Statements with `USING TIMESTAMP ?` take the seq (or watermark) they write as their timestamp:
 * last-write-wins then keeps the highest, whichever writer lands last.
 */
function statements(keyspace: string) {
	const ks = checkKeyspaceName(keyspace);
	return {
		secretInsert: `INSERT INTO ${ks}.meta (key, value) VALUES (?, ?) IF NOT EXISTS`,
		secretRead: `SELECT value FROM ${ks}.meta WHERE key = ?`,

		conversationCreate: `INSERT INTO ${ks}.conversations (id, listing_id, listing_title, buyer_id, seller_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
		conversation: `SELECT * FROM ${ks}.conversations WHERE id = ?`,
		conversationCommit: `UPDATE ${ks}.conversations USING TIMESTAMP ? SET last_seq = ?, last_activity_at = ?, sent_counts = ? WHERE id = ?`,

		memberCreate: `INSERT INTO ${ks}.members (conversation_id, user_id, role) VALUES (?, ?, ?)`,
		members: `SELECT * FROM ${ks}.members WHERE conversation_id = ?`,
		member: `SELECT * FROM ${ks}.members WHERE conversation_id = ? AND user_id = ?`,
		memberDelivered: `UPDATE ${ks}.members USING TIMESTAMP ? SET delivered_seq = ? WHERE conversation_id = ? AND user_id = ?`,
		memberRead: `UPDATE ${ks}.members USING TIMESTAMP ? SET read_seq = ?, sent_upto_read = ? WHERE conversation_id = ? AND user_id = ?`,

		// Timestamp 0: the row as of seq 0, which every append then overwrites.
		userConversationCreate: `INSERT INTO ${ks}.user_conversations (user_id, conversation_id, role, peer_id, last_seq, last_activity_at, exchanged)
			VALUES (?, ?, ?, ?, 0, ?, false) USING TIMESTAMP 0`,
		userConversationCommit: `UPDATE ${ks}.user_conversations USING TIMESTAMP ? SET last_seq = ?, last_activity_at = ?, exchanged = ? WHERE user_id = ? AND conversation_id = ?`,
		userConversations: `SELECT conversation_id, role, peer_id, last_seq, last_activity_at, exchanged, last_change_seq FROM ${ks}.user_conversations WHERE user_id = ?`,

		// The seq claim: a message row is only ever created by this conditional insert.
		messageClaim: `INSERT INTO ${ks}.messages (${MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
		messageAt: `SELECT ${MESSAGE_READ} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
		// The write time of a column set only at creation: changes are stamped just above it.
		messageBorn: `SELECT ${MESSAGE_READ}, WRITETIME(sender_id) AS born FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
		messagesUp: `SELECT ${MESSAGE_READ} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
		messagesDown: `SELECT ${MESSAGE_READ} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq <= ? ORDER BY seq DESC`,
		messageEdit: `UPDATE ${ks}.messages USING TIMESTAMP ? SET text = ?, edited_at = ?, change_seq = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
		messageDelete: `UPDATE ${ks}.messages USING TIMESTAMP ? SET text = '', attachments = '[]', deleted_at = ?, change_seq = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?`,

		// The change claim: a change_seq is taken only by this conditional insert, which also says what the change was.
		changeClaim: `INSERT INTO ${ks}.message_changes (conversation_id, bucket, change_seq, seq, text, deleted, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
		changesUp: `SELECT change_seq, seq, text, deleted, changed_at FROM ${ks}.message_changes WHERE conversation_id = ? AND bucket = ? AND change_seq >= ? AND change_seq <= ?`,
		conversationChange: `UPDATE ${ks}.conversations USING TIMESTAMP ? SET last_change_seq = ? WHERE id = ?`,
		userConversationChange: `UPDATE ${ks}.user_conversations USING TIMESTAMP ? SET last_change_seq = ? WHERE user_id = ? AND conversation_id = ?`,
		sendersUp: `SELECT seq, sender_id FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,

		messageIdInsert: `INSERT INTO ${ks}.message_ids (sender_id, client_msg_id, conversation_id, seq) VALUES (?, ?, ?, ?)`,
		messageId: `SELECT conversation_id, seq FROM ${ks}.message_ids WHERE sender_id = ? AND client_msg_id = ?`,

		// No timestamp of its own: each (re)drive of the batch writes a fresh marker.
		searchMark: `INSERT INTO ${ks}.search_pending (shard, conversation_id, marked_at) VALUES (?, ?, ?)`,
		searchPending: `SELECT conversation_id, WRITETIME(marked_at) AS marked FROM ${ks}.search_pending WHERE shard = ?`,
		// Deletes the marker only as written at that time: a newer append's marker survives.
		searchUnmark: `DELETE FROM ${ks}.search_pending USING TIMESTAMP ? WHERE shard = ? AND conversation_id = ?`,
		searchProgress: `SELECT indexed_seq, indexed_change_seq FROM ${ks}.search_progress WHERE conversation_id = ?`,
		searchChangeProgressSet: `UPDATE ${ks}.search_progress USING TIMESTAMP ? SET indexed_change_seq = ? WHERE conversation_id = ?`,
		searchProgressSet: `UPDATE ${ks}.search_progress USING TIMESTAMP ? SET indexed_seq = ? WHERE conversation_id = ?`,
		conversationIdsFirst: `SELECT id FROM ${ks}.conversations`,
		conversationIdsAfter: `SELECT id FROM ${ks}.conversations WHERE token(id) > token(?)`,
	};
}

export type Statements = ReturnType<typeof statements>;

export interface Statement {
	query: string;
	params: unknown[];
}

// ------------------------------------------------------------------ failures

/** Another writer holds seqs this process meant to claim: its view of the conversation is stale. */
export class SeqTakenError extends Error {
	override readonly name = "SeqTakenError";
}

const TRANSIENT_RESPONSES = new Set<number>([
	types.responseErrorCodes.serverError,
	types.responseErrorCodes.unavailableException,
	types.responseErrorCodes.overloaded,
	types.responseErrorCodes.isBootstrapping,
	types.responseErrorCodes.truncateError,
	types.responseErrorCodes.writeTimeout,
	types.responseErrorCodes.readTimeout,
	types.responseErrorCodes.readFailure,
	types.responseErrorCodes.writeFailure,
]);

/** Errors that a later attempt may not meet: lost connections, timeouts, a node starting or stopping. */
export function isTransient(err: unknown): boolean {
	if (err instanceof SeqTakenError) return true;
	if (err instanceof StorageUnavailable) return true;
	if (err instanceof driverErrors.ResponseError) return TRANSIENT_RESPONSES.has(err.code);
	if (
		err instanceof driverErrors.NoHostAvailableError ||
		err instanceof driverErrors.OperationTimedOutError ||
		err instanceof driverErrors.BusyConnectionError ||
		err instanceof driverErrors.DriverInternalError
	) {
		return true;
	}
	// "Socket was closed", "Connection timeout" (the driver's base class) and the pool's "Connection closed".
	const plain = err instanceof Error && (err.constructor === driverErrors.DriverError || err.constructor === Error);
	return plain && /socket|connection/i.test((err as Error).message);
}

/** What callers see when Cassandra does not answer: UNAVAILABLE (503), so clients retry (sends with the same clientMsgId). */
class StorageUnavailable extends ParleyError {
	constructor(override readonly cause: unknown) {
		super("Message storage is temporarily unavailable, retry", 503, "UNAVAILABLE");
		// Rebuilt by name on the other side of the transporter (ParleyErrorRegenerator).
		this.name = "ParleyError";
	}
}

export function storageUnavailable(cause: unknown): Error {
	return cause instanceof StorageUnavailable ? cause : new StorageUnavailable(cause);
}

/** A transient driver failure becomes UNAVAILABLE for the caller; anything else stays what it is. */
function asUnavailable(err: unknown): unknown {
	return isTransient(err) ? storageUnavailable(err) : err;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ I/O

/**
 * The queries, with the consistency and idempotence each one needs. Reads and
 * plain writes of absolute values are idempotent (the driver may retry them);
 * lightweight transactions are not: a blind retry of an applied one reports
 * "not applied".
 */
export class CassandraIo {
	readonly q: Statements;

	constructor(
		private readonly client: Client,
		private readonly settings: Settings,
	) {
		this.q = statements(settings.keyspace);
	}

	private options(extra: QueryOptions): QueryOptions {
		return { prepare: true, consistency: this.settings.consistency, serialConsistency: this.settings.serialConsistency, ...extra };
	}

	async rows(query: string, params: unknown[]): Promise<Row[]> {
		try {
			return (await this.client.execute(query, params, this.options({ isIdempotent: true }))).rows;
		} catch (err) {
			throw asUnavailable(err);
		}
	}

	async first(query: string, params: unknown[]): Promise<Row | null> {
		return (await this.rows(query, params))[0] ?? null;
	}

	/** Reads through a linearizable (Paxos) read, which also completes any conditional write left half done. */
	async serialFirst(query: string, params: unknown[]): Promise<Row | null> {
		try {
			const rs = await this.client.execute(query, params, this.options({ isIdempotent: true, consistency: this.settings.serialConsistency }));
			return rs.first() ?? null;
		} catch (err) {
			throw asUnavailable(err);
		}
	}

	/** Every row of a possibly large read, one page of `fetchSize` at a time; `serial` reads at LOCAL_SERIAL. */
	async *scan(query: string, params: unknown[], fetchSize: number, serial = false): AsyncGenerator<Row> {
		let pageState: string | undefined;
		const consistency = serial ? this.settings.serialConsistency : this.settings.consistency;
		do {
			let rs;
			try {
				rs = await this.client.execute(query, params, this.options({ isIdempotent: true, fetchSize, pageState, consistency }));
			} catch (err) {
				throw asUnavailable(err);
			}
			yield* rs.rows;
			pageState = rs.pageState ?? undefined;
		} while (pageState);
	}

	async write(query: string, params: unknown[]): Promise<void> {
		try {
			await this.client.execute(query, params, this.options({ isIdempotent: true }));
		} catch (err) {
			throw asUnavailable(err);
		}
	}

	/** A lightweight transaction: applied, or the row as it stands. */
	async lwt(query: string, params: unknown[]): Promise<{ applied: boolean; row: Row | null }> {
		try {
			const rs = await this.client.execute(query, params, this.options({ isIdempotent: false }));
			return { applied: rs.wasApplied(), row: rs.first() ?? null };
		} catch (err) {
			throw asUnavailable(err);
		}
	}

	/** Conditional statements on one partition, applied all together or not at all (one Paxos round). */
	async conditionalBatch(list: Statement[]): Promise<boolean> {
		try {
			const rs = await this.client.batch(list, this.options({ logged: true, isIdempotent: false }));
			return rs.wasApplied();
		} catch (err) {
			throw asUnavailable(err);
		}
	}

	/** A logged batch of absolute values: applied whole or not at all, and re-running it changes nothing. */
	async batch(list: Statement[]): Promise<void> {
		try {
			await this.client.batch(list, this.options({ logged: true, isIdempotent: true }));
		} catch (err) {
			throw asUnavailable(err);
		}
	}
}
