/**
 * ChatStore on Cassandra (cluster profile). Cassandra has no multi-row
 * transactions, so the guarantees of design.md §3 come from the shape of the
 * writes (docs/architecture.md, "Cassandra store"):
 *
 * - Appends are serialized per conversation in this process and group-committed:
 *   what queues up while one write runs goes into the next, as one LOGGED batch
 *   (messages, message_ids, last_seq, counters, inbox). A logged batch is applied
 *   whole or not at all, so a message never exists without its idempotency row.
 * - The next seq comes from memory, loaded from the conversation on first use.
 *   A lightweight transaction on conversations.fence_seq claims each range of
 *   seqs first, so a second writer fails loudly instead of reusing them.
 * - A write that fails is kept and re-driven, unchanged, before anything else is
 *   written to that conversation: every statement in it is idempotent.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Client, errors as driverErrors, policies, types, type Host, type QueryOptions } from "cassandra-driver";
import type { Message } from "../../contract";
import { Batcher } from "../batcher";
import { conflict, notFound, tooLarge, unavailable } from "../errors";
import {
	bucketOf,
	checkKeyspaceName,
	firstSeqOf,
	lastSeqOf,
	schemaStatements,
	SEARCH_SHARDS,
	searchShardOf,
	type Replication,
} from "./cassandra-schema";
import type {
	AppendRequest,
	AppendResult,
	ChatStore,
	ConversationRecord,
	HistoryQuery,
	InboxEntry,
	InboxPage,
	MemberRecord,
	OpenConversation,
	SearchFeed,
	WatermarkResult,
	WatermarkUpdate,
} from "./chat-store";
import { decodeInboxCursor, encodeInboxCursor } from "./inbox-cursor";

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
	/** Claim seqs with a lightweight transaction before each group write (the single-writer fence). */
	fence?: boolean;
	/** How long seqs claimed by another writer may stay unwritten before they are taken back. */
	claimGraceMs?: number;
	/** Most messages in one group commit. */
	maxGroupItems?: number;
	/** Estimated size cap of one logged batch; Cassandra rejects batches over batch_size_fail_threshold (50 KiB). */
	maxBatchBytes?: number;
	/** Conversations whose sequencer stays in memory while idle. */
	maxIdleSequencers?: number;
	/** Fence and recovery events; console.warn by default. */
	warn?: (message: string) => void;
	/** Keep a search outbox (`searchFeed`) for an index that must be fed, in the same batch as each append. */
	feedSearch?: boolean;
	/** The outbox forgets a caught-up conversation only once its marker is this old (a batch may still be landing). */
	searchSettleMs?: number;
}

type Settings = Required<CassandraStoreOptions>;

const DEFAULTS = {
	replication: { class: "SimpleStrategy", replication_factor: 1 },
	consistency: types.consistencies.localQuorum,
	serialConsistency: types.consistencies.localSerial,
	readTimeoutMs: 10_000,
	appendRetryMs: 10_000,
	fence: true,
	claimGraceMs: 3_000,
	maxGroupItems: 64,
	maxBatchBytes: 40 * 1024,
	maxIdleSequencers: 10_000,
	feedSearch: false,
	searchSettleMs: 5_000,
	warn: (message: string) => console.warn(`[cassandra-store] ${message}`),
} satisfies Partial<CassandraStoreOptions>;

const SECRET_KEY = "deployment_secret";

// ------------------------------------------------------------------ rows

type Row = types.Row;

function text(row: Row, column: string): string {
	const value: unknown = row.get(column);
	if (typeof value !== "string") throw new Error(`column ${column} is not text`);
	return value;
}

function optionalText(row: Row, column: string): string | null {
	const value: unknown = row.get(column);
	return typeof value === "string" ? value : null;
}

/** bigint (Long) and int columns as numbers; an unset counter is 0. */
function int(row: Row, column: string): number {
	const value: unknown = row.get(column);
	if (value === null || value === undefined) return 0;
	if (value instanceof types.Long) return value.toNumber();
	if (typeof value === "number") return value;
	throw new Error(`column ${column} is not an integer`);
}

function millis(row: Row, column: string): number | null {
	const value: unknown = row.get(column);
	return value instanceof Date ? value.getTime() : null;
}

interface ConversationRow {
	record: ConversationRecord;
	fenceSeq: number;
	fenceClaim: string;
}

function toConversationRow(row: Row): ConversationRow {
	const createdAt = millis(row, "created_at") ?? 0;
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
		},
		fenceSeq: int(row, "fence_seq"),
		fenceClaim: optionalText(row, "fence_claim") ?? "",
	};
}

interface MemberRow {
	record: MemberRecord;
	/** Time of this member's current inbox row. */
	lastActivityAt: number | null;
}

function toMemberRow(row: Row): MemberRow {
	return {
		record: {
			conversationId: text(row, "conversation_id"),
			userId: text(row, "user_id"),
			role: text(row, "role") === "seller" ? "seller" : "buyer",
			delivered: int(row, "delivered_seq"),
			read: int(row, "read_seq"),
			sentCount: int(row, "sent_count"),
			sentUpToRead: int(row, "sent_upto_read"),
		},
		lastActivityAt: millis(row, "last_activity_at"),
	};
}

function toMessage(row: Row): Message {
	return {
		id: text(row, "id"),
		conversationId: text(row, "conversation_id"),
		seq: int(row, "seq"),
		senderId: text(row, "sender_id"),
		clientMsgId: text(row, "client_msg_id"),
		type: text(row, "type") as Message["type"],
		text: text(row, "text"),
		attachments: JSON.parse(optionalText(row, "attachments") ?? "[]") as unknown[],
		createdAt: new Date(millis(row, "created_at") ?? 0).toISOString(),
	};
}

function messageOf(req: AppendRequest, seq: number): Message {
	return {
		id: req.id,
		conversationId: req.conversationId,
		seq,
		senderId: req.senderId,
		clientMsgId: req.clientMsgId,
		type: req.type,
		text: req.text,
		attachments: req.attachments,
		createdAt: new Date(req.now).toISOString(),
	};
}

const byRole = (a: MemberRecord, b: MemberRecord) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0);

