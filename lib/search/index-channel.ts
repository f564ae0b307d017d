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
