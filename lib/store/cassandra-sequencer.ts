/**
 * Appends on Cassandra: one sequencer per conversation orders its messages,
 * without multi-row transactions and without trusting that only one process
 * writes (docs/architecture.md, "Appending: seq and idempotency").
 *
 * 1. Claim: the group's message rows are inserted with INSERT ... IF NOT EXISTS,
 *    one conditional batch per bucket partition. The row is the claim: a seq
 *    that another writer already holds makes the whole batch fail, and this
 *    sequencer reloads. No time-based fence, no seq ever written twice.
 * 2. Follow-up: one logged batch of absolute values moves last_seq, the sent
 *    counts, each member's user_conversations row, the idempotency pointers and
 *    the search marker. Forward-only cells are written with USING TIMESTAMP =
 *    the new last seq, so a late follow-up can never move them back.
 * 3. Whoever loads the conversation next (this process after a failure, or
 *    another node) finds claimed rows past last_seq and completes their follow-up
 *    first, so a writer that died between 1 and 2 leaves no gap and no lost ack.
 */
import type { Message } from "../../contract";
import { Batcher } from "../batcher";
import { conflict, forbidden, notFound, tooLarge } from "../errors";
import {
	byRole,
	type CassandraIo,
	isTransient,
	SeqTakenError,
	type Row,
	type Settings,
	type Statement,
	type Statements,
	sleep,
	storageUnavailable,
	text,
	int,
	toConversationRow,
	toMemberRecord,
	toMessage,
} from "./cassandra-io";
import { bucketOf, firstSeqOf, lastSeqOf, searchShardOf } from "./cassandra-schema";
import type { AppendRequest, AppendResult, ChangeRequest, ChangeResult, ConversationRecord } from "./chat-store";

/** What the sequencer of one conversation knows, as of conversation.lastSeq. */
interface SequencerState {
	conversation: ConversationRecord;
	sentCounts: Map<string, number>;
	memberIds: string[];
}

type Outcome = { message: Message; duplicate: boolean } | { error: Error };

/** (sender, clientMsgId) pairs being written right now, so two conversations cannot both take one. */
export class InflightIds {
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

const clientIdKey = (senderId: string, clientMsgId: string) => `${senderId}\u0000${clientMsgId}`;

/** Estimated bytes of one message in a batch (values plus keys and framing). */
const estimateBytes = (req: AppendRequest) =>
	Buffer.byteLength(req.text) + Buffer.byteLength(JSON.stringify(req.attachments)) + 4 * (req.id.length + req.senderId.length + req.clientMsgId.length) + 256;

/** Room kept in a batch for the conditional batch's framing. */
const GROUP_OVERHEAD_BYTES = 2048;

/** The part of the store a sequencer uses. */
export interface AppendContext {
	io: CassandraIo;
	settings: Settings;
	inflight: InflightIds;
	readMemberRows(conversationId: string): Promise<Row[]>;
	readMessage(conversationId: string, seq: number): Promise<Message | null>;
}

export class ConversationSequencer {
	private readonly queue: Batcher<AppendRequest, AppendResult>;
	private state: SequencerState | null = null;
	/** Follow-up batches whose messages or changes are claimed but which have not landed yet, in order. */
	private pending: Statement[][] = [];
	private active = 0;
	/**
	 * Appends and changes of this conversation take turns: each group or change holds the turn while
	 * it reads and writes, so they never share `pending` or `state` half-way through.
	 */
	private turn: Promise<unknown> = Promise.resolve();
	/** The last change number, as of this process's last look; null until loaded (or after a failure). */
	private lastChangeSeq: number | null = null;

	constructor(
		private readonly conversationId: string,
		private readonly ctx: AppendContext,
	) {
		this.queue = new Batcher((items) => this.flush(items), { delayMs: 0, maxItems: ctx.settings.maxGroupItems });
	}

	get idle(): boolean {
		return this.active === 0 && this.pending.length === 0;
	}

	async submit(req: AppendRequest): Promise<AppendResult> {
		this.active++;
		try {
			return await this.queue.submit(req);
		} finally {
			this.active--;
		}
	}