// ------------------------------------------------------------------ statements

const MESSAGE_COLUMNS = "conversation_id, bucket, seq, id, sender_id, client_msg_id, type, text, attachments, created_at";

function statements(keyspace: string) {
	const ks = checkKeyspaceName(keyspace);
	return {
		secretInsert: `INSERT INTO ${ks}.meta (key, value) VALUES (?, ?) IF NOT EXISTS`,
		secretRead: `SELECT value FROM ${ks}.meta WHERE key = ?`,

		conversationCreate: `INSERT INTO ${ks}.conversations (id, listing_id, listing_title, buyer_id, seller_id, created_at, fence_seq, fence_claim)
			VALUES (?, ?, ?, ?, ?, ?, 0, '') IF NOT EXISTS`,
		conversation: `SELECT * FROM ${ks}.conversations WHERE id = ?`,
		conversationCommit: `UPDATE ${ks}.conversations SET last_seq = ?, last_activity_at = ? WHERE id = ?`,
		fenceMove: `UPDATE ${ks}.conversations SET fence_seq = ?, fence_claim = ? WHERE id = ? IF fence_seq = ? AND fence_claim = ?`,

		memberCreate: `INSERT INTO ${ks}.members (conversation_id, user_id, role, last_activity_at) VALUES (?, ?, ?, ?)`,
		members: `SELECT * FROM ${ks}.members WHERE conversation_id = ?`,
		member: `SELECT * FROM ${ks}.members WHERE conversation_id = ? AND user_id = ?`,
		memberSentCount: `SELECT sent_count FROM ${ks}.members WHERE conversation_id = ? AND user_id = ?`,
		memberActivity: `UPDATE ${ks}.members SET sent_count = ?, last_activity_at = ? WHERE conversation_id = ? AND user_id = ?`,
		memberWatermarks: `UPDATE ${ks}.members SET delivered_seq = ?, read_seq = ?, sent_upto_read = ? WHERE conversation_id = ? AND user_id = ?`,

		userConversationCreate: `INSERT INTO ${ks}.user_conversations (user_id, conversation_id, peer_id) VALUES (?, ?, ?)`,
		userConversationSeq: `UPDATE ${ks}.user_conversations SET last_seq = ?, exchanged = ? WHERE user_id = ? AND conversation_id = ?`,
		userConversations: `SELECT conversation_id, peer_id, last_seq, exchanged FROM ${ks}.user_conversations WHERE user_id = ?`,

		inboxInsert: `INSERT INTO ${ks}.inbox (user_id, last_activity_at, conversation_id) VALUES (?, ?, ?)`,
		inboxDelete: `DELETE FROM ${ks}.inbox WHERE user_id = ? AND last_activity_at = ? AND conversation_id = ?`,
		inboxFirst: `SELECT last_activity_at, conversation_id FROM ${ks}.inbox WHERE user_id = ?`,
		inboxAfter: `SELECT last_activity_at, conversation_id FROM ${ks}.inbox WHERE user_id = ? AND (last_activity_at, conversation_id) < (?, ?)`,

		messageInsert: `INSERT INTO ${ks}.messages (${MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		messageAt: `SELECT ${MESSAGE_COLUMNS} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq = ?`,
		messagesUp: `SELECT ${MESSAGE_COLUMNS} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
		messagesDown: `SELECT ${MESSAGE_COLUMNS} FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq <= ? ORDER BY seq DESC`,
		sendersUp: `SELECT seq, sender_id FROM ${ks}.messages WHERE conversation_id = ? AND bucket = ? AND seq >= ? AND seq <= ?`,

		messageIdInsert: `INSERT INTO ${ks}.message_ids (sender_id, client_msg_id, conversation_id, seq) VALUES (?, ?, ?, ?)`,
		messageId: `SELECT conversation_id, seq FROM ${ks}.message_ids WHERE sender_id = ? AND client_msg_id = ?`,

		searchMark: `INSERT INTO ${ks}.search_pending (shard, conversation_id, marked_at) VALUES (?, ?, ?)`,
		searchPending: `SELECT conversation_id, WRITETIME(marked_at) AS marked FROM ${ks}.search_pending WHERE shard = ?`,
		// Deletes the marker only as written at that time: a newer append's marker survives.
		searchUnmark: `DELETE FROM ${ks}.search_pending USING TIMESTAMP ? WHERE shard = ? AND conversation_id = ?`,
		searchProgress: `SELECT indexed_seq FROM ${ks}.search_progress WHERE conversation_id = ?`,
		searchProgressSet: `UPDATE ${ks}.search_progress SET indexed_seq = ? WHERE conversation_id = ?`,
		conversationIdsFirst: `SELECT id FROM ${ks}.conversations`,
		conversationIdsAfter: `SELECT id FROM ${ks}.conversations WHERE token(id) > token(?)`,
	};
}

type Statements = ReturnType<typeof statements>;

interface Statement {
	query: string;
	params: unknown[];
}

// ------------------------------------------------------------------ failures

