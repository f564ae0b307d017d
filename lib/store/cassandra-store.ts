/**
 * ChatStore on Cassandra (cluster profile). Cassandra has no multi-row
 * transactions, so the guarantees of design.md §3 come from the shape of the
 * writes (docs/architecture.md, "Cassandra store"):
 *
 * - Appends: see cassandra-sequencer.ts. A message row is created only by a
 *   conditional insert, which claims its seq; the rest follows in one logged batch.
 * - Forward-only cells (last_seq, sent counts, watermarks, indexed_seq) are
 *   written with USING TIMESTAMP = the seq they hold, so the highest always wins,
 *   whichever writer lands last.
 * - Every read names a partition; none grows without bound (messages are
 *   bucketed, per-user rows are overwritten in place).
 */
import { randomBytes } from "node:crypto";
import { Client, policies, types, type Host } from "cassandra-driver";
import type { Message } from "../../contract";
import {
	byRole,
	CassandraIo,
	type CassandraStoreOptions,
	DEFAULTS,
	int,
	millis,
	optionalText,
	type Row,
	type Settings,
	type Statement,
	text,
	toConversationRow,
	toMemberRecord,
	toMessage,
} from "./cassandra-io";
import { bucketOf, checkKeyspaceName, ensureSchema, firstSeqOf, lastSeqOf, MAX_BUCKET, type Replication } from "./cassandra-schema";
import { CassandraSearchFeed } from "./cassandra-search-feed";
import { ConversationSequencer, InflightIds } from "./cassandra-sequencer";
import type {
	AppendRequest,
	AppendResult,
	ChangeRequest,
	ChangeResult,
	ChangesPage,
	ChatStore,
	ConversationRecord,
	EngineLog,
	HistoryQuery,
	InboxEntry,
	InboxPage,
	MemberRecord,
	Membership,
	OpenConversation,
	SearchFeed,
	WatermarkResult,
	WatermarkUpdate,
} from "./chat-store";
import { inChunks } from "../in-chunks";
import { decodeInboxCursor, encodeInboxCursor } from "./inbox-cursor";

export type { CassandraStoreOptions } from "./cassandra-io";

const SECRET_KEY = "deployment_secret";

/** Schema checks per keyspace, once per process: the services' stores open together. */
const schemaByKeyspace = new Map<string, Promise<unknown>>();

