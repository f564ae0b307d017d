/**
 * A throwaway redis-server for the cluster tests: loopback, a free port, a temp dir,
 * no persistence, so restart() comes back empty like a Redis that lost its data.
 * In CI (CI=true) a missing redis-server fails the run; elsewhere its tests are
 * skipped with a loud message.
 */
import { spawnSync } from "node:child_process";
import { exitOf, freePort, makeTempDir, removeTempDir, signalChild } from "../../scripts/lib/processes";
import { REDIS_SERVER, startRedisServer } from "../../scripts/lib/redis-server";

export interface RedisHandle {
	url: string;
	port: number;
	/** SIGKILL, stay down for `downMs`, start again on the same port with no data. */
	restart(downMs?: number): Promise<void>;
	stop(): Promise<void>;
}

/** undefined when redis-server can be run; otherwise the reason to skip (outside CI) — in CI it throws. */
export function redisMissing(): string | undefined {
	if (!spawnSync(REDIS_SERVER, ["--version"]).error) return undefined;
	const reason = `${REDIS_SERVER} not found: install Redis 7 (apt-get install redis-server) or set PARLEY_REDIS_SERVER`;
	if (process.env.CI === "true") throw new Error(`Redis tests cannot run in CI: ${reason}`);
	console.warn(`\n!!! SKIPPING REDIS TESTS: ${reason} !!!\n`);
	return reason;
}

export async function startRedis(): Promise<RedisHandle> {
	const missing = redisMissing();
	if (missing) throw new Error(missing);
	const port = await freePort();
	const dir = makeTempDir("parley-redis-");
	let child = await startRedisServer(dir, port);
	const kill = async () => {
		signalChild(child, "SIGKILL");
		await exitOf(child);
	};
	return {
		url: `redis://127.0.0.1:${port}`,
		port,
		async restart(downMs = 0) {
			await kill();
			if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
			child = await startRedisServer(dir, port);
		},
		async stop() {
			await kill();
			removeTempDir(dir);
		},
	};
}