/** Another writer moved the fence: this process's view of the conversation is stale. */
class FenceLostError extends Error {
	override readonly name = "FenceLostError";
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
function isTransient(err: unknown): boolean {
	if (err instanceof FenceLostError) return true;
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

/** What callers see when Cassandra stays unreachable: UNAVAILABLE (503), so clients retry with the same clientMsgId. */
function storageUnavailable(cause: unknown): Error {
	return Object.assign(unavailable("Message storage is temporarily unavailable, retry"), { cause });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ I/O

/** Monotonic write timestamps (microseconds) so a re-driven batch and the next one never tie. */
class MicrosClock {
	private last = 0;
	next(): number {
		this.last = Math.max(Date.now() * 1000, this.last + 1);
		return this.last;
	}
}

/**
 * The queries, with the consistency and idempotence each one needs. Reads and
 * plain writes of absolute values are idempotent (the driver may retry them);
 * lightweight transactions are not: a blind retry of an applied one reports
 * "not applied".
 */
class CassandraIo {
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
		return (await this.client.execute(query, params, this.options({ isIdempotent: true }))).rows;
	}

	async first(query: string, params: unknown[]): Promise<Row | null> {
		return (await this.rows(query, params))[0] ?? null;
	}

	/** Reads through a linearizable (Paxos) read, which also completes any transaction left half done. */
	async serialFirst(query: string, params: unknown[]): Promise<Row | null> {
		const rs = await this.client.execute(query, params, this.options({ isIdempotent: true, consistency: this.settings.serialConsistency }));
		return rs.first() ?? null;
	}

	/** Every row of a possibly large read, one page of `fetchSize` at a time. */
	async *scan(query: string, params: unknown[], fetchSize: number): AsyncGenerator<Row> {
		let pageState: string | undefined;
		do {
			const rs = await this.client.execute(query, params, this.options({ isIdempotent: true, fetchSize, pageState }));
			yield* rs.rows;
			pageState = rs.pageState ?? undefined;
		} while (pageState);
	}

	async write(query: string, params: unknown[]): Promise<void> {
		await this.client.execute(query, params, this.options({ isIdempotent: true }));
	}

	/** A lightweight transaction: applied, or the row as it stands. */
	async lwt(query: string, params: unknown[]): Promise<{ applied: boolean; row: Row | null }> {
		const rs = await this.client.execute(query, params, this.options({ isIdempotent: false }));
		return { applied: rs.wasApplied(), row: rs.first() ?? null };
	}

	/** A logged batch with a fixed write timestamp: re-running it is a no-op. */
	async batch(list: Statement[], timestamp?: number): Promise<void> {
		await this.client.batch(list, this.options({ logged: true, isIdempotent: true, timestamp }));
	}
}

// ------------------------------------------------------------------ appends

interface MemberActivity {
	sentCount: number;
	/** Time of the member's inbox row. */
	lastActivityAt: number;
}

/** What the sequencer of one conversation knows; valid while this process is its only writer. */
interface SequencerState {
	conversation: ConversationRecord;
	fenceSeq: number;
	fenceClaim: string;
	members: Map<string, MemberActivity>;
}

interface PendingWrite {
	statements: Statement[];
	timestamp: number;
	/** The fence claim this write fills, if the fence is on. */
	claimId: string | null;
}

type Outcome = { message: Message; duplicate: boolean } | { error: Error };

/** (sender, clientMsgId) pairs being written right now, so two conversations cannot both take one. */
class InflightIds {
	private readonly owners = new Map<string, string>();

	take(key: string, conversationId: string): boolean {
		const owner = this.owners.get(key);
		if (owner !== undefined && owner !== conversationId) return false;
		this.owners.set(key, conversationId);
		return true;
	}

	release(keys: string[]): void {
		for (const key of keys) this.owners.delete(key);
	}
}

const idKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

/** Estimated bytes of one message in a batch (values plus keys and framing). */
const estimateBytes = (req: AppendRequest) =>
	Buffer.byteLength(req.text) + Buffer.byteLength(JSON.stringify(req.attachments)) + 4 * (req.id.length + req.senderId.length + req.clientMsgId.length) + 256;

/** Fixed part of a group's batch: the conversation, member, inbox and user_conversations rows. */
const GROUP_OVERHEAD_BYTES = 2048;

/** The part of the store a sequencer uses. */
interface AppendContext {
	io: CassandraIo;
	settings: Settings;
	clock: MicrosClock;
	inflight: InflightIds;
	readMembers(conversationId: string): Promise<MemberRow[]>;
	readMessage(conversationId: string, seq: number): Promise<Message | null>;
}

/**
 * Orders the appends of one conversation: one group commit at a time, in
 * submission order, seqs handed out from memory.
 */
class ConversationSequencer {
	private readonly queue: Batcher<AppendRequest, AppendResult>;
	private state: SequencerState | null = null;
	private pending: PendingWrite | null = null;
	/** Claims this process made and will never write (their transaction's outcome was unknown, or the write was refused). */
	private readonly deadClaims = new Set<string>();
	private active = 0;

	constructor(
		private readonly conversationId: string,
		private readonly ctx: AppendContext,
	) {
		this.queue = new Batcher((items) => this.flush(items), { delayMs: 0, maxItems: ctx.settings.maxGroupItems });
	}

	get idle(): boolean {
		return this.active === 0 && this.pending === null;
	}

	async submit(req: AppendRequest): Promise<AppendResult> {
		this.active++;
		try {
			return await this.queue.submit(req);
		} finally {
			this.active--;
		}
	}

	/** On shutdown: finish queued appends and try once more to land a write that failed. */
	async drain(): Promise<void> {
		await this.queue.drain();
		await this.writePending().catch((err: Error) => this.ctx.settings.warn(`${this.conversationId}: unwritten group left at close: ${err.message}`));
	}

	private async flush(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
		const results: (AppendResult | Error)[] = new Array(items.length);
		for (const group of this.splitBySize(items, results)) {
			const out = await this.commitWithRetry(group.map((i) => items[i]!));
			group.forEach((itemIndex, k) => (results[itemIndex] = out[k]!));
		}
		return results;
	}

	/** Groups of item indexes that each fit one batch; an item too large for any batch is refused here. */
	private splitBySize(items: AppendRequest[], results: (AppendResult | Error)[]): number[][] {
		const limit = this.ctx.settings.maxBatchBytes - GROUP_OVERHEAD_BYTES;
		const groups: number[][] = [];
		let current: number[] = [];
		let bytes = 0;
		items.forEach((req, i) => {
			const size = estimateBytes(req);
			if (size > limit) {
				results[i] = tooLarge("message is too large to store", { field: "text" });
				return;
			}
			if (bytes + size > limit && current.length > 0) {
				groups.push(current);
				current = [];
				bytes = 0;
			}
			current.push(i);
			bytes += size;
		});
		if (current.length > 0) groups.push(current);
		return groups;
	}

	/** Retries a group through transient failures (Cassandra restarting, a lost fence) until appendRetryMs runs out. */
	private async commitWithRetry(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
		const deadline = Date.now() + this.ctx.settings.appendRetryMs;
		for (let attempt = 1; ; attempt++) {
			try {
				return await this.commit(items);
			} catch (err) {
				const wait = Math.min(50 * 2 ** attempt, 1000);
				if (!isTransient(err)) return items.map(() => (err instanceof Error ? err : new Error(String(err))));
				if (Date.now() + wait > deadline) return items.map(() => storageUnavailable(err));
				await sleep(wait);
			}
		}
	}

	private async commit(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
		await this.writePending();
		this.state ??= await this.load();
		const state = this.state;
		if (!state) return items.map(() => notFound("Conversation not found", { conversationId: this.conversationId }));
		const { outcomes, fresh } = await this.plan(state, items);
		const keys = fresh.map((f) => idKey(f.senderId, f.clientMsgId));
		try {
			if (fresh.length > 0) await this.write(state, fresh, items);
			const members = (await this.ctx.readMembers(this.conversationId)).map((m) => m.record).sort(byRole);
			const conversation = { ...this.state!.conversation };
			return outcomes.map((o) => ("error" in o ? o.error : { ...o, conversation, members }));
		} finally {
			this.ctx.inflight.release(keys);
		}
	}

	/** Decides, per item, duplicate / conflict / new message with its seq. Writes nothing. */
	private async plan(state: SequencerState, items: AppendRequest[]): Promise<{ outcomes: Outcome[]; fresh: Message[] }> {
		const originals = await this.findOriginals(items);
		const outcomes: Outcome[] = [];
		const fresh: Message[] = [];
		const inThisGroup = new Map<string, Message>();
		let seq = state.conversation.lastSeq;
		for (const req of items) {
			const key = idKey(req.senderId, req.clientMsgId);
			const original = inThisGroup.get(key) ?? originals.get(key);
			if (original && original.conversationId === this.conversationId) {
				// Same id: this very request, written by an earlier attempt of this flush (its ack was lost in a retry).
				outcomes.push({ message: original, duplicate: original.id !== req.id });
			} else if (original || !this.ctx.inflight.take(key, this.conversationId)) {
				outcomes.push({ error: conflict("clientMsgId was already used for another conversation", { clientMsgId: req.clientMsgId }) });
			} else {
				const message = messageOf(req, ++seq);
				fresh.push(message);
				inThisGroup.set(key, message);
				outcomes.push({ message, duplicate: false });
			}
		}
		return { outcomes, fresh };
	}

	/** The stored message of each (sender, clientMsgId) that has one. */
	private async findOriginals(items: AppendRequest[]): Promise<Map<string, Message>> {
		const unique = new Map(items.map((r) => [idKey(r.senderId, r.clientMsgId), r]));
		const found = await Promise.all(
			[...unique].map(async ([key, req]) => [key, await this.findOriginal(req)] as const),
		);
		return new Map(found.filter((entry): entry is readonly [string, Message] => entry[1] !== null));
	}

	private async findOriginal(req: AppendRequest): Promise<Message | null> {
		const { io } = this.ctx;
		const pointer = await io.first(io.q.messageId, [req.senderId, req.clientMsgId]);
		if (!pointer) return null;
		const message = await this.ctx.readMessage(text(pointer, "conversation_id"), int(pointer, "seq"));
		// A pointer to someone else's message is left from a write that never completed: not an original.
		return message && message.senderId === req.senderId && message.clientMsgId === req.clientMsgId ? message : null;
	}

	/** Claims the seqs (fence), then writes the group as one logged batch; resolves once Cassandra acknowledged it. */
	private async write(state: SequencerState, fresh: Message[], items: AppendRequest[]): Promise<void> {
		const claimId = this.ctx.settings.fence ? await this.claim(state, state.conversation.lastSeq + fresh.length) : null;
		const next = advance(state, fresh, items);
		const timestamp = this.ctx.clock.next();
		const statements = groupStatements(this.ctx.io.q, state, next, fresh);
		if (this.ctx.settings.feedSearch) statements.push(searchMark(this.ctx.io.q, this.conversationId, timestamp));
		this.pending = { statements, timestamp, claimId };
		this.state = next;
		await this.writePending();
	}

	/** LWT: moves fence_seq to `to` only if nobody moved it since this process last did. */
	private async claim(state: SequencerState, to: number): Promise<string> {
		const claimId = randomUUID();
		const { io } = this.ctx;
		let result: { applied: boolean; row: Row | null };
		try {
			result = await io.lwt(io.q.fenceMove, [to, claimId, this.conversationId, state.fenceSeq, state.fenceClaim]);
		} catch (err) {
			// Unknown outcome: if it applied, the next load finds this claim unwritten and gives it back.
			this.deadClaims.add(claimId);
			this.state = null;
			throw err;
		}
		if (!result.applied) {
			this.state = null;
			const seen = result.row ? int(result.row, "fence_seq") : "?";
			this.ctx.settings.warn(
				`${this.conversationId}: another writer moved the seq fence (expected ${state.fenceSeq}, found ${seen}); reloading`,
			);
			throw new FenceLostError(`seq fence of ${this.conversationId} moved by another writer`);
		}
		state.fenceSeq = to;
		state.fenceClaim = claimId;
		return claimId;
	}

	/** Lands the group that was claimed but not yet acknowledged; every statement in it is idempotent. */
	private async writePending(): Promise<void> {
		const pending = this.pending;
		if (!pending) return;
		try {
			await this.ctx.io.batch(pending.statements, pending.timestamp);
			this.pending = null;
		} catch (err) {
			if (isTransient(err)) throw err;
			// Refused outright (never applied): forget it and give its seqs back on the next load.
			this.pending = null;
			this.state = null;
			if (pending.claimId) this.deadClaims.add(pending.claimId);
			throw err;
		}
	}

	private async load(): Promise<SequencerState | null> {
		const { io } = this.ctx;
		const row = await io.serialFirst(io.q.conversation, [this.conversationId]);
		if (!row) return null;
		let current = toConversationRow(row);
		if (this.ctx.settings.fence && current.fenceSeq > current.record.lastSeq) current = await this.takeBackUnwritten(current);
		const members = new Map(
			(await this.ctx.readMembers(this.conversationId)).map((m) => [
				m.record.userId,
				{ sentCount: m.record.sentCount, lastActivityAt: m.lastActivityAt ?? current.record.createdAt },
			]),
		);
		return { conversation: current.record, fenceSeq: current.fenceSeq, fenceClaim: current.fenceClaim, members };
	}

	/**
	 * Seqs were claimed but their group never landed: a writer died between its
	 * claim and its batch, or is about to write. Unless the claim is known dead,
	 * wait to tell the two apart, then move the fence back so the seqs stay dense.
	 */
	private async takeBackUnwritten(row: ConversationRow): Promise<ConversationRow> {
		const { io, settings } = this.ctx;
		if (!this.deadClaims.has(row.fenceClaim)) {
			await sleep(settings.claimGraceMs);
			const again = await io.serialFirst(io.q.conversation, [this.conversationId]);
			const still = again ? toConversationRow(again) : null;
			if (!still || still.fenceClaim !== row.fenceClaim || still.record.lastSeq !== row.record.lastSeq) {
				throw new FenceLostError(`another writer is appending to ${this.conversationId}`);
			}
		}
		const claimId = randomUUID();
		const { applied } = await io.lwt(io.q.fenceMove, [row.record.lastSeq, claimId, this.conversationId, row.fenceSeq, row.fenceClaim]);
		if (!applied) throw new FenceLostError(`seq fence of ${this.conversationId} moved while taking back unwritten seqs`);
		this.deadClaims.delete(row.fenceClaim);
		settings.warn(`${this.conversationId}: seqs ${row.record.lastSeq + 1}..${row.fenceSeq} were claimed but never written; taken back`);
		return { ...row, fenceSeq: row.record.lastSeq, fenceClaim: claimId };
	}
}

/** The sequencer state after a group: seq, activity time, each member's sent count. */
function advance(state: SequencerState, fresh: Message[], items: AppendRequest[]): SequencerState {
	const lastActivityAt = Math.max(state.conversation.lastActivityAt, ...items.map((r) => r.now));
	const members = new Map<string, MemberActivity>();
	for (const [userId, activity] of state.members) {
		const sent = fresh.filter((m) => m.senderId === userId).length;
		members.set(userId, { sentCount: activity.sentCount + sent, lastActivityAt });
	}
	return {
		...state,
		conversation: { ...state.conversation, lastSeq: state.conversation.lastSeq + fresh.length, lastActivityAt },
		members,
	};
}

/** One group's logged batch. Absolute values only, so it can be re-run as is. */
function groupStatements(q: Statements, before: SequencerState, after: SequencerState, fresh: Message[]): Statement[] {
	const id = after.conversation.id;
	const lastSeq = after.conversation.lastSeq;
	const list: Statement[] = [];
	for (const m of fresh) {
		list.push({
			query: q.messageInsert,
			params: [id, bucketOf(m.seq), m.seq, m.id, m.senderId, m.clientMsgId, m.type, m.text, JSON.stringify(m.attachments), Date.parse(m.createdAt)],
		});
		list.push({ query: q.messageIdInsert, params: [m.senderId, m.clientMsgId, id, m.seq] });
	}
	list.push({ query: q.conversationCommit, params: [lastSeq, after.conversation.lastActivityAt, id] });
	const senders = [...after.members].filter(([, m]) => m.sentCount > 0).map(([userId]) => userId);
	for (const [userId, now] of after.members) {
		const was = before.members.get(userId)?.lastActivityAt;
		const exchanged = now.sentCount > 0 && senders.some((other) => other !== userId);
		list.push({ query: q.memberActivity, params: [now.sentCount, now.lastActivityAt, id, userId] });
		list.push({ query: q.userConversationSeq, params: [lastSeq, exchanged, userId, id] });
		// Move the inbox row. Same time: keep it (a delete and an insert of one row at one timestamp would delete it).
		if (was !== now.lastActivityAt) {
			if (was !== undefined) list.push({ query: q.inboxDelete, params: [userId, was, id] });
			list.push({ query: q.inboxInsert, params: [userId, now.lastActivityAt, id] });
		}
	}
	return list;
}

/** The search outbox marker of a conversation, in the same batch as its messages. */
function searchMark(q: Statements, conversationId: string, timestampMicros: number): Statement {
	return { query: q.searchMark, params: [searchShardOf(conversationId), conversationId, Math.floor(timestampMicros / 1000)] };
}

// ------------------------------------------------------------------ the store

/** Schema creation per keyspace, once per process: the services' stores open together, and concurrent DDL can disagree. */
const schemaByKeyspace = new Map<string, Promise<void>>();

function ensureSchema(client: Client, keyspace: string, replication: Replication): Promise<void> {
	let ready = schemaByKeyspace.get(keyspace);
	if (!ready) {
		ready = (async () => {
			for (const ddl of schemaStatements(keyspace, replication)) await client.execute(ddl);
		})();
		schemaByKeyspace.set(keyspace, ready);
		// A failed attempt (Cassandra down) must not stick: the next open tries again.
		ready.catch(() => schemaByKeyspace.delete(keyspace));
	}
	return ready;
}

/**
 * Works around a driver 4.10 leak: when every node was down and the control
 * connection reconnects from scratch, it replaces each Host without closing the
 * old one's pool, whose socket then outlives client.shutdown() (and keeps the
 * process alive). The replaced Host is the removed one that is no longer in the map.
 */
function closeReplacedHosts(client: Client): void {
	client.on("hostRemove", (removed: Host & { shutdown?: (waitForPending: boolean) => Promise<void> }) => {
		const current = client.hosts.get(removed.address) as Host | undefined;
		if (current && current !== removed) removed.shutdown?.(false).catch(() => undefined);
	});
}

export class CassandraStore implements ChatStore {
	readonly engine = "cassandra";
	private readonly settings: Settings;
	private client: Client | null = null;
	private io!: CassandraIo;
	private readonly clock = new MicrosClock();
	private readonly inflight = new InflightIds();
	private readonly sequencers = new Map<string, ConversationSequencer>();
	private secret: string | null = null;
	readonly searchFeed?: SearchFeed;

	constructor(options: CassandraStoreOptions) {
		this.settings = { ...DEFAULTS, ...options };
		checkKeyspaceName(this.settings.keyspace);
		if (this.settings.feedSearch) {
			this.searchFeed = new CassandraSearchFeed(() => this.io, this.settings, (id, after, limit) => this.messagesAfter(id, after, limit));
		}
	}

	async open(): Promise<void> {
		const client = new Client({
			contactPoints: this.settings.contactPoints,
			localDataCenter: this.settings.localDataCenter,
			policies: {
				// Back within ~2 s of a node restart instead of the default's growing waits (up to 10 min).
				reconnection: new policies.reconnection.ExponentialReconnectionPolicy(200, 2000, true),
				// Default policy: with isIdempotent set per statement, only idempotent ones are retried on timeouts.
				retry: new policies.retry.RetryPolicy(),
			},
			socketOptions: { readTimeout: this.settings.readTimeoutMs, connectTimeout: 5000 },
			protocolOptions: { maxVersion: types.protocolVersion.v4 },
			queryOptions: { prepare: true, consistency: this.settings.consistency, serialConsistency: this.settings.serialConsistency },
		});
		closeReplacedHosts(client);
		try {
			await client.connect();
			await ensureSchema(client, this.settings.keyspace, this.settings.replication);
		} catch (err) {
			await client.shutdown().catch(() => undefined);
			throw err;
		}
		this.client = client;
		this.io = new CassandraIo(client, this.settings);
	}

	async close(): Promise<void> {
		if (!this.client) return;
		await Promise.all([...this.sequencers.values()].map((s) => s.drain()));
		this.sequencers.clear();
		const client = this.client;
		this.client = null;
		await client.shutdown();
	}

	async deploymentSecret(): Promise<string> {
		if (this.secret) return this.secret;
		const { io } = this;
		const mine = randomBytes(32).toString("base64url");
		const { applied, row } = await io.lwt(io.q.secretInsert, [SECRET_KEY, mine]);
		const stored = applied ? mine : row ? text(row, "value") : text((await io.first(io.q.secretRead, [SECRET_KEY]))!, "value");
		this.secret = stored;
		return stored;
	}

	async openConversation(req: OpenConversation): Promise<{ conversation: ConversationRecord; created: boolean }> {
		const { io } = this;
		const { applied, row } = await io.lwt(io.q.conversationCreate, [
			req.id, req.listingId, req.listingTitle, req.buyerId, req.sellerId, req.now,
		]);
		const existing = !applied && row?.get("id") ? toConversationRow(row).record : null;
		const conversation: ConversationRecord = existing ?? {
			id: req.id,
			listingId: req.listingId,
			listingTitle: req.listingTitle,
			buyerId: req.buyerId,
			sellerId: req.sellerId,
			createdAt: req.now,
			lastSeq: 0,
			lastActivityAt: req.now,
		};
		// The creator writes the members; a reopen writes them only if a creator died before it could.
		if (applied || (await this.readMembers(req.id)).length === 0) await this.writeMembership(req, conversation.createdAt);
		return { conversation, created: applied };
	}

	/** Members, their inbox rows and their user_conversations rows, all or nothing. */
	private async writeMembership(req: OpenConversation, createdAt: number): Promise<void> {
		const q = this.io.q;
		const pairs: [string, "buyer" | "seller", string][] = [[req.buyerId, "buyer", req.sellerId]];
		if (req.sellerId !== req.buyerId) pairs.push([req.sellerId, "seller", req.buyerId]);
		const list = pairs.flatMap(([userId, role, peer]) => [
			{ query: q.memberCreate, params: [req.id, userId, role, createdAt] },
			{ query: q.userConversationCreate, params: [userId, req.id, peer] },
			{ query: q.inboxInsert, params: [userId, createdAt, req.id] },
		]);
		await this.io.batch(list);
	}

	async getConversation(id: string): Promise<ConversationRecord | null> {
		const row = await this.io.first(this.io.q.conversation, [id]);
		return row ? toConversationRow(row).record : null;
	}

	async members(conversationId: string): Promise<MemberRecord[]> {
		return (await this.readMembers(conversationId)).map((m) => m.record).sort(byRole);
	}

	private async readMembers(conversationId: string): Promise<MemberRow[]> {
		return (await this.io.rows(this.io.q.members, [conversationId])).map(toMemberRow);
	}

	async inbox(userId: string, limit: number, before?: string): Promise<InboxPage> {
		const { io } = this;
		const cursor = before ? decodeInboxCursor(before) : null;
		const rows = cursor
			? io.scan(io.q.inboxAfter, [userId, cursor.at, cursor.id], limit + 1)
			: io.scan(io.q.inboxFirst, [userId], limit + 1);
		const found: { entry: InboxEntry; at: number }[] = [];
		let page: Row[] = [];
		const takePage = async () => {
			const entries = await Promise.all(page.map((row) => this.inboxRowEntry(userId, row)));
			for (const e of entries) if (e) found.push(e);
			page = [];
		};
		for await (const row of rows) {
			page.push(row);
			if (found.length + page.length > limit) await takePage();
			if (found.length > limit) break;
		}
		await takePage();
		const entries = found.slice(0, limit);
		const last = entries[entries.length - 1];
		return found.length > limit && last ? { entries: entries.map((e) => e.entry), next: encodeInboxCursor(last.at, last.entry.conversation.id) } : { entries: entries.map((e) => e.entry) };
	}

	/** An inbox row's entry, or null if the row is stale (the member's activity has moved on). */
	private async inboxRowEntry(userId: string, row: Row): Promise<{ entry: InboxEntry; at: number } | null> {
		const at = millis(row, "last_activity_at") ?? 0;
		const found = await this.memberAndConversation(userId, text(row, "conversation_id"));
		if (!found) return null;
		const [member, conversation] = found;
		if (member.lastActivityAt !== null && member.lastActivityAt !== at) return null;
		return { entry: await this.entryFor(member.record, conversation), at };
	}

	async inboxEntry(userId: string, conversationId: string): Promise<InboxEntry | null> {
		const found = await this.memberAndConversation(userId, conversationId);
		return found ? this.entryFor(found[0].record, found[1]) : null;
	}

	private async memberAndConversation(userId: string, conversationId: string): Promise<[MemberRow, ConversationRecord] | null> {
		const [member, conversation] = await Promise.all([this.io.first(this.io.q.member, [conversationId, userId]), this.getConversation(conversationId)]);
		return member && conversation ? [toMemberRow(member), conversation] : null;
	}

	private async entryFor(member: MemberRecord, conversation: ConversationRecord): Promise<InboxEntry> {
		const lastMessage = conversation.lastSeq > 0 ? await this.readMessage(conversation.id, conversation.lastSeq) : null;
		return { conversation, member, lastMessage };
	}

	async memberships(userId: string): Promise<{ conversationId: string; lastSeq: number }[]> {
		const out: { conversationId: string; lastSeq: number }[] = [];
		for await (const row of this.io.scan(this.io.q.userConversations, [userId], 1000)) {
			out.push({ conversationId: text(row, "conversation_id"), lastSeq: int(row, "last_seq") });
		}
		return out;
	}

	async contactsOf(userId: string, limit: number): Promise<string[]> {
		const contacts = new Set<string>();
		if (limit <= 0) return [];
		for await (const row of this.io.scan(this.io.q.userConversations, [userId], 1000)) {
			const peer = optionalText(row, "peer_id");
			if (peer && peer !== userId && row.get("exchanged") === true) contacts.add(peer);
			if (contacts.size >= limit) break;
		}
		return [...contacts];
	}

	appendMessage(req: AppendRequest): Promise<AppendResult> {
		return this.sequencerOf(req.conversationId).submit(req);
	}

	/** One sequencer per conversation; idle ones beyond maxIdleSequencers are forgotten (they reload on next use). */
	private sequencerOf(conversationId: string): ConversationSequencer {
		let sequencer = this.sequencers.get(conversationId);
		if (sequencer) {
			this.sequencers.delete(conversationId); // re-inserted below: the map's order is least recently used first
		} else {
			sequencer = new ConversationSequencer(conversationId, {
				io: this.io,
				settings: this.settings,
				clock: this.clock,
				inflight: this.inflight,
				readMembers: (id) => this.readMembers(id),
				readMessage: (id, seq) => this.readMessage(id, seq),
			});
		}
		this.sequencers.set(conversationId, sequencer);
		this.forgetIdleSequencers();
		return sequencer;
	}

	private forgetIdleSequencers(): void {
		if (this.sequencers.size <= this.settings.maxIdleSequencers) return;
		for (const [id, sequencer] of this.sequencers) {
			if (this.sequencers.size <= this.settings.maxIdleSequencers) return;
			if (sequencer.idle) this.sequencers.delete(id);
		}
	}

	private async readMessage(conversationId: string, seq: number): Promise<Message | null> {
		const row = await this.io.first(this.io.q.messageAt, [conversationId, bucketOf(seq), seq]);
		return row ? toMessage(row) : null;
	}

	async history(conversationId: string, q: HistoryQuery): Promise<Message[]> {
		if (q.limit <= 0) return [];
		if (q.afterSeq !== undefined) {
			const to = q.beforeSeq !== undefined ? q.beforeSeq - 1 : Number.MAX_SAFE_INTEGER;
			return this.take(this.ascending(conversationId, q.afterSeq + 1, to, q.limit), q.limit);
		}
		// Start at the newest message below beforeSeq that exists: a far-off beforeSeq must not walk empty buckets.
		const lastSeq = (await this.getConversation(conversationId))?.lastSeq ?? 0;
		const from = Math.min(lastSeq, q.beforeSeq !== undefined ? q.beforeSeq - 1 : lastSeq);
		if (from < 1) return [];
		return (await this.take(this.descending(conversationId, from, q.limit), q.limit)).reverse();
	}

	async messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]> {
		if (limit <= 0) return [];
		return this.take(this.ascending(conversationId, afterSeq + 1, Number.MAX_SAFE_INTEGER, limit), limit);
	}

	private async take(rows: AsyncGenerator<Row>, limit: number): Promise<Message[]> {
		const out: Message[] = [];
		for await (const row of rows) {
			out.push(toMessage(row));
			if (out.length >= limit) break;
		}
		return out;
	}

	/**
	 * Messages from..to ascending, bucket after bucket. Seqs are dense, so a
	 * bucket that ends short of its last seq is the end of the conversation.
	 */
	private async *ascending(conversationId: string, from: number, to: number, fetchSize: number, query = this.io.q.messagesUp): AsyncGenerator<Row> {
		const first = Math.max(from, 1);
		for (let bucket = bucketOf(first); firstSeqOf(bucket) <= to; bucket++) {
			const hi = Math.min(to, lastSeqOf(bucket));
			let lastSeen = 0;
			for await (const row of this.io.scan(query, [conversationId, bucket, Math.max(first, firstSeqOf(bucket)), hi], Math.min(Math.max(fetchSize, 1), 1000))) {
				lastSeen = int(row, "seq");
				yield row;
			}
			if (lastSeen < lastSeqOf(bucket)) return;
		}
	}

	/** Messages from `from` down to 1, newest first; lower buckets are always full. */
	private async *descending(conversationId: string, from: number, fetchSize: number): AsyncGenerator<Row> {
		for (let bucket = bucketOf(from); bucket >= 0; bucket--) {
			yield* this.io.scan(this.io.q.messagesDown, [conversationId, bucket, from], Math.min(Math.max(fetchSize, 1), 1000));
		}
	}

	async saveWatermarks(updates: WatermarkUpdate[]): Promise<(WatermarkResult | null)[]> {
		// Updates of one member run in order; different members in parallel.
		const chains = new Map<string, Promise<unknown>>();
		return Promise.all(
			updates.map((u) => {
				const key = idKey(u.conversationId, u.userId);
				const result = (chains.get(key) ?? Promise.resolve()).then(() => this.saveWatermark(u));
				chains.set(key, result.catch(() => undefined));
				return result;
			}),
		);
	}

	/**
	 * Read-modify-write of one member row: forward-only (max), clamped to the
	 * last seq, read implies delivered. One receipts batcher per process writes
	 * these, so no two writers race on a member.
	 */
	private async saveWatermark(u: WatermarkUpdate): Promise<WatermarkResult | null> {
		const { io } = this;
		const [memberRow, conversation] = await Promise.all([io.first(io.q.member, [u.conversationId, u.userId]), this.getConversation(u.conversationId)]);
		if (!memberRow || !conversation) return null;
		const before = toMemberRow(memberRow).record;
		const lastSeq = conversation.lastSeq;
		const delivered = Math.min(u.delivered, lastSeq);
		const read = Math.min(u.read, lastSeq);
		if (delivered <= before.delivered && read <= before.read) return { member: before, lastSeq, changed: false, readChanged: false };
		const newRead = Math.max(before.read, read);
		const readChanged = newRead > before.read;
		const counts = readChanged ? await this.sentCounts(u.conversationId, u.userId, newRead, before.sentCount) : before;
		const member: MemberRecord = {
			...before,
			delivered: Math.max(before.delivered, delivered, newRead),
			read: newRead,
			sentCount: counts.sentCount,
			sentUpToRead: counts.sentUpToRead,
		};
		await io.write(io.q.memberWatermarks, [member.delivered, member.read, member.sentUpToRead, u.conversationId, u.userId]);
		return { member, lastSeq, changed: true, readChanged };
	}

	/**
	 * sent_upto_read = sent_count minus the member's own messages after the read
	 * mark (a range read of the unread window only). An append may land between
	 * reading sent_count and counting, so the count is taken again until both agree.
	 */
	private async sentCounts(conversationId: string, userId: string, read: number, sentCount: number): Promise<{ sentCount: number; sentUpToRead: number }> {
		let expected = sentCount;
		for (let attempt = 0; ; attempt++) {
			const mineAfter = await this.countOwnAfter(conversationId, userId, read);
			const row = await this.io.first(this.io.q.memberSentCount, [conversationId, userId]);
			const now = row ? int(row, "sent_count") : expected;
			if (now === expected || attempt === 2) return { sentCount: now, sentUpToRead: Math.max(0, now - mineAfter) };
			expected = now;
		}
	}

	private async countOwnAfter(conversationId: string, userId: string, afterSeq: number): Promise<number> {
		let count = 0;
		for await (const row of this.ascending(conversationId, afterSeq + 1, Number.MAX_SAFE_INTEGER, 1000, this.io.q.sendersUp)) {
			if (optionalText(row, "sender_id") === userId) count++;
		}
		return count;
	}
}

// ------------------------------------------------------------------ search outbox

const outboxKey = (conversationId: string, seq: number) => JSON.stringify([conversationId, seq]);

function parseOutboxKey(key: string): { conversationId: string; seq: number } | null {
	try {
		const [conversationId, seq] = JSON.parse(key) as unknown[];
		if (typeof conversationId === "string" && typeof seq === "number") return { conversationId, seq };
	} catch {
		// not one of ours
	}
	return null;
}

/**
 * The search outbox over markers: a conversation with a marker has messages
 * after its indexed_seq to hand to the index. Messages come in seq order per
 * conversation; the relay confirms whole backlogs, so confirming seq N means
 * everything up to N is indexed.
 */
class CassandraSearchFeed implements SearchFeed {
	/** Where the next backlog starts, so one busy shard cannot starve the others. */
	private nextShard = 0;

