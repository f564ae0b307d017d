/**
 * The search outbox of the Cassandra store, over markers: a conversation with a
 * marker has messages after its indexed_seq to hand to the index. Messages come
 * in seq order per conversation; the relay confirms whole backlogs, so
 * confirming seq N means everything up to N is indexed.
 */
import type { Message } from "../../contract";
import type { SearchFeed } from "./chat-store";
import { type CassandraIo, int, type Settings, text } from "./cassandra-io";
import { SEARCH_SHARDS } from "./cassandra-schema";

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

export class CassandraSearchFeed implements SearchFeed {
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
		// Written with the seq as its timestamp: two relays racing keep the higher, never move it back.
		await Promise.all([...highest].map(([conversationId, seq]) => io.write(io.q.searchProgressSet, [seq, seq, conversationId])));
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