export function schemaReady(client: Client, keyspace: string, replication: Replication, owner: string): Promise<unknown> {
	let ready = schemaByKeyspace.get(keyspace);
	if (!ready) {
		ready = ensureSchema(client, keyspace, replication, owner);
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

/** A client configured for Parley's keyspaces (also used by `npm run migrate`). */
export function createCassandraClient(settings: Pick<Settings, "contactPoints" | "localDataCenter" | "readTimeoutMs" | "consistency" | "serialConsistency">): Client {
	const client = new Client({
		contactPoints: settings.contactPoints,
		localDataCenter: settings.localDataCenter,
		policies: {
			// Back within ~2 s of a node restart instead of the default's growing waits (up to 10 min).
			reconnection: new policies.reconnection.ExponentialReconnectionPolicy(200, 2000, true),
			// Default policy: with isIdempotent set per statement, only idempotent ones are retried on timeouts.
			retry: new policies.retry.RetryPolicy(),
		},
		socketOptions: { readTimeout: settings.readTimeoutMs, connectTimeout: 5000 },
		protocolOptions: { maxVersion: types.protocolVersion.v4 },
		queryOptions: { prepare: true, consistency: settings.consistency, serialConsistency: settings.serialConsistency },
	});
	closeReplacedHosts(client);
	return client;
}


export class CassandraStore implements ChatStore {
	readonly engine = "cassandra";
	private readonly settings: Settings;
	private client: Client | null = null;
	private io!: CassandraIo;
	private readonly inflight = new InflightIds();
	private readonly sequencers = new Map<string, ConversationSequencer>();
	private secret: string | null = null;
	readonly searchFeed?: SearchFeed;

	/** A `warn` given in the options wins over the logger handed to open(). */
	private readonly warnGiven: boolean;

	constructor(options: CassandraStoreOptions) {
		this.settings = { ...DEFAULTS, ...options };
		this.warnGiven = options.warn !== undefined;
		checkKeyspaceName(this.settings.keyspace);
		if (this.settings.feedSearch) {
			this.searchFeed = new CassandraSearchFeed(
				() => this.io,
				this.settings,
				(id, after, limit) => this.messagesAfter(id, after, limit),
				(id, after, upto, limit) => this.changesAfter(id, after, upto, limit),
			);
		}
	}

	async open(log?: EngineLog): Promise<void> {
		if (log && !this.warnGiven) this.settings.warn = (message) => log.warn(message);
		const client = createCassandraClient(this.settings);
		try {
			await client.connect();
			await schemaReady(client, this.settings.keyspace, this.settings.replication, this.settings.owner);
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
		const { applied, row } = await io.lwt(io.q.conversationCreate, [req.id, req.listingId, req.listingTitle, req.buyerId, req.sellerId, req.now]);
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
			lastChangeSeq: 0,
		};
		// The creator writes the members; a reopen writes them only if a creator died before it could.
		if (applied || (await this.readMemberRows(req.id)).length === 0) await this.writeMembership(req, conversation.createdAt);
		return { conversation, created: applied };
	}

	/** Members and their user_conversations rows, all or nothing. */
	private async writeMembership(req: OpenConversation, createdAt: number): Promise<void> {
		const q = this.io.q;
		const pairs: [string, "buyer" | "seller", string][] = [[req.buyerId, "buyer", req.sellerId]];
		if (req.sellerId !== req.buyerId) pairs.push([req.sellerId, "seller", req.buyerId]);
		const list: Statement[] = pairs.flatMap(([userId, role, peer]) => [
			{ query: q.memberCreate, params: [req.id, userId, role] },
			{ query: q.userConversationCreate, params: [userId, req.id, role, peer, createdAt] },
		]);
		await this.io.batch(list);
	}

	async getConversation(id: string): Promise<ConversationRecord | null> {
		const row = await this.io.first(this.io.q.conversation, [id]);
		return row ? toConversationRow(row).record : null;
	}

	async members(conversationId: string): Promise<MemberRecord[]> {
		const [rows, conversation] = await Promise.all([this.readMemberRows(conversationId), this.io.first(this.io.q.conversation, [conversationId])]);
		const sentCounts = conversation ? toConversationRow(conversation).sentCounts : new Map<string, number>();
		return rows.map((row) => toMemberRecord(row, sentCounts)).sort(byRole);
	}

	private readMemberRows(conversationId: string): Promise<Row[]> {
		return this.io.rows(this.io.q.members, [conversationId]);
	}

	/**
	 * Newest activity first. The user's conversations are one partition whose rows are
	 * overwritten in place, so reading it whole and sorting costs no tombstones (an inbox
	 * table re-keyed by time would leave one per message).
	 */
	async inbox(userId: string, limit: number, before?: string): Promise<InboxPage> {
		const cursor = before ? decodeInboxCursor(before) : null;
		const all = await this.memberships(userId);
		all.sort((a, b) => b.lastActivityAt - a.lastActivityAt || (a.conversationId < b.conversationId ? 1 : a.conversationId > b.conversationId ? -1 : 0));
		const older = cursor
			? all.filter((c) => c.lastActivityAt < cursor.at || (c.lastActivityAt === cursor.at && c.conversationId < cursor.id))
			: all;
		const page = older.slice(0, limit);
		const entries = (await Promise.all(page.map((c) => this.inboxEntry(userId, c.conversationId)))).filter((e): e is InboxEntry => e !== null);
		const last = page[page.length - 1];
		return older.length > limit && last ? { entries, next: encodeInboxCursor(last.lastActivityAt, last.conversationId) } : { entries };
	}

	async inboxEntry(userId: string, conversationId: string): Promise<InboxEntry | null> {
		const { io } = this;
		const [member, conversationRow] = await Promise.all([io.first(io.q.member, [conversationId, userId]), io.first(io.q.conversation, [conversationId])]);
		if (!member || !conversationRow) return null;
		const { record: conversation, sentCounts } = toConversationRow(conversationRow);
		const lastMessage = conversation.lastSeq > 0 ? await this.readMessage(conversation.id, conversation.lastSeq) : null;
		return { conversation, member: toMemberRecord(member, sentCounts), lastMessage };
	}

	async memberships(userId: string): Promise<Membership[]> {
		const out: Membership[] = [];
		for await (const row of this.io.scan(this.io.q.userConversations, [userId], 5000)) {
			const lastSeq = int(row, "last_seq");
			// The seller sees a conversation once it has a message: opening one cannot fill their inbox.
			if (lastSeq === 0 && optionalText(row, "role") === "seller") continue;
			out.push({ conversationId: text(row, "conversation_id"), lastSeq, lastChangeSeq: int(row, "last_change_seq"), lastActivityAt: millis(row, "last_activity_at") ?? 0 });
		}
		return out;
	}

	async contactsOf(userId: string, limit: number): Promise<string[]> {
		const contacts = new Set<string>();
		if (limit <= 0) return [];
		for await (const row of this.io.scan(this.io.q.userConversations, [userId], 5000)) {
			const peer = optionalText(row, "peer_id");
			if (peer && peer !== userId && row.get("exchanged") === true) contacts.add(peer);
			if (contacts.size >= limit) break;
		}
		return [...contacts];
	}

	appendMessage(req: AppendRequest): Promise<AppendResult> {
		return this.sequencerOf(req.conversationId).submit(req);
	}

	changeMessage(req: ChangeRequest): Promise<ChangeResult> {
		return this.sequencerOf(req.conversationId).change(req);
	}

	/**
	 * Walks the change log from `afterChangeSeq` up to the conversation's last_change_seq (read
	 * first: only changes whose follow-up has landed count), keeps each message's latest change, and
	 * reads those messages as they stand. A message row that does not show its change yet (the
	 * follow-up batch still landing on its partition) ends the page just before that change, so the
	 * cursor never passes a change the device has not been given.
	 */
	async changesAfter(conversationId: string, afterChangeSeq: number, uptoSeq: number, limit: number): Promise<ChangesPage> {
		const { io } = this;
		const conversation = await this.getConversation(conversationId);
		const last = conversation?.lastChangeSeq ?? 0;
		if (last <= afterChangeSeq) return { messages: [], through: [], upTo: afterChangeSeq };
		const latest = new Map<number, number>(); // seq -> its latest change number
		for (let bucket = bucketOf(afterChangeSeq + 1); firstSeqOf(bucket) <= last; bucket++) {
			for await (const row of io.scan(io.q.changesUp, [conversationId, bucket, Math.max(afterChangeSeq + 1, firstSeqOf(bucket)), Math.min(last, lastSeqOf(bucket))], 1000)) {
				const seq = int(row, "seq");
				if (seq > uptoSeq) continue;
				latest.delete(seq);
				latest.set(seq, int(row, "change_seq"));
			}
		}
		const inOrder = [...latest].sort((a, b) => a[1] - b[1]);
		const taken = inOrder.slice(0, limit);
		let upTo = taken.length < inOrder.length ? taken[taken.length - 1]![1] : last;
		const messages = await inChunks(taken, ([seq]) => this.readMessage(conversationId, seq));
		const out: Message[] = [];
		const through: number[] = [];
		for (const [i, [, change]] of taken.entries()) {
			const message = messages[i];
			if (change > upTo) break;
			if (!message || (message.changeSeq ?? 0) < change) {
				upTo = change - 1;
				break;
			}
			out.push(message);
			through.push(change);
		}
		return { messages: out, through, upTo };
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
				inflight: this.inflight,
				readMemberRows: (id) => this.readMemberRows(id),
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
		if (bucketOf(seq) > MAX_BUCKET) return null;
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
		// Far past any message (a client's huge afterSeq): nothing there, and no int overflow in the query.
		for (let bucket = bucketOf(first); firstSeqOf(bucket) <= to && bucket <= MAX_BUCKET; bucket++) {
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
		// Updates of one member run in order (each reads what the previous wrote); different members in parallel.
		const chains = new Map<string, Promise<unknown>>();
		return Promise.all(
			updates.map((u) => {
				const key = `${u.conversationId}\u0000${u.userId}`;
				const result = (chains.get(key) ?? Promise.resolve()).then(() => this.saveWatermark(u));
				chains.set(key, result.catch(() => undefined));
				return result;
			}),
		);
	}

	/**
	 * Forward-only (max), clamped to the last seq, read implies delivered. Each
	 * watermark is written with itself as the write timestamp, so two nodes saving
	 * one member at once (while the cluster's ring moves) keep the higher mark.
	 */
	private async saveWatermark(u: WatermarkUpdate): Promise<WatermarkResult | null> {
		const { io } = this;
		const [memberRow, conversationRow] = await Promise.all([io.first(io.q.member, [u.conversationId, u.userId]), io.first(io.q.conversation, [u.conversationId])]);
		if (!memberRow || !conversationRow) return null;
		// One row, written by one statement: lastSeq and the sent counts are of the same moment.
		const { record: conversation, sentCounts } = toConversationRow(conversationRow);
		const before = toMemberRecord(memberRow, sentCounts);
		const lastSeq = conversation.lastSeq;
		const delivered = Math.min(u.delivered, lastSeq);
		const read = Math.min(u.read, lastSeq);
		if (delivered <= before.delivered && read <= before.read) return { member: before, lastSeq, changed: false, readChanged: false };
		const newRead = Math.max(before.read, read);
		const readChanged = newRead > before.read;
		const newDelivered = Math.max(before.delivered, delivered, newRead);
		// Own messages at or below the read mark: those as of lastSeq, minus the ones after the mark.
		const sentUpToRead = readChanged ? before.sentCount - (await this.countOwn(u.conversationId, u.userId, newRead + 1, lastSeq)) : before.sentUpToRead;
		const writes: Statement[] = [];
		if (newDelivered > before.delivered) writes.push({ query: io.q.memberDelivered, params: [newDelivered, newDelivered, u.conversationId, u.userId] });
		if (readChanged) writes.push({ query: io.q.memberRead, params: [newRead, newRead, sentUpToRead, u.conversationId, u.userId] });
		await io.batch(writes);
		const member: MemberRecord = { ...before, delivered: newDelivered, read: newRead, sentUpToRead };
		return { member, lastSeq, changed: true, readChanged };
	}

	/** The member's messages with seq in from..to: a range read of the unread window only. */
	private async countOwn(conversationId: string, userId: string, from: number, to: number): Promise<number> {
		let count = 0;
		if (from > to) return 0;
		for await (const row of this.ascending(conversationId, from, to, 1000, this.io.q.sendersUp)) {
			if (optionalText(row, "sender_id") === userId) count++;
		}
		return count;
	}
}
