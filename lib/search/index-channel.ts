/**
 * The durable channel that carries messages from the store's search outbox to the
 * search index in a cluster (NATS JetStream via @moleculer/channels): any search node
 * consumes it, a failed batch is redelivered, and one that keeps failing is parked in
 * the dead-letter stream for an operator instead of blocking the rest.
 */
import type { Message } from "../../contract";

export const SEARCH_INDEX_CHANNEL = "parley.search.index";
export const SEARCH_DEAD_LETTER_CHANNEL = "parley.search.dead";
export const SEARCH_INDEX_MAX_RETRIES = 5;
export const SEARCH_INDEX_IN_FLIGHT = 16;
/** How long one delivery keeps retrying (under JetStream's 30 s ack wait, so it is not redelivered meanwhile). */
export const SEARCH_INDEX_PATIENCE_MS = 20_000;

/**
 * Both streams (index and dead letters) keep at most a week or 1 GiB, oldest dropped first,
 * so JetStream's disk never fills with every message ever sent. A batch older than that was
 * either indexed long ago or needs `search.reindex` anyway.
 */
export const SEARCH_STREAM_LIMITS = { max_age: 7 * 86_400 * 1e9, max_bytes: 1024 ** 3 };

/** Runs `attempt` until it succeeds or `patienceMs` has passed, backing off from 200 ms to 2 s. */
export async function withRetries<T>(patienceMs: number, onFailure: (err: Error) => void, attempt: () => Promise<T>): Promise<T> {
	const deadline = Date.now() + patienceMs;
	for (let n = 0; ; n++) {
		try {
			return await attempt();
		} catch (err) {
			const wait = Math.min(2000, 200 * 2 ** n);
			if (Date.now() + wait > deadline) throw err;
			if (n === 0) onFailure(err as Error);
			await new Promise((r) => setTimeout(r, wait));
		}
	}
}

/** NATS refuses payloads over its max_payload (1 MB by default); stay well under it. */
const MAX_CHUNK_BYTES = 256 * 1024;

export interface SearchIndexPayload {
	messages: Message[];
}

/** Splits a batch into payloads of at most ~256 KB of JSON each (a single huge message goes alone). */
export function chunkForChannel(messages: Message[], maxBytes = MAX_CHUNK_BYTES): SearchIndexPayload[] {
	const chunks: SearchIndexPayload[] = [];
	let current: Message[] = [];
	let bytes = 0;
	for (const m of messages) {
		const size = Buffer.byteLength(JSON.stringify(m));
		if (current.length > 0 && bytes + size > maxBytes) {
			chunks.push({ messages: current });
			current = [];
			bytes = 0;
		}
		current.push(m);
		bytes += size;
	}
	if (current.length > 0) chunks.push({ messages: current });
	return chunks;
}
