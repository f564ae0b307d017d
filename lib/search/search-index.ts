/**
 * Full-text search over messages, always scoped to a set of conversations the
 * caller belongs to. One implementation per engine (SQLite FTS5 embedded,
 * Elasticsearch in production), all passing the same behavioural tests.
 */
import type { SearchHit } from "../../contract";

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
