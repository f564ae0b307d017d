/**
 * Full-text search over messages, always scoped to a set of conversations the
 * caller belongs to. One implementation per engine (SQLite FTS5 embedded,
 * Elasticsearch in production), all passing the same behavioural tests.
 */
import type { Message, SearchHit } from "../../contract";

export interface SearchQuery {
	text: string;
	/** Only messages of these conversations can match; empty means no hits. */
	conversationIds: string[];
	limit: number;
}

export interface SearchIndex {
	readonly engine: string;
	open(): Promise<void>;
	close(): Promise<void>;
	search(query: SearchQuery): Promise<SearchHit[]>;
}

/** A message as the indexer hands it over, with the members allowed to find it. */
export interface IndexableMessage {
	message: Message;
	memberIds: string[];
}

/** An index fed from the store's outbox (Elasticsearch); idempotent by message id. */
export interface FedSearchIndex extends SearchIndex {
	index(docs: IndexableMessage[]): Promise<void>;
	remove(messageIds: string[]): Promise<void>;
	/** Drops and recreates the index (before a full reindex). */
	reset(): Promise<void>;
	/** open() found an index of an older schema and made it anew: the store must be replayed into it. */
	readonly rebuilt?: boolean;
}

/** An index the store keeps itself, in the same transaction (SQLite FTS5). */
export interface SelfMaintainedSearchIndex extends SearchIndex {
	/** Rebuilds the index from the store's messages. */
	rebuild(): Promise<void>;
}

export function isFed(index: SearchIndex): index is FedSearchIndex {
	return typeof (index as Partial<FedSearchIndex>).index === "function";
}
