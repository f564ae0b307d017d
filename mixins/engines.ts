/**
 * Picks the storage, search and presence engines for the configured profile,
 * so services never branch on the engine. One instance of each per process.
 */
import type { Config } from "../config";
import type { PresenceRegistry } from "../lib/presence/presence-registry";
import { MemoryPresence } from "../lib/presence/memory-presence";
import type { SearchIndex } from "../lib/search/search-index";
import { SqliteSearch } from "../lib/search/sqlite-search";
import type { ChatStore } from "../lib/store/chat-store";
import { SqliteStore } from "../lib/store/sqlite-store";

export function createChatStore(config: Config): ChatStore {
	return new SqliteStore(config.dataDir);
}

export function createSearchIndex(config: Config): SearchIndex {
	return new SqliteSearch(config.dataDir);
}

export function createPresenceRegistry(_config: Config): PresenceRegistry {
	return new MemoryPresence();
}
