/**
 * Picks the storage, search and presence engines from configuration, so
 * services never branch on the engine.
 */
import type { Config } from "../config";
import type { PresenceRegistry } from "../lib/presence/presence-registry";
import type { DeviceRegistry } from "../lib/push/device-registry";
import type { PushSender } from "../lib/push/fcm-sender";
import { SqliteDeviceRegistry } from "../lib/push/sqlite-device-registry";
import { MemoryPresence } from "../lib/presence/memory-presence";
import type { SearchIndex } from "../lib/search/search-index";
import { SqliteSearch } from "../lib/search/sqlite-search";
import type { ChatStore } from "../lib/store/chat-store";
import { SqliteStore } from "../lib/store/sqlite-store";

/**
 * A store for one service. `feedsSearch`: this instance appends messages, so with a
 * search engine that must be fed it also records each append in the search outbox.
 */
export function createChatStore(config: Config, options: { feedsSearch?: boolean } = {}): ChatStore {
	const feed = Boolean(options.feedsSearch) && config.search.engine !== "sqlite";
	if (config.store.engine === "cassandra") {
		// Loaded only when chosen, so the embedded profile starts without the drivers.
		const { CassandraStore } = require("../lib/store/cassandra-store") as typeof import("../lib/store/cassandra-store");
		const c = config.store.cassandra;
		return new CassandraStore({ contactPoints: c.contactPoints, localDataCenter: c.localDataCenter, keyspace: c.keyspace, replication: c.replication, feedSearch: feed });
	}
	return new SqliteStore(config.dataDir, feed);
}

export function createSearchIndex(config: Config): SearchIndex {
	if (config.search.engine === "elasticsearch") {
		const { ElasticSearchIndex } = require("../lib/search/elastic-search") as typeof import("../lib/search/elastic-search");
		// A search node meeting an index of an older schema makes it anew and replays the store into it.
		return new ElasticSearchIndex({ node: config.search.elasticsearch.url, index: config.search.elasticsearch.index, onOldSchema: "rebuild" });
	}
	return new SqliteSearch(config.dataDir);
}

/** Push tokens live beside the chat data: SQLite embedded, Cassandra in a cluster. */
export function createDeviceRegistry(config: Config): DeviceRegistry {
	if (config.store.engine === "cassandra") {
		const { CassandraDeviceRegistry } = require("../lib/push/cassandra-device-registry") as typeof import("../lib/push/cassandra-device-registry");
		const c = config.store.cassandra;
		return new CassandraDeviceRegistry({ contactPoints: c.contactPoints, localDataCenter: c.localDataCenter, keyspace: c.keyspace, replication: c.replication });
	}
	return new SqliteDeviceRegistry(config.dataDir);
}

/** FCM through firebase-admin when a service account is configured; otherwise no pushes are sent. */
export function createPushSender(config: Config): PushSender | null {
	if (!config.push.serviceAccountFile) return null;
	const { FcmSender } = require("../lib/push/fcm-sender") as typeof import("../lib/push/fcm-sender");
	return new FcmSender({ serviceAccountFile: config.push.serviceAccountFile, relayUrl: config.push.relayUrl, caFile: config.push.caFile });
}

/** Memory in one process; a cluster shares sessions in Redis, kept alive by each gateway's heartbeat. */
export function createPresenceRegistry(config: Config): PresenceRegistry {
	if (config.profile === "cluster") {
		const { RedisPresence } = require("../lib/presence/redis-presence") as typeof import("../lib/presence/redis-presence");
		return new RedisPresence({ url: config.cluster.redisUrl, nodeTtlMs: config.cluster.sessionTtlMs });
	}
	return new MemoryPresence();
}
