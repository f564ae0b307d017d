/**
 * Redis connections for the cluster profile (presence, rate limits, the Moleculer cache),
 * all tuned alike for a chat server: during a short outage calls wait in the offline queue
 * and go through after the reconnect; a longer one fails them within `commandTimeout`
 * instead of piling them up or hanging a user's call.
 */
import Redis, { type RedisOptions } from "ioredis";

/** ioredis options for a `redis://` or `rediss://` URL (user, password, db in the path). */
export function redisOptions(url: string): RedisOptions {
	const u = new URL(url);
	if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`not a redis:// URL: ${url}`);
	const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
	return {
		host: u.hostname || "127.0.0.1",
		port: u.port ? Number(u.port) : 6379,
		username: u.username ? decodeURIComponent(u.username) : undefined,
		password: u.password ? decodeURIComponent(u.password) : undefined,
		db: Number.isInteger(db) ? db : 0,
		tls: u.protocol === "rediss:" ? {} : undefined,
		// Back off to 0.5 s and never give up: Redis coming back must heal the cluster by itself.
		retryStrategy: (times) => Math.min(times * 100, 500),
		// Queued calls are failed every fifth failed reconnect (after ~1 s, then every ~2.5 s), so a
		// call the caller gave up on is not run long after, when Redis returns...
		maxRetriesPerRequest: 4,
		enableOfflineQueue: true,
		// ...and none waits more than 2 s for an answer, queued or sent.
		commandTimeout: 2000,
		connectTimeout: 2000,
	};
}

export function createRedis(url: string, onError?: (err: Error) => void): Redis {
	const redis = new Redis(redisOptions(url));
	// Without a listener ioredis prints every failed reconnect; callers log their own failed calls.
	redis.on("error", onError ?? (() => undefined));
	return redis;
}
