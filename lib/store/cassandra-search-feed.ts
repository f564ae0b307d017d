/**
 * The search outbox of the Cassandra store, over markers: a conversation with a
 * marker has messages after its indexed_seq to hand to the index. Messages come
 * in seq order per conversation; the relay confirms whole backlogs, so
 * confirming seq N means everything up to N is indexed.
 */
import type { Message } from "../../contract";
import type { ChangesPage, SearchFeed } from "./chat-store";
import { type CassandraIo, int, type Settings, text } from "./cassandra-io";
import { SEARCH_SHARDS } from "./cassandra-schema";

/** An outbox entry: a new message (by seq) or a change (by change number) of a conversation. */
type OutboxKey = { conversationId: string; kind: "seq" | "change"; n: number };

const outboxKey = (k: OutboxKey) => JSON.stringify([k.conversationId, k.kind, k.n]);

function parseOutboxKey(key: string): OutboxKey | null {
	try {
		const [conversationId, kind, n] = JSON.parse(key) as unknown[];
		if (typeof conversationId === "string" && (kind === "seq" || kind === "change") && typeof n === "number") return { conversationId, kind, n };
	} catch {
		// not one of ours
	}
	return null;
}

interface Progress {
	seq: number;
	change: number;
}

export class CassandraSearchFeed implements SearchFeed {
	/** Where the next backlog starts, so one busy shard cannot starve the others. */
	private nextShard = 0;

	constructor(
		private readonly io: () => CassandraIo,
		private readonly settings: Settings,
		private readonly messagesAfter: (conversationId: string, afterSeq: number, limit: number) => Promise<Message[]>,
		private readonly changesAfter: (conversationId: string, afterChangeSeq: number, uptoSeq: number, limit: number) => Promise<ChangesPage>,
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
			const progress = await this.progress(conversationId);
			// Edits and deletes first (they are few), then new messages; each as it stands now.
			const changed = await this.changesAfter(conversationId, progress.change, Number.MAX_SAFE_INTEGER, limit - entries.length);
			// Keyed by the change number each one covers (not the message's own, which may be newer).
			changed.messages.forEach((message, i) => entries.push({ key: outboxKey({ conversationId, kind: "change", n: changed.through[i]! }), message }));
			const fresh = await this.messagesAfter(conversationId, progress.seq, limit - entries.length);
			for (const message of fresh) entries.push({ key: outboxKey({ conversationId, kind: "seq", n: message.seq }), message });
			if (changed.messages.length === 0 && fresh.length === 0) await this.forgetIfSettled(shard, conversationId, int(row, "marked"));
			if (entries.length >= limit) return;
		}
	}

	/**
	 * A caught-up conversation loses its marker, unless the marker is so young that its batch may
	 * still be landing. The delete carries the marker's own write time, so a newer marker (every
	 * drive of an append's batch writes one with a fresh time) survives it.
	 */
	private async forgetIfSettled(shard: number, conversationId: string, markedMicros: number): Promise<void> {
		if (markedMicros > (Date.now() - this.settings.searchSettleMs) * 1000) return;
		const io = this.io();
		await io.write(io.q.searchUnmark, [markedMicros, shard, conversationId]);
	}

	private async progress(conversationId: string): Promise<Progress> {
		const io = this.io();
		const row = await io.first(io.q.searchProgress, [conversationId]);
		return { seq: row ? int(row, "indexed_seq") : 0, change: row ? int(row, "indexed_change_seq") : 0 };
	}

	async confirm(keys: string[]): Promise<void> {
		const highest = new Map<string, Progress>();
		for (const key of keys) {
			const k = parseOutboxKey(key);
			if (!k) continue;
			const p = highest.get(k.conversationId) ?? { seq: 0, change: 0 };
			highest.set(k.conversationId, k.kind === "seq" ? { ...p, seq: Math.max(p.seq, k.n) } : { ...p, change: Math.max(p.change, k.n) });
		}
		const io = this.io();
		// Written with the number as its timestamp: two relays racing keep the higher, never move it back.
		await Promise.all(
			[...highest].flatMap(([conversationId, p]) => [
				p.seq > 0 ? io.write(io.q.searchProgressSet, [p.seq, p.seq, conversationId]) : null,
				p.change > 0 ? io.write(io.q.searchChangeProgressSet, [p.change, p.change, conversationId]) : null,
			]),
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