	constructor(
		private readonly io: () => CassandraIo,
		private readonly settings: Settings,
		private readonly messagesAfter: (conversationId: string, afterSeq: number, limit: number) => Promise<Message[]>,
	) {}

	async backlog(limit: number): Promise<{ key: string; message: Message }[]> {
		const entries: { key: string; message: Message }[] = [];
		const start = this.nextShard;
		this.nextShard = (this.nextShard + 1) % SEARCH_SHARDS;
		for (let i = 0; i < SEARCH_SHARDS && entries.length < limit; i++) {
			await this.collectShard((start + i) % SEARCH_SHARDS, limit, entries);
		}
		return entries;
	}

	private async collectShard(shard: number, limit: number, entries: { key: string; message: Message }[]): Promise<void> {
		const io = this.io();
		for await (const row of io.scan(io.q.searchPending, [shard], 500)) {
			const conversationId = text(row, "conversation_id");
			const messages = await this.messagesAfter(conversationId, await this.indexedSeq(conversationId), limit - entries.length);
			if (messages.length === 0) await this.forgetIfSettled(shard, conversationId, int(row, "marked"));
			for (const message of messages) entries.push({ key: outboxKey(conversationId, message.seq), message });
			if (entries.length >= limit) return;
		}
	}

	/** A caught-up conversation loses its marker, unless the marker is so young that its batch may still be landing. */
	private async forgetIfSettled(shard: number, conversationId: string, markedMicros: number): Promise<void> {
		if (markedMicros > (Date.now() - this.settings.searchSettleMs) * 1000) return;
		const io = this.io();
		await io.write(io.q.searchUnmark, [markedMicros, shard, conversationId]);
	}