	/** On shutdown: finish queued appends and try once more to land a follow-up that failed. */
	async drain(): Promise<void> {
		await this.queue.drain();
		// If this fails too, the next writer to load the conversation completes it.
		await this.writePending().catch((err: Error) => this.ctx.settings.warn(`${this.conversationId}: follow-up left for the next writer at close: ${err.message}`));
	}

	private exclusive<T>(work: () => Promise<T>): Promise<T> {
		const run = this.turn.then(work);
		this.turn = run.catch(() => undefined);
		return run;
	}

	private flush(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
		return this.exclusive(() => this.flushGroups(items));
	}

	private async flushGroups(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
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

	/** Retries a group through transient failures (Cassandra restarting, another writer) until appendRetryMs runs out. */
	private async commitWithRetry(items: AppendRequest[]): Promise<(AppendResult | Error)[]> {
		const deadline = Date.now() + this.ctx.settings.appendRetryMs;
		for (let attempt = 1; ; attempt++) {
			try {
				return await this.commit(items);
			} catch (err) {
				// Full jitter, so two nodes contending for one conversation fall out of step.
				const wait = Math.random() * Math.min(50 * 2 ** attempt, 1000);
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
		const keys = fresh.map((f) => clientIdKey(f.senderId, f.clientMsgId));
		try {
			const after = fresh.length > 0 ? await this.write(state, fresh) : state;
			const rows = await this.ctx.readMemberRows(this.conversationId);
			const members = rows.map((row) => toMemberRecord(row, after.sentCounts)).sort(byRole);
			const conversation = { ...after.conversation };
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
			const key = clientIdKey(req.senderId, req.clientMsgId);
			const original = inThisGroup.get(key) ?? originals.get(key);
			if (original && original.conversationId === this.conversationId) {
				// Same id: this very request, stored by an earlier attempt (its ack was lost in a retry).
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
		const unique = new Map(items.map((r) => [clientIdKey(r.senderId, r.clientMsgId), r]));
		const found = await Promise.all([...unique].map(async ([key, req]) => [key, await this.findOriginal(req)] as const));
		return new Map(found.filter((entry): entry is readonly [string, Message] => entry[1] !== null));
	}

	private async findOriginal(req: AppendRequest): Promise<Message | null> {
		const { io } = this.ctx;
		const pointer = await io.first(io.q.messageId, [req.senderId, req.clientMsgId]);
		if (!pointer) return null;
		const message = await this.ctx.readMessage(text(pointer, "conversation_id"), int(pointer, "seq"));
		return message && message.senderId === req.senderId && message.clientMsgId === req.clientMsgId ? message : null;
	}

	/** Claims the fresh messages' seqs by writing them, then lands the follow-up; resolves once both are acknowledged. */
	private async write(state: SequencerState, fresh: Message[]): Promise<SequencerState> {
		const { io, settings } = this.ctx;
		for (const chunk of byBucket(fresh)) {
			let applied: boolean;
			try {
				applied = await io.conditionalBatch(chunk.map((m) => claimStatement(io.q, m)));
			} catch (err) {
				// Outcome unknown: the reload finds out whether the rows are there, and completes them if so.
				this.state = null;
				throw err;
			}
			if (!applied) {
				this.state = null;
				settings.warn(`${this.conversationId}: seq ${chunk[0]!.seq} is already taken by another writer; reloading`);
				throw new SeqTakenError(`seq ${chunk[0]!.seq} of ${this.conversationId} taken by another writer`);
			}
		}
		await settings.afterClaim?.(this.conversationId, fresh.map((m) => m.seq));
		const next = advance(state, fresh);
		this.pending.push(followUp(io.q, next, fresh, settings.feedSearch));
		this.state = next;
		await this.writePending();
		return next;
	}

	/** Lands the follow-ups of claimed messages and changes, in order; every statement in them is idempotent. */
	private async writePending(): Promise<void> {
		while (this.pending.length > 0) {
			try {
				await this.ctx.io.batch(this.pending[0]!);
				this.pending.shift();
			} catch (err) {
				if (isTransient(err)) throw err;
				// Refused outright: the next load rebuilds them from the claimed rows.
				this.pending = [];
				this.state = null;
				this.lastChangeSeq = null;
				throw err;
			}
		}
	}

	/** An edit or delete, in turn with the conversation's appends and other changes. */
	change(req: ChangeRequest): Promise<ChangeResult> {
		this.active++;
		const attempt: ChangeAttempt = { claimed: null, known: false };
		return this.exclusive(() => this.retrying(() => this.commitChange(req, attempt))).finally(() => this.active--);
	}

	/** Retries one change through transient failures, like a group of appends. */
	private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
		const deadline = Date.now() + this.ctx.settings.appendRetryMs;
		for (let n = 1; ; n++) {
			try {
				return await attempt();
			} catch (err) {
				const wait = Math.random() * Math.min(50 * 2 ** n, 1000);
				if (!isTransient(err)) throw err;
				if (Date.now() + wait > deadline) throw storageUnavailable(err);
				await sleep(wait);
			}
		}
	}

	private async commitChange(req: ChangeRequest, attempt: ChangeAttempt): Promise<ChangeResult> {
		const { io, settings } = this.ctx;
		await this.writePending();
		let state = (this.state ??= await this.load());
		if (!state) throw notFound("Conversation not found", { conversationId: this.conversationId });
		// A seq past what this process knows may have been written by another node: look again once.
		if (req.seq > state.conversation.lastSeq) state = this.state = await this.load();
		if (!state || req.seq > state.conversation.lastSeq) throw notFound("Message not found", { conversationId: this.conversationId, seq: req.seq });
		this.lastChangeSeq ??= await this.loadChanges(state);
		const found = await this.readBorn(req.seq);
		if (!found) throw notFound("Message not found", { conversationId: this.conversationId, seq: req.seq });
		const { message, born } = found;

		// An earlier try of this very request claimed its change: it has landed by now (the follow-up
		// re-driven above, or finished by loadChanges), so it is a change, not a repeat of one.
		if (attempt.claimed) {
			if (message.changeSeq !== undefined && message.changeSeq >= attempt.claimed.changeSeq) return this.changeResult(message, true);
			if (attempt.known) throw new SeqTakenError(`change ${attempt.claimed.changeSeq} of ${this.conversationId} has not landed yet`);
			attempt.claimed = null; // the claim whose outcome was unknown never applied: claim again
		}

		if (message.senderId !== req.editorId) throw forbidden("Only the sender can edit or delete a message");
		const unchanged = req.text === null ? message.deletedAt !== undefined : req.text === message.text && message.deletedAt === undefined;
		if (unchanged) return this.changeResult(message, false);
		if (message.deletedAt !== undefined) throw conflict("The message was deleted", { seq: req.seq });
		// The text goes into the claim and the row: both must fit a batch (as an append's would).
		if (req.text !== null && Buffer.byteLength(req.text) * 2 + GROUP_OVERHEAD_BYTES > settings.maxBatchBytes) {
			throw tooLarge("text is too large to store", { field: "text" });
		}

		const change: Change = { changeSeq: this.lastChangeSeq + 1, seq: req.seq, text: req.text, changedAt: req.now };
		let applied: boolean;
		try {
			applied = await io.conditionalBatch([changeClaim(io.q, this.conversationId, change)]);
		} catch (err) {
			// Outcome unknown: the retry's loadChanges finds out, and finishes the change if it landed.
			attempt.claimed = change;
			this.lastChangeSeq = null;
			throw err;
		}
		if (!applied) {
			this.lastChangeSeq = null;
			settings.warn(`${this.conversationId}: change ${change.changeSeq} is already taken by another writer; reloading`);
			throw new SeqTakenError(`change ${change.changeSeq} of ${this.conversationId} taken by another writer`);
		}
		attempt.claimed = change;
		attempt.known = true;
		this.lastChangeSeq = change.changeSeq;
		this.pending.push(changeFollowUp(io.q, this.conversationId, state.memberIds, change, born, settings.feedSearch));
		await settings.afterClaim?.(this.conversationId, [change.changeSeq]);
		await this.writePending();
		return this.changeResult(applyChange(message, change), true);
	}

	private async changeResult(message: Message, changed: boolean): Promise<ChangeResult> {
		const { io } = this.ctx;
		const [row, memberRows] = await Promise.all([io.first(io.q.conversation, [this.conversationId]), this.ctx.readMemberRows(this.conversationId)]);
		const { record, sentCounts } = toConversationRow(row!);
		return { message, changed, conversation: record, members: memberRows.map((r) => toMemberRecord(r, sentCounts)).sort(byRole) };
	}

	/** The message with the write time of its creation (changes are stamped above it). */
	private async readBorn(seq: number): Promise<{ message: Message; born: number } | null> {
		const { io } = this.ctx;
		const row = await io.first(io.q.messageBorn, [this.conversationId, bucketOf(seq), seq]);
		return row ? { message: toMessage(row), born: int(row, "born") } : null;
	}

	/** The conversation's last change number, after finishing any change a writer claimed but did not complete. */
	private async loadChanges(state: SequencerState): Promise<number> {
		const { io, settings } = this.ctx;
		const row = await io.serialFirst(io.q.conversation, [this.conversationId]);
		let last = row ? int(row, "last_change_seq") : 0;
		for (let bucket = bucketOf(last + 1); ; bucket++) {
			let seen = 0;
			for await (const r of io.scan(io.q.changesUp, [this.conversationId, bucket, Math.max(last + 1, firstSeqOf(bucket)), lastSeqOf(bucket)], 1000, true)) {
				const change = toChange(r);
				if (change.changeSeq !== last + 1) return last;
				const found = await this.readBorn(change.seq);
				if (found) {
					this.pending.push(changeFollowUp(io.q, this.conversationId, state.memberIds, change, found.born, settings.feedSearch));
					await this.writePending();
					settings.warn(`${this.conversationId}: completed change ${change.changeSeq}, claimed by a writer that did not finish`);
				}
				last = change.changeSeq;
				seen = last;
			}
			if (seen < lastSeqOf(bucket)) return last;
		}
	}

	/** Reads the conversation as of its last seq, and completes any group a writer claimed but did not finish. */
	private async load(): Promise<SequencerState | null> {
		const { io, settings } = this.ctx;
		const row = await io.serialFirst(io.q.conversation, [this.conversationId]);
		if (!row) return null;
		const { record, sentCounts } = toConversationRow(row);
		const memberIds = (await this.ctx.readMemberRows(this.conversationId)).map((r) => text(r, "user_id"));
		const state: SequencerState = { conversation: record, sentCounts, memberIds };
		// A change left unfinished is completed now too, not only when the next edit comes.
		this.lastChangeSeq = await this.loadChanges(state);
		const unfinished = await this.claimedAfter(record.lastSeq);
		if (unfinished.length === 0) return state;
		const next = advance(state, unfinished);
		this.pending.push(followUp(io.q, next, unfinished, settings.feedSearch));
		await this.writePending();
		settings.warn(`${this.conversationId}: completed seqs ${unfinished[0]!.seq}..${next.conversation.lastSeq}, claimed by a writer that did not finish`);
		return next;
	}

	/** Claimed rows after last_seq, in order (read at SERIAL, which also finishes a claim left half done). */
	private async claimedAfter(lastSeq: number): Promise<Message[]> {
		const { io } = this.ctx;
		const out: Message[] = [];
		for (let bucket = bucketOf(lastSeq + 1); ; bucket++) {
			const from = Math.max(lastSeq + 1, firstSeqOf(bucket));
			for await (const row of io.scan(io.q.messagesUp, [this.conversationId, bucket, from, lastSeqOf(bucket)], 1000, true)) {
				const message = toMessage(row);
				// Claims are contiguous from last_seq + 1; stop at anything else.
				if (message.seq !== lastSeq + out.length + 1) return out;
				out.push(message);
			}
			if (out.length === 0 || out[out.length - 1]!.seq < lastSeqOf(bucket)) return out;
		}
	}
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

/** Contiguous messages split where they cross a bucket: a conditional batch must stay in one partition. */
function byBucket(messages: Message[]): Message[][] {
	const chunks: Message[][] = [];
	for (const m of messages) {
		const last = chunks[chunks.length - 1];
		if (last && bucketOf(last[0]!.seq) === bucketOf(m.seq)) last.push(m);
		else chunks.push([m]);
	}
	return chunks;
}

function claimStatement(q: Statements, m: Message): Statement {
	return {
		query: q.messageClaim,
		params: [m.conversationId, bucketOf(m.seq), m.seq, m.id, m.senderId, m.clientMsgId, m.type, m.text, JSON.stringify(m.attachments), Date.parse(m.createdAt)],
	};
}

/** The state after these messages (contiguous from lastSeq + 1): derived from them alone, so every writer derives the same. */
function advance(state: SequencerState, fresh: Message[]): SequencerState {
	const sentCounts = new Map(state.sentCounts);
	for (const m of fresh) sentCounts.set(m.senderId, (sentCounts.get(m.senderId) ?? 0) + 1);
	const lastActivityAt = Math.max(state.conversation.lastActivityAt, ...fresh.map((m) => Date.parse(m.createdAt)));
	return {
		...state,
		conversation: { ...state.conversation, lastSeq: state.conversation.lastSeq + fresh.length, lastActivityAt },
		sentCounts,
	};
}

/** The follow-up of a group: absolute values, forward-only cells stamped with the new last seq. */
function followUp(q: Statements, next: SequencerState, fresh: Message[], feedSearch: boolean): Statement[] {
	const { id, lastSeq, lastActivityAt } = next.conversation;
	const counts = Object.fromEntries(next.sentCounts);
	const hasSent = (userId: string) => (next.sentCounts.get(userId) ?? 0) > 0;
	const list: Statement[] = [{ query: q.conversationCommit, params: [lastSeq, lastSeq, lastActivityAt, counts, id] }];
	for (const m of fresh) list.push({ query: q.messageIdInsert, params: [m.senderId, m.clientMsgId, id, m.seq] });
	for (const userId of next.memberIds) {
		const exchanged = hasSent(userId) && next.memberIds.some((other) => other !== userId && hasSent(other));
		list.push({ query: q.userConversationCommit, params: [lastSeq, lastSeq, lastActivityAt, exchanged, userId, id] });
	}
	if (feedSearch) list.push({ query: q.searchMark, params: [searchShardOf(id), id, Date.now()] });
	return list;
}

/** What one change request has claimed so far, across its retries. */
interface ChangeAttempt {
	claimed: Change | null;
	/** The claim is known to have applied (not only possibly, after a timeout). */
	known: boolean;
}

/** One edit (text) or delete (text null), as claimed in message_changes. */
interface Change {
	changeSeq: number;
	seq: number;
	text: string | null;
	changedAt: number;
}

function toChange(row: Row): Change {
	return {
		changeSeq: int(row, "change_seq"),
		seq: int(row, "seq"),
		text: row.get("deleted") === true ? null : (row.get("text") as string),
		changedAt: (row.get("changed_at") as Date).getTime(),
	};
}

function changeClaim(q: Statements, conversationId: string, c: Change): Statement {
	return { query: q.changeClaim, params: [conversationId, bucketOf(c.changeSeq), c.changeSeq, c.seq, c.text ?? "", c.text === null, c.changedAt] };
}

/** The message as the change leaves it. */
function applyChange(message: Message, c: Change): Message {
	const at = new Date(c.changedAt).toISOString();
	return c.text === null ? { ...message, text: "", attachments: [], deletedAt: at, changeSeq: c.changeSeq } : { ...message, text: c.text, editedAt: at, changeSeq: c.changeSeq };
}

/**
 * The writes a change needs: the message row (stamped just above its creation, higher for later
 * changes, so the latest change wins whoever lands last), the change counters (stamped with the
 * change number) and the search marker.
 */
function changeFollowUp(q: Statements, conversationId: string, memberIds: string[], c: Change, born: number, feedSearch: boolean): Statement[] {
	const key = [conversationId, bucketOf(c.seq), c.seq];
	const stamp = born + c.changeSeq;
	const list: Statement[] = [
		c.text === null
			? { query: q.messageDelete, params: [stamp, c.changedAt, c.changeSeq, ...key] }
			: { query: q.messageEdit, params: [stamp, c.text, c.changedAt, c.changeSeq, ...key] },
		{ query: q.conversationChange, params: [c.changeSeq, c.changeSeq, conversationId] },
		...memberIds.map((userId) => ({ query: q.userConversationChange, params: [c.changeSeq, c.changeSeq, userId, conversationId] })),
	];
	if (feedSearch) list.push({ query: q.searchMark, params: [searchShardOf(conversationId), conversationId, Date.now()] });
	return list;
}