	private async indexedSeq(conversationId: string): Promise<number> {
		const io = this.io();
		const row = await io.first(io.q.searchProgress, [conversationId]);
		return row ? int(row, "indexed_seq") : 0;
	}

	async confirm(keys: string[]): Promise<void> {
		const highest = new Map<string, number>();
		for (const key of keys) {
			const parsed = parseOutboxKey(key);
			if (parsed) highest.set(parsed.conversationId, Math.max(parsed.seq, highest.get(parsed.conversationId) ?? 0));
		}
		const io = this.io();
		await Promise.all(
			[...highest].map(async ([conversationId, seq]) => {
				// Forward only; a race between two relays can only move it back, which re-indexes (idempotent), never skips.
				if (seq > (await this.indexedSeq(conversationId))) await io.write(io.q.searchProgressSet, [seq, conversationId]);
			}),
		);
	}

	/** Every conversation id, in token order: `after` is the last id of the previous page. */
	async conversationIds(limit: number, after?: string): Promise<string[]> {
		const io = this.io();
		const rows = after === undefined ? io.scan(io.q.conversationIdsFirst, [], limit) : io.scan(io.q.conversationIdsAfter, [after], limit);
		const ids: string[] = [];
		for await (const row of rows) {
			ids.push(text(row, "id"));
			if (ids.length >= limit) break;
		}
		return ids;
	}
}
